/*
 * test_gemm.c -- bnn_gemm and bnn_fold_threshold.
 *
 *  - INT32 on every ISA equals the reference ISA bit-exactly and an
 *    integer +-1 dot oracle computed from the float data, over edge shapes
 *    with padded strides (garbage in the stride gaps) and a few larger
 *    ones (several column blocks, long K with worst-case popcounts).
 *  - FLOAT equals fmaf((float)dot, scale, offset) bit-exactly, including
 *    the NULL scale / offset variants.
 *  - BITS follows flip ? dot > t : dot < t, pad bits 0, gap words kept;
 *    with thresholds from bnn_fold_threshold it equals the double
 *    predicate scale*dot + offset < 0.
 *  - Results are identical for 1, 2, 3 and 8 threads on shapes above the
 *    driver's parallel threshold (n*m*words >= 2^20).
 *  - bnn_fold_threshold is exact for every s in [-K, K].
 *  - Error paths write nothing; zero sizes are valid.
 */
#include "oracle.h"

#include <float.h>
#include <limits.h>

#define CANARY_I32 BT_CANARY_I32
#define CANARY_F32 BT_CANARY_F32
#define CANARY_W BT_CANARY_W

/* ------------------------------------------------------------------ */
/* A problem: float data, its packed form with padded strides, oracle   */
/* ------------------------------------------------------------------ */

typedef struct problem {
    int64_t n, m, k, kw, lda, ldw;
    float *af, *wf;   /* [n][k], [m][k] contiguous float data       */
    uint64_t *a, *w;  /* packed, exact extents, garbage in the gaps */
    int32_t *dot;     /* [n][m] oracle                               */
} problem;

/* Fill one float row: mostly random, sometimes constant (all -x or all +x)
 * so that XOR words are all ones or all zeros (worst-case popcounts). */
static void fill_row(bt_rng *r, float *row, int64_t k, int pattern)
{
    int64_t j;
    switch (pattern) {
    case 1: for (j = 0; j < k; j++) row[j] = -0.75f; break;
    case 2: for (j = 0; j < k; j++) row[j] = 0.0f; break; /* sign +1 */
    case 3: for (j = 0; j < k; j++) row[j] = (j & 1) ? -1.0f : -0.0f; break;
    default: bt_rand_floats(r, row, (size_t)k); break;
    }
}

/* extreme: 0 random rows only; 1 a mix with constant rows. */
static void prob_make(problem *p, int64_t n, int64_t m, int64_t k,
                      int64_t lda_extra, int64_t ldw_extra, int extreme,
                      uint64_t tag)
{
    bt_rng r = bt_stream(tag);
    int64_t i, kw = bt_words(k);
    size_t na, nw;
    int8_t *as, *ws;

    memset(p, 0, sizeof *p);
    p->n = n; p->m = m; p->k = k; p->kw = kw;
    p->lda = kw + lda_extra;
    p->ldw = kw + ldw_extra;
    p->af = (float *)bt_alloc((size_t)(n * k) * sizeof(float));
    p->wf = (float *)bt_alloc((size_t)(m * k) * sizeof(float));
    for (i = 0; i < n; i++)
        fill_row(&r, p->af + i * k, k, extreme ? (int)bt_below(&r, 4) : 0);
    for (i = 0; i < m; i++)
        fill_row(&r, p->wf + i * k, k, extreme ? (int)bt_below(&r, 4) : 0);

    na = bt_extent(n, p->lda, kw);
    nw = bt_extent(m, p->ldw, kw);
    p->a = (uint64_t *)bt_alloc(na * 8);
    p->w = (uint64_t *)bt_alloc(nw * 8);
    bt_rand_words(&r, p->a, na); /* garbage stays in the stride gaps */
    bt_rand_words(&r, p->w, nw);
    bt_pack_f32(n, k, p->af, k, p->a, p->lda);
    bt_pack_f32(m, k, p->wf, k, p->w, p->ldw);

    /* Oracle: integer +-1 dot products of the float rows' signs. */
    as = (int8_t *)bt_alloc((size_t)(n * k));
    ws = (int8_t *)bt_alloc((size_t)(m * k));
    for (i = 0; i < n; i++) bt_signs(p->af + i * k, k, as + i * k);
    for (i = 0; i < m; i++) bt_signs(p->wf + i * k, k, ws + i * k);
    p->dot = (int32_t *)bt_alloc((size_t)(n * m) * sizeof(int32_t));
    bt_gemm_s8(n, m, k, as, ws, p->dot);
    free(as);
    free(ws);
}

static void prob_free(problem *p)
{
    free(p->af);
    free(p->wf);
    free(p->a);
    free(p->w);
    free(p->dot);
    memset(p, 0, sizeof *p);
}

/* Cross-check the oracle itself against the float dot on a few entries. */
static int prob_selfcheck(const problem *p)
{
    int64_t i, j;
    for (i = 0; i < p->n; i += 1 + p->n / 3)
        for (j = 0; j < p->m; j += 1 + p->m / 3)
            CHECK_EQ(p->dot[i * p->m + j],
                     bt_dot_f32(p->af + i * p->k, p->wf + j * p->k, p->k));
    return 0;
}

/* ------------------------------------------------------------------ */
/* Epilogue parameters                                                  */
/* ------------------------------------------------------------------ */

/* bt_epi_data, bt_epi_make_pm1, bt_epi_for (oracle.h). */
typedef bt_epi_data epi_data;

/* ------------------------------------------------------------------ */
/* Running and checking one product                                     */
/* ------------------------------------------------------------------ */

/* Output buffer of exact extent, filled with the kind's canary. */
static void *out_alloc(const problem *p, int kind, int64_t ldc, size_t *bytes)
{
    return bt_out_alloc(p->n, p->m, kind, ldc, bytes);
}

