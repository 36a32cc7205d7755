/*
 * test_convgrad.c -- the 8-bit rounding and the backward products of the
 * binary convolution (include/bnn.h, "Training arithmetic"):
 *
 *  - bnn_quantize_i8: bit for bit against bt_quantize_i8 (oracle.h), per
 *    row and per column (the transposed layout, more than 1024 columns so
 *    that the column blocks are crossed), zero rows / columns (+0 and -0),
 *    NaN entries and all-NaN rows, denormal-only rows (a scale of 0 or a
 *    denormal scale whose inverse is inf), inf, counters that are not
 *    multiples of 4 and one that wraps around 2^64, stride gaps (left
 *    alone), 1 and 3 threads; a small case by hand; its errors (nothing
 *    written).
 *  - bnn_conv2d_grad_weights_f32 / _i8, bnn_conv2d_grad_input_f32 / _i8:
 *    bit for bit (memcmp) against bt_conv2d_grad_weights_f32 / _i8 and
 *    bt_conv2d_grad_input_f32 / _i8 on every ISA this CPU runs (each
 *    forced alone), 1 and 3 threads, a workspace for 1 thread and one for
 *    3, accumulate 0 and 1, with the pad bits of the last word of every
 *    packed input pixel and filter tap clear and then random: channels c
 *    in {1, 20, 33, 64, 70, 130}, filters o in {1, 5, 260} (260 crosses
 *    the 252-row int8 chunk and the 256-row float panel), kernels 1x1,
 *    3x3, 2x3, strides 1 and 2, dilation 2, asymmetric padding, padding
 *    beyond the kernel's reach (outputs that see only padding), pad_value
 *    0 and 1, batches of more than 1008 output positions (the weight
 *    gradient's tile), products large enough to run on threads, n = 0 and
 *    o = 0; a case by hand; the errors (NULL pointers, a workspace one
 *    byte short or misaligned, bad geometry = bnn_conv2d_output_shape's
 *    status, the 2^24 limits of the 8-bit paths; nothing written) and
 *    the workspace size's properties (independent of n, threads 0 = the
 *    current count).
 *
 * The gradients and scales are finite (so memcmp is exact, no NaN payload
 * question) with magnitudes 2^-12 .. 2^12, zeros of both signs and
 * denormals, so that any change of summation order shows.
 */
#include "test_util.h"
#include "oracle.h"

#define CANARY_F 0x7fe5a5a5u /* a quiet NaN no kernel produces */
#define CANARY_Q ((int8_t)0x5a)

/* ------------------------------------------------------------------ */
/* Random data                                                          */
/* ------------------------------------------------------------------ */

/* A finite float: +-0, denormals, +-1, else +-[0, 1) * 2^[-12, 12]. */
static float rand_grad(bt_rng *r)
{
    uint64_t u = bt_below(r, 100);
    if (u < 5) return 0.0f;
    if (u < 10) return -0.0f;
    if (u < 13)
        return bt_u2f((uint32_t)bt_range(r, 1, 0x7fffff) | (bt_below(r, 2) ? 0x80000000u : 0u));
    if (u < 18) return bt_below(r, 2) ? 1.0f : -1.0f;
    return (float)((bt_unit(r) * 2.0 - 1.0) * ldexp(1.0, (int)bt_range(r, -12, 12)));
}

/* A rescale factor: mostly max/127-like positives, some 0, -0, negative,
 * denormal. */
static float rand_scale(bt_rng *r)
{
    uint64_t u = bt_below(r, 20);
    if (u == 0) return 0.0f;
    if (u == 1) return -0.0f;
    if (u == 2) return -(float)bt_unit(r);
    if (u == 3) return bt_u2f((uint32_t)bt_range(r, 1, 0x7fffff));
    return (float)(bt_unit(r) * ldexp(1.0, (int)bt_range(r, -10, 4)) / 127.0);
}

static void fill_canary(float *p, int64_t n)
{
    bt_fill_fbits(p, (size_t)(n > 0 ? n : 0), CANARY_F);
}

static int all_canary(const float *p, int64_t n)
{
    int64_t i;
    for (i = 0; i < n; i++)
        if (bt_f2u(p[i]) != CANARY_F) return 0;
    return 1;
}

/* Rows of `cw` words whose pad bits (past c in the last word) are set at
 * random in dst (at least one of them), the channel bits copied from src. */
static void dirty_pad_bits(bt_rng *r, const uint64_t *src, uint64_t *dst, int64_t rows,
                           int64_t c)
{
    const int64_t cw = bt_words(c);
    const uint64_t low = c % 64 ? (((uint64_t)1 << (c % 64)) - 1u) : ~(uint64_t)0;
    int64_t i;
    memcpy(dst, src, sizeof(uint64_t) * (size_t)(rows * cw));
    if (c % 64 == 0) return;
    for (i = 0; i < rows; i++)
        dst[i * cw + cw - 1] |= (bt_next(r) | ((uint64_t)1 << 63)) & ~low;
}

/* Channel bits random, pad bits 0. */
static void rand_bits(bt_rng *r, uint64_t *dst, int64_t rows, int64_t c)
{
    const int64_t cw = bt_words(c);
    int64_t i;
    bt_rand_words(r, dst, (size_t)(rows * cw));
    if (c % 64)
        for (i = 0; i < rows; i++) dst[i * cw + cw - 1] &= ((uint64_t)1 << (c % 64)) - 1u;
}

/* ------------------------------------------------------------------ */
/* bnn_quantize_i8                                                      */
/* ------------------------------------------------------------------ */

typedef struct qz_ctx {
    int64_t rows, k, lda, ldq;
    int by_column;
    uint64_t seed, counter;
    const float *a;
    int8_t *q;
    float *scale;
    const int8_t *want_q;
    const float *want_s;
    int64_t nq, ns;    /* elements of the q buffer (gaps included) and of scale */
} qz_ctx;

static int qz_body(bnn_isa isa, void *vctx)
{
    const qz_ctx *c = (const qz_ctx *)vctx;
    static const int threads[] = {1, 3};
    int t;
    int64_t i;
    (void)isa;
    for (t = 0; t < 2; t++) {
        CHECK_ST(bnn_set_num_threads(threads[t]), BNN_OK);
        memset(c->q, CANARY_Q, (size_t)c->nq);
        fill_canary(c->scale, c->ns);
        CHECK_ST(bnn_quantize_i8(c->rows, c->k, c->a, c->lda, c->by_column, c->seed, c->counter,
                                 c->q, c->ldq, c->scale),
                 BNN_OK);
        for (i = 0; i < c->ns; i++)
            CHECK_MSG(bt_f2u(c->scale[i]) == bt_f2u(c->want_s[i]),
                      "threads %d: scale[%d] = %a, oracle %a", threads[t], (int)i,
                      (double)c->scale[i], (double)c->want_s[i]);
        for (i = 0; i < c->nq; i++)
            CHECK_MSG(c->q[i] == c->want_q[i],
                      "threads %d: q[%d] (row %d col %d of q, gaps canaried) = %d, oracle %d",
                      threads[t], (int)i, (int)(i / c->ldq), (int)(i % c->ldq), (int)c->q[i],
                      (int)c->want_q[i]);
    }
    CHECK_ST(bnn_set_num_threads(1), BNN_OK);
    return 0;
}

