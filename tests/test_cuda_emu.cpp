/*
 * test_cuda_emu.cpp -- the CUDA kernels of libbnn/cuda/kernels.cuh run on
 * the host emulator (HostExec: every thread of a block stepped through
 * each phase between barriers) against the shared oracles of oracle.h:
 *  - packing (one thread per word) == bt_pack_f32 on ragged k with the
 *    awkward floats (+-0, NaN, denormals, infinities) and wide strides;
 *  - the CUDA-core XNOR GEMM, every block of the grid, == the oracle's
 *    integer dots through each epilogue (INT32; FLOAT with and without
 *    scale and offset; BITS with and without flip) on ragged n, m, k
 *    (multiples of no tile), strided operands and outputs whose stride
 *    gaps must keep their canaries;
 *  - the training step's kernels == their CPU twins bit for bit: the
 *    device AP2 == bnn_ap2 (subnormals, ties, infinities); the optimizer
 *    (every kind, clip, with the packed signs) == bnn_opt_step(_pack) on
 *    test_train.c's awkward values; batch norm forward/backward (STANDARD
 *    and SHIFT, in place, running statistics or none) == bnn_bn_*; the
 *    sign's bits + mask == bnn_pack_f32 + bnn_ste_mask_pack and its
 *    backward == bnn_ste_backward_packed; the squared hinge gradient ==
 *    a table from pybnn.losses.squared_hinge (numpy).
 * Needs no GPU and no nvcc: it is the host half of what the GPU runs.
 */
#include "test_util.h"
#include "oracle.h"

#include "bnn_cuda.h"
#include "cuda/kernels.cuh"
#include "cuda/runner.cuh"
#include "model_builder.h"

#include <float.h>
#include <vector>

using namespace bnn_cuda;

static void emulate_pack(const PackArgs &p)
{
    for (int64_t i = 0; i < p.rows * p.kw; i++) pack_one(p, i);
}

static int test_pack(void)
{
    static const int64_t ks[] = {1, 2, 31, 63, 64, 65, 127, 128, 129, 200, 1000};
    bt_rng r = bt_stream(0xc0da);
    for (int64_t k : ks) {
        const int64_t rows = 5, kw = bt_words(k), lds = k + 3, ldd = kw + 2;
        std::vector<float> src((size_t)(rows * lds));
        std::vector<uint64_t> got((size_t)(rows * ldd), BT_CANARY_W), want(got);
        bt_rand_floats(&r, src.data(), src.size());
        PackArgs p = {rows, k, kw, src.data(), lds, got.data(), ldd};
        bt_ctx("emulated pack k=%" PRId64, k);
        emulate_pack(p);
        bt_pack_f32(rows, k, src.data(), lds, want.data(), ldd);
        for (size_t i = 0; i < got.size(); i++)
            CHECK_MSG(got[i] == want[i], "word %zu: %016" PRIx64 " want %016" PRIx64, i, got[i],
                      want[i]);
    }
    printf("  pack (emulated)                    ok\n");
    return 0;
}

/* Runs every block of the CUDA-core GEMM's grid on the emulator. */
static void emulate_gemm_simt(const GemmArgs &g)
{
    const int64_t bxs = (g.m + GEMM_BN - 1) / GEMM_BN, bys = (g.n + GEMM_BM - 1) / GEMM_BM;
    HostExec x = {GEMM_THREADS};
    std::vector<GemmRegs> regs(GEMM_THREADS);
    GemmSmem *s = new GemmSmem;
    for (int64_t by = 0; by < bys; by++)
        for (int64_t bx = 0; bx < bxs; bx++) gemm_simt_block(x, g, bx, by, *s, regs.data());
    delete s;
}

/* Runs every block of the tensor-core GEMM's grid on the emulator. */
static void emulate_gemm_tc(const GemmArgs &g)
{
    const int64_t bxs = (g.m + GEMM_BN - 1) / GEMM_BN, bys = (g.n + GEMM_BM - 1) / GEMM_BM;
    HostExec x = {TC_THREADS};
    std::vector<TcRegs> regs(TC_THREADS);
    TcSmem *s = new TcSmem;
    for (int64_t by = 0; by < bys; by++)
        for (int64_t bx = 0; bx < bxs; bx++) gemm_tc_block(x, g, bx, by, *s, regs.data());
    delete s;
}

typedef void (*emulated_gemm)(const GemmArgs &g);

static int gemm_case(int64_t n, int64_t m, int64_t k, uint64_t tag, emulated_gemm run,
                     const char *name)
{
    bt_rng r = bt_stream(tag);
    const int64_t kw = bt_words(k), lda = kw + 1, ldw = kw + 3;
    std::vector<float> af((size_t)(n * (k ? k : 1))), wf((size_t)(m * (k ? k : 1)));
    std::vector<int8_t> as((size_t)(n * k + 1)), ws((size_t)(m * k + 1));
    std::vector<int32_t> dot((size_t)(n * m));
    std::vector<uint64_t> a((size_t)(n * lda + 1), 0), w((size_t)(m * ldw + 1), 0);
    bt_epi_data d;
    bt_rand_floats(&r, af.data(), af.size());
    bt_rand_floats(&r, wf.data(), wf.size());
    for (int64_t i = 0; i < n; i++) bt_signs(af.data() + i * k, k, as.data() + i * k);
    for (int64_t j = 0; j < m; j++) bt_signs(wf.data() + j * k, k, ws.data() + j * k);
    bt_gemm_s8(n, m, k, as.data(), ws.data(), dot.data());
    bt_pack_f32(n, k, af.data(), k, a.data(), lda);
    bt_pack_f32(m, k, wf.data(), k, w.data(), ldw);
    bt_epi_make_pm1(&d, m, k, tag ^ 0xe1);
    for (int kind = BNN_EPI_INT32; kind <= BNN_EPI_BITS; kind++) {
        const int variants = kind == BNN_EPI_INT32 ? 1 : kind == BNN_EPI_FLOAT ? 4 : 2;
        for (int v = 0; v < variants; v++) {
            const bnn_epilogue e = bt_epi_for(kind, v, &d);
            const int64_t ldc = (kind == BNN_EPI_BITS ? bt_words(m) : m) + 2;
            size_t bytes;
            void *c = bt_out_alloc(n, m, kind, ldc, &bytes);
            GemmArgs g = {n, m, k, kw, a.data(), lda, w.data(), ldw, kind, e.scale, e.offset,
                          e.thresh, e.flip, c, ldc};
            bt_ctx("emulated %s n=%" PRId64 " m=%" PRId64 " k=%" PRId64
                   " epilogue %d variant %d", name, n, m, k, kind, v);
            run(g);
            int rc = bt_check_epi(n, m, dot.data(), &e, c, ldc, NULL, NULL);
            free(c);
            if (rc) {
                bt_epi_free(&d);
                return rc;
            }
        }
    }
    bt_epi_free(&d);
    return 0;
}

static const int64_t g_shapes[][3] = {
    {1, 1, 1},    {1, 1, 0},     {3, 5, 63},   {64, 64, 64},  {65, 63, 65},
    {70, 130, 129}, {129, 65, 513}, {17, 200, 1000}, {130, 7, 577}, {2, 129, 4096 + 3},
};

static int test_gemm_simt(void)
{
    for (size_t i = 0; i < sizeof g_shapes / sizeof g_shapes[0]; i++)
        RUN(gemm_case(g_shapes[i][0], g_shapes[i][1], g_shapes[i][2], 0x6e33 + i,
                      emulate_gemm_simt, "gemm_simt"));
    printf("  gemm_simt (emulated), 3 epilogues  ok\n");
    return 0;
}

