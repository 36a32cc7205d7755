/*
 * test_u8.c -- the 8-bit first layer: bnn_gemm_u8 and bnn_conv2d_u8 (and
 * their workspace queries).
 *
 *  - The oracle is the plain integer formula s = sum (x - 128) * w_pm1
 *    (conv: over the taps, padded taps x = pad_byte), nested loops in
 *    int64 on bytes with the extremes 0, 127, 128, 255 mixed in.
 *  - Every method (BITPLANE, DIRECT, MASKED) and AUTO, on every ISA, equal the
 *    oracle and the reference ISA byte for byte, for every epilogue:
 *    INT32 (and epi == NULL); FLOAT == fmaf((float)s, scale, offset);
 *    BITS == flip ? s > t : s < t with pad bits 0; BITS with thresholds
 *    from bnn_fold_threshold(k = 128 * K) == scale*s + offset < 0.
 *  - gemm_u8: K in {1, 27, 63, 64, 65, 784, ...}, padded strides (stride
 *    gaps of the output are not written).  conv2d_u8: C in {1, 3, 4} (and
 *    a 65-channel case), kernels 1x1..5x5, strides 1-3, dilations 1-2,
 *    padding past the kernel's reach, pad_byte 128 / 0 / 255 / random;
 *    pad_value does not change the result (but must be 0 or 1).
 *  - Workspace: exactly the 1-thread size works at any thread count;
 *    results are identical for 1, 2, 3 threads.
 *  - Errors write nothing.
 */
#include "oracle.h"

#include <limits.h>

#define CANARY_I32 BT_CANARY_I32
#define CANARY_F32 BT_CANARY_F32
#define CANARY_W BT_CANARY_W

static const bnn_u8_method methods[] = {BNN_U8_BITPLANE, BNN_U8_DIRECT, BNN_U8_MASKED,
                                        BNN_U8_AUTO};
#define N_METHODS ((int)(sizeof methods / sizeof methods[0]))
static const char *const method_names[N_METHODS] = {"bitplane", "direct", "masked", "auto"};
/* the first value past the last method: refused */
#define BAD_METHOD ((bnn_u8_method)(BNN_U8_MASKED + 1))

/* ------------------------------------------------------------------ */
/* Data                                                                 */
/* ------------------------------------------------------------------ */

static uint8_t rand_byte(bt_rng *r)
{
    static const uint8_t special[] = {0, 0, 1, 127, 128, 128, 129, 254, 255, 255};
    if (bt_below(r, 4) == 0) return special[bt_below(r, sizeof special)];
    return (uint8_t)bt_below(r, 256);
}

/* A row of k bytes: random, or constant 0 / 255 / 128 (extreme sums). */
static void fill_bytes(bt_rng *r, uint8_t *row, int64_t k)
{
    int64_t j;
    uint64_t u = bt_below(r, 12);
    if (u == 0) memset(row, 0, (size_t)k);
    else if (u == 1) memset(row, 255, (size_t)k);
    else if (u == 2) memset(row, 128, (size_t)k);
    else for (j = 0; j < k; j++) row[j] = rand_byte(r);
}

/* A +-1 row: random or constant. */
static void fill_signs(bt_rng *r, int8_t *row, int64_t k)
{
    int64_t j;
    uint64_t u = bt_below(r, 10);
    for (j = 0; j < k; j++)
        row[j] = (int8_t)(u == 0 ? -1 : u == 1 ? 1 : (bt_below(r, 2) ? -1 : 1));
}

/* ------------------------------------------------------------------ */
/* Epilogue data                                                        */
/* ------------------------------------------------------------------ */

typedef bt_epi_data epi_data; /* oracle.h, with bt_epi_for, bt_epi_free */

/* Scales and offsets; the range of s is [-128 k, 128 k]. */
static void epi_make(epi_data *e, int64_t m, int64_t k, uint64_t tag)
{
    bt_rng r = bt_stream(tag);
    int64_t j, lim = 128 * k;
    bt_epi_alloc(e, m);
    for (j = 0; j < m; j++) {
        uint64_t u = bt_below(&r, 20);
        switch (bt_below(&r, 8)) {
        case 0: e->scale[j] = 0.0f; break;
        case 1: e->scale[j] = -0.0f; break;
        case 2: e->scale[j] = 1.0f / 128.0f; break;
        case 3: e->scale[j] = 1e35f * (float)(bt_unit(&r) - 0.5); break;
        case 4: e->scale[j] = 0.1f; break;
        default: e->scale[j] = (float)(bt_unit(&r) * 4.0 - 2.0); break;
        }
        switch (bt_below(&r, 6)) {
        case 0: e->offset[j] = 0.0f; break;
        case 1: e->offset[j] = -0.0f; break;
        case 2: e->offset[j] = (float)bt_range(&r, -lim, lim); break;
        case 3: e->offset[j] = -0.3f; break;
        default: e->offset[j] = (float)((bt_unit(&r) - 0.5) * 2.0 * (double)(lim + 1)); break;
        }
        e->thresh[j] = u == 0   ? INT32_MIN
                     : u == 1   ? INT32_MAX
                     : u == 2   ? (int32_t)lim + 1
                     : u == 3   ? -(int32_t)lim - 1
                     : u < 8    ? (int32_t)bt_range(&r, -300, 300)
                                : (int32_t)bt_range(&r, -lim - 2, lim + 2);
        e->flip[j] = bt_rand_flip(&r);
    }
}

/* Check rows x m outputs (row stride ldc) against s [rows][m]; gaps keep
 * their canary. */
static int check_out(int64_t rows, int64_t m, const int32_t *s, const bnn_epilogue *e,
                     const void *c, int64_t ldc)
{
    return bt_check_epi(rows, m, s, e, c, ldc, NULL, NULL);
}

#define out_alloc bt_out_alloc

/* Folded thresholds: batch-norm-like (scale, offset), mode 0 gamma > 0,
 * 1 gamma < 0, 2 mixed; half the boundaries exactly on occurring s. */
static void fold_params(bt_rng *r, int64_t m, int64_t k, const int32_t *s, int64_t rows,
                        int mode, double *sc, double *of)
{
    /* var in [0, 1000), mean in 32 k * [-1, 1) */
    bt_fold_params(r, m, 1000.0, 64.0 * (double)k, s, rows, mode, sc, of);
}

/* ------------------------------------------------------------------ */
/* bnn_gemm_u8                                                          */
/* ------------------------------------------------------------------ */

typedef struct gprob {
    int64_t n, m, k, kw, ldx, ldw;
    uint8_t *x;
    uint64_t *w;
    int32_t *s;
} gprob;

static void gprob_make(gprob *g, int64_t n, int64_t m, int64_t k, int64_t ex, int64_t ew,
                       uint64_t tag)
{
    bt_rng r = bt_stream(tag);
    int64_t i;
    int8_t *ws = (int8_t *)bt_alloc((size_t)(m * k));
    size_t nx, nw;
    memset(g, 0, sizeof *g);
    g->n = n; g->m = m; g->k = k; g->kw = bt_words(k);
    g->ldx = k + ex;
    g->ldw = g->kw + ew;
    nx = bt_extent(n, g->ldx, k);
    nw = bt_extent(m, g->ldw, g->kw);
    g->x = (uint8_t *)bt_alloc(nx);
    for (i = 0; i < (int64_t)nx; i++) g->x[i] = (uint8_t)bt_next(&r); /* gaps: garbage */
    for (i = 0; i < n; i++) fill_bytes(&r, g->x + i * g->ldx, k);
    g->w = (uint64_t *)bt_alloc(nw * 8);
    bt_rand_words(&r, g->w, nw);
    for (i = 0; i < m; i++) {
        fill_signs(&r, ws + i * k, k);
        bt_pack_row_i8(ws + i * k, k, g->w + i * g->ldw);
    }
    g->s = (int32_t *)bt_alloc((size_t)(n * m) * 4);
    bt_gemm_u8(n, m, k, g->x, g->ldx, ws, g->s);
    free(ws);
}