/* mode: 0 random (NaN, +-0, denormals mixed in), 1 also special rows and
 * columns (all zero, all NaN, denormal only, an inf, huge values). */
static int qz_case(int64_t rows, int64_t k, int by_column, uint64_t counter, int mode,
                   uint64_t tag)
{
    bt_rng r = bt_stream(tag);
    const int64_t lda = k + (int64_t)bt_below(&r, 3);
    const int64_t qrows = by_column ? k : rows, qcols = by_column ? rows : k;
    const int64_t ldq = qcols + (int64_t)bt_below(&r, 3);
    const int64_t ns = by_column ? k : rows, nq = qrows * ldq;
    float *a = (float *)bt_alloc(sizeof(float) * (size_t)(rows * lda));
    int8_t *q = (int8_t *)bt_alloc((size_t)nq), *want_q = (int8_t *)bt_alloc((size_t)nq);
    float *sc = (float *)bt_alloc(sizeof(float) * (size_t)ns);
    float *want_s = (float *)bt_alloc(sizeof(float) * (size_t)ns);
    qz_ctx c;
    char label[128];
    int64_t i, j;
    for (i = 0; i < rows * lda; i++) {
        uint64_t u = bt_below(&r, 10);
        a[i] = u < 6 ? bt_rand_float(&r) : rand_grad(&r);   /* NaNs, denormals, zeros */
    }
    if (mode == 1) {
        for (i = 0; i < rows; i++)
            for (j = 0; j < k; j++) {
                float *v = a + i * lda + j;
                int64_t line = by_column ? j : i;                 /* the scaled line */
                switch (line % 6) {
                case 0: *v = (i + j) % 2 ? 0.0f : -0.0f; break;   /* zero line */
                case 1:                                             /* all NaN */
                    *v = bt_u2f(0x7fc00000u | ((uint32_t)((i + j) % 2) << 31));
                    break;
                case 2:                          /* tiny denormals: scale 0 */
                    *v = bt_u2f((uint32_t)bt_range(&r, 0, 3) | ((uint32_t)bt_below(&r, 2) << 31));
                    break;
                case 3:                          /* denormals: 1/scale = inf */
                    *v = bt_u2f((uint32_t)bt_range(&r, 0, 0x7fffff));
                    break;
                case 4: if ((i + j) % 7 == 0) *v = (i + j) % 2 ? INFINITY : -INFINITY; break;
                default: if ((i + j) % 5 == 0) *v = 3.0e38f; break;
                }
            }
    }
    memset(want_q, CANARY_Q, (size_t)nq);
    fill_canary(want_s, ns);
    bt_quantize_i8(rows, k, a, lda, by_column, tag * 0x9e37u + 7u, counter, want_q, ldq, want_s);
    c.rows = rows; c.k = k; c.lda = lda; c.ldq = ldq; c.by_column = by_column;
    c.seed = tag * 0x9e37u + 7u; c.counter = counter;
    c.a = a; c.q = q; c.scale = sc; c.want_q = want_q; c.want_s = want_s;
    c.nq = nq; c.ns = ns;
    snprintf(label, sizeof label, "quantize_i8 %dx%d%s counter %" PRIu64 " mode %d",
             (int)rows, (int)k, by_column ? " by column" : "", counter, mode);
    bt_ctx("%s (lda %d ldq %d)", label, (int)lda, (int)ldq);
    RUN(for_each_isa_quiet(label, qz_body, &c));
    free(a); free(q); free(want_q); free(sc); free(want_s);
    return 0;
}