/* The documented m16n8k256 .b1 layouts, checked directly: an A, B pair
 * built element by element, scattered into lane registers by the
 * formulas, gives C = popc(A row AND B column) in the lanes the C layout
 * names. */
static int test_mma_layout(void)
{
    bt_rng r = bt_stream(0x3a1);
    uint8_t A[16][256], B[256][8];
    uint32_t a[32][4] = {{0}}, b[32][2] = {{0}};
    int32_t c[32][4] = {{0}};
    for (int i = 0; i < 16; i++)
        for (int kk = 0; kk < 256; kk++) A[i][kk] = (uint8_t)bt_below(&r, 2);
    for (int kk = 0; kk < 256; kk++)
        for (int j = 0; j < 8; j++) B[kk][j] = (uint8_t)bt_below(&r, 2);
    for (int l = 0; l < 32; l++) {
        const int g = l >> 2, q = l & 3;
        for (int bit = 0; bit < 32; bit++) {
            a[l][0] |= (uint32_t)A[g][32 * q + bit] << bit;
            a[l][1] |= (uint32_t)A[g + 8][32 * q + bit] << bit;
            a[l][2] |= (uint32_t)A[g][128 + 32 * q + bit] << bit;
            a[l][3] |= (uint32_t)A[g + 8][128 + 32 * q + bit] << bit;
            b[l][0] |= (uint32_t)B[32 * q + bit][g] << bit;
            b[l][1] |= (uint32_t)B[128 + 32 * q + bit][g] << bit;
        }
    }
    emulate_mma_b1_and(a, b, c);
    for (int l = 0; l < 32; l++)
        for (int i = 0; i < 4; i++) {
            const int row = (l >> 2) + 8 * (i >> 1), col = 2 * (l & 3) + (i & 1);
            int32_t want = 0;
            for (int kk = 0; kk < 256; kk++) want += A[row][kk] & B[kk][col];
            bt_ctx("mma layout lane %d c%d", l, i);
            CHECK_EQ(c[l][i], want);
        }
    printf("  mma m16n8k256 .b1 layouts          ok\n");
    return 0;
}

static int test_gemm_tc(void)
{
    for (size_t i = 0; i < sizeof g_shapes / sizeof g_shapes[0]; i++)
        RUN(gemm_case(g_shapes[i][0], g_shapes[i][1], g_shapes[i][2], 0x7c11 + i,
                      emulate_gemm_tc, "gemm_tc"));
    printf("  gemm_tc (emulated mma), 3 epilogues ok\n");
    return 0;
}

/* Packs +-1 values [rows][c] (int32 or int8) into [rows][words(c)], -1 -> bit 1. */
template <class T>
static std::vector<uint64_t> pack_pm1(const std::vector<T> &v, int64_t rows, int64_t c)
{
    const int64_t cw = bt_words(c);
    std::vector<uint64_t> out((size_t)(rows * cw), 0);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < c; j++)
            if (v[(size_t)(r * c + j)] < 0) out[(size_t)(r * cw + j / 64)] |= (uint64_t)1 << (j % 64);
    return out;
}

/* A convolution's geometry, and its bnn_conv2d_params. */
struct ConvGeo { int64_t n, h, w, c, o, kh, kw; int sh, sw, dh, dw, pt, pb, pl, pr; };

static bnn_conv2d_params conv_params(const ConvGeo &q, int pad_value)
{
    bnn_conv2d_params p;
    memset(&p, 0, sizeof p);
    p.n = q.n; p.h = q.h; p.w = q.w; p.c = q.c; p.o = q.o; p.kh = q.kh; p.kw = q.kw;
    p.stride_h = q.sh; p.stride_w = q.sw; p.dilation_h = q.dh; p.dilation_w = q.dw;
    p.pad_top = q.pt; p.pad_bottom = q.pb; p.pad_left = q.pl; p.pad_right = q.pr;
    p.pad_value = pad_value;
    return p;
}

/* Binary convolution: every block of the implicit GEMM on the emulator ==
 * the direct integer convolution of oracle.h, through each epilogue, for
 * strides, dilations, asymmetric padding of both kinds and ragged c, o. */
static int test_conv(void)
{
    static const ConvGeo geos[] = {
        {2, 7, 6, 70, 65, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},
        {1, 9, 8, 64, 3, 3, 2, 2, 1, 1, 2, 2, 0, 1, 3},
        {3, 5, 5, 130, 70, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0},
        {1, 4, 4, 7, 129, 5, 5, 1, 2, 1, 1, 3, 2, 2, 4},
        {1, 3, 4, 600, 5, 2, 2, 1, 1, 1, 1, 1, 0, 0, 1},
    };
    bt_rng r = bt_stream(0xc0171);
    for (const ConvGeo &q : geos)
        for (int pad_value = 0; pad_value <= 1; pad_value++) {
            const bnn_conv2d_params p = conv_params(q, pad_value);
            int64_t oh, ow;
            CHECK_ST(bnn_conv2d_output_shape(&p, &oh, &ow), BNN_OK);
            const int64_t pix = q.n * q.h * q.w, taps = q.o * q.kh * q.kw, rows = q.n * oh * ow;
            std::vector<int32_t> xv((size_t)(pix * q.c));
            std::vector<int8_t> wv((size_t)(taps * q.c));
            for (auto &v : xv) v = bt_below(&r, 2) ? 1 : -1;
            for (auto &v : wv) v = (int8_t)(bt_below(&r, 2) ? 1 : -1);
            std::vector<int32_t> dot((size_t)(rows * q.o));
            bt_conv2d(&p, xv.data(), pad_value ? 1 : 0, 0, wv.data(), dot.data());
            std::vector<uint64_t> xb = pack_pm1(xv, pix, q.c), wb = pack_pm1(wv, taps, q.c);
            bt_epi_data d;
            bt_epi_make_pm1(&d, q.o, q.kh * q.kw * q.c, 0xc2 + (uint64_t)pad_value);
            for (int kind = BNN_EPI_INT32; kind <= BNN_EPI_BITS; kind++) {
                const bnn_epilogue e = bt_epi_for(kind, 0, &d);
                const int64_t ldc = kind == BNN_EPI_BITS ? bt_words(q.o) : q.o;
                size_t bytes;
                void *c = bt_out_alloc(rows, q.o, kind, ldc, &bytes);
                ConvArgs g;
                g.n = q.n; g.h = q.h; g.w = q.w; g.c = q.c; g.cw = bt_words(q.c); g.o = q.o;
                g.kh = q.kh; g.kw = q.kw; g.oh = oh; g.ow = ow; g.sh = q.sh; g.sw = q.sw;
                g.dh = q.dh; g.dw = q.dw; g.pt = q.pt; g.pl = q.pl; g.pad_value = pad_value;
                g.x = xb.data(); g.wt = wb.data();
                g.out = GemmArgs{rows, q.o, q.kh * q.kw * q.c, 0, NULL, 0, NULL, 0, kind, e.scale,
                                 e.offset, e.thresh, e.flip, c, ldc};
                HostExec x = {GEMM_THREADS};
                std::vector<ConvRegs> regs(GEMM_THREADS);
                ConvSmem *sm = new ConvSmem;
                for (int64_t by = 0; by < (rows + GEMM_BM - 1) / GEMM_BM; by++)
                    for (int64_t bx = 0; bx < (q.o + GEMM_BN - 1) / GEMM_BN; bx++)
                        conv_simt_block(x, g, bx, by, *sm, regs.data());
                delete sm;
                bt_ctx("emulated conv n%" PRId64 " %" PRId64 "x%" PRId64 " c%" PRId64 " o%" PRId64
                       " k%" PRId64 "x%" PRId64 " pad_value %d epilogue %d", q.n, q.h, q.w, q.c,
                       q.o, q.kh, q.kw, pad_value, kind);
                int rc = bt_check_epi(rows, q.o, dot.data(), &e, c, ldc, NULL, NULL);
                free(c);
                if (rc) { bt_epi_free(&d); return rc; }
            }
            bt_epi_free(&d);
        }
    printf("  conv2d (emulated), both paddings   ok\n");
    return 0;
}