static void gprob_free(gprob *g)
{
    free(g->x);
    free(g->w);
    free(g->s);
}

static int run_gemm_u8(const gprob *g, const bnn_epilogue *e, int64_t ldc,
                       bnn_u8_method meth, void **out, size_t *bytes)
{
    size_t wsb = 0;
    void *ws;
    CHECK_ST(bnn_gemm_u8_workspace_size(g->m, g->k, 1, &wsb), BNN_OK);
    ws = bt_alloc(wsb);
    *out = out_alloc(g->n, g->m, e->kind, ldc, bytes);
    CHECK_ST(bnn_gemm_u8(g->n, g->m, g->k, g->x, g->ldx, g->w, g->ldw, e, *out, ldc, meth,
                         ws, wsb), BNN_OK);
    free(ws);
    return 0;
}

static int gemm_compare(const gprob *g, bnn_isa isa, const bnn_epilogue *e, int64_t ldc,
                        bnn_u8_method meth)
{
    void *c = NULL, *c0 = NULL;
    size_t bytes = 0, bytes0 = 0;
    RUN(run_gemm_u8(g, e, ldc, meth, &c, &bytes));
    RUN(check_out(g->n, g->m, g->s, e, c, ldc));
    if (isa != BNN_ISA_REF) {
        CHECK_ST(bnn_set_isa(BNN_ISA_REF), BNN_OK);
        RUN(run_gemm_u8(g, e, ldc, meth, &c0, &bytes0));
        CHECK_ST(bnn_set_isa(isa), BNN_OK);
        CHECK(bytes == bytes0);
        CHECK_MSG(memcmp(c, c0, bytes) == 0, "%s differs from ref", bt_isa_str(isa));
        free(c0);
    }
    free(c);
    return 0;
}

static int gemm_problem(const gprob *g, bnn_isa isa, uint64_t tag, int64_t ec)
{
    epi_data d;
    int mi, v, mode = (int)(tag % 3);
    epi_make(&d, g->m, g->k, tag);
    for (mi = 0; mi < N_METHODS; mi++) {
        bnn_u8_method meth = methods[mi];
        bnn_epilogue e;
        int64_t ldc;
        bt_ctx("gemm_u8 isa=%s method=%s INT32 n=%" PRId64 " m=%" PRId64 " k=%" PRId64
               " ldx=%" PRId64 " ldw=%" PRId64 " ldc=%" PRId64, bt_isa_str(isa),
               method_names[mi], g->n, g->m, g->k, g->ldx, g->ldw, g->m + ec);
        e = bt_epi_for(BNN_EPI_INT32, 0, &d);
        RUN(gemm_compare(g, isa, &e, g->m + ec, meth));
        {   /* epi == NULL */
            void *c;
            size_t bytes, wsb = 0;
            void *ws;
            CHECK_ST(bnn_gemm_u8_workspace_size(g->m, g->k, 1, &wsb), BNN_OK);
            ws = bt_alloc(wsb);
            c = out_alloc(g->n, g->m, BNN_EPI_INT32, g->m + ec, &bytes);
            CHECK_ST(bnn_gemm_u8(g->n, g->m, g->k, g->x, g->ldx, g->w, g->ldw, NULL, c,
                                 g->m + ec, meth, ws, wsb), BNN_OK);
            RUN(check_out(g->n, g->m, g->s, &e, c, g->m + ec));
            free(c);
            free(ws);
        }
        for (v = 0; v < 4; v += 3) {
            bt_ctx("gemm_u8 isa=%s method=%s FLOAT%s n=%" PRId64 " m=%" PRId64 " k=%" PRId64,
                   bt_isa_str(isa), method_names[mi], v ? "(NULL, NULL)" : "", g->n, g->m,
                   g->k);
            e = bt_epi_for(BNN_EPI_FLOAT, v, &d);
            RUN(gemm_compare(g, isa, &e, g->m + ec, meth));
        }
        for (v = 0; v < 2; v++) {
            ldc = bt_words(g->m) + ec;
            bt_ctx("gemm_u8 isa=%s method=%s BITS(flip%s) n=%" PRId64 " m=%" PRId64
                   " k=%" PRId64, bt_isa_str(isa), method_names[mi], v ? "=NULL" : "",
                   g->n, g->m, g->k);
            e = bt_epi_for(BNN_EPI_BITS, v, &d);
            RUN(gemm_compare(g, isa, &e, ldc, meth));
        }
        {   /* folded thresholds */
            bt_rng r = bt_stream(tag + 99);
            double *sc = (double *)bt_alloc((size_t)g->m * sizeof(double));
            double *of = (double *)bt_alloc((size_t)g->m * sizeof(double));
            int32_t *th = (int32_t *)bt_alloc((size_t)g->m * 4);
            uint8_t *fl = (uint8_t *)bt_alloc((size_t)g->m);
            uint64_t *c;
            size_t bytes;
            ldc = bt_words(g->m) + ec;
            fold_params(&r, g->m, g->k, g->s, g->n, mode, sc, of);
            bt_ctx("gemm_u8 isa=%s method=%s BITS(folded, mode %d) n=%" PRId64 " m=%" PRId64
                   " k=%" PRId64, bt_isa_str(isa), method_names[mi], mode, g->n, g->m, g->k);
            CHECK_ST(bnn_fold_threshold(g->m, 128 * g->k, sc, of, th, fl), BNN_OK);
            memset(&e, 0, sizeof e);
            e.kind = BNN_EPI_BITS;
            e.thresh = th;
            e.flip = fl;
            RUN(gemm_compare(g, isa, &e, ldc, meth));
            RUN(run_gemm_u8(g, &e, ldc, meth, (void **)&c, &bytes));
            RUN(bt_check_fold_bits(g->n, g->m, g->s, sc, of, th, fl, c, ldc, NULL, NULL));
            free(c);
            free(sc);
            free(of);
            free(th);
            free(fl);
        }
    }
    bt_epi_free(&d);
    return 0;
}