/* Check an output buffer against the oracle for the epilogue. */
static int check_out(const problem *p, const bnn_epilogue *e, const void *c,
                     int64_t ldc)
{
    return bt_check_epi(p->n, p->m, p->dot, e, c, ldc, NULL, NULL);
}

/* Run one product with the current ISA into a fresh canaried buffer. */
static int run_gemm(const problem *p, const bnn_epilogue *e, int64_t ldc,
                    void **out, size_t *bytes)
{
    *out = out_alloc(p, e->kind, ldc, bytes);
    CHECK_ST(bnn_gemm(p->n, p->m, p->k, p->a, p->lda, p->w, p->ldw, e, *out, ldc),
             BNN_OK);
    return 0;
}

/* Run with `isa` and with the reference ISA; check the oracle and that the
 * two buffers are identical byte for byte (gaps included). */
static int run_and_compare(const problem *p, bnn_isa isa, const bnn_epilogue *e,
                           int64_t ldc)
{
    void *c = NULL, *c0 = NULL;
    size_t bytes = 0, bytes0 = 0;
    RUN(run_gemm(p, e, ldc, &c, &bytes));
    RUN(check_out(p, e, c, ldc));
    if (isa != BNN_ISA_REF) {
        CHECK_ST(bnn_set_isa(BNN_ISA_REF), BNN_OK);
        RUN(run_gemm(p, e, ldc, &c0, &bytes0));
        CHECK_ST(bnn_set_isa(isa), BNN_OK);
        CHECK(bytes == bytes0);
        CHECK_MSG(memcmp(c, c0, bytes) == 0, "%s differs from ref",
                  bt_isa_str(isa));
        free(c0);
    }
    free(c);
    return 0;
}