/* Max pooling of bits, every output word == bt_maxpool_bits, with flip. */
static int test_pool(void)
{
    struct geo { int64_t n, h, w, c; int kh, kw, sh, sw, pt, pb, pl, pr; };
    static const geo geos[] = {
        {2, 8, 8, 70, 2, 2, 2, 2, 0, 0, 0, 0}, {1, 7, 5, 130, 3, 3, 2, 1, 1, 1, 2, 0},
        {3, 5, 6, 64, 2, 3, 1, 2, 1, 0, 0, 2},
    };
    bt_rng r = bt_stream(0x9001);
    for (const geo &q : geos) {
        bnn_pool2d_params p;
        memset(&p, 0, sizeof p);
        p.n = q.n; p.h = q.h; p.w = q.w; p.c = q.c; p.kh = q.kh; p.kw = q.kw;
        p.stride_h = q.sh; p.stride_w = q.sw;
        p.pad_top = q.pt; p.pad_bottom = q.pb; p.pad_left = q.pl; p.pad_right = q.pr;
        int64_t oh, ow;
        CHECK_ST(bnn_pool2d_output_shape(&p, &oh, &ow), BNN_OK);
        const int64_t cw = bt_words(q.c), pix = q.n * q.h * q.w;
        std::vector<int32_t> xv((size_t)(pix * q.c));
        for (auto &v : xv) v = bt_below(&r, 3) ? 1 : -1;
        std::vector<uint64_t> xb = pack_pm1(xv, pix, q.c);
        std::vector<uint8_t> flip((size_t)q.c);
        for (auto &f : flip) f = bt_rand_flip(&r);
        for (int use_flip = 0; use_flip <= 1; use_flip++) {
            const int64_t total = q.n * oh * ow * cw;
            std::vector<uint64_t> got((size_t)total, BT_CANARY_W), want((size_t)total);
            bt_maxpool_bits(&p, xb.data(), use_flip ? flip.data() : NULL, BT_CANARY_W,
                            want.data());
            PoolArgs g = {q.n, q.h, q.w, cw, oh, ow, q.kh, q.kw, q.sh, q.sw, q.pt, q.pl,
                          xb.data(), use_flip ? flip.data() : NULL, q.c, got.data()};
            for (int64_t i = 0; i < total; i++) pool_word(g, i);
            bt_ctx("emulated maxpool bits %" PRId64 "x%" PRId64 " c%" PRId64 " flip %d", q.h,
                   q.w, q.c, use_flip);
            for (int64_t i = 0; i < total; i++)
                CHECK_MSG(got[(size_t)i] == want[(size_t)i], "word %" PRId64 ": %016" PRIx64
                          " want %016" PRIx64, i, got[(size_t)i], want[(size_t)i]);
        }
    }
    printf("  maxpool2d bits (emulated)          ok\n");
    return 0;
}

static void emulate_pm1(const Pm1Args &g)
{
    HostExec x = {PM1_THREADS};
    std::vector<Pm1Regs> regs(PM1_THREADS);
    Pm1Smem s;
    for (int64_t by = 0; by < (g.I + PM1_ROWS - 1) / PM1_ROWS; by++)
        for (int64_t bx = 0; bx < (g.K + 63) / 64; bx++) pm1_block(x, g, bx, by, s, regs.data());
}

/* The training products: the float one bitwise == bt_gemm_f32_pm1 (A as
 * rows and transposed, fresh and accumulating), the int8 one exactly ==
 * bt_gemm_i8_pm1, on ragged I, K, J. */
static int test_pm1(void)
{
    static const int64_t shapes[][3] = {{1, 1, 1}, {3, 70, 0}, {5, 65, 33}, {9, 130, 100},
                                        {4, 64, 64}, {7, 200, 257}};
    bt_rng r = bt_stream(0x9a1);
    for (const auto &sh : shapes) {
        const int64_t I = sh[0], K = sh[1], J = sh[2], kw = bt_words(K), lds = kw + 1;
        const int64_t ldc = K + 2;
        std::vector<uint64_t> sb((size_t)(J * lds + 1), 0);
        std::vector<float> sf((size_t)(J * K + 1));
        for (auto &v : sf) v = bt_below(&r, 2) ? 1.0f : -1.0f;
        bt_pack_f32(J, K, sf.data(), K, sb.data(), lds);
        for (int trans = 0; trans <= 1; trans++)
            for (int acc = 0; acc <= 1; acc++) {
                std::vector<float> a((size_t)(I * J + 1));
                bt_rand_floats(&r, a.data(), a.size());
                const int64_t lda_i = trans ? 1 : J, lda_j = trans ? I : 1;
                std::vector<float> c((size_t)(I * ldc)), want;
                for (auto &v : c) v = (float)(bt_unit(&r) - 0.5);
                want = c;
                bt_gemm_f32_pm1(I, K, J, a.data(), lda_i, lda_j, sb.data(), lds, want.data(),
                                ldc, acc);
                Pm1Args g = {I, K, J, a.data(), lda_i, lda_j, NULL, sb.data(), lds, c.data(),
                             NULL, ldc, acc, 1};
                emulate_pm1(g);
                bt_ctx("emulated f32 pm1 I%" PRId64 " K%" PRId64 " J%" PRId64 " trans %d acc %d",
                       I, K, J, trans, acc);
                for (size_t i = 0; i < c.size(); i++)
                    CHECK_MSG(bt_f2u(c[i]) == bt_f2u(want[i]) || (c[i] != c[i] && want[i] != want[i]),
                              "c[%zu] = %a, want %a", i, (double)c[i], (double)want[i]);
            }
        std::vector<int8_t> q((size_t)(I * J + 1));
        for (auto &v : q) v = (int8_t)bt_range(&r, -127, 127);
        std::vector<int32_t> ci((size_t)(I * ldc), 7), want((size_t)(I * ldc), 7);
        bt_gemm_i8_pm1(I, K, J, q.data(), J, sb.data(), lds, want.data(), ldc);
        Pm1Args g = {I, K, J, NULL, J, 1, q.data(), sb.data(), lds, NULL, ci.data(), ldc, 0, 0};
        emulate_pm1(g);
        bt_ctx("emulated i8 pm1 I%" PRId64 " K%" PRId64 " J%" PRId64, I, K, J);
        for (size_t i = 0; i < ci.size(); i++)
            CHECK_MSG(ci[i] == want[i], "c[%zu] = %d, want %d", i, ci[i], want[i]);
    }
    printf("  f32 / i8 x pm1 (emulated)          ok\n");
    return 0;
}

/* The convolution's backward products, every output on the emulator, ==
 * the oracles of oracle.h bit for bit (floats) for both paddings. */