static int gemm_body(bnn_isa isa)
{
    static const int64_t ks[] = {1, 27, 63, 64, 65, 784, 127, 129, 3 * 3 * 3, 4 * 5 * 5};
    static const int64_t ns[] = {1, 3, 7};
    static const int64_t ms[] = {1, 5, 70, 130};
    size_t ki, ni, mi;
    uint64_t idx = 0;
    for (ki = 0; ki < sizeof ks / sizeof ks[0]; ki++)
        for (ni = 0; ni < 3; ni++)
            for (mi = 0; mi < 4; mi++, idx++) {
                gprob g;
                bt_rng r = bt_stream(idx * 5 + 1);
                int tight = idx % 3 == 0;
                int64_t ex = tight ? 0 : bt_range(&r, 1, 9);
                int64_t ew = tight ? 0 : bt_range(&r, 1, 2);
                int64_t ec = tight ? 0 : bt_range(&r, 1, 2);
                /* keep the sweep light: only every other big one */
                if (ks[ki] >= 784 && ns[ni] * ms[mi] > 300 && idx % 2) continue;
                gprob_make(&g, ns[ni], ms[mi], ks[ki], ex, ew, idx * 5 + 2);
                RUN(gemm_problem(&g, isa, idx * 5 + 3, ec));
                gprob_free(&g);
            }
    /* Vector-width edges: K around multiples of 16/32 bytes, M around
     * 16/32 outputs. */
    {
        static const int64_t ks2[] = {2, 15, 16, 17, 31, 32, 33, 95, 96, 97, 255, 256};
        static const int64_t ms2[] = {15, 16, 17, 31, 32, 33};
        for (ki = 0; ki < sizeof ks2 / sizeof ks2[0]; ki++)
            for (mi = 0; mi < sizeof ms2 / sizeof ms2[0]; mi++, idx++) {
                gprob g;
                int64_t n = (int64_t)(idx % 2 ? 5 : 2);
                if ((ki + mi) % 2) continue; /* half of the grid */
                gprob_make(&g, n, ms2[mi], ks2[ki], (int64_t)(idx % 3), 0, idx * 5 + 2);
                RUN(gemm_problem(&g, isa, idx * 5 + 3, (int64_t)(idx % 2)));
                gprob_free(&g);
            }
    }
    /* Longer rows and more columns: several blocks, K past 8-bit/16-bit
     * accumulator chunk sizes. */
    {
        static const struct { int64_t n, m, k; } big[] = {
            {9, 300, 1000}, {4, 65, 4097}, {33, 130, 257}, {2, 3, 20000}, {17, 1100, 27},
        };
        size_t s;
        for (s = 0; s < sizeof big / sizeof big[0]; s++) {
            gprob g;
            gprob_make(&g, big[s].n, big[s].m, big[s].k, (int64_t)s % 3, (int64_t)s % 2,
                       7000 + s);
            RUN(gemm_problem(&g, isa, 7100 + s, (int64_t)(s % 2)));
            gprob_free(&g);
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* bnn_conv2d_u8                                                        */
/* ------------------------------------------------------------------ */

typedef struct uconv {
    bnn_conv2d_params p;
    int64_t oh, ow, cw, kdot;
    uint8_t *x;
    uint64_t *w;
    int32_t *s;
    char desc[200];
} uconv;

static bnn_conv2d_params make_params(int64_t n, int64_t h, int64_t w, int64_t c, int64_t o,
                                     int64_t kh, int64_t kw, int sh, int sw, int dh, int dw,
                                     int pt, int pb, int pl, int pr, int pad_byte)
{
    bnn_conv2d_params p;
    memset(&p, 0, sizeof p);
    p.n = n; p.h = h; p.w = w; p.c = c; p.o = o; p.kh = kh; p.kw = kw;
    p.stride_h = sh; p.stride_w = sw; p.dilation_h = dh; p.dilation_w = dw;
    p.pad_top = pt; p.pad_bottom = pb; p.pad_left = pl; p.pad_right = pr;
    p.pad_byte = pad_byte;
    return p;
}

static void uconv_make(uconv *u, const bnn_conv2d_params *p, uint64_t tag)
{
    bt_rng r = bt_stream(tag);
    int64_t c = p->c, xr = p->n * p->h * p->w, wr = p->o * p->kh * p->kw, i;
    int8_t *ws = (int8_t *)bt_alloc((size_t)(wr * c));
    int32_t *xi;
    memset(u, 0, sizeof *u);
    u->p = *p;
    u->oh = (p->h + p->pad_top + p->pad_bottom - (int64_t)p->dilation_h * (p->kh - 1) - 1)
            / p->stride_h + 1;
    u->ow = (p->w + p->pad_left + p->pad_right - (int64_t)p->dilation_w * (p->kw - 1) - 1)
            / p->stride_w + 1;
    u->cw = bt_words(c);
    u->kdot = p->kh * p->kw * c;
    u->x = (uint8_t *)bt_alloc((size_t)(xr * c));
    for (i = 0; i < xr; i++) fill_bytes(&r, u->x + i * c, c);
    for (i = 0; i < wr; i++) fill_signs(&r, ws + i * c, c);
    u->w = (uint64_t *)bt_alloc((size_t)(wr * u->cw) * 8);
    for (i = 0; i < wr; i++) bt_pack_row_i8(ws + i * c, c, u->w + i * u->cw);
    u->s = (int32_t *)bt_alloc((size_t)(p->n * u->oh * u->ow * p->o) * 4);
    xi = (int32_t *)bt_alloc((size_t)(xr * c) * sizeof(int32_t));
    for (i = 0; i < xr * c; i++) xi[i] = u->x[i];
    bt_conv2d(p, xi, p->pad_byte, 128, ws, u->s);
    free(xi);
    free(ws);
    snprintf(u->desc, sizeof u->desc,
             "n=%" PRId64 " h=%" PRId64 " w=%" PRId64 " c=%" PRId64 " o=%" PRId64 " k=%"
             PRId64 "x%" PRId64 " stride=%d,%d dil=%d,%d pad(t,b,l,r)=%d,%d,%d,%d "
             "pad_byte=%d -> %" PRId64 "x%" PRId64, p->n, p->h, p->w, p->c, p->o, p->kh,
             p->kw, p->stride_h, p->stride_w, p->dilation_h, p->dilation_w, p->pad_top,
             p->pad_bottom, p->pad_left, p->pad_right, p->pad_byte, u->oh, u->ow);
}

static void uconv_free(uconv *u)
{
    free(u->x);
    free(u->w);
    free(u->s);
}

static int run_conv_u8(const uconv *u, const bnn_conv2d_params *p, const bnn_epilogue *e,
                       bnn_u8_method meth, int ws_threads, void **out, size_t *bytes)
{
    size_t wsb = 0;
    void *ws;
    int64_t rows = u->p.n * u->oh * u->ow;
    int64_t ldc = e->kind == BNN_EPI_BITS ? bt_words(u->p.o) : u->p.o;
    CHECK_ST(bnn_conv2d_u8_workspace_size(p, ws_threads, &wsb), BNN_OK);
    ws = bt_alloc(wsb);
    *out = out_alloc(rows, u->p.o, e->kind, ldc, bytes);
    CHECK_ST(bnn_conv2d_u8(p, u->x, u->w, e, *out, meth, ws, wsb), BNN_OK);
    free(ws);
    return 0;
}

static int conv_compare(const uconv *u, bnn_isa isa, const bnn_epilogue *e,
                        bnn_u8_method meth)
{
    void *c = NULL, *c0 = NULL;
    size_t bytes = 0, bytes0 = 0;
    int64_t rows = u->p.n * u->oh * u->ow;
    int64_t ldc = e->kind == BNN_EPI_BITS ? bt_words(u->p.o) : u->p.o;
    RUN(run_conv_u8(u, &u->p, e, meth, 1, &c, &bytes));
    RUN(check_out(rows, u->p.o, u->s, e, c, ldc));
    if (isa != BNN_ISA_REF) {
        CHECK_ST(bnn_set_isa(BNN_ISA_REF), BNN_OK);
        RUN(run_conv_u8(u, &u->p, e, meth, 1, &c0, &bytes0));
        CHECK_ST(bnn_set_isa(isa), BNN_OK);
        CHECK(bytes == bytes0);
        CHECK_MSG(memcmp(c, c0, bytes) == 0, "%s differs from ref", bt_isa_str(isa));
        free(c0);
    }
    free(c);
    return 0;
}

static int conv_case(const uconv *u, bnn_isa isa, uint64_t tag)
{
    epi_data d;
    int mi, v, mode = (int)(tag % 3);
    int64_t rows = u->p.n * u->oh * u->ow, m = u->p.o;
    epi_make(&d, m, u->kdot, tag);
    for (mi = 0; mi < N_METHODS; mi++) {
        bnn_u8_method meth = methods[mi];
        bnn_epilogue e;
        bt_ctx("conv2d_u8 isa=%s method=%s INT32 %s", bt_isa_str(isa), method_names[mi],
               u->desc);
        e = bt_epi_for(BNN_EPI_INT32, 0, &d);
        RUN(conv_compare(u, isa, &e, meth));
        {   /* pad_value (0 or 1) does not change the u8 convolution */
            bnn_conv2d_params p2 = u->p;
            void *c;
            size_t bytes;
            p2.pad_value = 1 - u->p.pad_value;
            bt_ctx("conv2d_u8 isa=%s method=%s pad_value=%d (ignored) %s", bt_isa_str(isa),
                   method_names[mi], p2.pad_value, u->desc);
            RUN(run_conv_u8(u, &p2, &e, meth, 1, &c, &bytes));
            RUN(check_out(rows, m, u->s, &e, c, m));
            free(c);
        }
        for (v = 0; v < 4; v += 3) {
            bt_ctx("conv2d_u8 isa=%s method=%s FLOAT%s %s", bt_isa_str(isa),
                   method_names[mi], v ? "(NULL, NULL)" : "", u->desc);
            e = bt_epi_for(BNN_EPI_FLOAT, v, &d);
            RUN(conv_compare(u, isa, &e, meth));
        }
        for (v = 0; v < 2; v++) {
            bt_ctx("conv2d_u8 isa=%s method=%s BITS(flip%s) %s", bt_isa_str(isa),
                   method_names[mi], v ? "=NULL" : "", u->desc);
            e = bt_epi_for(BNN_EPI_BITS, v, &d);
            RUN(conv_compare(u, isa, &e, meth));
        }
        {
            bt_rng r = bt_stream(tag + 99);
            double *sc = (double *)bt_alloc((size_t)m * sizeof(double));
            double *of = (double *)bt_alloc((size_t)m * sizeof(double));
            int32_t *th = (int32_t *)bt_alloc((size_t)m * 4);
            uint8_t *fl = (uint8_t *)bt_alloc((size_t)m);
            uint64_t *c;
            size_t bytes;
            int64_t mw = bt_words(m);
            fold_params(&r, m, u->kdot, u->s, rows, mode, sc, of);
            bt_ctx("conv2d_u8 isa=%s method=%s BITS(folded, mode %d) %s", bt_isa_str(isa),
                   method_names[mi], mode, u->desc);
            CHECK_ST(bnn_fold_threshold(m, 128 * u->kdot, sc, of, th, fl), BNN_OK);
            memset(&e, 0, sizeof e);
            e.kind = BNN_EPI_BITS;
            e.thresh = th;
            e.flip = fl;
            RUN(conv_compare(u, isa, &e, meth));
            RUN(run_conv_u8(u, &u->p, &e, meth, 1, (void **)&c, &bytes));
            RUN(bt_check_fold_bits(rows, m, u->s, sc, of, th, fl, c, mw, NULL, NULL));
            free(c);
            free(sc);
            free(of);
            free(th);
            free(fl);
        }
    }
    bt_epi_free(&d);
    return 0;
}

static bnn_conv2d_params rand_uconv(bt_rng *r)
{
    static const int64_t cs[] = {1, 3, 4};
    static const int64_t os[] = {1, 5, 70, 3, 64};
    static const int pbytes[] = {128, 128, 0, 255};
    bnn_conv2d_params p;
    int64_t need;
    memset(&p, 0, sizeof p);
    p.n = bt_range(r, 1, 3);
    p.c = cs[bt_below(r, 3)];
    p.o = os[bt_below(r, 5)];
    p.kh = bt_range(r, 1, 5);
    p.kw = bt_range(r, 1, 5);
    p.stride_h = (int32_t)bt_range(r, 1, 3);
    p.stride_w = (int32_t)bt_range(r, 1, 3);
    p.dilation_h = (int32_t)bt_range(r, 1, 2);
    p.dilation_w = (int32_t)bt_range(r, 1, 2);
    p.pad_top = (int32_t)(bt_below(r, 5) == 0 ? bt_range(r, 3, 5) : bt_range(r, 0, 2));
    p.pad_bottom = (int32_t)(bt_below(r, 5) == 0 ? bt_range(r, 3, 5) : bt_range(r, 0, 2));
    p.pad_left = (int32_t)(bt_below(r, 5) == 0 ? bt_range(r, 3, 5) : bt_range(r, 0, 2));
    p.pad_right = (int32_t)(bt_below(r, 5) == 0 ? bt_range(r, 3, 5) : bt_range(r, 0, 2));
    p.pad_byte = bt_below(r, 5) == 0 ? (int32_t)bt_below(r, 256) : pbytes[bt_below(r, 4)];
    p.pad_value = (int32_t)bt_below(r, 2);
    p.h = bt_below(r, 4) ? 2 * bt_range(r, 0, 6) + 1 : 2 * bt_range(r, 1, 6);
    p.w = bt_below(r, 4) ? 2 * bt_range(r, 0, 6) + 1 : 2 * bt_range(r, 1, 6);
    need = (int64_t)p.dilation_h * (p.kh - 1) + 1 - p.pad_top - p.pad_bottom;
    if (p.h < need) p.h = need;
    need = (int64_t)p.dilation_w * (p.kw - 1) + 1 - p.pad_left - p.pad_right;
    if (p.w < need) p.w = need;
    return p;
}

static int conv_body(bnn_isa isa)
{
    /* n h w c o kh kw sh sw dh dw pt pb pl pr pad_byte */
    static const int fixed[][16] = {
        {1, 3, 3, 3, 5, 3, 3, 1, 1, 1, 1, 4, 4, 4, 4, 128}, /* padding-only outputs */
        {1, 3, 3, 3, 5, 3, 3, 1, 1, 1, 1, 4, 4, 4, 4, 0},
        {1, 3, 3, 3, 5, 3, 3, 1, 1, 1, 1, 4, 4, 4, 4, 255},
        {2, 9, 7, 3, 70, 1, 3, 1, 2, 1, 2, 0, 0, 1, 1, 0},
        {1, 9, 5, 4, 5, 5, 2, 3, 1, 2, 1, 2, 1, 0, 3, 255},
        {3, 11, 13, 1, 1, 5, 5, 3, 3, 2, 2, 4, 0, 0, 4, 128},
        {1, 7, 7, 65, 70, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 7},   /* C past one word */
        {2, 5, 5, 3, 64, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 128},
        {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 128},
        {1, 32, 32, 3, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 128}, /* a CIFAR-like layer */
    };
    int i;
    for (i = 0; i < (int)(sizeof fixed / sizeof fixed[0]); i++) {
        const int *a = fixed[i];
        bnn_conv2d_params p = make_params(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7],
                                          a[8], a[9], a[10], a[11], a[12], a[13], a[14],
                                          a[15]);
        uconv u;
        uconv_make(&u, &p, 300 + (uint64_t)i);
        RUN(conv_case(&u, isa, 400 + (uint64_t)i));
        /* The 1x1 unpadded case is gemm_u8 over the pixels. */
        if (p.kh == 1 && p.kw == 1 && p.pad_top + p.pad_bottom + p.pad_left + p.pad_right == 0
            && p.stride_h == 1 && p.stride_w == 1 && p.c == 3) {
            /* filters [o][1][1][words(3)] are [o][words(3)] rows */
            int64_t rows = p.n * p.h * p.w;
            int32_t *g = (int32_t *)bt_alloc((size_t)(rows * p.o) * 4);
            size_t wsb = 0;
            void *ws;
            bt_ctx("conv2d_u8 1x1 vs gemm_u8 %s", u.desc);
            CHECK_ST(bnn_gemm_u8_workspace_size(p.o, p.c, 1, &wsb), BNN_OK);
            ws = bt_alloc(wsb);
            CHECK_ST(bnn_gemm_u8(rows, p.o, p.c, u.x, p.c, u.w, 1, NULL, g, p.o,
                                 BNN_U8_AUTO, ws, wsb), BNN_OK);
            CHECK(memcmp(g, u.s, (size_t)(rows * p.o) * 4) == 0);
            free(ws);
            free(g);
        }
        uconv_free(&u);
    }
    for (i = 0; i < 40; i++) {
        bt_rng r = bt_stream(500 + (uint64_t)i);
        bnn_conv2d_params p = rand_uconv(&r);
        uconv u;
        uconv_make(&u, &p, 600 + (uint64_t)i);
        RUN(conv_case(&u, isa, 700 + (uint64_t)i));
        uconv_free(&u);
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Threads and workspace                                                */
/* ------------------------------------------------------------------ */

static int threads_body(bnn_isa isa)
{
    static const int counts[] = {2, 3};
    gprob g;
    uconv u;
    bnn_conv2d_params p = make_params(2, 40, 40, 4, 96, 5, 5, 1, 1, 1, 1, 2, 2, 2, 2, 0);
    epi_data dg, dc;
    int kind, mi, ci;

    gprob_make(&g, 512, 128, 784, 0, 0, 9000);
    uconv_make(&u, &p, 9001);
    epi_make(&dg, g.m, g.k, 9002);
    epi_make(&dc, u.p.o, u.kdot, 9003);
    for (mi = 0; mi < N_METHODS; mi++)
        for (kind = 0; kind < 3; kind++) {
            bnn_epilogue eg = bt_epi_for(kind, 0, &dg), ec = bt_epi_for(kind, 0, &dc);
            int64_t ldg = kind == BNN_EPI_BITS ? bt_words(g.m) : g.m;
            void *g1, *c1;
            size_t gb, cb;
            CHECK_ST(bnn_set_num_threads(1), BNN_OK);
            bt_ctx("threads isa=%s method=%s kind=%d threads=1", bt_isa_str(isa),
                   method_names[mi], kind);
            RUN(run_gemm_u8(&g, &eg, ldg, methods[mi], &g1, &gb));
            RUN(check_out(g.n, g.m, g.s, &eg, g1, ldg));
            RUN(run_conv_u8(&u, &u.p, &ec, methods[mi], 1, &c1, &cb));
            RUN(check_out(u.p.n * u.oh * u.ow, u.p.o, u.s, &ec, c1,
                          kind == BNN_EPI_BITS ? bt_words(u.p.o) : u.p.o));
            for (ci = 0; ci < 2; ci++) {
                int t = counts[ci];
                void *o2;
                size_t b2, wsb = 0, ws0 = 0, ws1 = 0;
                void *ws;
                CHECK_ST(bnn_set_num_threads(t), BNN_OK);
                bt_ctx("threads isa=%s method=%s kind=%d threads=%d", bt_isa_str(isa),
                       method_names[mi], kind, t);
                /* gemm_u8 with a workspace for t threads, then the 1-thread size */
                CHECK_ST(bnn_gemm_u8_workspace_size(g.m, g.k, t, &wsb), BNN_OK);
                CHECK_ST(bnn_gemm_u8_workspace_size(g.m, g.k, 0, &ws0), BNN_OK);
                CHECK_ST(bnn_gemm_u8_workspace_size(g.m, g.k, 1, &ws1), BNN_OK);
                CHECK_MSG(ws0 == wsb, "gemm_u8 workspace(0) %zu != workspace(%d) %zu", ws0,
                          t, wsb);
                ws = bt_alloc(wsb);
                o2 = out_alloc(g.n, g.m, kind, ldg, &b2);
                CHECK_ST(bnn_gemm_u8(g.n, g.m, g.k, g.x, g.ldx, g.w, g.ldw, &eg, o2, ldg,
                                     methods[mi], ws, wsb), BNN_OK);
                CHECK_MSG(memcmp(o2, g1, gb) == 0, "gemm_u8: %d threads differ", t);
                free(o2);
                free(ws);
                RUN(run_gemm_u8(&g, &eg, ldg, methods[mi], &o2, &b2)); /* 1-thread ws */
                CHECK_MSG(memcmp(o2, g1, gb) == 0,
                          "gemm_u8: %d threads with a 1-thread workspace differ", t);
                free(o2);
                /* conv2d_u8 likewise */
                CHECK_ST(bnn_conv2d_u8_workspace_size(&u.p, t, &wsb), BNN_OK);
                CHECK_ST(bnn_conv2d_u8_workspace_size(&u.p, 0, &ws0), BNN_OK);
                CHECK_MSG(ws0 == wsb, "conv2d_u8 workspace(0) %zu != workspace(%d) %zu",
                          ws0, t, wsb);
                RUN(run_conv_u8(&u, &u.p, &ec, methods[mi], t, &o2, &b2));
                CHECK_MSG(memcmp(o2, c1, cb) == 0, "conv2d_u8: %d threads differ", t);
                free(o2);
                RUN(run_conv_u8(&u, &u.p, &ec, methods[mi], 1, &o2, &b2));
                CHECK_MSG(memcmp(o2, c1, cb) == 0,
                          "conv2d_u8: %d threads with a 1-thread workspace differ", t);
                free(o2);
            }
            CHECK_ST(bnn_set_num_threads(1), BNN_OK);
            free(g1);
            free(c1);
        }
    bt_epi_free(&dg);
    bt_epi_free(&dc);
    gprob_free(&g);
    uconv_free(&u);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Errors                                                               */
/* ------------------------------------------------------------------ */

#define NOUT 256 /* >= the 2x5x5x3 int32 output of the conv error base case */
static int32_t eo_i[NOUT];
static uint64_t eo_b[NOUT];

static void eo_fill(void)
{
    int i;
    for (i = 0; i < NOUT; i++) eo_i[i] = CANARY_I32;
    bt_fill_u64(eo_b, NOUT, CANARY_W);
}

static int eo_unchanged(void)
{
    int i;
    for (i = 0; i < NOUT; i++) {
        CHECK_MSG(eo_i[i] == CANARY_I32, "int32 output [%d] written", i);
        CHECK_MSG(eo_b[i] == CANARY_W, "bits output [%d] written", i);
    }
    return 0;
}

static int gemm_errors_body(bnn_isa isa)
{
    /* Valid: n=2, m=3, k=70 (2 words); output [2][3] int32 / [2][1] words. */
    static uint8_t x[2 * 70];
    static uint64_t w[3 * 2];
    int32_t th[3] = {0, 0, 0};
    bnn_epilogue eb, e;
    size_t ws1 = 0;
    unsigned char *ws;
    const int64_t big = (int64_t)1 << 40;

    memset(x, 128, sizeof x);
    memset(w, 0, sizeof w);
    memset(&eb, 0, sizeof eb);
    eb.kind = BNN_EPI_BITS;
    eb.thresh = th;
    bt_ctx("gemm_u8 errors isa=%s", bt_isa_str(isa));
    CHECK_ST(bnn_gemm_u8_workspace_size(3, 70, 1, &ws1), BNN_OK);
    CHECK_ST(bnn_gemm_u8_workspace_size(3, 70, 1, NULL), BNN_ERR_NULL);
    CHECK_ST(bnn_gemm_u8_workspace_size(-1, 70, 1, &ws1), BNN_ERR_SHAPE);
    CHECK_ST(bnn_gemm_u8_workspace_size(3, -1, 1, &ws1), BNN_ERR_SHAPE);
    CHECK_ST(bnn_gemm_u8_workspace_size(3, 70, 1, &ws1), BNN_OK);
    ws = (unsigned char *)bt_alloc(ws1 + 16);

#define GU(n, m, k, xx, ldx, ww, ldw, ep, cc, ldc, meth, wp, wb) \
    bnn_gemm_u8((n), (m), (k), (xx), (ldx), (ww), (ldw), (ep), (cc), (ldc), (meth), (wp), (wb))
    /* sanity */
    eo_fill();
    CHECK_ST(GU(2, 3, 70, x, 70, w, 2, NULL, eo_i, 3, BNN_U8_AUTO, ws, ws1), BNN_OK);
    CHECK_EQ(eo_i[0], 0);
    CHECK_EQ(eo_i[5], 0);
    CHECK_EQ(eo_i[6], CANARY_I32);

    eo_fill();
    /* NULL */
    CHECK_ST(GU(2, 3, 70, NULL, 70, w, 2, NULL, eo_i, 3, BNN_U8_AUTO, ws, ws1), BNN_ERR_NULL);
    CHECK_ST(GU(2, 3, 70, x, 70, NULL, 2, NULL, eo_i, 3, BNN_U8_AUTO, ws, ws1), BNN_ERR_NULL);
    CHECK_ST(GU(2, 3, 70, x, 70, w, 2, NULL, NULL, 3, BNN_U8_AUTO, ws, ws1), BNN_ERR_NULL);
    e = eb;
    e.thresh = NULL;
    CHECK_ST(GU(2, 3, 70, x, 70, w, 2, &e, eo_b, 1, BNN_U8_AUTO, ws, ws1), BNN_ERR_NULL);
    if (ws1 > 0) {
        bnn_status s = GU(2, 3, 70, x, 70, w, 2, NULL, eo_i, 3, BNN_U8_AUTO, NULL, ws1);
        CHECK_MSG(s == BNN_ERR_NULL || s == BNN_ERR_INVALID, "NULL workspace: %d (%s)",
                  (int)s, bnn_status_string(s));
    }
    RUN(eo_unchanged());
    /* SHAPE */
    CHECK_ST(GU(-1, 3, 70, x, 70, w, 2, NULL, eo_i, 3, BNN_U8_AUTO, ws, ws1), BNN_ERR_SHAPE);
    CHECK_ST(GU(2, -1, 70, x, 70, w, 2, NULL, eo_i, 3, BNN_U8_AUTO, ws, ws1), BNN_ERR_SHAPE);
    CHECK_ST(GU(2, 3, -1, x, 70, w, 2, NULL, eo_i, 3, BNN_U8_AUTO, ws, ws1), BNN_ERR_SHAPE);
    RUN(eo_unchanged());
    /* STRIDE */
    CHECK_ST(GU(2, 3, 70, x, 69, w, 2, NULL, eo_i, 3, BNN_U8_AUTO, ws, ws1), BNN_ERR_STRIDE);
    CHECK_ST(GU(2, 3, 70, x, 70, w, 1, NULL, eo_i, 3, BNN_U8_AUTO, ws, ws1), BNN_ERR_STRIDE);
    CHECK_ST(GU(2, 3, 70, x, 70, w, 2, NULL, eo_i, 2, BNN_U8_AUTO, ws, ws1), BNN_ERR_STRIDE);
    CHECK_ST(GU(2, 3, 70, x, 70, w, 2, &eb, eo_b, 0, BNN_U8_AUTO, ws, ws1), BNN_ERR_STRIDE);
    RUN(eo_unchanged());
    /* INVALID: method, epilogue, workspace */
    CHECK_ST(GU(2, 3, 70, x, 70, w, 2, NULL, eo_i, 3, BAD_METHOD, ws, ws1),
             BNN_ERR_INVALID);
    CHECK_ST(GU(2, 3, 70, x, 70, w, 2, NULL, eo_i, 3, (bnn_u8_method)-1, ws, ws1),
             BNN_ERR_INVALID);
    memset(&e, 0, sizeof e);
    e.kind = 7;
    CHECK_ST(GU(2, 3, 70, x, 70, w, 2, &e, eo_i, 3, BNN_U8_AUTO, ws, ws1), BNN_ERR_INVALID);
    memset(&e, 0, sizeof e);
    e.reserved = 1;
    CHECK_ST(GU(2, 3, 70, x, 70, w, 2, &e, eo_i, 3, BNN_U8_AUTO, ws, ws1), BNN_ERR_INVALID);
    memset(&e, 0, sizeof e);
    e.pad_[2] = ws;
    CHECK_ST(GU(2, 3, 70, x, 70, w, 2, &e, eo_i, 3, BNN_U8_AUTO, ws, ws1), BNN_ERR_INVALID);
    if (ws1 > 0) {
        int mi;
        for (mi = 0; mi < N_METHODS; mi++) {
            bt_ctx("gemm_u8 errors isa=%s method=%s short workspace (needs %zu)",
                   bt_isa_str(isa), method_names[mi], ws1);
            /* the size query covers every method, so a short buffer may
             * still be enough for one of them: only 0 bytes must fail */
            CHECK_ST(GU(2, 3, 70, x, 70, w, 2, NULL, eo_i, 3, methods[mi], ws, 0),
                     BNN_ERR_INVALID);
        }
    }
    RUN(eo_unchanged());
    /* OVERFLOW */
    bt_ctx("gemm_u8 errors isa=%s overflow", bt_isa_str(isa));
    CHECK_ST(GU(2, 3, (int64_t)INT32_MAX + 1, x, (int64_t)INT32_MAX + 1, w,
                bt_words((int64_t)INT32_MAX + 1), NULL, eo_i, 3, BNN_U8_AUTO, ws, ws1),
             BNN_ERR_OVERFLOW);
    CHECK_ST(GU(big, 3, 70, x, big, w, 2, NULL, eo_i, 3, BNN_U8_AUTO, ws, ws1),
             BNN_ERR_OVERFLOW);
    CHECK_ST(GU(2, big, 70, x, 70, w, big, NULL, eo_i, big, BNN_U8_AUTO, ws, ws1),
             BNN_ERR_OVERFLOW);
    CHECK_ST(GU(2, 3, 70, x, INT64_MAX, w, 2, NULL, eo_i, 3, BNN_U8_AUTO, ws, ws1),
             BNN_ERR_OVERFLOW);
    RUN(eo_unchanged());
    /* Zero n or m: valid, nothing written. */
    bt_ctx("gemm_u8 isa=%s zero n / m", bt_isa_str(isa));
    CHECK_ST(GU(0, 3, 70, x, 70, w, 2, NULL, eo_i, 3, BNN_U8_AUTO, ws, ws1), BNN_OK);
    CHECK_ST(GU(2, 0, 70, x, 70, w, 2, NULL, eo_i, 3, BNN_U8_BITPLANE, ws, ws1), BNN_OK);
    CHECK_ST(GU(0, 3, 70, x, 70, w, 2, &eb, eo_b, 1, BNN_U8_DIRECT, ws, ws1), BNN_OK);
    RUN(eo_unchanged());
#undef GU
    free(ws);
    return 0;
}

/* Accumulator bounds: every pixel 255 and every weight -1 (even outputs)
 * or +1 (odd) make each partial sum as large as it can be, so a kernel
 * whose narrow accumulators overflow between widenings fails here; random
 * pixels average half that and would not show it.  s = +-127 * k. */
static int saturated_body(bnn_isa isa)
{
    const int64_t n = 5, m = 70, k = 4097, kw = bt_words(k);
    uint8_t *x = (uint8_t *)bt_alloc((size_t)(n * k));
    uint64_t *w = (uint64_t *)bt_alloc((size_t)(m * kw) * 8);
    int32_t *out = (int32_t *)bt_alloc((size_t)(n * m) * 4);
    size_t wsb = 0;
    void *ws;
    int64_t i, j, q;
    int mi;
    memset(x, 255, (size_t)(n * k));
    for (j = 0; j < m; j++)
        for (q = 0; q < kw; q++) {
            const uint64_t all = q + 1 < kw || k % 64 == 0 ? ~(uint64_t)0
                                                           : ((uint64_t)1 << (k % 64)) - 1u;
            w[j * kw + q] = j % 2 ? 0 : all;
        }
    CHECK_ST(bnn_gemm_u8_workspace_size(m, k, 1, &wsb), BNN_OK);
    ws = bt_alloc(wsb);
    for (mi = 0; mi < N_METHODS; mi++) {
        bt_ctx("gemm_u8 isa=%s method=%s saturated: x = 255, w = -1 / +1, k=%d",
               bt_isa_str(isa), method_names[mi], (int)k);
        CHECK_ST(bnn_gemm_u8(n, m, k, x, k, w, kw, NULL, out, m, methods[mi], ws, wsb), BNN_OK);
        for (i = 0; i < n; i++)
            for (j = 0; j < m; j++)
                CHECK_MSG(out[i * m + j] == (j % 2 ? 127 : -127) * (int32_t)k,
                          "out[%d][%d] = %d", (int)i, (int)j, (int)out[i * m + j]);
    }
    free(ws);
    free(out);
    free(w);
    free(x);
    return 0;
}

/* |s| <= 128 k must fit in the int32 output: k = 2^24 + 1 bytes of 0
 * against all +1 weights gives s = -128 (2^24 + 1) < INT32_MIN.  The call
 * must either fail (OVERFLOW) or -- impossibly -- return the exact value;
 * a silently wrapped int32 is a bug. */
static int sum_overflow_body(bnn_isa isa)
{
    const int64_t k = ((int64_t)1 << 24) + 1;
    uint8_t *x = (uint8_t *)bt_alloc((size_t)k);
    uint64_t *w = (uint64_t *)bt_alloc((size_t)bt_words(k) * 8);
    int32_t out[2] = {CANARY_I32, CANARY_I32};
    size_t wsb = 0;
    void *ws = NULL;
    int mi;
    bnn_status sq;
    memset(x, 0, (size_t)k);
    memset(w, 0, (size_t)bt_words(k) * 8);
    bt_ctx("gemm_u8 isa=%s k=2^24+1, s = -128*k overflows int32", bt_isa_str(isa));
    sq = bnn_gemm_u8_workspace_size(1, k, 1, &wsb);
    CHECK_MSG(sq == BNN_OK || sq == BNN_ERR_OVERFLOW, "workspace query %d (%s)", (int)sq,
              bnn_status_string(sq));
    if (sq == BNN_OK) ws = bt_alloc(wsb);
    else { ws = bt_alloc(64); wsb = 64; }
    for (mi = 0; mi < N_METHODS; mi++) {
        bnn_status s = bnn_gemm_u8(1, 1, k, x, k, w, bt_words(k), NULL, out, 1, methods[mi],
                                   ws, wsb);
        CHECK_MSG(s == BNN_ERR_OVERFLOW, "method %s: got %d (%s), out %d (the sum is %"
                  PRId64 ")", method_names[mi], (int)s, bnn_status_string(s), (int)out[0],
                  -128 * k);
        CHECK_EQ(out[0], CANARY_I32);
    }
    free(ws);
    free(x);
    free(w);
    return 0;
}

/* bnn.h: gemm_u8 has "errors as bnn_gemm()", and bnn_gemm takes k == 0
 * (every dot 0). */
static int k_zero_body(bnn_isa isa)
{
    uint8_t x[4] = {0};
    uint64_t w[4] = {0};
    int32_t out[6];
    size_t wsb = 0;
    void *ws;
    int i, mi;
    bt_ctx("gemm_u8 isa=%s k = 0", bt_isa_str(isa));
    CHECK_ST(bnn_gemm_u8_workspace_size(3, 0, 1, &wsb), BNN_OK);
    ws = bt_alloc(wsb + 8);
    for (mi = 0; mi < N_METHODS; mi++) {
        for (i = 0; i < 6; i++) out[i] = CANARY_I32;
        bt_ctx("gemm_u8 isa=%s method=%s k = 0 (bnn_gemm: every dot is 0)", bt_isa_str(isa),
               method_names[mi]);
        CHECK_ST(bnn_gemm_u8(2, 3, 0, x, 0, w, 0, NULL, out, 3, methods[mi], ws, wsb),
                 BNN_OK);
        for (i = 0; i < 6; i++) CHECK_EQ(out[i], 0);
    }
    free(ws);
    return 0;
}

static int conv_errors_body(bnn_isa isa)
{
    const bnn_conv2d_params base = make_params(2, 5, 5, 3, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 128);
    static uint8_t x[2 * 5 * 5 * 3];
    static uint64_t w[3 * 3 * 3];
    bnn_conv2d_params p;
    size_t ws1 = 0, bytes;
    unsigned char *ws;
    int i, mi;
    static const struct { int field, value; bnn_status want; const char *what; } bad[] = {
        {0, 256, BNN_ERR_INVALID, "pad_byte = 256"},
        {0, -1, BNN_ERR_INVALID, "pad_byte = -1"},
        {0, INT32_MIN, BNN_ERR_INVALID, "pad_byte = INT32_MIN"},
        {1, 0, BNN_ERR_INVALID, "stride_h = 0"},
        {2, -1, BNN_ERR_INVALID, "dilation_w = -1"},
        {3, -1, BNN_ERR_INVALID, "pad_left = -1"},
        {4, 1, BNN_ERR_INVALID, "reserved[3] = 1"},
        {5, 8, BNN_ERR_SHAPE, "kh = 8 > 5 + 2"},
        {6, 0, BNN_ERR_SHAPE, "kw = 0"},
        {7, -1, BNN_ERR_SHAPE, "n = -1"},
        {8, 2, BNN_ERR_INVALID, "pad_value = 2 (unused, but must be 0 or 1)"},
    };

    memset(x, 7, sizeof x);
    memset(w, 0, sizeof w);
    bt_ctx("conv2d_u8 errors isa=%s", bt_isa_str(isa));
    CHECK_ST(bnn_conv2d_u8_workspace_size(&base, 1, &ws1), BNN_OK);
    CHECK_ST(bnn_conv2d_u8_workspace_size(&base, 1, NULL), BNN_ERR_NULL);
    CHECK_ST(bnn_conv2d_u8_workspace_size(NULL, 1, &bytes), BNN_ERR_NULL);
    ws = (unsigned char *)bt_alloc(ws1 + 16);
    eo_fill();
    CHECK_ST(bnn_conv2d_u8(&base, x, w, NULL, eo_i, BNN_U8_AUTO, ws, ws1), BNN_OK);
    eo_fill();
    CHECK_ST(bnn_conv2d_u8(NULL, x, w, NULL, eo_i, BNN_U8_AUTO, ws, ws1), BNN_ERR_NULL);
    CHECK_ST(bnn_conv2d_u8(&base, NULL, w, NULL, eo_i, BNN_U8_AUTO, ws, ws1), BNN_ERR_NULL);
    CHECK_ST(bnn_conv2d_u8(&base, x, NULL, NULL, eo_i, BNN_U8_AUTO, ws, ws1), BNN_ERR_NULL);
    CHECK_ST(bnn_conv2d_u8(&base, x, w, NULL, NULL, BNN_U8_AUTO, ws, ws1), BNN_ERR_NULL);
    CHECK_ST(bnn_conv2d_u8(&base, x, w, NULL, eo_i, BAD_METHOD, ws, ws1),
             BNN_ERR_INVALID);
    CHECK_ST(bnn_conv2d_u8(&base, x, w, NULL, eo_i, (bnn_u8_method)-1, ws, ws1),
             BNN_ERR_INVALID);
    if (ws1 > 0) {
        for (mi = 0; mi < N_METHODS; mi++) {
            bt_ctx("conv2d_u8 errors isa=%s method=%s workspace (needs %zu)", bt_isa_str(isa),
                   method_names[mi], ws1);
            CHECK_ST(bnn_conv2d_u8(&base, x, w, NULL, eo_i, methods[mi], ws, 0),
                     BNN_ERR_INVALID);
            CHECK_ST(bnn_conv2d_u8(&base, x, w, NULL, eo_i, methods[mi], ws + 1, ws1),
                     BNN_ERR_INVALID);
        }
    }
    RUN(eo_unchanged());
    for (i = 0; i < (int)(sizeof bad / sizeof bad[0]); i++) {
        int64_t oh = -77;
        size_t b2 = 12345;
        p = base;
        switch (bad[i].field) {
        case 0: p.pad_byte = bad[i].value; break;
        case 1: p.stride_h = bad[i].value; break;
        case 2: p.dilation_w = bad[i].value; break;
        case 3: p.pad_left = bad[i].value; break;
        case 4: p.reserved[3] = bad[i].value; break;
        case 5: p.kh = bad[i].value; break;
        case 6: p.kw = bad[i].value; break;
        case 7: p.n = bad[i].value; break;
        case 8: p.pad_value = bad[i].value; break;
        }
        bt_ctx("conv2d_u8 errors isa=%s: %s", bt_isa_str(isa), bad[i].what);
        eo_fill();
        CHECK_ST(bnn_conv2d_u8(&p, x, w, NULL, eo_i, BNN_U8_AUTO, ws, ws1), bad[i].want);
        CHECK_ST(bnn_conv2d_u8_workspace_size(&p, 1, &b2), bad[i].want);
        CHECK_EQ(b2, 12345);
        if (bad[i].field == 0) { /* the shape query rejects pad_byte too */
            CHECK_ST(bnn_conv2d_output_shape(&p, &oh, NULL), bad[i].want);
            CHECK_EQ(oh, -77);
        }
        RUN(eo_unchanged());
    }
    /* pad_byte at the ends of its range is valid */
    for (i = 0; i < 2; i++) {
        p = base;
        p.pad_byte = i ? 255 : 0;
        bt_ctx("conv2d_u8 isa=%s pad_byte=%d valid", bt_isa_str(isa), p.pad_byte);
        CHECK_ST(bnn_conv2d_u8(&p, x, w, NULL, eo_i, BNN_U8_AUTO, ws, ws1), BNN_OK);
    }
    /* Zero batch: valid, nothing written. */
    p = base;
    p.n = 0;
    eo_fill();
    bt_ctx("conv2d_u8 isa=%s n = 0", bt_isa_str(isa));
    CHECK_ST(bnn_conv2d_u8(&p, x, w, NULL, eo_i, BNN_U8_AUTO, ws, ws1), BNN_OK);
    RUN(eo_unchanged());
    /* Overflow: kh*kw*c bytes whose centred sum cannot fit in int32. */
    {
        const int64_t c = ((int64_t)1 << 24) + 1;
        uint8_t *bx = (uint8_t *)bt_alloc((size_t)c);
        uint64_t *bw = (uint64_t *)bt_alloc((size_t)bt_words(c) * 8);
        size_t need = 0;
        bnn_status sq, s;
        void *bws;
        memset(bx, 0, (size_t)c);
        memset(bw, 0, (size_t)bt_words(c) * 8);
        p = make_params(1, 1, 1, c, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 128);
        bt_ctx("conv2d_u8 isa=%s c = 2^24+1: s = -128 c overflows int32", bt_isa_str(isa));
        sq = bnn_conv2d_u8_workspace_size(&p, 1, &need);
        CHECK_MSG(sq == BNN_OK || sq == BNN_ERR_OVERFLOW, "workspace query %d", (int)sq);
        if (sq != BNN_OK) need = 64;
        bws = bt_alloc(need);
        eo_fill();
        s = bnn_conv2d_u8(&p, bx, bw, NULL, eo_i, BNN_U8_AUTO, bws, need);
        CHECK_MSG(s == BNN_ERR_OVERFLOW, "got %d (%s), out %d", (int)s, bnn_status_string(s),
                  (int)eo_i[0]);
        RUN(eo_unchanged());
        free(bws);
        free(bx);
        free(bw);
    }
    free(ws);
    return 0;
}

int main(int argc, char **argv)
{
    int fails = 0;
    bt_init(argc, argv, "test_u8");
    if (bnn_get_num_threads() != 1) {
        fprintf(stderr, "test_u8: expected 1 thread by default\n");
        return 1;
    }
    fails += for_each_isa(gemm_errors_body) != 0;
    fails += for_each_isa(k_zero_body) != 0;
    fails += for_each_isa(sum_overflow_body) != 0;
    fails += for_each_isa(saturated_body) != 0;
    fails += for_each_isa(conv_errors_body) != 0;
    fails += for_each_isa(gemm_body) != 0;
    fails += for_each_isa(conv_body) != 0;
    fails += for_each_isa(threads_body) != 0;
    CHECK_ST(bnn_set_num_threads(1), BNN_OK);
    if (fails) {
        printf("test_u8: %d test group(s) FAILED (seed %" PRIu64 ")\n", fails, bt_seed);
        return 1;
    }
    printf("test_u8: all passed\n");
    return 0;
}
