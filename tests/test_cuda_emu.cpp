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
 *    gaps must keep their canaries.
 * Needs no GPU and no nvcc: it is the host half of what the GPU runs.
 */
#include "test_util.h"
#include "oracle.h"

#include "cuda/kernels.cuh"

#include <vector>

using namespace bnn_cuda;

static void emulate_pack(const PackArgs &p)
{
    for (int64_t row = 0; row < p.rows; row++)
        for (int64_t word = 0; word < p.kw; word++) pack_word(p, row, word);
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

static int gemm_case(int64_t n, int64_t m, int64_t k, uint64_t tag)
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
            bt_ctx("emulated gemm_simt n=%" PRId64 " m=%" PRId64 " k=%" PRId64
                   " epilogue %d variant %d", n, m, k, kind, v);
            emulate_gemm_simt(g);
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

static int test_gemm_simt(void)
{
    static const int64_t shapes[][3] = {
        {1, 1, 1},    {1, 1, 0},     {3, 5, 63},   {64, 64, 64},  {65, 63, 65},
        {70, 130, 129}, {129, 65, 513}, {17, 200, 1000}, {130, 7, 577}, {2, 129, 4096 + 3},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        RUN(gemm_case(shapes[i][0], shapes[i][1], shapes[i][2], 0x6e33 + i));
    printf("  gemm_simt (emulated), 3 epilogues  ok\n");
    return 0;
}

int main(int argc, char **argv)
{
    bt_init(argc, argv, "test_cuda_emu");
    RUN(test_pack());
    RUN(test_gemm_simt());
    printf("test_cuda_emu: all passed\n");
    return 0;
}