static int test_conv_grad(void)
{
    static const ConvGeo geos[] = {
        {2, 6, 5, 70, 9, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},
        {1, 7, 6, 65, 4, 3, 2, 2, 1, 1, 2, 2, 0, 1, 2},
    };
    bt_rng r = bt_stream(0xc06);
    for (const ConvGeo &q : geos)
        for (int pad_value = 0; pad_value <= 1; pad_value++) {
            const bnn_conv2d_params p = conv_params(q, pad_value);
            int64_t oh, ow;
            CHECK_ST(bnn_conv2d_output_shape(&p, &oh, &ow), BNN_OK);
            const int64_t cw = bt_words(q.c), taps = q.kh * q.kw, M = q.n * oh * ow;
            const int64_t nx = q.n * q.h * q.w * q.c, nw = q.o * taps * q.c;
            std::vector<int32_t> xv((size_t)nx);
            std::vector<int8_t> wv((size_t)nw);
            for (auto &v : xv) v = bt_below(&r, 2) ? 1 : -1;
            for (auto &v : wv) v = (int8_t)(bt_below(&r, 2) ? 1 : -1);
            std::vector<uint64_t> xb = pack_pm1(xv, q.n * q.h * q.w, q.c);
            std::vector<uint64_t> wb = pack_pm1(wv, q.o * taps, q.c);
            std::vector<float> grad((size_t)(M * q.o)), scale_o((size_t)q.o), scale_m((size_t)M);
            std::vector<int8_t> qt((size_t)(q.o * M)), qm((size_t)(M * q.o));
            bt_rand_floats(&r, grad.data(), grad.size());
            for (auto &v : scale_o) v = (float)bt_unit(&r);
            for (auto &v : scale_m) v = (float)bt_unit(&r);
            for (auto &v : qt) v = (int8_t)bt_range(&r, -127, 127);
            for (auto &v : qm) v = (int8_t)bt_range(&r, -127, 127);
            ConvGradArgs g;
            memset(&g, 0, sizeof g);
            g.n = q.n; g.h = q.h; g.w = q.w; g.c = q.c; g.cw = cw; g.o = q.o; g.kh = q.kh;
            g.kw = q.kw; g.oh = oh; g.ow = ow; g.sh = q.sh; g.sw = q.sw; g.dh = q.dh;
            g.dw = q.dw; g.pt = q.pt; g.pl = q.pl; g.pad_value = pad_value;
            g.x = xb.data(); g.wt = wb.data();
            for (int kind = 0; kind < 4; kind++) {     /* wf32, wi8, if32, ii8 */
                const int weights = kind < 2, f32 = kind % 2 == 0;
                const int64_t total = weights ? nw : nx;
                for (int acc = 0; acc <= (weights ? 1 : 0); acc++) {
                    std::vector<float> got((size_t)total), want;
                    for (auto &v : got) v = (float)(bt_unit(&r) - 0.5);
                    want = got;
                    g.grad = f32 ? grad.data() : NULL;
                    g.q = f32 ? NULL : weights ? qt.data() : qm.data();
                    g.scale = f32 ? NULL : weights ? scale_o.data() : scale_m.data();
                    g.out = got.data();
                    g.accumulate = acc;
                    for (int64_t i = 0; i < total; i++) {
                        if (weights) conv_grad_weights_one(g, i);
                        else conv_grad_input_one(g, i);
                    }
                    if (kind == 0) bt_conv2d_grad_weights_f32(&p, xb.data(), grad.data(), want.data(), acc);
                    if (kind == 1) bt_conv2d_grad_weights_i8(&p, xb.data(), qt.data(), scale_o.data(), want.data(), acc);
                    if (kind == 2) bt_conv2d_grad_input_f32(&p, wb.data(), grad.data(), want.data());
                    if (kind == 3) bt_conv2d_grad_input_i8(&p, wb.data(), qm.data(), scale_m.data(), want.data());
                    bt_ctx("emulated conv grad kind %d acc %d pad_value %d c%" PRId64, kind, acc,
                           pad_value, q.c);
                    for (size_t i = 0; i < got.size(); i++)
                        CHECK_MSG(bt_f2u(got[i]) == bt_f2u(want[i]) ||
                                      (got[i] != got[i] && want[i] != want[i]),
                                  "out[%zu] = %a, want %a", i, (double)got[i], (double)want[i]);
                }
            }
        }
    printf("  conv2d grads f32/i8 (emulated)     ok\n");
    return 0;
}

/* Stochastic rounding: the emulated kernels == bt_quantize_i8 (the shared
 * oracle of bnn_quantize_i8), q and scale, by row and by column. */
static int test_quantize(void)
{
    static const int64_t shapes[][2] = {{1, 1}, {5, 70}, {33, 9}, {4, 1500}};
    bt_rng r = bt_stream(0x9a7);
    for (const auto &sh : shapes)
        for (int by_column = 0; by_column <= 1; by_column++) {
            const int64_t rows = sh[0], k = sh[1], lda = k + 1;
            const int64_t ldq = (by_column ? rows : k) + 2, qrows = by_column ? k : rows;
            std::vector<float> a((size_t)(rows * lda));
            bt_rand_floats(&r, a.data(), a.size());
            if (rows > 2) for (int64_t j = 0; j < k; j++) a[(size_t)(2 * lda + j)] = 0.0f;
            std::vector<int8_t> q((size_t)(qrows * ldq), 55), qw(q);
            std::vector<float> sc((size_t)(by_column ? k : rows)), scw(sc);
            const uint64_t seed = bt_next(&r), counter = bt_next(&r) >> 20;
            bt_quantize_i8(rows, k, a.data(), lda, by_column, seed, counter, qw.data(), ldq,
                           scw.data());
            QuantArgs g = {rows, k, lda, ldq, a.data(), by_column, seed, counter, q.data(),
                           sc.data()};
            for (int64_t i = 0; i < (by_column ? k : rows); i++) quant_scale_one(g, i);
            for (int64_t i = 0; i < rows * k; i++) quant_round_one(g, i);
            bt_ctx("emulated quantize %" PRId64 "x%" PRId64 " by_column %d", rows, k, by_column);
            for (size_t i = 0; i < sc.size(); i++)
                CHECK_MSG(bt_f2u(sc[i]) == bt_f2u(scw[i]), "scale[%zu] %a want %a", i,
                          (double)sc[i], (double)scw[i]);
            for (size_t i = 0; i < q.size(); i++)
                CHECK_MSG(q[i] == qw[i], "q[%zu] = %d, want %d", i, q[i], qw[i]);
        }
    printf("  quantize_i8 (emulated)             ok\n");
    return 0;
}

/* The model runner's launcher on the emulator: every kernel's blocks (or
 * threads) stepped on host memory. */
struct EmuLauncher {
    int tensor;                           /* the GEMM kernel to emulate */
    bnn_status gemm(const GemmArgs &g)
    {
        if (tensor) emulate_gemm_tc(g);
        else emulate_gemm_simt(g);
        return BNN_OK;
    }
    bnn_status conv(const ConvArgs &g)
    {
        HostExec x = {GEMM_THREADS};
        std::vector<ConvRegs> regs(GEMM_THREADS);
        ConvSmem *sm = new ConvSmem;
        for (int64_t by = 0; by < (g.out.n + GEMM_BM - 1) / GEMM_BM; by++)
            for (int64_t bx = 0; bx < (g.o + GEMM_BN - 1) / GEMM_BN; bx++)
                conv_simt_block(x, g, bx, by, *sm, regs.data());
        delete sm;
        return BNN_OK;
    }
    bnn_status pool(const PoolArgs &g, int64_t total)
    {
        for (int64_t i = 0; i < total; i++) pool_word(g, i);
        return BNN_OK;
    }
    bnn_status u8(const U8Args &g, int64_t total)
    {
        for (int64_t i = 0; i < total; i++) u8_word(g, i);
        return BNN_OK;
    }
    bnn_status flatten(const FlatArgs &g, int64_t total)
    {
        for (int64_t i = 0; i < total; i++) flatten_word(g, i);
        return BNN_OK;
    }
    bnn_status argmax(const ArgmaxArgs &g, int64_t n)
    {
        for (int64_t r = 0; r < n; r++) argmax_row(g, r);
        return BNN_OK;
    }
};