static int test_quantize(void)
{
    static const int64_t shapes[][2] = {{1, 1},   {3, 5},    {7, 64},  {4, 65},  {2, 1025},
                                        {5, 2100}, {1000, 3}, {300, 1100}, {1, 4099}};
    static const uint64_t counters[] = {0, 1, 3, 6, UINT64_MAX - 2};
    size_t s, ci;
    int by_col, mode, cases = 0;
    for (s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (by_col = 0; by_col < 2; by_col++)
            for (mode = 0; mode < 2; mode++)
                for (ci = 0; ci < sizeof counters / sizeof counters[0]; ci++) {
                    if (shapes[s][0] * shapes[s][1] > 100000 && ci % 2) continue;
                    RUN(qz_case(shapes[s][0], shapes[s][1], by_col,
                                counters[ci] + (counters[ci] < 100 ? (uint64_t)s * 4u : 0u),
                                mode, 0x9a0000u + s * 64u + (uint64_t)by_col * 16u +
                                          (uint64_t)mode * 8u + ci));
                    cases++;
                }
    printf("  %-34s %d cases ok (every ISA, 1 and 3 threads)\n", "quantize_i8 == oracle (bitwise)",
           cases);
    return 0;
}

/* One row by hand: scale 1 (max 127), so q = floor(a + u): 127 stays 127,
 * -63.5 gives -64 or -63 by u, 0 gives 0, NaN 0, -127 stays -127; the
 * oracle's u decides -63.5; by column, the same numbers as one column. */
static int test_quantize_by_hand(void)
{
    const float a[5] = {127.0f, -63.5f, 0.0f, NAN, -127.0f};
    int8_t q[5];
    float sc[5];
    int j;
    const float u1 = bt_quant_u(42, 10 + 1);
    CHECK_ST(bnn_quantize_i8(1, 5, a, 5, 0, 42, 10, q, 5, sc), BNN_OK);
    CHECK(sc[0] == 1.0f);
    CHECK(q[0] == 127 && q[2] == 0 && q[3] == 0 && q[4] == -127);
    CHECK_EQ(q[1], u1 >= 0.5f ? -63 : -64);
    /* by column: 5 rows of one column, e = counter + i */
    CHECK_ST(bnn_quantize_i8(5, 1, a, 1, 1, 42, 10, q, 5, sc), BNN_OK);
    CHECK(sc[0] == 1.0f);
    CHECK(q[0] == 127 && q[2] == 0 && q[3] == 0 && q[4] == -127);
    CHECK_EQ(q[1], u1 >= 0.5f ? -63 : -64);
    /* the generator: element e uses bits 16*(e%4) of mix64(seed, e/4) */
    {
        float big[8];
        int8_t q8[8];
        float s8;
        for (j = 0; j < 8; j++) big[j] = j == 0 ? 127.0f : 0.5f;   /* scale 1, q = floor(.5 + u) */
        CHECK_ST(bnn_quantize_i8(1, 8, big, 8, 0, 7, 2, q8, 8, &s8), BNN_OK);
        for (j = 1; j < 8; j++) {
            const uint64_t e = 2 + (uint64_t)j;
            const uint64_t bits = (bt_mix64(7, e / 4) >> (16 * (e % 4))) & 0xffffu;
            CHECK_EQ(q8[j], bits >= 32768u ? 1 : 0);
        }
    }
    /* zero and empty */
    {
        const float z[3] = {0.0f, -0.0f, 0.0f};
        int8_t qz[3] = {9, 9, 9};
        float sz[3] = {9, 9, 9};
        CHECK_ST(bnn_quantize_i8(1, 3, z, 3, 0, 1, 0, qz, 3, sz), BNN_OK);
        CHECK(sz[0] == 0.0f && qz[0] == 0 && qz[1] == 0 && qz[2] == 0);
        sz[0] = 9;
        CHECK_ST(bnn_quantize_i8(0, 3, NULL, 3, 1, 1, 0, NULL, 0, sz), BNN_OK);
        CHECK(sz[0] == 0.0f && sz[1] == 0.0f && sz[2] == 0.0f);     /* k scales of 0 */
        sz[0] = sz[1] = sz[2] = 9;
        CHECK_ST(bnn_quantize_i8(0, 3, NULL, 3, 0, 1, 0, NULL, 0, sz), BNN_OK);
        CHECK(sz[0] == 9 && sz[1] == 9 && sz[2] == 9);                /* no rows, no scale */
        CHECK_ST(bnn_quantize_i8(2, 0, NULL, 0, 0, 1, 0, NULL, 0, sz), BNN_OK);
        CHECK(sz[0] == 0.0f && sz[1] == 0.0f && sz[2] == 9);
        CHECK_ST(bnn_quantize_i8(0, 3, NULL, 3, 1, 1, 0, NULL, 0, NULL), BNN_ERR_NULL);
    }
    printf("  %-34s ok\n", "quantize_i8 by hand");
    return 0;
}

/* The rounding of a * inv + u happens twice (the product, then the sum),
 * never once as a fused multiply-add would: a row built so that the two
 * differ.  Where a * inv rounds to exactly -u from below, a * inv + u is 0
 * (q = 0) with two roundings but a tiny negative number (q = -1) with one.
 * inv = 127 / 100 is not a power of two, so a * inv is inexact; each
 * element walks the floats near -u / inv for such an a. */
static int8_t quant_one_fused(float a, float inv, float u)
{
    const float y = fmaf(a, inv, u);
    float f;
    if (y != y) return 0;
    f = floorf(y);
    return (int8_t)(int)(f < -127.0f ? -127.0f : (f > 127.0f ? 127.0f : f));
}

typedef struct unfused_ctx {
    const float *a;
    const int8_t *want;
    int64_t k;
    uint64_t seed;
} unfused_ctx;

static int unfused_body(bnn_isa isa, void *vctx)
{
    const unfused_ctx *c = (const unfused_ctx *)vctx;
    int8_t q[64];
    float sc;
    int64_t j;
    int by_col;
    (void)isa;
    for (by_col = 0; by_col < 2; by_col++) {   /* one row, or the same as one column */
        memset(q, CANARY_Q, sizeof q);
        CHECK_ST(bnn_quantize_i8(by_col ? c->k : 1, by_col ? 1 : c->k, c->a, by_col ? 1 : c->k,
                                 by_col, c->seed, 0, q, c->k, &sc),
                 BNN_OK);
        for (j = 0; j < c->k; j++)
            CHECK_MSG(q[j] == c->want[j], "%s: q[%d] = %d, oracle %d (a %a)",
                      by_col ? "by column" : "by row", (int)j, (int)q[j], (int)c->want[j],
                      (double)c->a[j]);
    }
    return 0;
}

static int test_quantize_unfused(void)
{
    enum { K = 64 };
    const uint64_t seed = 0x5eed15u;
    float a[K], sc, inv, wsc;
    int8_t want[K];
    unfused_ctx c;
    int j, found = 0;
    bt_ctx("quantize_i8: two roundings, not a fused multiply-add");
    a[0] = 100.0f;                              /* the row's max */
    sc = a[0] / 127.0f;
    inv = 1.0f / sc;
    for (j = 1; j < K; j++) {
        const float u = bt_quant_u(seed, (uint64_t)j);
        const uint32_t b0 = bt_f2u(-u / inv);
        int d;
        a[j] = -u / inv;
        for (d = -256; d <= 256 && u > 0.0f; d++) {
            const float x = bt_u2f(b0 + (uint32_t)d);
            if (bt_quant_one(x, inv, u) != quant_one_fused(x, inv, u)) {
                a[j] = x;
                found++;
                break;
            }
        }
    }
    CHECK_MSG(found >= 8, "only %d elements where one rounding differs from two", found);
    bt_quantize_i8(1, K, a, K, 0, seed, 0, want, K, &wsc);
    CHECK(wsc == sc);
    c.a = a; c.want = want; c.k = K; c.seed = seed;
    RUN(for_each_isa_ctx("quantize_i8 rounds twice", unfused_body, &c));
    printf("  %-34s %d of %d elements tell them apart\n", "quantize_i8 unfused", found, K - 1);
    return 0;
}

static int test_quantize_errors(void)
{
    float a[12];
    int8_t q[16];
    float sc[4];
    int i, bc;
    for (i = 0; i < 12; i++) a[i] = (float)i - 5.5f;
    for (bc = 0; bc < 2; bc++) {
        memset(q, CANARY_Q, sizeof q);
        fill_canary(sc, 4);
        bt_ctx("quantize_i8 errors, by_column %d", bc);
        CHECK_ST(bnn_quantize_i8(-1, 4, a, 4, bc, 1, 0, q, 4, sc), BNN_ERR_SHAPE);
        CHECK_ST(bnn_quantize_i8(3, -1, a, 4, bc, 1, 0, q, 4, sc), BNN_ERR_SHAPE);
        CHECK_ST(bnn_quantize_i8(INT64_MIN, 4, a, 4, bc, 1, 0, q, 4, sc), BNN_ERR_SHAPE);
        CHECK_ST(bnn_quantize_i8(3, 4, NULL, 4, bc, 1, 0, q, 4, sc), BNN_ERR_NULL);
        CHECK_ST(bnn_quantize_i8(3, 4, a, 4, bc, 1, 0, NULL, 4, sc), BNN_ERR_NULL);
        CHECK_ST(bnn_quantize_i8(3, 4, a, 4, bc, 1, 0, q, 4, NULL), BNN_ERR_NULL);
        CHECK_ST(bnn_quantize_i8(3, 4, a, 3, bc, 1, 0, q, 4, sc), BNN_ERR_STRIDE);   /* lda < k */
        if (bc) {
            /* q is k rows of `rows`: ldq >= rows = 3 */
            CHECK_ST(bnn_quantize_i8(3, 4, a, 4, 1, 1, 0, q, 2, sc), BNN_ERR_STRIDE);
            CHECK_ST(bnn_quantize_i8(4, 3, a, 3, 1, 1, 0, q, 3, sc), BNN_ERR_STRIDE); /* < rows */
        } else {
            CHECK_ST(bnn_quantize_i8(3, 4, a, 4, 0, 1, 0, q, 3, sc), BNN_ERR_STRIDE);  /* < k */
            CHECK_ST(bnn_quantize_i8(3, 4, a, 4, 0, 1, 0, q, 0, sc), BNN_ERR_STRIDE);
        }
        CHECK_ST(bnn_quantize_i8(3, 4, a, INT64_MAX / 2, bc, 1, 0, q, 4, sc), BNN_ERR_OVERFLOW);
        CHECK_ST(bnn_quantize_i8(3, 4, a, 4, bc, 1, 0, q, INT64_MAX / 2, sc), BNN_ERR_OVERFLOW);
        for (i = 0; i < 16; i++) CHECK(q[i] == CANARY_Q);             /* nothing written */
        CHECK(all_canary(sc, 4));
        /* ldq just enough works */
        CHECK_ST(bnn_quantize_i8(3, 4, a, 4, bc, 1, 0, q, bc ? 3 : 4, sc), BNN_OK);
    }
    printf("  %-34s ok\n", "quantize_i8 errors");
    return 0;
}

/* ------------------------------------------------------------------ */
/* Convolution backward: one geometry against the oracles               */
/* ------------------------------------------------------------------ */

typedef struct cg_case {
    bnn_conv2d_params p;
    char name[200];
    int64_t oh, ow, m, taps, cw, ngw, ngx;
    uint64_t *x, *xd, *w, *wd;        /* clean and dirty pad bits */
    float *grad, *sco, *scm, *gw0;    /* grad [m][o], scale[o], scale[m], gw start */
    int8_t *qt, *q;                   /* [o][m] and [m][o] */
    float *want_wf[2], *want_wi[2], *want_xf, *want_xi;
    float *out_w, *out_x;
} cg_case;

/* Compare got with want bit for bit; name the first difference. */
static int cmp_grad(const cg_case *cc, const float *got, const float *want, int is_w,
                    const char *what, int threads, size_t wsb, int dirty, int acc)
{
    const int64_t n = is_w ? cc->ngw : cc->ngx;
    int64_t i;
    if (n <= 0 || memcmp(got, want, sizeof(float) * (size_t)n) == 0) return 0;
    for (i = 0; i < n && bt_f2u(got[i]) == bt_f2u(want[i]); i++) {}
    if (is_w) {
        const int64_t ch = i % cc->p.c, t = (i / cc->p.c) % cc->taps, o = i / (cc->p.c * cc->taps);
        CHECK_MSG(0, "%s: gw[o=%d][t=%d (ky %d kx %d)][c=%d] = %a, oracle %a "
                  "(threads %d, workspace %zu bytes, pad bits %s, accumulate %d)",
                  what, (int)o, (int)t, (int)(t / cc->p.kw), (int)(t % cc->p.kw), (int)ch,
                  (double)got[i], (double)want[i], threads, wsb, dirty ? "random" : "clear", acc);
    } else {
        const int64_t ch = i % cc->p.c, px = i / cc->p.c;
        CHECK_MSG(0, "%s: gx[n=%d][y=%d][x=%d][c=%d] = %a, oracle %a "
                  "(threads %d, workspace %zu bytes, pad bits %s)",
                  what, (int)(px / (cc->p.h * cc->p.w)), (int)((px / cc->p.w) % cc->p.h),
                  (int)(px % cc->p.w), (int)ch, (double)got[i], (double)want[i], threads, wsb,
                  dirty ? "random" : "clear");
    }
    return 1;
}

static int cg_run(const cg_case *cc, int threads, size_t wsb, int dirty)
{
    const bnn_conv2d_params *p = &cc->p;
    const uint64_t *x = dirty ? cc->xd : cc->x, *w = dirty ? cc->wd : cc->w;
    unsigned char *ws = (unsigned char *)bt_alloc(wsb);
    int acc;
    memset(ws, 0xa5, wsb);                           /* garbage scratch */
    for (acc = 0; acc < 2; acc++) {
        if (acc) memcpy(cc->out_w, cc->gw0, sizeof(float) * (size_t)cc->ngw);
        else fill_canary(cc->out_w, cc->ngw);
        CHECK_ST(bnn_conv2d_grad_weights_f32(p, x, cc->grad, cc->out_w, acc, ws, wsb), BNN_OK);
        RUN(cmp_grad(cc, cc->out_w, cc->want_wf[acc], 1, "grad_weights_f32", threads, wsb,
                     dirty, acc));
        if (acc) memcpy(cc->out_w, cc->gw0, sizeof(float) * (size_t)cc->ngw);
        else fill_canary(cc->out_w, cc->ngw);
        CHECK_ST(bnn_conv2d_grad_weights_i8(p, x, cc->qt, cc->sco, cc->out_w, acc, ws, wsb),
                 BNN_OK);
        RUN(cmp_grad(cc, cc->out_w, cc->want_wi[acc], 1, "grad_weights_i8", threads, wsb, dirty,
                     acc));
    }
    fill_canary(cc->out_x, cc->ngx);
    CHECK_ST(bnn_conv2d_grad_input_f32(p, w, cc->grad, cc->out_x, ws, wsb), BNN_OK);
    RUN(cmp_grad(cc, cc->out_x, cc->want_xf, 0, "grad_input_f32", threads, wsb, dirty, 0));
    fill_canary(cc->out_x, cc->ngx);
    CHECK_ST(bnn_conv2d_grad_input_i8(p, w, cc->q, cc->scm, cc->out_x, ws, wsb), BNN_OK);
    RUN(cmp_grad(cc, cc->out_x, cc->want_xi, 0, "grad_input_i8", threads, wsb, dirty, 0));
    free(ws);
    return 0;
}

static int cg_body(bnn_isa isa, void *vctx)
{
    const cg_case *cc = (const cg_case *)vctx;
    static const int threads[] = {1, 3};
    int t, dirty;
    (void)isa;
    for (t = 0; t < 2; t++) {
        size_t ws1, wsn, ws0;
        CHECK_ST(bnn_set_num_threads(threads[t]), BNN_OK);
        CHECK_ST(bnn_conv2d_grad_workspace_size(&cc->p, 1, &ws1), BNN_OK);
        CHECK_ST(bnn_conv2d_grad_workspace_size(&cc->p, threads[t], &wsn), BNN_OK);
        CHECK_ST(bnn_conv2d_grad_workspace_size(&cc->p, 0, &ws0), BNN_OK);
        CHECK(ws0 == wsn && wsn >= ws1 && ws1 > 0);
        for (dirty = 0; dirty < (cc->p.c % 64 ? 2 : 1); dirty++) {
            RUN(cg_run(cc, threads[t], ws1, dirty));
            if (wsn != ws1) RUN(cg_run(cc, threads[t], wsn, dirty));
        }
    }
    CHECK_ST(bnn_set_num_threads(1), BNN_OK);
    return 0;
}

typedef struct kcfg {
    int kh, kw, sh, sw, dh, dw, pt, pb, pl, pr;
    const char *name;
} kcfg;

static const kcfg kcfgs[] = {
    {1, 1, 1, 1, 1, 1, 0, 0, 0, 0, "1x1"},
    {3, 3, 1, 1, 1, 1, 1, 1, 1, 1, "3x3 s1 p1"},
    {3, 3, 2, 2, 1, 1, 0, 2, 1, 0, "3x3 s2 pad(t0 b2 l1 r0)"},
    {2, 3, 2, 1, 2, 2, 1, 0, 2, 1, "2x3 s(2,1) d2 pad(t1 b0 l2 r1)"},
    {3, 3, 1, 1, 2, 2, 5, 0, 6, 1, "3x3 d2 pad(t5 b0 l6 r1) > reach"},
    {1, 1, 2, 2, 1, 1, 2, 1, 0, 3, "1x1 s2 pad(t2 b1 l0 r3) > reach"},
    {2, 3, 1, 2, 1, 1, 0, 3, 3, 2, "2x3 s(1,2) pad(t0 b3 l3 r2) > reach"},
};
#define N_KCFG ((int)(sizeof kcfgs / sizeof kcfgs[0]))

/* Build the case (data, oracles), run it on every ISA, free it. */
static int cg_case_run(int64_t n, int64_t h, int64_t w, int64_t c, int64_t o, const kcfg *k,
                       int pad_value, int loud, uint64_t tag)
{
    bt_rng r = bt_stream(tag);
    cg_case cc;
    int64_t i, npx, nfw;
    int a, rc;
    memset(&cc, 0, sizeof cc);
    cc.p.n = n; cc.p.h = h; cc.p.w = w; cc.p.c = c; cc.p.o = o;
    cc.p.kh = k->kh; cc.p.kw = k->kw;
    cc.p.stride_h = k->sh; cc.p.stride_w = k->sw;
    cc.p.dilation_h = k->dh; cc.p.dilation_w = k->dw;
    cc.p.pad_top = k->pt; cc.p.pad_bottom = k->pb;
    cc.p.pad_left = k->pl; cc.p.pad_right = k->pr;
    cc.p.pad_value = pad_value;
    CHECK_ST(bnn_conv2d_output_shape(&cc.p, &cc.oh, &cc.ow), BNN_OK);
    {
        int64_t oh, ow;
        bt_conv2d_out_hw(&cc.p, &oh, &ow);
        CHECK(oh == cc.oh && ow == cc.ow);
    }
    cc.m = n * cc.oh * cc.ow;
    cc.taps = k->kh * k->kw;
    cc.cw = bt_words(c);
    cc.ngw = o * cc.taps * c;
    cc.ngx = n * h * w * c;
    snprintf(cc.name, sizeof cc.name,
             "n%d %dx%d c%d o%d %s pad_value %d (out %dx%d, m %d)", (int)n, (int)h, (int)w,
             (int)c, (int)o, k->name, pad_value, (int)cc.oh, (int)cc.ow, (int)cc.m);
    bt_ctx("%s", cc.name);
    npx = n * h * w;
    nfw = o * cc.taps;
    cc.x = (uint64_t *)bt_alloc(sizeof(uint64_t) * (size_t)(npx * cc.cw));
    cc.xd = (uint64_t *)bt_alloc(sizeof(uint64_t) * (size_t)(npx * cc.cw));
    cc.w = (uint64_t *)bt_alloc(sizeof(uint64_t) * (size_t)(nfw * cc.cw));
    cc.wd = (uint64_t *)bt_alloc(sizeof(uint64_t) * (size_t)(nfw * cc.cw));
    cc.grad = (float *)bt_alloc(sizeof(float) * (size_t)(cc.m * o));
    cc.sco = (float *)bt_alloc(sizeof(float) * (size_t)o);
    cc.scm = (float *)bt_alloc(sizeof(float) * (size_t)cc.m);
    cc.gw0 = (float *)bt_alloc(sizeof(float) * (size_t)cc.ngw);
    cc.qt = (int8_t *)bt_alloc((size_t)(cc.m * o));
    cc.q = (int8_t *)bt_alloc((size_t)(cc.m * o));
    for (a = 0; a < 2; a++) {
        cc.want_wf[a] = (float *)bt_alloc(sizeof(float) * (size_t)cc.ngw);
        cc.want_wi[a] = (float *)bt_alloc(sizeof(float) * (size_t)cc.ngw);
    }
    cc.want_xf = (float *)bt_alloc(sizeof(float) * (size_t)cc.ngx);
    cc.want_xi = (float *)bt_alloc(sizeof(float) * (size_t)cc.ngx);
    cc.out_w = (float *)bt_alloc(sizeof(float) * (size_t)cc.ngw);
    cc.out_x = (float *)bt_alloc(sizeof(float) * (size_t)cc.ngx);

    rand_bits(&r, cc.x, npx, c);
    rand_bits(&r, cc.w, nfw, c);
    dirty_pad_bits(&r, cc.x, cc.xd, npx, c);
    dirty_pad_bits(&r, cc.w, cc.wd, nfw, c);
    for (i = 0; i < cc.m * o; i++) cc.grad[i] = rand_grad(&r);
    for (i = 0; i < cc.m * o; i++) cc.qt[i] = bt_rand_i8(&r);       /* -128 .. 127 */
    for (i = 0; i < cc.m * o; i++) cc.q[i] = bt_rand_i8(&r);
    for (i = 0; i < o; i++) cc.sco[i] = rand_scale(&r);
    for (i = 0; i < cc.m; i++) cc.scm[i] = rand_scale(&r);
    for (i = 0; i < cc.ngw; i++) cc.gw0[i] = rand_grad(&r);

    for (a = 0; a < 2; a++) {
        memcpy(cc.want_wf[a], cc.gw0, sizeof(float) * (size_t)cc.ngw);
        memcpy(cc.want_wi[a], cc.gw0, sizeof(float) * (size_t)cc.ngw);
        bt_conv2d_grad_weights_f32(&cc.p, cc.x, cc.grad, cc.want_wf[a], a);
        bt_conv2d_grad_weights_i8(&cc.p, cc.x, cc.qt, cc.sco, cc.want_wi[a], a);
    }
    if (cc.m == 0)
        for (a = 0; a < 2; a++) {
            /* No output positions (n = 0): the library takes the 8-bit
             * weight gradient as an empty sum, gw = 0 or gw left as it is,
             * like the float one.  The formula of bnn.h read literally,
             * gw (+)= scale[o] * (float)0, would differ only in the sign
             * of zeros (and give NaN for an infinite scale); this is
             * pinned here as the library's behaviour, not the oracle's. */
            if (a) memcpy(cc.want_wi[a], cc.gw0, sizeof(float) * (size_t)cc.ngw);
            else for (i = 0; i < cc.ngw; i++) cc.want_wi[a][i] = 0.0f;
        }
    bt_conv2d_grad_input_f32(&cc.p, cc.w, cc.grad, cc.want_xf);
    bt_conv2d_grad_input_i8(&cc.p, cc.w, cc.q, cc.scm, cc.want_xi);

    if (loud) rc = for_each_isa_ctx(cc.name, cg_body, &cc);
    else rc = for_each_isa_quiet(cc.name, cg_body, &cc);
    if (rc) return rc;
    free(cc.x); free(cc.xd); free(cc.w); free(cc.wd); free(cc.grad); free(cc.sco);
    free(cc.scm); free(cc.gw0); free(cc.qt); free(cc.q);
    for (a = 0; a < 2; a++) { free(cc.want_wf[a]); free(cc.want_wi[a]); }
    free(cc.want_xf); free(cc.want_xi); free(cc.out_w); free(cc.out_x);
    return 0;
}

static int test_convgrad_sweep(void)
{
    static const int64_t cs[] = {1, 20, 33, 64, 70, 130};
    static const int64_t os[] = {1, 5, 260};
    const int nc = (int)(sizeof cs / sizeof cs[0]);
    bt_rng r = bt_stream(0xc09d);
    int ci, oi, ki, pv, cases = 0;
    for (ci = 0; ci < nc; ci++)
        for (oi = 0; oi < 3; oi++)
            for (ki = 0; ki < N_KCFG; ki++)
                for (pv = 0; pv < 2; pv++) {
                    int64_t n, h, w;
                    /* o = 260: two geometries per c (the products are large) */
                    if (os[oi] == 260 && ki != ci % N_KCFG && ki != (ci + 3) % N_KCFG) continue;
                    if (os[oi] == 260 && pv != (ki + ci) % 2) continue;
                    n = 1 + (int64_t)bt_below(&r, 2);
                    h = 2 + (int64_t)bt_below(&r, os[oi] == 260 ? 3 : 5);
                    w = 2 + (int64_t)bt_below(&r, os[oi] == 260 ? 3 : 5);
                    RUN(cg_case_run(n, h, w, cs[ci], os[oi], &kcfgs[ki], pv, 0,
                                    0xc0000u + (uint64_t)cases));
                    cases++;
                }
    printf("  %-34s %d geometries ok\n", "convgrad sweep == oracle (bitwise)", cases);

    /* more than 1008 output positions: the weight gradient's tiles (and its
     * 252-row int8 chunks) are crossed, padded sums carried across tiles */
    RUN(cg_case_run(2, 24, 24, 8, 3, &kcfgs[1], 0, 1, 0xc1001u));
    RUN(cg_case_run(2, 24, 24, 8, 3, &kcfgs[1], 1, 0, 0xc1002u));
    RUN(cg_case_run(3, 25, 27, 20, 2, &kcfgs[3], 0, 0, 0xc1003u));       /* stride 2, dil 2 */
    /* large enough for the threads (>= 2^20 products per call) */
    RUN(cg_case_run(2, 47, 48, 70, 5, &kcfgs[2], 0, 1, 0xc1004u));
    RUN(cg_case_run(2, 24, 24, 70, 5, &kcfgs[1], 1, 0, 0xc1005u));
    RUN(cg_case_run(3, 6, 7, 130, 260, &kcfgs[4], 0, 1, 0xc1006u));
    /* empty: no images (gw = 0 or left), no filters (gx = 0) */
    RUN(cg_case_run(0, 5, 5, 33, 5, &kcfgs[1], 0, 0, 0xc1007u));
    RUN(cg_case_run(2, 5, 5, 33, 0, &kcfgs[1], 0, 0, 0xc1008u));
    RUN(cg_case_run(2, 5, 5, 33, 0, &kcfgs[2], 1, 0, 0xc1009u));
    printf("  %-34s ok\n", "convgrad tiles, threads, empty");
    return 0;
}

/* By hand: h 1, w 3, c 1, o 1, kernel 1x2, pad left 1: outputs m = 0, 1, 2
 * read pixels (pad, 0), (0, 1), (1, 2); x = (+1, -1, +1), grad = (1, 2, 4),
 * filter taps (+1, -1).
 *   gw: tap 0 = 1*pad + 2*(+1) + 4*(-1) = -2 (pad 0), -1 (pad +1);
 *       tap 1 = 1*(+1) + 2*(-1) + 4*(+1) = 3.
 *   gx: pixel 0 = tap 0 of m 1 (2*(+1)) then tap 1 of m 0 (1*(-1)) = 1;
 *       pixel 1 = 4*(+1) + 2*(-1) = 2; pixel 2 = tap 1 of m 2 = -4.
 * int8 with q = (1, 2, 4) and scale 0.5: halves of those. */
static int test_convgrad_by_hand(void)
{
    bnn_conv2d_params p;
    const uint64_t x[3] = {0u, 1u, 0u}, w[2] = {0u, 1u};
    const float grad[3] = {1.0f, 2.0f, 4.0f}, half[3] = {0.5f, 0.5f, 0.5f};
    const int8_t q[3] = {1, 2, 4};
    float gw[2], gx[3], ow[2], ox[3];
    size_t wsb;
    void *ws;
    int pv;
    memset(&p, 0, sizeof p);
    p.n = 1; p.h = 1; p.w = 3; p.c = 1; p.o = 1; p.kh = 1; p.kw = 2;
    p.stride_h = p.stride_w = p.dilation_h = p.dilation_w = 1;
    p.pad_left = 1;
    for (pv = 0; pv < 2; pv++) {
        const float want_w0 = pv ? -1.0f : -2.0f;
        p.pad_value = pv;
        bt_ctx("convgrad by hand, pad_value %d", pv);
        CHECK_ST(bnn_conv2d_grad_workspace_size(&p, 1, &wsb), BNN_OK);
        ws = bt_alloc(wsb);
        CHECK_ST(bnn_conv2d_grad_weights_f32(&p, x, grad, gw, 0, ws, wsb), BNN_OK);
        bt_conv2d_grad_weights_f32(&p, x, grad, ow, 0);
        CHECK(gw[0] == want_w0 && gw[1] == 3.0f && ow[0] == want_w0 && ow[1] == 3.0f);
        CHECK_ST(bnn_conv2d_grad_weights_f32(&p, x, grad, gw, 1, ws, wsb), BNN_OK);
        CHECK(gw[0] == 2 * want_w0 && gw[1] == 6.0f);
        CHECK_ST(bnn_conv2d_grad_weights_i8(&p, x, q, half, gw, 0, ws, wsb), BNN_OK);
        bt_conv2d_grad_weights_i8(&p, x, q, half, ow, 0);
        CHECK(gw[0] == want_w0 / 2 && gw[1] == 1.5f && ow[0] == want_w0 / 2 && ow[1] == 1.5f);
        CHECK_ST(bnn_conv2d_grad_input_f32(&p, w, grad, gx, ws, wsb), BNN_OK);
        bt_conv2d_grad_input_f32(&p, w, grad, ox);
        CHECK(gx[0] == 1.0f && gx[1] == 2.0f && gx[2] == -4.0f);
        CHECK(ox[0] == 1.0f && ox[1] == 2.0f && ox[2] == -4.0f);
        CHECK_ST(bnn_conv2d_grad_input_i8(&p, w, q, half, gx, ws, wsb), BNN_OK);
        bt_conv2d_grad_input_i8(&p, w, q, half, ox);
        CHECK(gx[0] == 0.5f && gx[1] == 1.0f && gx[2] == -2.0f);
        CHECK(ox[0] == 0.5f && ox[1] == 1.0f && ox[2] == -2.0f);
        free(ws);
    }
    printf("  %-34s ok\n", "convgrad by hand");
    return 0;
}

/* ------------------------------------------------------------------ */
/* Errors                                                               */
/* ------------------------------------------------------------------ */

/* The five calls on p with these pointers; each must return want, and
 * nothing may be written to gw / gx. */
static int cg_all_status(const bnn_conv2d_params *p, const uint64_t *x, const uint64_t *w,
                         const float *grad, const int8_t *qt, const float *sco,
                         const int8_t *q, const float *scm, float *gw, int64_t ngw, float *gx,
                         int64_t ngx, void *ws, size_t wsb, bnn_status want, const char *what)
{
    int acc;
    bt_ctx("convgrad errors: %s", what);
    fill_canary(gw, ngw);
    fill_canary(gx, ngx);
    for (acc = 0; acc < 2; acc++) {
        CHECK_ST(bnn_conv2d_grad_weights_f32(p, x, grad, gw, acc, ws, wsb), want);
        CHECK_ST(bnn_conv2d_grad_weights_i8(p, x, qt, sco, gw, acc, ws, wsb), want);
    }
    CHECK_ST(bnn_conv2d_grad_input_f32(p, w, grad, gx, ws, wsb), want);
    CHECK_ST(bnn_conv2d_grad_input_i8(p, w, q, scm, gx, ws, wsb), want);
    CHECK_MSG(all_canary(gw, ngw) && all_canary(gx, ngx), "%s: an output was written", what);
    return 0;
}

static int test_convgrad_errors(void)
{
    bnn_conv2d_params p, b;
    int64_t oh, ow, m, ngw, ngx, i;
    uint64_t *x, *w;
    float *grad, *sco, *scm, *gw, *gx;
    int8_t *qt, *q;
    size_t need, big;
    unsigned char *ws;
    bnn_status want;
    int bi;
    memset(&p, 0, sizeof p);
    p.n = 2; p.h = 5; p.w = 4; p.c = 33; p.o = 5; p.kh = 3; p.kw = 2;
    p.stride_h = 1; p.stride_w = 2; p.dilation_h = 1; p.dilation_w = 2;
    p.pad_top = 1; p.pad_bottom = 1; p.pad_left = 1; p.pad_right = 0;
    CHECK_ST(bnn_conv2d_output_shape(&p, &oh, &ow), BNN_OK);
    m = p.n * oh * ow;
    ngw = p.o * p.kh * p.kw * p.c;
    ngx = p.n * p.h * p.w * p.c;
    x = (uint64_t *)bt_alloc(8 * (size_t)(p.n * p.h * p.w));
    w = (uint64_t *)bt_alloc(8 * (size_t)(p.o * p.kh * p.kw));
    grad = (float *)bt_alloc(4 * (size_t)(m * p.o));
    sco = (float *)bt_alloc(4 * (size_t)p.o);
    scm = (float *)bt_alloc(4 * (size_t)m);
    qt = (int8_t *)bt_alloc((size_t)(m * p.o));
    q = (int8_t *)bt_alloc((size_t)(m * p.o));
    gw = (float *)bt_alloc(4 * (size_t)ngw);
    gx = (float *)bt_alloc(4 * (size_t)ngx);
    for (i = 0; i < p.n * p.h * p.w; i++) x[i] = (uint64_t)i * 0x9e3779b97f4a7c15u;
    for (i = 0; i < p.o * p.kh * p.kw; i++) w[i] = (uint64_t)i * 0x2545f4914f6cdd1du;
    for (i = 0; i < m * p.o; i++) {
        grad[i] = (float)(i % 7) - 3.0f;
        qt[i] = q[i] = (int8_t)(i % 5 - 2);
    }
    for (i = 0; i < p.o; i++) sco[i] = 0.25f;
    for (i = 0; i < m; i++) scm[i] = 0.5f;
    CHECK_ST(bnn_conv2d_grad_workspace_size(&p, 1, &need), BNN_OK);
    ws = (unsigned char *)bt_alloc(need + 16);

    /* valid: all succeed */
    CHECK_ST(bnn_conv2d_grad_weights_f32(&p, x, grad, gw, 0, ws, need), BNN_OK);
    CHECK_ST(bnn_conv2d_grad_input_i8(&p, w, q, scm, gx, ws, need), BNN_OK);

    /* NULL pointers */
    CHECK_ST(bnn_conv2d_grad_workspace_size(NULL, 1, &need), BNN_ERR_NULL);
    CHECK_ST(bnn_conv2d_grad_workspace_size(&p, 1, NULL), BNN_ERR_NULL);
    RUN(cg_all_status(NULL, x, w, grad, qt, sco, q, scm, gw, ngw, gx, ngx, ws, need,
                      BNN_ERR_NULL, "p NULL"));
    RUN(cg_all_status(&p, NULL, NULL, grad, qt, sco, q, scm, gw, ngw, gx, ngx, ws, need,
                      BNN_ERR_NULL, "x / w NULL"));
    RUN(cg_all_status(&p, x, w, NULL, NULL, sco, NULL, scm, gw, ngw, gx, ngx, ws, need,
                      BNN_ERR_NULL, "grad / q NULL"));
    bt_ctx("convgrad errors: scale NULL");
    fill_canary(gw, ngw);
    fill_canary(gx, ngx);
    CHECK_ST(bnn_conv2d_grad_weights_i8(&p, x, qt, NULL, gw, 0, ws, need), BNN_ERR_NULL);
    CHECK_ST(bnn_conv2d_grad_weights_i8(&p, x, qt, NULL, gw, 1, ws, need), BNN_ERR_NULL);
    CHECK_ST(bnn_conv2d_grad_input_i8(&p, w, q, NULL, gx, ws, need), BNN_ERR_NULL);
    CHECK(all_canary(gw, ngw) && all_canary(gx, ngx));
    bt_ctx("convgrad errors: output NULL");
    CHECK_ST(bnn_conv2d_grad_weights_f32(&p, x, grad, NULL, 0, ws, need), BNN_ERR_NULL);
    CHECK_ST(bnn_conv2d_grad_weights_i8(&p, x, qt, sco, NULL, 1, ws, need), BNN_ERR_NULL);
    CHECK_ST(bnn_conv2d_grad_input_f32(&p, w, grad, NULL, ws, need), BNN_ERR_NULL);
    CHECK_ST(bnn_conv2d_grad_input_i8(&p, w, q, scm, NULL, ws, need), BNN_ERR_NULL);
    RUN(cg_all_status(&p, x, w, grad, qt, sco, q, scm, gw, ngw, gx, ngx, NULL, need,
                      BNN_ERR_NULL, "workspace NULL (enough bytes claimed)"));

    /* workspace one byte short, misaligned */
    RUN(cg_all_status(&p, x, w, grad, qt, sco, q, scm, gw, ngw, gx, ngx, ws, need - 1,
                      BNN_ERR_INVALID, "workspace one byte short"));
    RUN(cg_all_status(&p, x, w, grad, qt, sco, q, scm, gw, ngw, gx, ngx, ws + 4, need,
                      BNN_ERR_INVALID, "workspace misaligned by 4"));
    RUN(cg_all_status(&p, x, w, grad, qt, sco, q, scm, gw, ngw, gx, ngx, ws + 1, need + 8,
                      BNN_ERR_INVALID, "workspace misaligned by 1"));
    bt_ctx("convgrad errors: an 8-byte aligned workspace at +8 works");
    CHECK_ST(bnn_conv2d_grad_weights_i8(&p, x, qt, sco, gw, 0, ws + 8, need), BNN_OK);
    CHECK_ST(bnn_conv2d_grad_input_f32(&p, w, grad, gx, ws + 8, need), BNN_OK);

    /* bad geometry: the status of bnn_conv2d_output_shape */
    for (bi = 0; bi < 30; bi++) {
        char what[64];
        size_t dummy = 12345;
        b = p;
        switch (bi) {
        case 0: b.stride_h = 0; break;
        case 1: b.stride_w = -1; break;
        case 2: b.dilation_h = 0; break;
        case 3: b.dilation_w = -3; break;
        case 4: b.pad_top = -1; break;
        case 5: b.pad_bottom = -2; break;
        case 6: b.pad_left = -1; break;
        case 7: b.pad_right = INT32_MIN; break;
        case 8: b.pad_value = 2; break;
        case 9: b.pad_value = -1; break;
        case 10: b.pad_byte = 256; break;
        case 11: b.reserved[0] = 1; break;
        case 12: b.reserved[3] = -1; break;
        case 13: b.c = 0; break;
        case 14: b.c = -5; break;
        case 15: b.n = -1; break;
        case 16: b.h = -1; break;
        case 17: b.w = -2; break;
        case 18: b.o = -1; break;
        case 19: b.kh = 0; break;
        case 20: b.kw = 0; break;
        case 21: b.kh = -1; break;
        case 22: b.kh = 8; break;                         /* 8 > 5 + 2 */
        case 23: b.dilation_w = 5; break;                 /* span 6 > 4 + 1 */
        case 24: b.pad_top = b.pad_bottom = 0; b.h = 2; break;
        case 25: b.h = INT64_MAX; break;
        case 26: b.c = INT64_MAX; break;
        case 27: b.n = INT64_MAX / 2; b.h = 1 << 20; b.w = 1 << 20; b.kh = b.kw = 1; break;
        case 28: b.kw = INT64_MAX; break;
        default: b.dilation_h = INT32_MAX; break;
        }
        want = bnn_conv2d_output_shape(&b, NULL, NULL);
        snprintf(what, sizeof what, "bad geometry %d (status %d)", bi, (int)want);
        bt_ctx("convgrad errors: %s", what);
        CHECK(want != BNN_OK);
        CHECK_ST(bnn_conv2d_grad_workspace_size(&b, 1, &dummy), want);
        CHECK(dummy == 12345);
        RUN(cg_all_status(&b, x, w, grad, qt, sco, q, scm, gw, ngw, gx, ngx, ws, need, want,
                          what));
    }

    /* the 2^24 limits of the 8-bit paths (rejected before any data is read) */
    b = p;
    b.n = (int64_t)1 << 24; b.h = 1; b.w = 1; b.c = 1; b.o = 1; b.kh = 1; b.kw = 1;
    b.stride_w = 1; b.dilation_w = 1;
    b.pad_top = b.pad_bottom = b.pad_left = b.pad_right = 0;
    CHECK_ST(bnn_conv2d_grad_workspace_size(&b, 1, &big), BNN_OK);
    {
        unsigned char *wb = (unsigned char *)bt_alloc(big);
        bt_ctx("convgrad errors: m = 2^24 (int8 weight gradient)");
        fill_canary(gw, 1);
        CHECK_ST(bnn_conv2d_grad_weights_i8(&b, x, qt, sco, gw, 0, wb, big), BNN_ERR_SHAPE);
        CHECK(all_canary(gw, 1));
        b.n = 1; b.o = (int64_t)1 << 24;
        CHECK_ST(bnn_conv2d_grad_workspace_size(&b, 1, &big), BNN_OK);
        free(wb);
        wb = (unsigned char *)bt_alloc(big);
        bt_ctx("convgrad errors: o = 2^24 (int8 input gradient)");
        fill_canary(gx, 1);
        CHECK_ST(bnn_conv2d_grad_input_i8(&b, w, q, scm, gx, wb, big), BNN_ERR_SHAPE);
        CHECK(all_canary(gx, 1));
        free(wb);
    }

    /* the workspace size does not depend on n; threads 0 = the current count */
    {
        size_t s1, s2, s3, s0;
        b = p;
        b.n = 1;
        CHECK_ST(bnn_conv2d_grad_workspace_size(&b, 3, &s1), BNN_OK);
        b.n = 7;
        CHECK_ST(bnn_conv2d_grad_workspace_size(&b, 3, &s2), BNN_OK);
        b.n = 0;
        CHECK_ST(bnn_conv2d_grad_workspace_size(&b, 3, &s3), BNN_OK);
        bt_ctx("convgrad workspace size vs n");
        CHECK(s1 == s2 && s2 == s3);
        CHECK_ST(bnn_set_num_threads(3), BNN_OK);
        CHECK_ST(bnn_conv2d_grad_workspace_size(&p, 0, &s0), BNN_OK);
        CHECK_ST(bnn_conv2d_grad_workspace_size(&p, 3, &s1), BNN_OK);
        CHECK(s0 == s1);
        CHECK_ST(bnn_set_num_threads(1), BNN_OK);
    }
    free(x); free(w); free(grad); free(sco); free(scm); free(qt); free(q); free(gw); free(gx);
    free(ws);
    printf("  %-34s ok\n", "convgrad errors");
    return 0;
}

int main(int argc, char **argv)
{
    const int threads0 = bnn_get_num_threads();
    bt_init(argc, argv, "test_convgrad");
    RUN(test_quantize_by_hand());
    RUN(test_quantize_unfused());
    RUN(test_quantize_errors());
    RUN(test_quantize());
    RUN(test_convgrad_by_hand());
    RUN(test_convgrad_errors());
    RUN(test_convgrad_sweep());
    CHECK_ST(bnn_set_num_threads(threads0), BNN_OK);
    printf("test_convgrad: all passed\n");
    return 0;
}