/* All epilogues on one problem. */
static int check_problem(const problem *p, bnn_isa isa, uint64_t tag,
                         int64_t ldc_extra, const char *what)
{
    epi_data d;
    int v;
    bnn_epilogue e;
    int64_t ldc;

    bt_epi_make_pm1(&d, p->m, p->k, tag);
    bt_ctx("%s isa=%s INT32 n=%" PRId64 " m=%" PRId64 " k=%" PRId64
           " lda=%" PRId64 " ldw=%" PRId64 " ldc=%" PRId64, what,
           bt_isa_str(isa), p->n, p->m, p->k, p->lda, p->ldw, p->m + ldc_extra);
    e = bt_epi_for(BNN_EPI_INT32, 0, &d);
    RUN(run_and_compare(p, isa, &e, p->m + ldc_extra));
    /* epi == NULL means INT32. */
    {
        void *c = out_alloc(p, BNN_EPI_INT32, p->m + ldc_extra, (size_t[1]){0});
        CHECK_ST(bnn_gemm(p->n, p->m, p->k, p->a, p->lda, p->w, p->ldw, NULL, c,
                          p->m + ldc_extra), BNN_OK);
        RUN(check_out(p, &e, c, p->m + ldc_extra));
        free(c);
    }
    for (v = 0; v < 4; v++) {
        ldc = p->m + ldc_extra;
        bt_ctx("%s isa=%s FLOAT(scale%s, offset%s) n=%" PRId64 " m=%" PRId64
               " k=%" PRId64 " ldc=%" PRId64, what, bt_isa_str(isa),
               (v & 1) ? "=NULL" : "", (v & 2) ? "=NULL" : "", p->n, p->m, p->k,
               ldc);
        e = bt_epi_for(BNN_EPI_FLOAT, v, &d);
        RUN(run_and_compare(p, isa, &e, ldc));
    }
    for (v = 0; v < 2; v++) {
        ldc = bt_words(p->m) + ldc_extra;
        bt_ctx("%s isa=%s BITS(flip%s) n=%" PRId64 " m=%" PRId64 " k=%" PRId64
               " ldc=%" PRId64 " words", what, bt_isa_str(isa),
               v ? "=NULL" : "", p->n, p->m, p->k, ldc);
        e = bt_epi_for(BNN_EPI_BITS, v, &d);
        RUN(run_and_compare(p, isa, &e, ldc));
    }
    bt_epi_free(&d);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Shape sweeps                                                         */
/* ------------------------------------------------------------------ */

static const int64_t sweep_k[] = {1, 63, 64, 65, 127, 129, 1000, 4097};
static const int64_t sweep_n[] = {1, 3, 5, 7};
static const int64_t sweep_m[] = {1, 3, 5, 63, 64, 65, 130};

static int sweep_body(bnn_isa isa)
{
    size_t ki, ni, mi;
    uint64_t idx = 0;
    for (ki = 0; ki < sizeof sweep_k / sizeof sweep_k[0]; ki++)
        for (ni = 0; ni < sizeof sweep_n / sizeof sweep_n[0]; ni++)
            for (mi = 0; mi < sizeof sweep_m / sizeof sweep_m[0]; mi++, idx++) {
                problem p;
                bt_rng r = bt_stream(idx * 7 + 1);
                /* Every fourth shape uses tight strides, the rest padded. */
                int tight = idx % 4 == 0;
                int64_t ea = tight ? 0 : bt_range(&r, 1, 3);
                int64_t ew = tight ? 0 : bt_range(&r, 1, 3);
                int64_t ec = tight ? 0 : bt_range(&r, 1, 3);
                prob_make(&p, sweep_n[ni], sweep_m[mi], sweep_k[ki], ea, ew,
                          (int)(idx % 3 == 1), idx * 7 + 2);
                if (idx % 16 == 0) RUN(prob_selfcheck(&p));
                RUN(check_problem(&p, isa, idx * 7 + 3, ec, "sweep"));
                prob_free(&p);
            }
    return 0;
}

/* Larger shapes: several column blocks (the driver blocks W by up to 1024
 * rows, fewer for long K), K past the AVX2 byte-accumulator chunk of
 * 31 * 4 words and the NEON 16-bit one of 4095 * 2 words, and constant
 * rows giving all-ones XOR words. */
static const struct { int64_t n, m, k; int extreme; } big_shapes[] = {
    {37, 1100, 300, 0},
    {9, 1100, 4097, 1},
    {6, 2100, 129, 1},
    {5, 1089, 64, 0},
    {3, 200, 20000, 1},
    {5, 70, 7936, 1},  /* 124 words: exactly one AVX2 chunk */
    {5, 70, 8000, 1},  /* 125 words */
    {6, 67, 8192, 1},  /* 128 words: two chunks */
    {2, 9, 65536, 1},
    {4, 9, 524288 + 129, 1},  /* 8195 words: past NEON's 16-bit chunk of 4095 x 2 words */
};

static int big_body(bnn_isa isa)
{
    size_t s;
    for (s = 0; s < sizeof big_shapes / sizeof big_shapes[0]; s++) {
        problem p;
        prob_make(&p, big_shapes[s].n, big_shapes[s].m, big_shapes[s].k,
                  (int64_t)(s % 3), (int64_t)((s + 1) % 3),
                  big_shapes[s].extreme, 1000 + s);
        RUN(prob_selfcheck(&p));
        RUN(check_problem(&p, isa, 2000 + s, (int64_t)(s % 2) + 1, "big"));
        prob_free(&p);
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Threads                                                              */
/* ------------------------------------------------------------------ */

/* n*m*words against the driver's 2^20 parallel threshold is noted per
 * shape; most are above it so several threads really run. */
static const struct { int64_t n, m, k; } thread_shapes[] = {
    {1, 5000, 4096},    /* 320000 word pairs: below, stays serial     */
    {3, 5000, 4096},    /* 960000: below                              */
    {1, 17000, 4096},   /* 1088000: above; more threads than rows      */
    {3, 5600, 4096},    /* 1075200: above, column blocks               */
    {4, 5000, 4096},    /* 1280000: above, column blocks               */
    {300, 70, 4096},    /* 1344000: above, row ranges                  */
    {8, 64, 131136},    /* 1049088: above, 2 row tiles < 8 threads     */
    {37, 1100, 4097},   /* 2645500: above                               */
};

typedef struct thread_ctx {
    problem *p;
    uint64_t tag;
} thread_ctx;

static int thread_body(bnn_isa isa, void *vctx)
{
    const thread_ctx *t = (const thread_ctx *)vctx;
    const problem *p = t->p;
    static const int counts[] = {2, 3, 8};
    epi_data d;
    int kind;

    bt_epi_make_pm1(&d, p->m, p->k, t->tag);
    for (kind = 0; kind < 3; kind++) {
        bnn_epilogue e = bt_epi_for(kind, 0, &d);
        int64_t ldc = (kind == BNN_EPI_BITS ? bt_words(p->m) : p->m) + 1;
        void *c1 = NULL;
        size_t bytes = 0;
        size_t ci;
        CHECK_ST(bnn_set_num_threads(1), BNN_OK);
        bt_ctx("threads isa=%s kind=%d n=%" PRId64 " m=%" PRId64 " k=%" PRId64
               " threads=1", bt_isa_str(isa), kind, p->n, p->m, p->k);
        RUN(run_gemm(p, &e, ldc, &c1, &bytes));
        RUN(check_out(p, &e, c1, ldc));
        for (ci = 0; ci < sizeof counts / sizeof counts[0]; ci++) {
            void *c = NULL;
            size_t b2 = 0;
            CHECK_ST(bnn_set_num_threads(counts[ci]), BNN_OK);
            bt_ctx("threads isa=%s kind=%d n=%" PRId64 " m=%" PRId64 " k=%" PRId64
                   " threads=%d", bt_isa_str(isa), kind, p->n, p->m, p->k,
                   counts[ci]);
            RUN(run_gemm(p, &e, ldc, &c, &b2));
            CHECK(b2 == bytes);
            if (memcmp(c, c1, bytes) != 0) RUN(check_out(p, &e, c, ldc));
            CHECK_MSG(memcmp(c, c1, bytes) == 0,
                      "result with %d threads differs from 1 thread", counts[ci]);
            free(c);
        }
        CHECK_ST(bnn_set_num_threads(1), BNN_OK);
        free(c1);
    }
    bt_epi_free(&d);
    return 0;
}

static int test_threads(void)
{
    size_t s;
    for (s = 0; s < sizeof thread_shapes / sizeof thread_shapes[0]; s++) {
        problem p;
        thread_ctx t;
        char label[96];
        int64_t work = thread_shapes[s].n * thread_shapes[s].m
                     * bt_words(thread_shapes[s].k);
        prob_make(&p, thread_shapes[s].n, thread_shapes[s].m, thread_shapes[s].k,
                  1, 2, 0, 3000 + s);
        t.p = &p;
        t.tag = 4000 + s;
        snprintf(label, sizeof label, "threads %dx%dx%d (%s 2^20)",
                 (int)p.n, (int)p.m, (int)p.k,
                 work >= ((int64_t)1 << 20) ? ">=" : "<");
        RUN(for_each_isa_ctx(label, thread_body, &t));
        prob_free(&p);
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* bnn_fold_threshold                                                   */
/* ------------------------------------------------------------------ */

/* (scale, offset) pairs covering the corners, then random ones. */
static int64_t make_affine(bt_rng *r, int64_t k, double *sc, double *of,
                           int64_t cap)
{
    static const double fixed[][2] = {
        {0.0, -1.0}, {0.0, 0.0}, {0.0, 1.0}, {0.0, -0.0}, {0.0, -1e-300},
        {-0.0, -1.0}, {-0.0, 0.0}, {-0.0, 1.0}, {-0.0, -0.0},
        {1.0, 0.0}, {-1.0, 0.0}, {1.0, -0.0}, {-1.0, -0.0},
        {1.0, -1.0}, {1.0, 1.0}, {-1.0, 1.0}, {-1.0, -1.0},
        {0.5, -1.5}, {-0.5, 1.5}, {0.1, -0.3}, {-0.1, 0.3}, {0.1, 0.3},
        {3.0, -3.0}, {1.0 / 3.0, -1.0}, {-1.0 / 3.0, 1.0},
        {1e-300, 0.0}, {1e-300, -1e-300}, {-1e-300, 1e-300}, {4.9e-324, 0.0},
        {-4.9e-324, -4.9e-324}, {4.9e-324, -4.9e-324},
        {2.2250738585072014e-308, -2.2250738585072014e-308},
        {1e300, -1e300}, {-1e300, 1e300}, {1.7976931348623157e308, 0.0},
        {1.7976931348623157e308, -1.7976931348623157e308},
        {-1.7976931348623157e308, 1.7976931348623157e308},
        {1e-10, -5e-10}, {1e10, -3e10}, {1.0, 1e300}, {1.0, -1e300},
        {-1.0, 1e300}, {-1.0, -1e300}, {1.0, 0.5}, {1.0, -0.5},
        {2.0, -1.0}, {2.0, 1.0}, {-2.0, -1.0}, {-2.0, 1.0},
    };
    int64_t c = 0;
    size_t i;
    for (i = 0; i < sizeof fixed / sizeof fixed[0] && c < cap; i++, c++) {
        sc[c] = fixed[i][0];
        of[c] = fixed[i][1];
    }
    while (c < cap) {
        double a, b, mag = pow(10.0, bt_unit(r) * 40.0 - 20.0);
        int64_t t = bt_range(r, -k - 1, k + 1);
        a = (bt_below(r, 2) ? -1.0 : 1.0) * mag * (0.5 + bt_unit(r));
        switch (bt_below(r, 6)) {
        case 0: /* the boundary on an integer, or as close as rounding allows */
            b = -(a * (double)t);
            break;
        case 1: /* one ulp either side of that */
            b = nextafter(-(a * (double)t), bt_below(r, 2) ? INFINITY : -INFINITY);
            break;
        case 2: /* a "nice" decimal scale */
            a = (bt_below(r, 2) ? -1.0 : 1.0) * (double)bt_range(r, 1, 9) / 10.0;
            b = -(a * (double)t);
            break;
        case 3: /* batch-norm-like: gamma/sqrt(var+eps), beta - mean*scale */
            {
                double gamma = bt_unit(r) * 4.0 - 2.0, var = bt_unit(r) * 10.0;
                double mean = (bt_unit(r) - 0.5) * 2.0 * (double)k;
                double beta = bt_unit(r) - 0.5;
                a = gamma / sqrt(var + 1e-5);
                b = beta - mean * a;
            }
            break;
        default:
            b = (bt_unit(r) - 0.5) * 2.0 * mag * (double)(k + 2);
            break;
        }
        sc[c] = a;
        of[c] = b;
        c++;
    }
    return c;
}

static int check_fold(int64_t ch, int64_t k, const double *sc, const double *of,
                      const int32_t *th, const uint8_t *fl, int exhaustive,
                      bt_rng *r)
{
    int64_t j, s;
    for (j = 0; j < ch; j++) {
        CHECK_MSG(fl[j] == 0 || fl[j] == 1, "flip[%" PRId64 "] = %d", j, fl[j]);
        /* bnn.h: scale < 0 gives flip 1 (and -0.0 is not < 0). */
        CHECK_MSG(fl[j] == (sc[j] < 0.0), "channel %" PRId64 " scale=%.17g: flip %d",
                  j, sc[j], fl[j]);
        if (exhaustive) {
            for (s = -k; s <= k; s++) {
                int got = fl[j] ? s > th[j] : s < th[j];
                int want = bt_affine_neg(sc[j], of[j], s);
                CHECK_MSG(got == want,
                          "k=%" PRId64 " channel %" PRId64 " scale=%.17g offset=%.17g"
                          " s=%" PRId64 ": folded (t=%d flip=%d) gives %d, double "
                          "gives %d", k, j, sc[j], of[j], s, (int)th[j], fl[j], got,
                          want);
            }
        } else {
            /* Huge k: the endpoints, around the threshold, random points.
             * The double predicate is monotone in s, so a threshold that is
             * right next to its boundary and at the ends is right. */
            int64_t probes[64];
            int np = 0, q;
            int64_t t = th[j];
            probes[np++] = -k;
            probes[np++] = -k + 1;
            probes[np++] = k - 1;
            probes[np++] = k;
            probes[np++] = 0;
            for (q = -3; q <= 3; q++) probes[np++] = t + q;
            while (np < 64) probes[np++] = bt_range(r, -k, k);
            for (q = 0; q < np; q++) {
                int got, want;
                s = probes[q];
                if (s < -k || s > k) continue;
                got = fl[j] ? s > th[j] : s < th[j];
                want = bt_affine_neg(sc[j], of[j], s);
                CHECK_MSG(got == want,
                          "k=%" PRId64 " channel %" PRId64 " scale=%.17g offset=%.17g"
                          " s=%" PRId64 ": folded (t=%d flip=%d) gives %d, double "
                          "gives %d", k, j, sc[j], of[j], s, (int)th[j], fl[j], got,
                          want);
            }
        }
    }
    return 0;
}

static int test_fold_exact(void)
{
    static const int64_t kk[] = {0, 1, 2, 63, 64, 1000};
    enum { CH = 400 };
    double sc[CH], of[CH];
    int32_t th[CH];
    uint8_t fl[CH];
    size_t i;

    for (i = 0; i < sizeof kk / sizeof kk[0]; i++) {
        bt_rng r = bt_stream(6000 + i);
        int64_t k = kk[i];
        int64_t ch = make_affine(&r, k, sc, of, CH);
        bt_ctx("fold exhaustive k=%" PRId64, k);
        CHECK_ST(bnn_fold_threshold(ch, k, sc, of, th, fl), BNN_OK);
        RUN(check_fold(ch, k, sc, of, th, fl, 1, &r));
    }
    /* Large k, up to the largest allowed (INT32_MAX - 1). */
    {
        static const int64_t kb[] = {100000, (int64_t)1 << 24, INT32_MAX - 1};
        for (i = 0; i < sizeof kb / sizeof kb[0]; i++) {
            bt_rng r = bt_stream(6100 + i);
            int64_t ch = make_affine(&r, kb[i], sc, of, 120);
            bt_ctx("fold sampled k=%" PRId64, kb[i]);
            CHECK_ST(bnn_fold_threshold(ch, kb[i], sc, of, th, fl), BNN_OK);
            RUN(check_fold(ch, kb[i], sc, of, th, fl, 0, &r));
        }
    }
    printf("  fold_threshold exact for every s in [-k, k], k in {0,1,2,63,64,1000}\n");
    return 0;
}

static int test_fold_errors(void)
{
    double sc[4] = {1.0, -2.0, 0.5, 3.0}, of[4] = {0.0, 1.0, -1.0, 2.0};
    int32_t th[4];
    uint8_t fl[4];
    int i;
    static const double bad[] = {NAN, -NAN, INFINITY, -INFINITY};

#define FOLD_UNCHANGED()                                                      \
    do {                                                                      \
        int q_;                                                               \
        for (q_ = 0; q_ < 4; q_++) {                                          \
            CHECK_MSG(th[q_] == 0x3c3c3c3c, "thresh[%d] written", q_);        \
            CHECK_MSG(fl[q_] == 0xc3, "flip[%d] written", q_);                \
        }                                                                     \
    } while (0)
    for (i = 0; i < 4; i++) { th[i] = 0x3c3c3c3c; fl[i] = 0xc3; }

    bt_ctx("fold errors");
    CHECK_ST(bnn_fold_threshold(4, 10, NULL, of, th, fl), BNN_ERR_NULL);
    CHECK_ST(bnn_fold_threshold(4, 10, sc, NULL, th, fl), BNN_ERR_NULL);
    CHECK_ST(bnn_fold_threshold(4, 10, sc, of, NULL, fl), BNN_ERR_NULL);
    FOLD_UNCHANGED();
    CHECK_ST(bnn_fold_threshold(4, 10, sc, of, th, NULL), BNN_ERR_NULL);
    FOLD_UNCHANGED();
    CHECK_ST(bnn_fold_threshold(-1, 10, sc, of, th, fl), BNN_ERR_SHAPE);
    CHECK_ST(bnn_fold_threshold(4, -1, sc, of, th, fl), BNN_ERR_SHAPE);
    CHECK_ST(bnn_fold_threshold(INT64_MIN, INT64_MIN, sc, of, th, fl),
             BNN_ERR_SHAPE);
    FOLD_UNCHANGED();
    CHECK_ST(bnn_fold_threshold(4, INT32_MAX, sc, of, th, fl), BNN_ERR_OVERFLOW);
    CHECK_ST(bnn_fold_threshold(4, INT64_MAX, sc, of, th, fl), BNN_ERR_OVERFLOW);
    FOLD_UNCHANGED();
    /* A non-finite scale or offset in any channel (even the last one):
     * nothing at all is written. */
    for (i = 0; i < 4; i++) {
        int ch;
        for (ch = 0; ch < 4; ch++) {
            double s2[4], o2[4];
            memcpy(s2, sc, sizeof s2);
            memcpy(o2, of, sizeof o2);
            s2[ch] = bad[i];
            bt_ctx("fold: scale[%d] = %g", ch, bad[i]);
            CHECK_ST(bnn_fold_threshold(4, 10, s2, o2, th, fl), BNN_ERR_INVALID);
            FOLD_UNCHANGED();
            memcpy(s2, sc, sizeof s2);
            o2[ch] = bad[i];
            bt_ctx("fold: offset[%d] = %g", ch, bad[i]);
            CHECK_ST(bnn_fold_threshold(4, 10, s2, o2, th, fl), BNN_ERR_INVALID);
            FOLD_UNCHANGED();
        }
    }
    /* Zero channels: valid, nothing written (NULL allowed). */
    bt_ctx("fold zero channels");
    CHECK_ST(bnn_fold_threshold(0, 10, sc, of, th, fl), BNN_OK);
    CHECK_ST(bnn_fold_threshold(0, 10, NULL, NULL, NULL, NULL), BNN_OK);
    FOLD_UNCHANGED();
    /* Sanity: the same arrays are accepted. */
    CHECK_ST(bnn_fold_threshold(4, 10, sc, of, th, fl), BNN_OK);
    CHECK_EQ(fl[0], 0);
    CHECK_EQ(fl[1], 1);
#undef FOLD_UNCHANGED
    return 0;
}

/* Fold, then BITS GEMM: output bit == (scale*dot + offset < 0) in double,
 * with offsets chosen to land exactly on actual dot values. */
static int fold_gemm_body(bnn_isa isa)
{
    static const struct { int64_t n, m, k; } sh[] = {
        {5, 130, 1000}, {3, 65, 63}, {7, 64, 64}, {2, 1, 1}, {4, 200, 129},
    };
    size_t s;
    for (s = 0; s < sizeof sh / sizeof sh[0]; s++) {
        problem p;
        bt_rng r = bt_stream(7000 + s);
        int64_t m = sh[s].m, j, ldc = bt_words(m) + 1;
        double *sc = (double *)bt_alloc((size_t)m * sizeof(double));
        double *of = (double *)bt_alloc((size_t)m * sizeof(double));
        int32_t *th = (int32_t *)bt_alloc((size_t)m * sizeof(int32_t));
        uint8_t *fl = (uint8_t *)bt_alloc((size_t)m);
        uint64_t *c;
        size_t bytes = 0;
        bnn_epilogue e;

        prob_make(&p, sh[s].n, m, sh[s].k, 1, 0, 1, 7100 + s);
        make_affine(&r, p.k, sc, of, m);
        /* Put many boundaries exactly on a dot that occurs. */
        for (j = 0; j < m; j++) {
            if (bt_below(&r, 2)) {
                int64_t d = p.dot[(int64_t)bt_below(&r, (uint64_t)p.n) * m + j];
                if (bt_below(&r, 8) == 0) sc[j] = 0.0;
                else if (bt_below(&r, 2)) sc[j] = -sc[j];
                if (!isfinite(sc[j]) || fabs(sc[j]) > 1e300) sc[j] = 0.37;
                of[j] = -(sc[j] * (double)d);
            }
        }
        bt_ctx("fold+BITS isa=%s n=%" PRId64 " m=%" PRId64 " k=%" PRId64,
               bt_isa_str(isa), p.n, m, p.k);
        CHECK_ST(bnn_fold_threshold(m, p.k, sc, of, th, fl), BNN_OK);
        memset(&e, 0, sizeof e);
        e.kind = BNN_EPI_BITS;
        e.thresh = th;
        e.flip = fl;
        c = (uint64_t *)out_alloc(&p, BNN_EPI_BITS, ldc, &bytes);
        CHECK_ST(bnn_gemm(p.n, m, p.k, p.a, p.lda, p.w, p.ldw, &e, c, ldc), BNN_OK);
        RUN(check_out(&p, &e, c, ldc));
        RUN(bt_check_fold_bits(p.n, m, p.dot, sc, of, th, fl, c, ldc, NULL, NULL));
        free(c);
        free(sc);
        free(of);
        free(th);
        free(fl);
        prob_free(&p);
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Errors and zero sizes                                                */
/* ------------------------------------------------------------------ */

static int errors_body(bnn_isa isa)
{
    /* A valid problem: n=2, m=3, k=70 (2 words). */
    problem p;
    int32_t c[2 * 4];
    uint64_t cb[2 * 2];
    int32_t th[3] = {0, 1, -1};
    bnn_epilogue e, eb;
    const int64_t big = (int64_t)1 << 40;
    int x = 0, i;

    prob_make(&p, 2, 3, 70, 0, 0, 0, 8000);
    memset(&e, 0, sizeof e);
    e.kind = BNN_EPI_INT32;
    memset(&eb, 0, sizeof eb);
    eb.kind = BNN_EPI_BITS;
    eb.thresh = th;
    for (i = 0; i < 8; i++) c[i] = CANARY_I32;
    for (i = 0; i < 4; i++) cb[i] = CANARY_W;

#define C_UNCHANGED()                                                         \
    do {                                                                      \
        int q_;                                                               \
        for (q_ = 0; q_ < 8; q_++) CHECK_MSG(c[q_] == CANARY_I32, "c[%d] written", q_); \
        for (q_ = 0; q_ < 4; q_++) CHECK_MSG(cb[q_] == CANARY_W, "cb[%d] written", q_); \
    } while (0)
#define G(n, m, k, a, lda, w, ldw, ep, cc, ldc) \
    bnn_gemm((n), (m), (k), (a), (lda), (w), (ldw), (ep), (cc), (ldc))

    bt_ctx("gemm errors isa=%s", bt_isa_str(isa));
    /* NULL */
    CHECK_ST(G(2, 3, 70, NULL, 2, p.w, 2, &e, c, 4), BNN_ERR_NULL);
    CHECK_ST(G(2, 3, 70, p.a, 2, NULL, 2, &e, c, 4), BNN_ERR_NULL);
    CHECK_ST(G(2, 3, 70, p.a, 2, p.w, 2, &e, NULL, 4), BNN_ERR_NULL);
    CHECK_ST(G(2, 3, 70, NULL, 2, NULL, 2, NULL, NULL, 4), BNN_ERR_NULL);
    {
        bnn_epilogue e2 = eb;
        e2.thresh = NULL;
        CHECK_ST(G(2, 3, 70, p.a, 2, p.w, 2, &e2, cb, 2), BNN_ERR_NULL);
        e2.flip = (const uint8_t *)"\1\1\1";
        CHECK_ST(G(2, 3, 70, p.a, 2, p.w, 2, &e2, cb, 2), BNN_ERR_NULL);
    }
    C_UNCHANGED();
    /* SHAPE */
    CHECK_ST(G(-1, 3, 70, p.a, 2, p.w, 2, &e, c, 4), BNN_ERR_SHAPE);
    CHECK_ST(G(2, -1, 70, p.a, 2, p.w, 2, &e, c, 4), BNN_ERR_SHAPE);
    CHECK_ST(G(2, 3, -1, p.a, 2, p.w, 2, &e, c, 4), BNN_ERR_SHAPE);
    CHECK_ST(G(INT64_MIN, 3, 70, p.a, 2, p.w, 2, &e, c, 4), BNN_ERR_SHAPE);
    CHECK_ST(G(-1, 3, 70, p.a, 2, p.w, 2, &eb, cb, 2), BNN_ERR_SHAPE);
    C_UNCHANGED();
    /* k > INT32_MAX (strides otherwise consistent with k) */
    {
        int64_t k = (int64_t)INT32_MAX + 1, kw = bt_words(k);
        CHECK_ST(G(2, 3, k, p.a, kw, p.w, kw, &e, c, 4), BNN_ERR_OVERFLOW);
        CHECK_ST(G(2, 3, INT64_MAX, p.a, bt_words(INT64_MAX), p.w,
                   bt_words(INT64_MAX), &e, c, 4), BNN_ERR_OVERFLOW);
        CHECK_ST(G(2, 3, k, p.a, kw, p.w, kw, &eb, cb, 2), BNN_ERR_OVERFLOW);
    }
    C_UNCHANGED();
    /* STRIDE */
    CHECK_ST(G(2, 3, 70, p.a, 1, p.w, 2, &e, c, 4), BNN_ERR_STRIDE);
    CHECK_ST(G(2, 3, 70, p.a, 2, p.w, 1, &e, c, 4), BNN_ERR_STRIDE);
    CHECK_ST(G(2, 3, 70, p.a, 2, p.w, 2, &e, c, 2), BNN_ERR_STRIDE);
    CHECK_ST(G(2, 3, 70, p.a, -2, p.w, 2, &e, c, 4), BNN_ERR_STRIDE);
    CHECK_ST(G(2, 3, 70, p.a, 2, p.w, -2, &e, c, 4), BNN_ERR_STRIDE);
    CHECK_ST(G(2, 3, 70, p.a, 2, p.w, 2, &e, c, -4), BNN_ERR_STRIDE);
    CHECK_ST(G(2, 3, 70, p.a, 0, p.w, 0, &e, c, 0), BNN_ERR_STRIDE);
    CHECK_ST(G(2, 65, 70, p.a, 2, p.w, 2, &eb, cb, 1), BNN_ERR_STRIDE);
    CHECK_ST(G(2, 3, 70, p.a, 2, p.w, 2, &eb, cb, 0), BNN_ERR_STRIDE);
    {
        bnn_epilogue ef;
        memset(&ef, 0, sizeof ef);
        ef.kind = BNN_EPI_FLOAT;
        CHECK_ST(G(2, 3, 70, p.a, 2, p.w, 2, &ef, c, 2), BNN_ERR_STRIDE);
    }
    C_UNCHANGED();
    /* Extents that overflow (int64, then size_t bytes). */
    CHECK_ST(G(big, 3, 70, p.a, big, p.w, 2, &e, c, 4), BNN_ERR_OVERFLOW);
    CHECK_ST(G(2, big, 70, p.a, 2, p.w, big, &e, c, big), BNN_ERR_OVERFLOW);
    CHECK_ST(G(big, 3, 70, p.a, 2, p.w, 2, &e, c, big), BNN_ERR_OVERFLOW);
    CHECK_ST(G(big, 3, 70, p.a, (int64_t)1 << 23, p.w, 2, &e, c, 4),
             BNN_ERR_OVERFLOW);
    CHECK_ST(G(2, 3, 70, p.a, INT64_MAX, p.w, 2, &e, c, 4), BNN_ERR_OVERFLOW);
    CHECK_ST(G(2, 3, 70, p.a, 2, p.w, INT64_MAX, &e, c, 4), BNN_ERR_OVERFLOW);
    CHECK_ST(G(2, 3, 70, p.a, 2, p.w, 2, &e, c, INT64_MAX), BNN_ERR_OVERFLOW);
    CHECK_ST(G(big, 3, 70, p.a, 2, p.w, 2, &eb, cb, (int64_t)1 << 30),
             BNN_ERR_OVERFLOW);
    C_UNCHANGED();
    /* INVALID: bad kind, reserved, pad_. */
    {
        static const int32_t kinds[] = {3, 4, -1, 100, INT32_MIN, INT32_MAX};
        size_t q;
        for (q = 0; q < sizeof kinds / sizeof kinds[0]; q++) {
            bnn_epilogue e2;
            memset(&e2, 0, sizeof e2);
            e2.kind = kinds[q];
            bt_ctx("gemm isa=%s kind=%d", bt_isa_str(isa), (int)kinds[q]);
            CHECK_ST(G(2, 3, 70, p.a, 2, p.w, 2, &e2, c, 4), BNN_ERR_INVALID);
        }
        bt_ctx("gemm errors isa=%s reserved/pad_", bt_isa_str(isa));
        for (q = 0; q < 4; q++) {
            bnn_epilogue e2 = (q & 1) ? eb : e;
            e2.reserved = q < 2 ? 1 : -1;
            CHECK_ST(G(2, 3, 70, p.a, 2, p.w, 2, &e2, (q & 1) ? (void *)cb : (void *)c,
                       (q & 1) ? 2 : 4), BNN_ERR_INVALID);
        }
        for (q = 0; q < 3; q++) {
            bnn_epilogue e2 = e;
            e2.pad_[q] = &x;
            CHECK_ST(G(2, 3, 70, p.a, 2, p.w, 2, &e2, c, 4), BNN_ERR_INVALID);
        }
    }
    C_UNCHANGED();

    /* Sanity: the same arguments, corrected, succeed and match. */
    bt_ctx("gemm errors isa=%s sanity", bt_isa_str(isa));
    CHECK_ST(G(2, 3, 70, p.a, 2, p.w, 2, &e, c, 4), BNN_OK);
    for (i = 0; i < 2; i++) {
        int j;
        for (j = 0; j < 3; j++) CHECK_EQ(c[i * 4 + j], p.dot[i * 3 + j]);
    }
    CHECK_EQ(c[3], CANARY_I32);
    CHECK_EQ(c[7], CANARY_I32);
#undef C_UNCHANGED
#undef G
    prob_free(&p);
    return 0;
}

static int zero_body(bnn_isa isa)
{
    int32_t c[3 * 5];
    float cf[3 * 5];
    uint64_t cb[3 * 2];
    uint64_t a[3], w[5];
    float sc[5] = {2.0f, -1.0f, 0.5f, -0.0f, 3.0f};
    float of[5] = {1.0f, -2.0f, -0.0f, 0.0f, -7.5f};
    int32_t th[5] = {0, 1, -1, 0, 5};
    uint8_t fl[5] = {0, 0, 1, 1, 7};
    bnn_epilogue ei, ef, eb;
    int i, j, kind;

    memset(&ei, 0, sizeof ei);
    ei.kind = BNN_EPI_INT32;
    memset(&ef, 0, sizeof ef);
    ef.kind = BNN_EPI_FLOAT;
    ef.scale = sc;
    ef.offset = of;
    memset(&eb, 0, sizeof eb);
    eb.kind = BNN_EPI_BITS;
    eb.thresh = th;
    eb.flip = fl;
    for (i = 0; i < 3; i++) a[i] = 0;
    for (i = 0; i < 5; i++) w[i] = 0;
    for (i = 0; i < 15; i++) c[i] = CANARY_I32;
    bt_fill_fbits(cf, 15, CANARY_F32);
    bt_fill_u64(cb, 6, CANARY_W);

    /* n == 0 or m == 0: OK, nothing written, NULLs allowed. */
    for (kind = 0; kind < 3; kind++) {
        const bnn_epilogue *e = kind == 0 ? &ei : kind == 1 ? &ef : &eb;
        void *out = kind == 0 ? (void *)c : kind == 1 ? (void *)cf : (void *)cb;
        int64_t ldc = kind == 2 ? 1 : 5;
        bt_ctx("gemm zero n/m isa=%s kind=%d", bt_isa_str(isa), kind);
        CHECK_ST(bnn_gemm(0, 5, 70, a, 2, w, 2, e, out, ldc), BNN_OK);
        CHECK_ST(bnn_gemm(3, 0, 70, a, 2, w, 2, e, out, ldc), BNN_OK);
        CHECK_ST(bnn_gemm(0, 0, 0, a, 0, w, 0, e, out, 0), BNN_OK);
        CHECK_ST(bnn_gemm(0, 5, 70, NULL, 2, NULL, 2, e, NULL, ldc), BNN_OK);
        CHECK_ST(bnn_gemm(3, 0, 70, NULL, 2, NULL, 2, e, NULL, ldc), BNN_OK);
        CHECK_ST(bnn_gemm(0, 0, 0, NULL, 0, NULL, 0, e, NULL, 0), BNN_OK);
    }
    for (i = 0; i < 15; i++) {
        CHECK_EQ(c[i], CANARY_I32);
        CHECK_EQ(bt_f2u(cf[i]), CANARY_F32);
    }
    for (i = 0; i < 6; i++) CHECK(cb[i] == CANARY_W);

    /* k == 0: every dot is 0.  Strides of 0 words are enough; A and W
     * are never read, so NULL is allowed as well. */
    {
        int nullab;
        for (nullab = 0; nullab < 2; nullab++) {
            const uint64_t *pa = nullab ? NULL : a, *pw = nullab ? NULL : w;
            bt_ctx("gemm k=0 isa=%s (a, w %s)", bt_isa_str(isa),
                   nullab ? "NULL" : "non-NULL");
            for (i = 0; i < 15; i++) c[i] = CANARY_I32;
            bt_fill_fbits(cf, 15, CANARY_F32);
            bt_fill_u64(cb, 6, CANARY_W);
            CHECK_ST(bnn_gemm(3, 4, 0, pa, 0, pw, 0, &ei, c, 5), BNN_OK);
            CHECK_ST(bnn_gemm(3, 4, 0, pa, 0, pw, 0, &ef, cf, 5), BNN_OK);
            CHECK_ST(bnn_gemm(3, 5, 0, pa, 0, pw, 0, &eb, cb, 2), BNN_OK);
            for (i = 0; i < 3; i++) {
                for (j = 0; j < 5; j++) {
                    int last_col = j == 4;
                    uint32_t wantf = bt_f2u(fmaf(0.0f, sc[j], of[j]));
                    int wantb = fl[j] ? 0 > th[j] : 0 < th[j];
                    if (last_col) {
                        CHECK_EQ(c[i * 5 + j], CANARY_I32);
                        CHECK_EQ(bt_f2u(cf[i * 5 + j]), CANARY_F32);
                    } else {
                        CHECK_EQ(c[i * 5 + j], 0);
                        CHECK_MSG(bt_f2u(cf[i * 5 + j]) == wantf,
                                  "[%d][%d] = 0x%08x want 0x%08x", i, j,
                                  (unsigned)bt_f2u(cf[i * 5 + j]), (unsigned)wantf);
                    }
                    CHECK_EQ(bt_getbit(cb + i * 2, j), wantb);
                }
                for (j = 5; j < 64; j++) CHECK_EQ(bt_getbit(cb + i * 2, j), 0);
                CHECK(cb[i * 2 + 1] == CANARY_W);
            }
        }
        /* Larger strides with NULL operands are also fine for k == 0. */
        bt_ctx("gemm k=0 isa=%s NULL a/w with lda=ldw=1", bt_isa_str(isa));
        for (i = 0; i < 15; i++) c[i] = CANARY_I32;
        CHECK_ST(bnn_gemm(3, 4, 0, NULL, 1, NULL, 1, &ei, c, 5), BNN_OK);
        for (i = 0; i < 3; i++)
            for (j = 0; j < 4; j++) CHECK_EQ(c[i * 5 + j], 0);
    }
    return 0;
}

int main(int argc, char **argv)
{
    bt_init(argc, argv, "test_gemm");
    if (bnn_get_num_threads() != 1) {
        fprintf(stderr, "test_gemm: expected 1 thread by default\n");
        return 1;
    }
    RUN(for_each_isa(errors_body));
    RUN(for_each_isa(zero_body));
    RUN(test_fold_errors());
    RUN(test_fold_exact());
    RUN(for_each_isa(fold_gemm_body));
    RUN(for_each_isa(sweep_body));
    RUN(for_each_isa(big_body));
    RUN(test_threads());
    printf("test_gemm: all passed\n");
    return 0;
}