/* Whole models (the 8-bit first layer dense and conv, binary dense and
 * conv with both paddings, strides and dilation, pooling, both kinds of
 * flatten) through the runner on the emulator == bnn_model_run on the
 * CPU: the same float scores bit for bit, the same classes. */
static int test_runner(void)
{
    bt_rng r = bt_stream(0x3c7);
    for (int which = 0; which < 3; which++)
        for (int tensor = 0; tensor <= 1; tensor++) {
            mb_model m;
            if (which == 0) {                      /* an MLP */
                mb_init(&m, 4, 4, 3, 10);
                mb_add_dense(&m, MB_INPUT_U8, 48, 70);
                mb_add_dense(&m, 0, 70, 130);
                mb_add_dense(&m, MB_SCORES, 130, 10);
            } else if (which == 1) {               /* a CNN, zero padding */
                mb_init(&m, 8, 7, 3, 10);
                mb_add_conv(&m, MB_INPUT_U8, 3, 70, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1);
                mb_add_pool(&m, 2, 2, 2, 2);
                mb_add_conv(&m, 0, 70, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1);
                mb_add_flatten(&m);                /* c = 64: the words as they are */
                mb_add_dense(&m, MB_SCORES, 4 * 3 * 64, 10);
            } else {                               /* +1 padding, stride, dilation */
                mb_init(&m, 9, 9, 2, 7);
                mb_add_conv(&m, MB_INPUT_U8, 2, 33, 3, 2, 2, 1, 1, 2, 1, 0, 2, 1);
                mb_add_conv(&m, MB_PAD_ONE, 33, 20, 2, 2, 1, 1, 2, 1, 1, 1, 0, 1);
                mb_add_flatten(&m);                /* c = 20: bits regrouped */
                mb_add_dense(&m, MB_SCORES, (uint32_t)m.cur_c, 7);
            }
            mb_fill_random(&m, 0xab + (uint64_t)which);
            size_t bytes;
            uint8_t *file = mb_serialize(&m, &bytes);
            bnn_model *bm = NULL;
            bt_ctx("runner model %d tensor %d", which, tensor);
            CHECK_ST(bnn_model_open_memory(file, bytes, &bm), BNN_OK);
            bnn_model_info info;
            CHECK_ST(bnn_model_get_info(bm, &info), BNN_OK);
            const int64_t n = 5, npix = info.in_h * info.in_w * info.in_c;
            std::vector<uint8_t> x((size_t)(n * npix));
            for (auto &v : x) v = (uint8_t)bt_below(&r, 256);
            size_t wsb = 0;
            CHECK_ST(bnn_model_workspace_size(bm, n, 1, &wsb), BNN_OK);
            std::vector<uint64_t> ws(wsb / 8 + 8);
            std::vector<float> want((size_t)(n * info.classes)), got(want.size());
            std::vector<int32_t> cw((size_t)n), cg((size_t)n);
            CHECK_ST(bnn_model_run(bm, n, x.data(), want.data(), cw.data(), ws.data(), wsb),
                     BNN_OK);
            std::vector<LayerArrays> arr((size_t)bm->n_layers);
            for (int64_t i = 0; i < bm->n_layers; i++) {
                const bnn_layer_rt *L = &bm->layers[i];
                arr[(size_t)i] = LayerArrays{L->w, L->thresh, L->flip, L->scale, L->offset};
            }
            std::vector<uint64_t> b0((size_t)(bm->act_words * n)), b1(b0.size());
            EmuLauncher l = {tensor};
            CHECK_ST(run_model(l, bm, arr.data(), n, x.data(), b0.data(), b1.data(), got.data(),
                               cg.data()), BNN_OK);
            for (size_t i = 0; i < got.size(); i++)
                CHECK_MSG(bt_f2u(got[i]) == bt_f2u(want[i]), "score %zu: %a want %a", i,
                          (double)got[i], (double)want[i]);
            for (size_t i = 0; i < cg.size(); i++) CHECK_EQ(cg[i], cw[i]);
            bnn_model_free(bm);
            free(file);
            mb_free(&m);
        }
    printf("  model runner (emulated) == bnn_model_run ok\n");
    return 0;
}

/* The float GEMM of the comparison: bitwise the plain ordered float loop. */
static int test_sgemm(void)
{
    static const int64_t shapes[][3] = {{1, 1, 1}, {5, 3, 0}, {17, 33, 15}, {40, 20, 100}};
    bt_rng r = bt_stream(0x56e);
    for (const auto &sh : shapes) {
        const int64_t n = sh[0], m = sh[1], k = sh[2], lda = k + 1, ldw = k + 2, ldc = m + 3;
        std::vector<float> a((size_t)(n * lda + 1)), w((size_t)(m * ldw + 1));
        std::vector<float> c((size_t)(n * ldc), -7.0f);
        for (float &v : a) v = (float)(bt_unit(&r) * 2.0 - 1.0);
        for (float &v : w) v = (float)(bt_unit(&r) * 2.0 - 1.0);
        SgemmArgs g = {n, m, k, a.data(), lda, w.data(), ldw, c.data(), ldc};
        HostExec x = {SG_THREADS};
        std::vector<SgemmRegs> regs(SG_THREADS);
        SgemmSmem s;
        for (int64_t by = 0; by < (n + SG_TILE - 1) / SG_TILE; by++)
            for (int64_t bx = 0; bx < (m + SG_TILE - 1) / SG_TILE; bx++)
                sgemm_block(x, g, bx, by, s, regs.data());
        bt_ctx("emulated sgemm n=%" PRId64 " m=%" PRId64 " k=%" PRId64, n, m, k);
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < ldc; j++) {
                float want = -7.0f;              /* the stride gap keeps its value */
                if (j < m) {
                    want = 0.0f;
                    for (int64_t l = 0; l < k; l++) {
                        const float p = a[i * lda + l] * w[j * ldw + l];
                        want = want + p;
                    }
                }
                CHECK_MSG(bt_f2u(c[i * ldc + j]) == bt_f2u(want), "c[%" PRId64 "][%" PRId64
                          "] = %a, want %a", i, j, (double)c[i * ldc + j], (double)want);
            }
    }
    printf("  sgemm (emulated) == ordered loop   ok\n");
    return 0;
}

/* ------------------------------------------------------------------ */
/* The training step's elementwise and per-feature kernels             */
/* ------------------------------------------------------------------ */

/* Bitwise equal, or both NaN (a GPU's NaNs need not keep payloads). */
static int same_f32(float a, float b)
{
    return bt_f2u(a) == bt_f2u(b) || (a != a && b != b);
}

/* bnn_opt_step_pack and bnn_opt_step on the CPU == the emulated word and
 * element kernels: param, m, v and the sign words (with canaries in the
 * stride gaps), every kind, with and without clipping (a clip whose float
 * is 0 too), step 1 and a later one, ragged rows and k. */
static int test_opt(void)
{
    /* the last: past OPT_PARALLEL_MIN, so the CPU splits the rows over threads */
    static const int64_t shapes[][2] = {{1, 1}, {1, 63}, {3, 65}, {4, 130}, {2, 1000}, {5, 7},
                                        {131, 2003}};
    static const double clips[] = {0.0, 0.8, 1e-50};
    bt_rng r = bt_stream(0x0b7);
    const int threads0 = bnn_get_num_threads();
    (void)bnn_set_num_threads(3);     /* the CPU's threaded split too */
    for (const auto &sh : shapes)
        for (int kind = 0; kind <= 2; kind++)
            for (double clip : clips)
                for (int64_t t = 1; t <= 9; t += 8) {
                    const int64_t rows = sh[0], k = sh[1], n = rows * k, kw = bt_words(k);
                    const int64_t lds = kw + 1;
                    bnn_opt_params p;
                    memset(&p, 0, sizeof p);
                    p.kind = kind; p.t = t; p.lr = 3e-3; p.beta1 = kind == 2 ? 0.875 : 0.9;
                    p.beta2 = kind == 2 ? 1.0 - 1.0 / 1024 : 0.999;
                    p.eps = kind == 2 ? 1.0 / 134217728.0 : 1e-8;
                    p.lr_scale = 1.5; p.clip = clip;
                    std::vector<float> p0((size_t)n), g((size_t)n), m0((size_t)n), v0((size_t)n);
                    bt_opt_inputs(&r, n, 23, p0.data(), g.data(), m0.data(), v0.data());
                    std::vector<float> pc(p0), mc(m0), vc(v0), pe(p0), me(m0), ve(v0);
                    std::vector<uint64_t> sc((size_t)(rows * lds), BT_CANARY_W), se(sc);
                    double step = 0.0;
                    CHECK_ST(bnn_opt_step_pack(&p, rows, k, pc.data(), g.data(), mc.data(),
                                               vc.data(), sc.data(), lds), BNN_OK);
                    CHECK_ST(bnn_opt_check(&p, 1, rows, k, pe.data(), g.data(), me.data(),
                                           ve.data(), se.data(), lds, &step), BNN_OK);
                    OptArgs a;
                    memset(&a, 0, sizeof a);
                    a.kind = p.kind; a.clip_on = p.clip > 0.0; a.clip = (float)p.clip;
                    a.b1 = p.beta1; a.b2 = p.beta2; a.eps = p.eps; a.step = step;
                    a.rows = rows; a.k = k; a.kw = kw; a.param = pe.data(); a.grad = g.data();
                    a.m = me.data(); a.v = ve.data(); a.signs = se.data(); a.lds = lds;
                    HostExec x = {OPT_THREADS};
                    OptSmem sm;
                    for (int64_t b = 0; b < rows * opt_blocks_per_row(a); b++)
                        opt_pack_block(x, a, b, sm);
                    bt_ctx("emulated opt_step_pack kind %d clip %g t %" PRId64 " %" PRId64
                           "x%" PRId64, kind, clip, t, rows, k);
                    for (int64_t i = 0; i < n; i++) {
                        CHECK_MSG(same_f32(pe[i], pc[i]), "param[%" PRId64 "] %a want %a", i,
                                  (double)pe[i], (double)pc[i]);
                        CHECK_MSG(same_f32(me[i], mc[i]), "m[%" PRId64 "] %a want %a", i,
                                  (double)me[i], (double)mc[i]);
                        CHECK_MSG(same_f32(ve[i], vc[i]), "v[%" PRId64 "] %a want %a", i,
                                  (double)ve[i], (double)vc[i]);
                    }
                    for (size_t i = 0; i < sc.size(); i++)
                        CHECK_MSG(se[i] == sc[i], "signs word %zu: %016" PRIx64 " want %016"
                                  PRIx64, i, se[i], sc[i]);
                    /* bnn_opt_step: one element per thread, rows of 1 */
                    pc = p0; mc = m0; vc = v0; pe = p0; me = m0; ve = v0;
                    CHECK_ST(bnn_opt_step(&p, n, pc.data(), g.data(), mc.data(), vc.data()),
                             BNN_OK);
                    a.rows = n; a.k = 1; a.kw = 1; a.signs = NULL; a.param = pe.data();
                    a.m = me.data(); a.v = ve.data();
                    for (int64_t i = 0; i < n; i++) opt_elem_one(a, i);
                    bt_ctx("emulated opt_step kind %d clip %g t %" PRId64 " n %" PRId64, kind,
                           clip, t, n);
                    for (int64_t i = 0; i < n; i++)
                        CHECK_MSG(same_f32(pe[i], pc[i]) && same_f32(me[i], mc[i])
                                      && same_f32(ve[i], vc[i]),
                                  "element %" PRId64 ": %a %a %a want %a %a %a", i,
                                  (double)pe[i], (double)me[i], (double)ve[i], (double)pc[i],
                                  (double)mc[i], (double)vc[i]);
                }
    (void)bnn_set_num_threads(threads0);
    printf("  opt_step(_pack) (emulated)         ok\n");
    return 0;
}

/* AP2 on the device == bnn_ap2: around sqrt(2) * 2^e, subnormals, zeros,
 * infinities, NaN and the largest doubles. */
static int test_ap2(void)
{
    bt_rng r = bt_stream(0xa92);
    std::vector<double> zs = {0.0, -0.0, INFINITY, -INFINITY, NAN, DBL_MAX, -DBL_MAX, DBL_MIN,
                              5e-324, -5e-324, 1.5e-323, 2.5e-323, 6e-323, 2.2250738585072009e-308,
                              (double)FLT_MIN, 1e-45, 0.7071067811865476, 0.7071067811865475,
                              1.4142135623730951, 1.414213562373095, 1.0, -3.0};
    for (int e = -1074; e <= 1023; e += 7) {
        const double z0 = ldexp(1.4142135623730951, e);
        zs.push_back(z0);
        zs.push_back(nextafter(z0, INFINITY));
        zs.push_back(-nextafter(z0, 0.0));
    }
    for (int i = 0; i < 2000; i++) zs.push_back(ldexp(bt_unit(&r) * 2 - 1, (int)bt_range(&r, -1100, 1030)));
    for (double z : zs) {
        const double a = ap2(z), b = bnn_ap2(z);
        uint64_t ua, ub;
        memcpy(&ua, &a, 8);
        memcpy(&ub, &b, 8);
        CHECK_MSG(ua == ub || (a != a && b != b), "ap2(%a) = %a, bnn_ap2 %a", z, a, b);
    }
    printf("  ap2 (device function) == bnn_ap2   ok\n");
    return 0;
}

/* Batch norm inputs: features of ordinary floats at several scales and
 * offsets, a constant feature (variance 0), one with a NaN, one with an
 * infinity, -0s. */
static void bn_inputs(bt_rng *r, int64_t n, int64_t c, float *x)
{
    for (int64_t j = 0; j < c; j++) {
        const double scale = exp2(bt_unit(r) * 20 - 10), off = (bt_unit(r) - 0.5) * 8;
        for (int64_t i = 0; i < n; i++) {
            float v = (float)(off + (bt_unit(r) * 2 - 1) * scale);
            if (j % 11 == 3) v = 0.75f;
            if (j % 11 == 5 && i == n / 2) v = NAN;
            if (j % 11 == 7 && i == 0) v = -INFINITY;
            if (j % 11 == 9 && i % 3 == 0) v = -0.0f;
            x[i * c + j] = v;
        }
    }
}

/* bnn_bn_forward_train and bnn_bn_backward on the CPU == the emulated
 * per-feature kernels, STANDARD and SHIFT, with and without running
 * statistics, in place and not, on ragged n and c (1, odd, across the
 * CPU's 256-feature chunks); the shift backward also from a saved scale
 * that is not a power of two (the CPU's exact loop). */
static int test_bn(void)
{
    /* the last: large enough for the CPU to split features over threads */
    static const int64_t shapes[][2] = {{1, 1}, {1, 5}, {2, 33}, {7, 65}, {64, 130}, {3, 300},
                                        {100, 1}, {17, 257}, {521, 257}};
    bt_rng r = bt_stream(0xb17);
    const int threads0 = bnn_get_num_threads();
    (void)bnn_set_num_threads(3);     /* the CPU's threaded split too */
    for (const auto &sh : shapes)
        for (int kind = 0; kind <= 1; kind++)
            for (int variant = 0; variant < 3; variant++) {
                const int64_t n = sh[0], c = sh[1], nc = n * c;
                const int running = variant != 1, inplace = variant == 2;
                const bnn_bn_kind bk = kind ? BNN_BN_SHIFT : BNN_BN_STANDARD;
                std::vector<float> x((size_t)nc), gamma((size_t)c), beta((size_t)c), dy((size_t)nc);
                bn_inputs(&r, n, c, x.data());
                for (int64_t j = 0; j < c; j++) {
                    gamma[j] = (float)(bt_unit(&r) * 3 - 1);
                    beta[j] = (float)(bt_unit(&r) * 2 - 1);
                }
                for (auto &v : dy) v = (float)((bt_unit(&r) * 2 - 1) * exp2(bt_unit(&r) * 10 - 5));
                if (nc > 4) { dy[1] = NAN; dy[(size_t)(nc - 2)] = INFINITY; dy[2] = -0.0f; }
                std::vector<float> rm0((size_t)c), rv0((size_t)c);
                for (int64_t j = 0; j < c; j++) {
                    rm0[j] = (float)(bt_unit(&r) - 0.5);
                    rv0[j] = (float)(bt_unit(&r) + 0.5);
                }
                /* forward */
                std::vector<float> yc((size_t)nc), ye((size_t)nc), mc((size_t)c), me((size_t)c);
                std::vector<float> scc((size_t)c), sce((size_t)c), rmc(rm0), rvc(rv0), rme(rm0),
                    rve(rv0);
                std::vector<float> xc(x), xe(x);
                float *ycp = inplace ? xc.data() : yc.data(), *yep = inplace ? xe.data() : ye.data();
                CHECK_ST(bnn_bn_forward_train(bk, n, c, xc.data(), gamma.data(), beta.data(),
                                              1e-5f, 0.1f, running ? rmc.data() : NULL,
                                              running ? rvc.data() : NULL, ycp, mc.data(),
                                              scc.data()), BNN_OK);
                BnArgs b;
                memset(&b, 0, sizeof b);
                b.n = n; b.c = c; b.shift = kind; b.x = xe.data(); b.gamma = gamma.data();
                b.beta = beta.data(); b.eps = 1e-5f; b.momentum = 0.1f;
                b.running_mean = running ? rme.data() : NULL;
                b.running_invstd = running ? rve.data() : NULL;
                b.y = yep; b.mean = me.data(); b.scale = sce.data();
                for (int64_t f = 0; f < c; f++) bn_forward_feature(b, f);
                bt_ctx("emulated bn forward kind %d n %" PRId64 " c %" PRId64 " variant %d", kind,
                       n, c, variant);
                for (int64_t i = 0; i < nc; i++)
                    CHECK_MSG(same_f32(yep[i], ycp[i]), "y[%" PRId64 "] %a want %a", i,
                              (double)yep[i], (double)ycp[i]);
                for (int64_t j = 0; j < c; j++)
                    CHECK_MSG(same_f32(me[j], mc[j]) && same_f32(sce[j], scc[j])
                                  && same_f32(rme[j], rmc[j]) && same_f32(rve[j], rvc[j]),
                              "feature %" PRId64 ": mean %a scale %a running %a %a, want %a %a "
                              "%a %a", j, (double)me[j], (double)sce[j], (double)rme[j],
                              (double)rve[j], (double)mc[j], (double)scc[j], (double)rmc[j],
                              (double)rvc[j]);
                /* backward, from the saved statistics (for SHIFT in variant 1:
                 * a scale that is not a power of two) */
                std::vector<float> sm(mc), ss(scc);
                if (kind && variant == 1)
                    for (int64_t j = 0; j < c; j++) ss[j] = (float)(bt_unit(&r) + 0.25);
                std::vector<float> dyc(dy), dye(dy), dxc((size_t)nc), dxe((size_t)nc);
                std::vector<float> dgc((size_t)c), dge((size_t)c), dbc((size_t)c), dbe((size_t)c);
                float *dxcp = inplace ? dyc.data() : dxc.data();
                float *dxep = inplace ? dye.data() : dxe.data();
                CHECK_ST(bnn_bn_backward(bk, n, c, x.data(), gamma.data(), sm.data(), ss.data(),
                                         dyc.data(), dxcp, dgc.data(), dbc.data()), BNN_OK);
                memset(&b, 0, sizeof b);
                b.n = n; b.c = c; b.shift = kind; b.x = x.data(); b.gamma = gamma.data();
                b.dy = dye.data(); b.mean = sm.data(); b.scale = ss.data(); b.dx = dxep;
                b.dgamma = dge.data(); b.dbeta = dbe.data();
                for (int64_t f = 0; f < c; f++) bn_backward_feature(b, f);
                bt_ctx("emulated bn backward kind %d n %" PRId64 " c %" PRId64 " variant %d",
                       kind, n, c, variant);
                for (int64_t i = 0; i < nc; i++)
                    CHECK_MSG(same_f32(dxep[i], dxcp[i]), "dx[%" PRId64 "] %a want %a", i,
                              (double)dxep[i], (double)dxcp[i]);
                for (int64_t j = 0; j < c; j++)
                    CHECK_MSG(same_f32(dge[j], dgc[j]) && same_f32(dbe[j], dbc[j]),
                              "feature %" PRId64 ": dgamma %a dbeta %a, want %a %a", j,
                              (double)dge[j], (double)dbe[j], (double)dgc[j], (double)dbc[j]);
            }
    (void)bnn_set_num_threads(threads0);
    printf("  batch norm fwd/bwd (emulated)      ok\n");
    return 0;
}

/* The sign's forward (signs and mask words from one kernel, and the mask
 * alone) == bnn_pack_f32 + bnn_ste_mask_pack, and its backward ==
 * bnn_ste_backward_packed, strided and in place, on the awkward floats
 * plus +-1 and their neighbours. */
static int test_sign(void)
{
    static const int64_t ks[] = {1, 2, 63, 64, 65, 130, 200};
    bt_rng r = bt_stream(0x5e9);
    for (int64_t k : ks)
        for (int64_t rows = 1; rows <= 4; rows += 3) {
            const int64_t kw = bt_words(k), ldx = k + 3, lds = kw + 1, ldm = kw + 2;
            std::vector<float> x((size_t)(rows * ldx));
            bt_rand_floats(&r, x.data(), x.size());
            for (size_t i = 0; i < x.size(); i += 7)
                x[i] = bt_below(&r, 2) ? nextafterf(1.0f, 2.0f) : -nextafterf(1.0f, 0.0f);
            std::vector<uint64_t> sc((size_t)(rows * lds), BT_CANARY_W), se(sc);
            std::vector<uint64_t> mc((size_t)(rows * ldm), BT_CANARY_W), me(mc), mo(mc);
            CHECK_ST(bnn_pack_f32(rows, k, x.data(), ldx, sc.data(), lds), BNN_OK);
            CHECK_ST(bnn_ste_mask_pack(rows, k, x.data(), ldx, mc.data(), ldm), BNN_OK);
            SignArgs g = {rows, k, kw, x.data(), ldx, se.data(), lds, me.data(), ldm};
            for (int64_t i = 0; i < rows * kw; i++) sign_word_one(g, i);
            SignArgs gm = {rows, k, kw, x.data(), ldx, NULL, 0, mo.data(), ldm};
            for (int64_t i = 0; i < rows * kw; i++) sign_word_one(gm, i);
            bt_ctx("emulated sign forward rows %" PRId64 " k %" PRId64, rows, k);
            for (size_t i = 0; i < sc.size(); i++)
                CHECK_MSG(se[i] == sc[i], "signs word %zu %016" PRIx64 " want %016" PRIx64, i,
                          se[i], sc[i]);
            for (size_t i = 0; i < mc.size(); i++)
                CHECK_MSG(me[i] == mc[i] && mo[i] == mc[i], "mask word %zu %016" PRIx64 " %016"
                          PRIx64 " want %016" PRIx64, i, me[i], mo[i], mc[i]);
            /* backward: out strided, and in place over grad */
            for (int inplace = 0; inplace <= 1; inplace++) {
                const int64_t ldg = k + 2, ldo = inplace ? ldg : k + 5;
                std::vector<float> grad((size_t)(rows * ldg));
                bt_rand_floats(&r, grad.data(), grad.size());
                std::vector<float> gc(grad), ge(grad);
                std::vector<float> oc((size_t)(rows * ldo)), oe;
                for (auto &v : oc) v = bt_u2f(BT_CANARY_F32);
                oe = oc;
                float *ocp = inplace ? gc.data() : oc.data(), *oep = inplace ? ge.data() : oe.data();
                CHECK_ST(bnn_ste_backward_packed(rows, k, mc.data(), ldm, gc.data(), ldg, ocp,
                                                 ldo), BNN_OK);
                SteArgs s = {rows, k, mc.data(), ldm, ge.data(), ldg, oep, ldo};
                for (int64_t i = 0; i < rows * k; i++) ste_backward_one(s, i);
                bt_ctx("emulated ste backward rows %" PRId64 " k %" PRId64 " inplace %d", rows,
                       k, inplace);
                for (int64_t i = 0; i < rows * ldo; i++)
                    CHECK_MSG(bt_f2u(oep[i]) == bt_f2u(ocp[i]), "out[%" PRId64 "] %08x want %08x",
                              i, bt_f2u(oep[i]), bt_f2u(ocp[i]));
            }
        }
    printf("  sign fwd (bits+mask) / STE bwd     ok\n");
    return 0;
}

/* The squared hinge gradient: a table from pybnn.losses.squared_hinge
 * (numpy float64, cast to float32; signed zeros included), then random
 * scores with NaN and infinities against a transcription of it, and a
 * label out of range. */
static int test_hinge(void)
{
    static const float s3[12] = {0.5f, -2.0f, 1.5f, 0.25f, -0.75f, 0.999f, 3.0f, -1.0f,
                                 1.0f, -1.0f, 0.0f, -0.0f};
    static const int32_t y3[3] = {0, 2, 1};
    static const double want3[12] = {
        -0x1.5555560000000p-4, 0x0.0p+0, 0x1.aaaaaa0000000p-2, 0x1.aaaaaa0000000p-3,
        0x1.5555560000000p-5, 0x1.5529a40000000p-2, -0x0.0p+0, 0x0.0p+0,
        0x1.5555560000000p-2, -0x1.5555560000000p-2, 0x1.5555560000000p-3, 0x1.5555560000000p-3};
    float got3[12];
    HingeArgs h = {3, 4, s3, y3, got3, 12.0};
    for (int64_t i = 0; i < 12; i++) hinge_grad_one(h, i);
    bt_ctx("emulated squared hinge: the numpy table");
    for (int i = 0; i < 12; i++)
        CHECK_MSG(bt_f2u(got3[i]) == bt_f2u((float)want3[i]), "grad[%d] %a want %a", i,
                  (double)got3[i], want3[i]);
    bt_rng r = bt_stream(0x41e);
    const int64_t n = 37, classes = 10;
    std::vector<float> s((size_t)(n * classes)), got(s.size());
    std::vector<int32_t> y((size_t)n);
    bt_rand_floats(&r, s.data(), s.size());
    for (auto &v : y) v = (int32_t)bt_below(&r, (uint64_t)classes);
    y[5] = -1;
    y[6] = (int32_t)classes;
    HingeArgs g = {n, classes, s.data(), y.data(), got.data(), (double)(n * classes)};
    for (int64_t i = 0; i < n * classes; i++) hinge_grad_one(g, i);
    bt_ctx("emulated squared hinge: random scores");
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < classes; j++) {
            const float v = got[(size_t)(i * classes + j)];
            if (i == 5 || i == 6) {
                CHECK_MSG(v != v, "row %" PRId64 " with a bad label: %a, want NaN", i, (double)v);
                continue;
            }
            const double t = j == y[i] ? 1.0 : -1.0, sv = s[(size_t)(i * classes + j)];
            const double d = 1.0 - t * sv, m = d != d ? d : (d > 0.0 ? d : 0.0);
            const float want = (float)(-2.0 * t * m / (double)(n * classes));
            CHECK_MSG(same_f32(v, want), "grad[%" PRId64 "][%" PRId64 "] %a want %a", i, j,
                      (double)v, (double)want);
        }
    printf("  squared hinge grad (emulated)      ok\n");
    return 0;
}

/* A library built without CUDA: every training-step entry point says so
 * (cuda_none.c), even for arguments the CPU would accept. */
static int test_stubs(void)
{
    int devices = 1;
    float f[2] = {0, 0};
    uint64_t w[1] = {0};
    int32_t lab[1] = {0};
    bnn_opt_params p;
    if (bnn_cuda_available(&devices, NULL, 0) != BNN_ERR_UNSUPPORTED) {
        printf("  stubs: a CUDA build (test_cuda_device checks its entry points)\n");
        return 0;
    }
    memset(&p, 0, sizeof p);
    p.kind = BNN_OPT_ADAM; p.t = 1; p.lr = 1e-3; p.beta1 = 0.9; p.beta2 = 0.999; p.lr_scale = 1;
    bt_ctx("the stubs of a build without CUDA");
    CHECK(devices == 0);
    CHECK_ST(bnn_cuda_opt_step(&p, 1, f, f, f, f, NULL), BNN_ERR_UNSUPPORTED);
    CHECK_ST(bnn_cuda_opt_step_pack(&p, 1, 1, f, f, f, f, w, 1, NULL), BNN_ERR_UNSUPPORTED);
    CHECK_ST(bnn_cuda_bn_forward_train(BNN_BN_STANDARD, 1, 1, f, f, f, 1e-5f, 0.1f, NULL, NULL,
                                       f, f, f, NULL), BNN_ERR_UNSUPPORTED);
    CHECK_ST(bnn_cuda_bn_backward(BNN_BN_STANDARD, 1, 1, f, f, f, f, f, f, f, f, NULL),
             BNN_ERR_UNSUPPORTED);
    CHECK_ST(bnn_cuda_sign_forward(1, 1, f, 1, w, 1, w, 1, NULL), BNN_ERR_UNSUPPORTED);
    CHECK_ST(bnn_cuda_ste_mask_pack(1, 1, f, 1, w, 1, NULL), BNN_ERR_UNSUPPORTED);
    CHECK_ST(bnn_cuda_ste_backward_packed(1, 1, w, 1, f, 1, f, 1, NULL), BNN_ERR_UNSUPPORTED);
    CHECK_ST(bnn_cuda_squared_hinge_grad(1, 1, f, lab, f, NULL), BNN_ERR_UNSUPPORTED);
    printf("  stubs without CUDA                 ok\n");
    return 0;
}

int main(int argc, char **argv)
{
    bt_init(argc, argv, "test_cuda_emu");
    RUN(test_pack());
    RUN(test_gemm_simt());
    RUN(test_mma_layout());
    RUN(test_gemm_tc());
    RUN(test_conv());
    RUN(test_pool());
    RUN(test_pm1());
    RUN(test_conv_grad());
    RUN(test_quantize());
    RUN(test_runner());
    RUN(test_sgemm());
    RUN(test_ap2());
    RUN(test_opt());
    RUN(test_bn());
    RUN(test_sign());
    RUN(test_hinge());
    RUN(test_stubs());
    printf("test_cuda_emu: all passed\n");
    return 0;
}
