/*
 * test_conv2d.c -- bnn_conv2d, bnn_conv2d_output_shape and
 * bnn_conv2d_workspace_size.
 *
 *  - The oracle is the plain-loop convolution of oracle.h (bt_conv2d) on
 *    the +-1 signs of random float data (with +0, -0, NaN, denormals),
 *    exact in integers, padded taps 0 for pad_value 0 and +1 for
 *    pad_value 1; the data is packed by the test's own packer.
 *  - Every ISA equals the oracle and the reference ISA byte for byte, for
 *    all three epilogues: INT32; FLOAT == fmaf((float)dot, scale, offset)
 *    (with NULL scale / offset); BITS == flip ? dot > t : dot < t, pad bits
 *    0; and BITS with thresholds from bnn_fold_threshold equals
 *    scale*dot + offset < 0 in double.
 *  - Shapes: random samples over odd / even H, W, strides 1-3, dilations
 *    1-2, kernels 1x1 .. 5x5 (non-square), C in {1,3,63,64,65,130}, O in
 *    {1,3,5,64,70}, batch 1-3, symmetric / asymmetric padding and padding
 *    past the kernel's reach, plus fixed cases (outputs that see only
 *    padding are exactly 0 with pad_value 0; 1x1 convolution == bnn_gemm).
 *  - Workspace: exactly bnn_conv2d_workspace_size(p, 1) bytes suffices at
 *    any thread count; results are identical for 1, 2 and 3 threads.
 *  - Errors write nothing; n == 0 is valid and writes nothing.
 */
#include "oracle.h"

#include <limits.h>

#define CANARY_I32 BT_CANARY_I32
#define CANARY_F32 BT_CANARY_F32
#define CANARY_W BT_CANARY_W

/* Oracle work per random case (multiply-adds) is kept below this. */
#define MAX_MACS 1500000

/* ------------------------------------------------------------------ */
/* A convolution case: parameters, float data, packed data, oracle      */
/* ------------------------------------------------------------------ */

typedef struct conv_case {
    bnn_conv2d_params p;
    int64_t oh, ow, cw, kdot;   /* output size, words per pixel, taps*c */
    float *xs, *ws;             /* +-1.0 signs of the float data         */
    uint64_t *x, *w;            /* packed, exact sizes                   */
    int32_t *dot;               /* oracle [n][oh][ow][o]                 */
    unsigned char *padonly;     /* [oh][ow]: every tap is padding        */
    char desc[200];
} conv_case;

static void describe(conv_case *cc)
{
    const bnn_conv2d_params *p = &cc->p;
    snprintf(cc->desc, sizeof cc->desc,
             "n=%" PRId64 " h=%" PRId64 " w=%" PRId64 " c=%" PRId64 " o=%" PRId64
             " k=%" PRId64 "x%" PRId64 " stride=%d,%d dil=%d,%d pad(t,b,l,r)="
             "%d,%d,%d,%d pad_value=%d -> %" PRId64 "x%" PRId64,
             p->n, p->h, p->w, p->c, p->o, p->kh, p->kw, p->stride_h, p->stride_w,
             p->dilation_h, p->dilation_w, p->pad_top, p->pad_bottom, p->pad_left,
             p->pad_right, p->pad_value, cc->oh, cc->ow);
}

/* oh, ow by the formula of bnn.h (the test's own computation). */
#define out_dim bt_out_dim

/* One float row: random (with the awkward values), or a constant row that
 * makes dots extreme. */
static void fill_floats(bt_rng *r, float *row, int64_t k)
{
    int64_t j;
    uint64_t u = bt_below(r, 10);
    if (u == 0) for (j = 0; j < k; j++) row[j] = -0.75f;
    else if (u == 1) for (j = 0; j < k; j++) row[j] = (j & 1) ? 0.0f : -0.0f;
    else bt_rand_floats(r, row, (size_t)k);
}

static void conv_oracle(conv_case *cc)
{
    const bnn_conv2d_params *p = &cc->p;
    int64_t oy, ox, ky, kx, i;
    int64_t nx = p->n * p->h * p->w * p->c, nw = p->o * p->kh * p->kw * p->c;
    int32_t *xi = (int32_t *)bt_alloc((size_t)nx * sizeof(int32_t));
    int8_t *wi = (int8_t *)bt_alloc((size_t)nw);
    for (oy = 0; oy < cc->oh; oy++)
        for (ox = 0; ox < cc->ow; ox++) {
            int only = 1;
            for (ky = 0; ky < p->kh; ky++)
                for (kx = 0; kx < p->kw; kx++) {
                    int64_t iy = oy * p->stride_h - p->pad_top + ky * p->dilation_h;
                    int64_t ix = ox * p->stride_w - p->pad_left + kx * p->dilation_w;
                    if (iy >= 0 && iy < p->h && ix >= 0 && ix < p->w) only = 0;
                }
            cc->padonly[oy * cc->ow + ox] = (unsigned char)only;
        }
    /* The +-1 signs as integers; padded taps are 0 or +1 (pad_value). */
    for (i = 0; i < nx; i++) xi[i] = (int32_t)cc->xs[i];
    for (i = 0; i < nw; i++) wi[i] = (int8_t)cc->ws[i];
    bt_conv2d(p, xi, p->pad_value ? 1 : 0, 0, wi, cc->dot);
    free(xi);
    free(wi);
}

/* Build data, packed operands and the oracle for valid parameters. */
static void case_make(conv_case *cc, const bnn_conv2d_params *p, uint64_t tag)
{
    bt_rng r = bt_stream(tag);
    int64_t i, xrows, wrows, c;
    float *xf, *wf;

    memset(cc, 0, sizeof *cc);
    cc->p = *p;
    c = p->c;
    cc->oh = out_dim(p->h, p->pad_top, p->pad_bottom, p->kh, p->dilation_h, p->stride_h);
    cc->ow = out_dim(p->w, p->pad_left, p->pad_right, p->kw, p->dilation_w, p->stride_w);
    cc->cw = bt_words(c);
    cc->kdot = p->kh * p->kw * c;
    xrows = p->n * p->h * p->w;
    wrows = p->o * p->kh * p->kw;

    xf = (float *)bt_alloc((size_t)(xrows * c) * sizeof(float));
    wf = (float *)bt_alloc((size_t)(wrows * c) * sizeof(float));
    for (i = 0; i < xrows; i++) fill_floats(&r, xf + i * c, c);
    for (i = 0; i < wrows; i++) fill_floats(&r, wf + i * c, c);
    cc->xs = (float *)bt_alloc((size_t)(xrows * c) * sizeof(float));
    cc->ws = (float *)bt_alloc((size_t)(wrows * c) * sizeof(float));
    for (i = 0; i < xrows * c; i++) cc->xs[i] = bt_sign_f(xf[i]);
    for (i = 0; i < wrows * c; i++) cc->ws[i] = bt_sign_f(wf[i]);

    cc->x = (uint64_t *)bt_alloc((size_t)(xrows * cc->cw) * 8);
    cc->w = (uint64_t *)bt_alloc((size_t)(wrows * cc->cw) * 8);
    bt_pack_f32(xrows, c, xf, c, cc->x, cc->cw);
    bt_pack_f32(wrows, c, wf, c, cc->w, cc->cw);
    free(xf);
    free(wf);

    cc->dot = (int32_t *)bt_alloc((size_t)(p->n * cc->oh * cc->ow * p->o) * 4);
    cc->padonly = (unsigned char *)bt_alloc((size_t)(cc->oh * cc->ow));
    conv_oracle(cc);
    describe(cc);
}

static void case_free(conv_case *cc)
{
    free(cc->xs);
    free(cc->ws);
    free(cc->x);
    free(cc->w);
    free(cc->dot);
    free(cc->padonly);
    memset(cc, 0, sizeof *cc);
}

static bnn_conv2d_params make_params(int64_t n, int64_t h, int64_t w, int64_t c,
                                     int64_t o, int64_t kh, int64_t kw, int sh,
                                     int sw, int dh, int dw, int pt, int pb,
                                     int pl, int pr, int pv)
{
    bnn_conv2d_params p;
    memset(&p, 0, sizeof p);
    p.n = n; p.h = h; p.w = w; p.c = c; p.o = o; p.kh = kh; p.kw = kw;
    p.stride_h = sh; p.stride_w = sw; p.dilation_h = dh; p.dilation_w = dw;
    p.pad_top = pt; p.pad_bottom = pb; p.pad_left = pl; p.pad_right = pr;
    p.pad_value = pv;
    return p;
}

static int64_t case_macs(const bnn_conv2d_params *p)
{
    int64_t oh = out_dim(p->h, p->pad_top, p->pad_bottom, p->kh, p->dilation_h, p->stride_h);
    int64_t ow = out_dim(p->w, p->pad_left, p->pad_right, p->kw, p->dilation_w, p->stride_w);
    return p->n * oh * ow * p->o * p->kh * p->kw * p->c;
}

/* Random valid parameters. */
static bnn_conv2d_params rand_params(bt_rng *r)
{
    static const int64_t cs[] = {1, 3, 63, 64, 65, 130};
    static const int64_t os[] = {1, 5, 70, 1, 5, 70, 3, 64};
    bnn_conv2d_params p;
    int64_t need;
    memset(&p, 0, sizeof p);
    p.n = bt_range(r, 1, 3);
    p.c = cs[bt_below(r, 6)];
    p.o = os[bt_below(r, 8)];
    p.kh = bt_range(r, 1, 5);
    p.kw = bt_range(r, 1, 5);
    p.stride_h = (int32_t)bt_range(r, 1, 3);
    p.stride_w = (int32_t)bt_range(r, 1, 3);
    p.dilation_h = (int32_t)bt_range(r, 1, 2);
    p.dilation_w = (int32_t)bt_range(r, 1, 2);
    /* Mostly small, sometimes past the kernel's reach; independent sides. */
    p.pad_top = (int32_t)(bt_below(r, 5) == 0 ? bt_range(r, 3, 5) : bt_range(r, 0, 2));
    p.pad_bottom = (int32_t)(bt_below(r, 5) == 0 ? bt_range(r, 3, 5) : bt_range(r, 0, 2));
    p.pad_left = (int32_t)(bt_below(r, 5) == 0 ? bt_range(r, 3, 5) : bt_range(r, 0, 2));
    p.pad_right = (int32_t)(bt_below(r, 5) == 0 ? bt_range(r, 3, 5) : bt_range(r, 0, 2));
    if (bt_below(r, 3) == 0) { /* symmetric */
        p.pad_bottom = p.pad_top;
        p.pad_right = p.pad_left;
    }
    p.pad_value = (int32_t)bt_below(r, 2);
    /* H, W mostly odd. */
    p.h = bt_below(r, 4) ? 2 * bt_range(r, 0, 5) + 1 : 2 * bt_range(r, 1, 5);
    p.w = bt_below(r, 4) ? 2 * bt_range(r, 0, 5) + 1 : 2 * bt_range(r, 1, 5);
    need = (int64_t)p.dilation_h * (p.kh - 1) + 1 - p.pad_top - p.pad_bottom;
    if (p.h < need) p.h = need;
    need = (int64_t)p.dilation_w * (p.kw - 1) + 1 - p.pad_left - p.pad_right;
    if (p.w < need) p.w = need;
    while (case_macs(&p) > MAX_MACS) {
        if (p.n > 1) p.n--;
        else if (p.o > 5) p.o = 5;
        else if (p.c > 65) p.c = 65;
        else if (p.h > 5 && p.h - 2 >= (int64_t)p.dilation_h * (p.kh - 1) + 1) p.h -= 2;
        else if (p.w > 5 && p.w - 2 >= (int64_t)p.dilation_w * (p.kw - 1) + 1) p.w -= 2;
        else break;
    }
    return p;
}

/* ------------------------------------------------------------------ */
/* Epilogue data                                                        */
/* ------------------------------------------------------------------ */

/* bt_epi_data, bt_epi_make_pm1, bt_epi_for (oracle.h). */
typedef bt_epi_data epi_data;

/* ------------------------------------------------------------------ */
/* Running and checking                                                 */
/* ------------------------------------------------------------------ */

/* Output buffer of exact size, filled with the kind's canary. */
static void *out_alloc(const conv_case *cc, int kind, size_t *bytes)
{
    int64_t ldc = kind == BNN_EPI_BITS ? bt_words(cc->p.o) : cc->p.o;
    return bt_out_alloc(cc->p.n * cc->oh * cc->ow, cc->p.o, kind, ldc, bytes);
}

/* Decode an output row index into (batch, y, x) for messages. */
static void conv_pos(char *buf, size_t len, int64_t i, int64_t j, const void *ctx)
{
    const conv_case *cc = (const conv_case *)ctx;
    snprintf(buf, len, "[b=%" PRId64 " y=%" PRId64 " x=%" PRId64 " f=%" PRId64 "]",
             i / (cc->oh * cc->ow), (i / cc->ow) % cc->oh, i % cc->ow, j);
}

static int check_out(const conv_case *cc, const bnn_epilogue *e, const void *c)
{
    int64_t ldc = e->kind == BNN_EPI_BITS ? bt_words(cc->p.o) : cc->p.o;
    return bt_check_epi(cc->p.n * cc->oh * cc->ow, cc->p.o, cc->dot, e, c, ldc,
                        conv_pos, cc);
}

/* Run one convolution with the current ISA and threads into a fresh
 * canaried buffer, with a workspace of exactly `ws_threads`' size. */
static int run_conv_ws(const conv_case *cc, const bnn_epilogue *e, int ws_threads,
                       void **out, size_t *bytes)
{
    size_t wsb = 0;
    void *ws;
    CHECK_ST(bnn_conv2d_workspace_size(&cc->p, ws_threads, &wsb), BNN_OK);
    ws = bt_alloc(wsb);
    *out = out_alloc(cc, e->kind, bytes);
    CHECK_ST(bnn_conv2d(&cc->p, cc->x, cc->w, e, *out, ws, wsb), BNN_OK);
    free(ws);
    return 0;
}

static int run_conv(const conv_case *cc, const bnn_epilogue *e, void **out,
                    size_t *bytes)
{
    return run_conv_ws(cc, e, 1, out, bytes);
}

/* Run with the current ISA and with ref: oracle, and identical bytes. */
static int run_and_compare(const conv_case *cc, bnn_isa isa, const bnn_epilogue *e)
{
    void *c = NULL, *c0 = NULL;
    size_t bytes = 0, bytes0 = 0;
    RUN(run_conv(cc, e, &c, &bytes));
    RUN(check_out(cc, e, c));
    if (isa != BNN_ISA_REF) {
        CHECK_ST(bnn_set_isa(BNN_ISA_REF), BNN_OK);
        RUN(run_conv(cc, e, &c0, &bytes0));
        CHECK_ST(bnn_set_isa(isa), BNN_OK);
        CHECK(bytes == bytes0);
        CHECK_MSG(memcmp(c, c0, bytes) == 0, "%s differs from ref", bt_isa_str(isa));
        free(c0);
    }
    free(c);
    return 0;
}

/* BITS with thresholds folded from batch-norm-like (scale, offset):
 * bit == (scale*dot + offset < 0) in double.  mode 0: gamma > 0, 1:
 * gamma < 0, 2: mixed (some zero). */
static int check_fold(const conv_case *cc, bnn_isa isa, int mode, uint64_t tag)
{
    bt_rng r = bt_stream(tag);
    int64_t m = cc->p.o, rows = cc->p.n * cc->oh * cc->ow, mw = bt_words(m);
    double *sc = (double *)bt_alloc((size_t)m * sizeof(double));
    double *of = (double *)bt_alloc((size_t)m * sizeof(double));
    int32_t *th = (int32_t *)bt_alloc((size_t)m * sizeof(int32_t));
    uint8_t *fl = (uint8_t *)bt_alloc((size_t)m);
    bnn_epilogue e;
    uint64_t *c;
    size_t bytes = 0;

    /* var in [0, 10), mean in kdot * [-1, 1); half the boundaries exactly
     * on a dot that occurs. */
    bt_fold_params(&r, m, 10.0, 2.0 * (double)cc->kdot, cc->dot, rows, mode, sc, of);
    CHECK_ST(bnn_fold_threshold(m, cc->kdot, sc, of, th, fl), BNN_OK);
    memset(&e, 0, sizeof e);
    e.kind = BNN_EPI_BITS;
    e.thresh = th;
    e.flip = fl;
    RUN(run_and_compare(cc, isa, &e));
    RUN(run_conv(cc, &e, (void **)&c, &bytes));
    RUN(bt_check_fold_bits(rows, m, cc->dot, sc, of, th, fl, c, mw, conv_pos, cc));
    free(c);
    free(sc);
    free(of);
    free(th);
    free(fl);
    return 0;
}

/* All epilogues on one case. */
static int check_case(const conv_case *cc, bnn_isa isa, uint64_t tag)
{
    epi_data d;
    bnn_epilogue e;
    int v;
    int64_t oh = -1, ow = -1, i;

    bt_ctx("isa=%s shape query %s", bt_isa_str(isa), cc->desc);
    CHECK_ST(bnn_conv2d_output_shape(&cc->p, &oh, &ow), BNN_OK);
    CHECK_EQ(oh, cc->oh);
    CHECK_EQ(ow, cc->ow);
    CHECK_ST(bnn_conv2d_output_shape(&cc->p, NULL, &ow), BNN_OK);
    CHECK_ST(bnn_conv2d_output_shape(&cc->p, &oh, NULL), BNN_OK);
    CHECK_ST(bnn_conv2d_output_shape(&cc->p, NULL, NULL), BNN_OK);

    /* The oracle itself: outputs that see only padding are 0 with zero
     * padding, and the sum of the filter's signs with +1 padding. */
    if (cc->p.pad_value == 0)
        for (i = 0; i < cc->p.n * cc->oh * cc->ow; i++)
            if (cc->padonly[i % (cc->oh * cc->ow)]) {
                int64_t f;
                for (f = 0; f < cc->p.o; f++) CHECK_EQ(cc->dot[i * cc->p.o + f], 0);
            }

    bt_epi_make_pm1(&d, cc->p.o, cc->kdot, tag);
    bt_ctx("isa=%s INT32 %s", bt_isa_str(isa), cc->desc);
    e = bt_epi_for(BNN_EPI_INT32, 0, &d);
    RUN(run_and_compare(cc, isa, &e));
    {   /* epi == NULL means INT32 */
        void *c = NULL;
        size_t bytes = 0, wsb = 0;
        void *ws;
        bt_ctx("isa=%s epi=NULL %s", bt_isa_str(isa), cc->desc);
        CHECK_ST(bnn_conv2d_workspace_size(&cc->p, 1, &wsb), BNN_OK);
        ws = bt_alloc(wsb);
        c = out_alloc(cc, BNN_EPI_INT32, &bytes);
        CHECK_ST(bnn_conv2d(&cc->p, cc->x, cc->w, NULL, c, ws, wsb), BNN_OK);
        RUN(check_out(cc, &e, c));
        free(c);
        free(ws);
    }
    for (v = 0; v < 4; v += 3) {
        bt_ctx("isa=%s FLOAT(scale%s, offset%s) %s", bt_isa_str(isa),
               (v & 1) ? "=NULL" : "", (v & 2) ? "=NULL" : "", cc->desc);
        e = bt_epi_for(BNN_EPI_FLOAT, v, &d);
        RUN(run_and_compare(cc, isa, &e));
    }
    for (v = 0; v < 2; v++) {
        bt_ctx("isa=%s BITS(flip%s) %s", bt_isa_str(isa), v ? "=NULL" : "", cc->desc);
        e = bt_epi_for(BNN_EPI_BITS, v, &d);
        RUN(run_and_compare(cc, isa, &e));
    }
    bt_ctx("isa=%s BITS(folded, mode %d) %s", bt_isa_str(isa), (int)(tag % 3), cc->desc);
    RUN(check_fold(cc, isa, (int)(tag % 3), tag + 17));
    bt_epi_free(&d);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Fixed and random cases                                               */
/* ------------------------------------------------------------------ */

typedef struct case_list {
    conv_case *v;
    int count;
} case_list;

static int check_ex(const conv_case *cc, bnn_isa isa, uint64_t tag);

static int cases_body(bnn_isa isa, void *vctx)
{
    const case_list *cl = (const case_list *)vctx;
    int i;
    for (i = 0; i < cl->count; i++) {
        RUN(check_case(&cl->v[i], isa, 100 + (uint64_t)i));
        if (i % 4 == 0) RUN(check_ex(&cl->v[i], isa, 300 + (uint64_t)i));
        if (i % 8 == 1) { /* small shapes with more threads than work */
            const conv_case *cc = &cl->v[i];
            bnn_epilogue e;
            void *c = NULL;
            size_t bytes = 0;
            memset(&e, 0, sizeof e);
            CHECK_ST(bnn_set_num_threads(3), BNN_OK);
            bt_ctx("isa=%s INT32 threads=3 %s", bt_isa_str(isa), cc->desc);
            RUN(run_conv_ws(cc, &e, 0, &c, &bytes));
            CHECK_ST(bnn_set_num_threads(1), BNN_OK);
            RUN(check_out(cc, &e, c));
            free(c);
        }
    }
    return 0;
}

/* Fixed geometries: n, h, w, c, o, kh, kw, sh, sw, dh, dw, pt, pb, pl, pr. */
static const int fixed[][15] = {
    /* pad 4 with a 3x3 kernel: the corner outputs see only padding */
    {1, 3, 3, 3, 5, 3, 3, 1, 1, 1, 1, 4, 4, 4, 4},
    {2, 5, 7, 65, 70, 3, 3, 2, 2, 1, 1, 4, 4, 4, 4},
    {1, 3, 5, 64, 1, 3, 3, 1, 2, 2, 1, 5, 5, 6, 6},
    /* non-square kernels */
    {1, 7, 9, 64, 70, 1, 3, 1, 2, 1, 2, 0, 0, 1, 1},
    {2, 9, 5, 130, 5, 5, 2, 3, 1, 2, 1, 2, 1, 0, 3},
    {1, 11, 13, 63, 1, 5, 5, 3, 3, 2, 2, 4, 0, 0, 4},
    {3, 5, 3, 1, 70, 2, 5, 1, 1, 1, 1, 0, 1, 2, 2},
    /* 1x1, stride 1, no padding (compared with bnn_gemm too) */
    {2, 5, 3, 130, 70, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0},
    /* kernel exactly the padded input: 1x1 output */
    {1, 3, 2, 65, 5, 5, 4, 1, 1, 1, 1, 1, 1, 1, 1},
    {2, 1, 1, 3, 3, 3, 3, 2, 3, 1, 1, 1, 1, 1, 1},
    /* stride past the kernel */
    {1, 7, 7, 3, 5, 1, 1, 3, 3, 1, 1, 1, 1, 1, 1},
    /* 1x1 input, 1x1 kernel */
    {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0},
    /* dilation 2 with padding past its reach, odd sizes */
    {1, 5, 7, 65, 5, 3, 3, 1, 2, 2, 2, 5, 5, 5, 1},
    /* multiple words of channels, 4x4 even kernel, several output words */
    {1, 6, 6, 130, 130, 4, 4, 2, 2, 1, 1, 1, 2, 2, 1},
    /* long rows: 9 taps x 16 words = 144 words per dot (past 124-word
     * byte-accumulator chunks) */
    {1, 4, 4, 1024, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},
    /* more than 1024 filters (several column blocks) */
    {1, 3, 3, 65, 1030, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},
};


/* bnn_conv2d_correction: corr[t*o + j] = c - 2*popcount(w[j][t]), the sum
 * of the signs of filter j's tap t; bnn_conv2d_ex with it (workspace of
 * the pad_value-1 size) or with NULL equals bnn_conv2d byte for byte. */
static int check_ex(const conv_case *cc, bnn_isa isa, uint64_t tag)
{
    const bnn_conv2d_params *p = &cc->p;
    int64_t taps = p->kh * p->kw, t, j, ch;
    int32_t *corr = (int32_t *)bt_alloc((size_t)(taps * p->o) * 4);
    bnn_conv2d_params p1 = *p;
    size_t ws_full = 0, ws_small = 0;
    void *ws_a, *ws_b;
    epi_data d;
    int kind;

    bt_ctx("isa=%s bnn_conv2d_correction %s", bt_isa_str(isa), cc->desc);
    for (t = 0; t < taps * p->o; t++) corr[t] = CANARY_I32;
    CHECK_ST(bnn_conv2d_correction(p, cc->w, corr), BNN_OK);
    for (t = 0; t < taps; t++)
        for (j = 0; j < p->o; j++) {
            int64_t want = 0;
            for (ch = 0; ch < p->c; ch++) want += (int64_t)cc->ws[(j * taps + t) * p->c + ch];
            CHECK_MSG(corr[t * p->o + j] == want, "corr[tap %" PRId64 "][filter %" PRId64
                      "] = %d, want %" PRId64, t, j, (int)corr[t * p->o + j], want);
        }
    p1.pad_value = 1;
    CHECK_ST(bnn_conv2d_workspace_size(p, 1, &ws_full), BNN_OK);
    CHECK_ST(bnn_conv2d_workspace_size(&p1, 1, &ws_small), BNN_OK);
    ws_a = bt_alloc(ws_full);
    ws_b = bt_alloc(ws_small);
    bt_epi_make_pm1(&d, p->o, cc->kdot, tag);
    for (kind = 0; kind < 3; kind++) {
        bnn_epilogue e = bt_epi_for(kind, 0, &d);
        void *ref = NULL, *o1, *o2;
        size_t bytes = 0, b1, b2;
        bt_ctx("isa=%s bnn_conv2d_ex kind=%d %s", bt_isa_str(isa), kind, cc->desc);
        RUN(run_conv(cc, &e, &ref, &bytes));
        o1 = out_alloc(cc, kind, &b1);
        CHECK_ST(bnn_conv2d_ex(p, cc->x, cc->w, corr, &e, o1, ws_b, ws_small), BNN_OK);
        CHECK_MSG(memcmp(o1, ref, bytes) == 0, "bnn_conv2d_ex(corr) differs from bnn_conv2d");
        o2 = out_alloc(cc, kind, &b2);
        CHECK_ST(bnn_conv2d_ex(p, cc->x, cc->w, NULL, &e, o2, ws_a, ws_full), BNN_OK);
        CHECK_MSG(memcmp(o2, ref, bytes) == 0, "bnn_conv2d_ex(NULL) differs from bnn_conv2d");
        free(ref);
        free(o1);
        free(o2);
    }
    bt_epi_free(&d);
    free(ws_a);
    free(ws_b);
    free(corr);
    return 0;
}

/* A 1x1, stride-1, unpadded convolution is bnn_gemm over the pixels. */
static int check_vs_gemm(const conv_case *cc)
{
    int64_t rows = cc->p.n * cc->p.h * cc->p.w, m = cc->p.o;
    int32_t *g = (int32_t *)bt_alloc((size_t)(rows * m) * 4);
    void *c = NULL;
    size_t bytes = 0;
    bnn_epilogue e;
    memset(&e, 0, sizeof e);
    bt_ctx("1x1 conv vs bnn_gemm %s", cc->desc);
    CHECK_ST(bnn_gemm(rows, m, cc->p.c, cc->x, cc->cw, cc->w, cc->cw, NULL, g, m),
             BNN_OK);
    RUN(run_conv(cc, &e, &c, &bytes));
    CHECK(bytes == (size_t)(rows * m) * 4);
    CHECK_MSG(memcmp(c, g, bytes) == 0, "1x1 conv differs from bnn_gemm");
    free(c);
    free(g);
    return 0;
}

static int fixed_body(bnn_isa isa, void *vctx)
{
    const case_list *cl = (const case_list *)vctx;
    int i, saw_padonly = 0;
    for (i = 0; i < cl->count; i++) {
        const conv_case *cc = &cl->v[i];
        int64_t q;
        RUN(check_case(cc, isa, 10 + (uint64_t)i));
        RUN(check_ex(cc, isa, 50 + (uint64_t)i));
        for (q = 0; q < cc->oh * cc->ow; q++) saw_padonly += cc->padonly[q];
        if (cc->p.kh == 1 && cc->p.kw == 1 && cc->p.stride_h == 1
            && cc->p.stride_w == 1 && cc->p.pad_top + cc->p.pad_bottom
            + cc->p.pad_left + cc->p.pad_right == 0)
            RUN(check_vs_gemm(cc));
    }
    /* The fixed list really has outputs that see only padding. */
    CHECK(saw_padonly > 0);
    return 0;
}

/* Explicit values for the all-padding corner: 3x3 input of +1 and -1
 * rows, 3x3 kernel, pad 4: output (0,0) sees only padding. */
static int corner_body(bnn_isa isa)
{
    int pv;
    for (pv = 0; pv < 2; pv++) {
        bnn_conv2d_params p = make_params(1, 3, 3, 3, 5, 3, 3, 1, 1, 1, 1, 4, 4, 4, 4, pv);
        conv_case cc;
        void *c = NULL;
        size_t bytes = 0;
        bnn_epilogue e;
        int64_t f, ch, t;
        case_make(&cc, &p, 77 + (uint64_t)pv);
        memset(&e, 0, sizeof e);
        bt_ctx("isa=%s corner pad_value=%d %s", bt_isa_str(isa), pv, cc.desc);
        CHECK_EQ(cc.oh, 9);
        CHECK_EQ(cc.ow, 9);
        RUN(run_conv(&cc, &e, &c, &bytes));
        for (f = 0; f < 5; f++) {
            /* pad_value 1: every tap is +1, so the dot is the sum of the
             * filter's signs; pad_value 0: exactly 0. */
            int64_t want = 0;
            if (pv)
                for (t = 0; t < 9; t++)
                    for (ch = 0; ch < 3; ch++) want += (int64_t)cc.ws[(f * 9 + t) * 3 + ch];
            CHECK_EQ(((int32_t *)c)[f], want);                 /* (0, 0) */
            CHECK_EQ(((int32_t *)c)[(9 * 9 - 1) * 5 + f], want); /* (8, 8) */
            CHECK_EQ(((int32_t *)c)[(0 * 9 + 8) * 5 + f], want); /* (0, 8) */
        }
        free(c);
        case_free(&cc);
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Threads and workspace                                                */
/* ------------------------------------------------------------------ */

static int thread_body(bnn_isa isa, void *vctx)
{
    const case_list *cl = (const case_list *)vctx;
    static const int counts[] = {2, 3};
    int ci, kind, k;
    for (k = 0; k < cl->count; k++) {
        const conv_case *cc = &cl->v[k];
        epi_data d;
        bt_epi_make_pm1(&d, cc->p.o, cc->kdot, 900 + (uint64_t)k);
        for (kind = 0; kind < 3; kind++) {
            bnn_epilogue e = bt_epi_for(kind, 0, &d);
            void *c1 = NULL;
            size_t bytes = 0, ws1 = 0, wsn = 0, ws0 = 0;
            CHECK_ST(bnn_set_num_threads(1), BNN_OK);
            bt_ctx("threads isa=%s kind=%d threads=1 %s", bt_isa_str(isa), kind, cc->desc);
            RUN(run_conv_ws(cc, &e, 1, &c1, &bytes));
            RUN(check_out(cc, &e, c1));
            CHECK_ST(bnn_conv2d_workspace_size(&cc->p, 1, &ws1), BNN_OK);
            for (ci = 0; ci < 2; ci++) {
                void *c = NULL;
                size_t b2 = 0;
                int t = counts[ci];
                CHECK_ST(bnn_set_num_threads(t), BNN_OK);
                bt_ctx("threads isa=%s kind=%d threads=%d %s", bt_isa_str(isa), kind,
                       t, cc->desc);
                CHECK_ST(bnn_conv2d_workspace_size(&cc->p, t, &wsn), BNN_OK);
                CHECK_ST(bnn_conv2d_workspace_size(&cc->p, 0, &ws0), BNN_OK);
                CHECK_MSG(ws0 == wsn, "workspace_size(p, 0) = %zu but (p, %d) = %zu "
                          "with %d threads set", ws0, t, wsn, t);
                /* A workspace for all threads... */
                RUN(run_conv_ws(cc, &e, 0, &c, &b2));
                CHECK(b2 == bytes);
                if (memcmp(c, c1, bytes) != 0) RUN(check_out(cc, &e, c));
                CHECK_MSG(memcmp(c, c1, bytes) == 0,
                          "%d threads differ from 1 thread", t);
                free(c);
                /* ...for one thread fewer... */
                bt_ctx("threads isa=%s kind=%d threads=%d ws for %d %s", bt_isa_str(isa),
                       kind, t, t - 1, cc->desc);
                RUN(run_conv_ws(cc, &e, t - 1, &c, &b2));
                CHECK_MSG(memcmp(c, c1, bytes) == 0,
                          "%d threads with a %d-thread workspace differ", t, t - 1);
                free(c);
                /* ...and exactly the one-thread size (fewer threads run). */
                bt_ctx("threads isa=%s kind=%d threads=%d ws=%zu (1-thread size) %s",
                       bt_isa_str(isa), kind, t, ws1, cc->desc);
                RUN(run_conv_ws(cc, &e, 1, &c, &b2));
                if (memcmp(c, c1, bytes) != 0) RUN(check_out(cc, &e, c));
                CHECK_MSG(memcmp(c, c1, bytes) == 0,
                          "%d threads with a 1-thread workspace differ", t);
                free(c);
            }
            CHECK_ST(bnn_set_num_threads(1), BNN_OK);
            free(c1);
        }
        bt_epi_free(&d);
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Errors and zero batch                                                */
/* ------------------------------------------------------------------ */

#define NOUT 160

typedef struct err_bufs {
    int32_t ci[NOUT];
    float cf[NOUT];
    uint64_t cb[NOUT];
} err_bufs;

static void bufs_fill(err_bufs *b)
{
    int i;
    for (i = 0; i < NOUT; i++) b->ci[i] = CANARY_I32;
    bt_fill_fbits(b->cf, NOUT, CANARY_F32);
    bt_fill_u64(b->cb, NOUT, CANARY_W);
}

static int bufs_unchanged(const err_bufs *b)
{
    int i;
    for (i = 0; i < NOUT; i++) {
        CHECK_MSG(b->ci[i] == CANARY_I32, "int32 output [%d] written", i);
        CHECK_MSG(bt_f2u(b->cf[i]) == CANARY_F32, "float output [%d] written", i);
        CHECK_MSG(b->cb[i] == CANARY_W, "bits output [%d] written", i);
    }
    return 0;
}

/* bnn_conv2d with p on all three epilogues must give `want`, and the
 * shape query and workspace query too if `queries`; nothing written. */
static int expect_err(const bnn_conv2d_params *p, const uint64_t *x, const uint64_t *w,
                      err_bufs *b, void *ws, size_t wsb, bnn_status want, int queries,
                      const char *what)
{
    bnn_epilogue ei, ef, eb;
    int32_t th[8] = {0};
    int64_t oh = -77, ow = -77;
    size_t bytes = 12345;
    memset(&ei, 0, sizeof ei);
    memset(&ef, 0, sizeof ef);
    ef.kind = BNN_EPI_FLOAT;
    memset(&eb, 0, sizeof eb);
    eb.kind = BNN_EPI_BITS;
    eb.thresh = th;
    bt_ctx("errors isa=%s: %s", bnn_isa_name(), what);
    bufs_fill(b);
    CHECK_ST(bnn_conv2d(p, x, w, &ei, b->ci, ws, wsb), want);
    CHECK_ST(bnn_conv2d(p, x, w, &ef, b->cf, ws, wsb), want);
    CHECK_ST(bnn_conv2d(p, x, w, &eb, b->cb, ws, wsb), want);
    CHECK_ST(bnn_conv2d(p, x, w, NULL, b->ci, ws, wsb), want);
    RUN(bufs_unchanged(b));
    if (queries) {
        CHECK_ST(bnn_conv2d_output_shape(p, &oh, &ow), want);
        CHECK_MSG(oh == -77 && ow == -77, "shape query wrote oh/ow on error");
        CHECK_ST(bnn_conv2d_workspace_size(p, 1, &bytes), want);
        CHECK_MSG(bytes == 12345, "workspace query wrote *bytes on error");
    }
    return 0;
}

static int errors_body(bnn_isa isa)
{
    /* Valid base: n=2 5x5x70 -> 3 filters 3x3, pad 1: output 2x5x5x3. */
    const bnn_conv2d_params base = make_params(2, 5, 5, 70, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0);
    static uint64_t x[2 * 5 * 5 * 2], w[3 * 3 * 3 * 2];
    static err_bufs b;
    bnn_conv2d_params p;
    size_t ws1 = 0, wsb;
    unsigned char *wsbuf;
    int i;
    char what[96];

    (void)isa;
    memset(x, 0, sizeof x);
    memset(w, 0, sizeof w);
    bt_ctx("errors isa=%s: base workspace", bt_isa_str(isa));
    CHECK_ST(bnn_conv2d_workspace_size(&base, 1, &ws1), BNN_OK);
    wsb = ws1;
    wsbuf = (unsigned char *)bt_alloc(ws1 + 16);

    /* Sanity: the base is valid. */
    bufs_fill(&b);
    CHECK_ST(bnn_conv2d(&base, x, w, NULL, b.ci, wsbuf, wsb), BNN_OK);
    /* All +1 data, zero padding: 70 times the taps inside the input. */
    for (i = 0; i < 150; i++) {
        int y = (i / 15) % 5, xx = (i / 3) % 5;
        int ny = 3 - (y == 0) - (y == 4), nx = 3 - (xx == 0) - (xx == 4);
        CHECK_EQ(b.ci[i], 70 * ny * nx);
    }
    CHECK_EQ(b.ci[150], CANARY_I32); /* nothing past the output */

    /* NULL */
    bt_ctx("errors isa=%s: NULL", bt_isa_str(isa));
    bufs_fill(&b);
    CHECK_ST(bnn_conv2d(NULL, x, w, NULL, b.ci, wsbuf, wsb), BNN_ERR_NULL);
    CHECK_ST(bnn_conv2d(&base, NULL, w, NULL, b.ci, wsbuf, wsb), BNN_ERR_NULL);
    CHECK_ST(bnn_conv2d(&base, x, NULL, NULL, b.ci, wsbuf, wsb), BNN_ERR_NULL);
    CHECK_ST(bnn_conv2d(&base, x, w, NULL, NULL, wsbuf, wsb), BNN_ERR_NULL);
    {
        int64_t oh;
        size_t bytes;
        bnn_epilogue eb;
        memset(&eb, 0, sizeof eb);
        eb.kind = BNN_EPI_BITS; /* thresh missing */
        CHECK_ST(bnn_conv2d(&base, x, w, &eb, b.cb, wsbuf, wsb), BNN_ERR_NULL);
        CHECK_ST(bnn_conv2d_output_shape(NULL, &oh, &oh), BNN_ERR_NULL);
        CHECK_ST(bnn_conv2d_workspace_size(NULL, 1, &bytes), BNN_ERR_NULL);
        CHECK_ST(bnn_conv2d_workspace_size(&base, 1, NULL), BNN_ERR_NULL);
    }
    if (ws1 > 0) {
        bnn_status s = bnn_conv2d(&base, x, w, NULL, b.ci, NULL, wsb);
        CHECK_MSG(s == BNN_ERR_NULL || s == BNN_ERR_INVALID,
                  "NULL workspace of %zu bytes: got %d (%s)", wsb, (int)s,
                  bnn_status_string(s));
        s = bnn_conv2d(&base, x, w, NULL, b.ci, NULL, 0);
        CHECK_MSG(s == BNN_ERR_NULL || s == BNN_ERR_INVALID,
                  "NULL workspace of 0 bytes: got %d (%s)", (int)s, bnn_status_string(s));
    }
    RUN(bufs_unchanged(&b));

    /* Workspace too small or misaligned. */
    if (ws1 > 0) {
        bt_ctx("errors isa=%s: workspace (needs %zu)", bt_isa_str(isa), ws1);
        RUN(expect_err(&base, x, w, &b, wsbuf, ws1 - 1, BNN_ERR_INVALID, 0,
                       "workspace one byte short"));
        RUN(expect_err(&base, x, w, &b, wsbuf, 0, BNN_ERR_INVALID, 0,
                       "workspace of 0 bytes"));
        RUN(expect_err(&base, x, w, &b, wsbuf + 1, ws1, BNN_ERR_INVALID, 0,
                       "workspace misaligned by 1"));
        RUN(expect_err(&base, x, w, &b, wsbuf + 4, ws1, BNN_ERR_INVALID, 0,
                       "workspace misaligned by 4"));
    } else {
        printf("  note: bnn_conv2d_workspace_size = 0 for the error base case; "
               "short-workspace errors not exercised there\n");
    }

    /* SHAPE: kernel larger than the padded input, negative sizes, zero or
     * negative kernel. */
    p = base; p.kh = 8;
    RUN(expect_err(&p, x, w, &b, wsbuf, wsb, BNN_ERR_SHAPE, 1, "kh 8 > 5 + 2 padding"));
    p = base; p.kw = 7; p.pad_left = 0;
    RUN(expect_err(&p, x, w, &b, wsbuf, wsb, BNN_ERR_SHAPE, 1, "kw 7 > 5 + 1 padding"));
    p = base; p.dilation_h = 4; /* reach 9 > 7 */
    RUN(expect_err(&p, x, w, &b, wsbuf, wsb, BNN_ERR_SHAPE, 1, "dilated reach 9 > 7"));
    p = base; p.dilation_w = 2; p.kw = 4; p.pad_left = 0; p.pad_right = 0; /* reach 7 > 5 */
    RUN(expect_err(&p, x, w, &b, wsbuf, wsb, BNN_ERR_SHAPE, 1, "dilated reach 7 > 5 (w)"));
    p = base; p.kh = 0;
    RUN(expect_err(&p, x, w, &b, wsbuf, wsb, BNN_ERR_SHAPE, 1, "kh = 0"));
    p = base; p.kw = 0;
    RUN(expect_err(&p, x, w, &b, wsbuf, wsb, BNN_ERR_SHAPE, 1, "kw = 0"));
    p = base; p.kw = -3;
    RUN(expect_err(&p, x, w, &b, wsbuf, wsb, BNN_ERR_SHAPE, 1, "kw = -3"));
    p = base; p.n = -1;
    RUN(expect_err(&p, x, w, &b, wsbuf, wsb, BNN_ERR_SHAPE, 1, "n = -1"));
    p = base; p.h = -1;
    RUN(expect_err(&p, x, w, &b, wsbuf, wsb, BNN_ERR_SHAPE, 1, "h = -1"));
    p = base; p.w = INT64_MIN;
    RUN(expect_err(&p, x, w, &b, wsbuf, wsb, BNN_ERR_SHAPE, 1, "w = INT64_MIN"));
    p = base; p.c = -1;
    RUN(expect_err(&p, x, w, &b, wsbuf, wsb, BNN_ERR_SHAPE, 1, "c = -1"));
    p = base; p.o = -1;
    RUN(expect_err(&p, x, w, &b, wsbuf, wsb, BNN_ERR_SHAPE, 1, "o = -1"));

    /* INVALID: stride, dilation, padding, pad_value, pad_byte, reserved. */
    {
        static const int32_t bad_sd[] = {0, -1, INT32_MIN};
        for (i = 0; i < 3; i++) {
            snprintf(what, sizeof what, "stride_h = %d", (int)bad_sd[i]);
            p = base; p.stride_h = bad_sd[i];
            RUN(expect_err(&p, x, w, &b, wsbuf, wsb, BNN_ERR_INVALID, 1, what));
            snprintf(what, sizeof what, "stride_w = %d", (int)bad_sd[i]);
            p = base; p.stride_w = bad_sd[i];
            RUN(expect_err(&p, x, w, &b, wsbuf, wsb, BNN_ERR_INVALID, 1, what));
            snprintf(what, sizeof what, "dilation_h = %d", (int)bad_sd[i]);
            p = base; p.dilation_h = bad_sd[i];
            RUN(expect_err(&p, x, w, &b, wsbuf, wsb, BNN_ERR_INVALID, 1, what));
            snprintf(what, sizeof what, "dilation_w = %d", (int)bad_sd[i]);
            p = base; p.dilation_w = bad_sd[i];
            RUN(expect_err(&p, x, w, &b, wsbuf, wsb, BNN_ERR_INVALID, 1, what));
        }
    }
    p = base; p.pad_top = -1;
    RUN(expect_err(&p, x, w, &b, wsbuf, wsb, BNN_ERR_INVALID, 1, "pad_top = -1"));
    p = base; p.pad_bottom = -1;
    RUN(expect_err(&p, x, w, &b, wsbuf, wsb, BNN_ERR_INVALID, 1, "pad_bottom = -1"));
    p = base; p.pad_left = INT32_MIN;
    RUN(expect_err(&p, x, w, &b, wsbuf, wsb, BNN_ERR_INVALID, 1, "pad_left = INT32_MIN"));
    p = base; p.pad_right = -2;
    RUN(expect_err(&p, x, w, &b, wsbuf, wsb, BNN_ERR_INVALID, 1, "pad_right = -2"));
    p = base; p.pad_top = -1; p.pad_bottom = 1; /* sums to the base's reach */
    RUN(expect_err(&p, x, w, &b, wsbuf, wsb, BNN_ERR_INVALID, 1, "pad_top = -1, bottom 1"));
    p = base; p.pad_value = 2;
    RUN(expect_err(&p, x, w, &b, wsbuf, wsb, BNN_ERR_INVALID, 1, "pad_value = 2"));
    p = base; p.pad_value = -1;
    RUN(expect_err(&p, x, w, &b, wsbuf, wsb, BNN_ERR_INVALID, 1, "pad_value = -1"));
    for (i = 0; i < 4; i++) {
        snprintf(what, sizeof what, "reserved[%d] = 1", i);
        p = base; p.reserved[i] = 1;
        RUN(expect_err(&p, x, w, &b, wsbuf, wsb, BNN_ERR_INVALID, 1, what));
    }
    /* Epilogue: unknown kind, reserved fields. */
    {
        bnn_epilogue e;
        int q;
        bt_ctx("errors isa=%s: epilogue", bt_isa_str(isa));
        bufs_fill(&b);
        memset(&e, 0, sizeof e);
        e.kind = 3;
        CHECK_ST(bnn_conv2d(&base, x, w, &e, b.ci, wsbuf, wsb), BNN_ERR_INVALID);
        e.kind = -1;
        CHECK_ST(bnn_conv2d(&base, x, w, &e, b.ci, wsbuf, wsb), BNN_ERR_INVALID);
        memset(&e, 0, sizeof e);
        e.reserved = 1;
        CHECK_ST(bnn_conv2d(&base, x, w, &e, b.ci, wsbuf, wsb), BNN_ERR_INVALID);
        for (q = 0; q < 3; q++) {
            memset(&e, 0, sizeof e);
            e.pad_[q] = &b;
            CHECK_ST(bnn_conv2d(&base, x, w, &e, b.ci, wsbuf, wsb), BNN_ERR_INVALID);
        }
        RUN(bufs_unchanged(&b));
    }

    /* OVERFLOW: sizes whose products overflow.  Small dummy buffers only:
     * validation must fail before anything is touched.  The workspace
     * query may succeed (workspace need not depend on all sizes); when it
     * does with a small size, that exact workspace is passed so that only
     * OVERFLOW is a correct answer. */
    {
        static const struct { int64_t n, h, w, c, o, kh, kw; int pb; const char *what; } ov[] = {
            {(int64_t)1 << 40, (int64_t)1 << 12, (int64_t)1 << 12, 64, 1, 1, 1, 0,
             "n*h*w*c = 2^70"},
            {1, (int64_t)1 << 32, (int64_t)1 << 32, 1, 1, 1, 1, 0, "h*w = 2^64"},
            {(int64_t)1 << 62, 2, 2, 2, 1, 1, 1, 0, "n = 2^62, n*h*w*c = 2^65"},
            {1, 1, 1, 1, (int64_t)1 << 62, 1, 1, 0, "o = 2^62 (output bytes)"},
            {1, (int64_t)1 << 12, (int64_t)1 << 12, 1, (int64_t)1 << 40,
             (int64_t)1 << 12, (int64_t)1 << 12, 0, "o*kh*kw = 2^64 (filter bytes)"},
            {1, 1, 1, ((int64_t)1 << 31), 1, 1, 1, 0, "kh*kw*c = 2^31 > INT32_MAX"},
            {1, 1, 1, INT64_MAX, 1, 1, 1, 0, "c = INT64_MAX"},
            {1, INT64_MAX, 1, 1, 1, 1, 1, 1, "h + pad overflows"},
        };
        size_t q;
        for (q = 0; q < sizeof ov / sizeof ov[0]; q++) {
            size_t need = 0;
            bnn_status sq;
            void *ws = wsbuf;
            size_t bytes = wsb;
            unsigned char *own = NULL;
            p = make_params(ov[q].n, ov[q].h, ov[q].w, ov[q].c, ov[q].o, ov[q].kh,
                            ov[q].kw, 1, 1, 1, 1, 0, ov[q].pb, 0, 0, 1);
            bt_ctx("errors isa=%s: overflow %s", bt_isa_str(isa), ov[q].what);
            sq = bnn_conv2d_workspace_size(&p, 1, &need);
            CHECK_MSG(sq == BNN_OK || sq == BNN_ERR_OVERFLOW,
                      "workspace query: %d (%s)", (int)sq, bnn_status_string(sq));
            if (sq == BNN_OK && need <= ((size_t)1 << 20)) {
                own = (unsigned char *)bt_alloc(need);
                ws = own;
                bytes = need;
            }
            bufs_fill(&b);
            {
                bnn_status s = bnn_conv2d(&p, x, w, NULL, b.ci, ws, bytes);
                if (sq == BNN_OK && need > ((size_t)1 << 20))
                    CHECK_MSG(s == BNN_ERR_OVERFLOW || s == BNN_ERR_INVALID,
                              "got %d (%s)", (int)s, bnn_status_string(s));
                else
                    CHECK_MSG(s == BNN_ERR_OVERFLOW, "got %d (%s), want OVERFLOW",
                              (int)s, bnn_status_string(s));
            }
            RUN(bufs_unchanged(&b));
            free(own);
        }
        /* The shape query overflows when h + padding does. */
        {
            int64_t oh = -77;
            p = make_params(1, INT64_MAX, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0);
            bt_ctx("errors isa=%s: shape query h=INT64_MAX pad 1+1", bt_isa_str(isa));
            CHECK_ST(bnn_conv2d_output_shape(&p, &oh, NULL), BNN_ERR_OVERFLOW);
            CHECK_EQ(oh, -77);
        }
    }
    free(wsbuf);
    return 0;
}

static int ex_errors_body(bnn_isa isa)
{
    const bnn_conv2d_params base = make_params(2, 5, 5, 70, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0);
    static uint64_t x[2 * 5 * 5 * 2], w[3 * 3 * 3 * 2];
    static err_bufs b;
    int32_t corr[27], i;
    bnn_conv2d_params p;
    (void)isa;
    for (i = 0; i < 27; i++) corr[i] = CANARY_I32;
    bt_ctx("bnn_conv2d_correction errors isa=%s", bt_isa_str(isa));
    CHECK_ST(bnn_conv2d_correction(NULL, w, corr), BNN_ERR_NULL);
    CHECK_ST(bnn_conv2d_correction(&base, NULL, corr), BNN_ERR_NULL);
    CHECK_ST(bnn_conv2d_correction(&base, w, NULL), BNN_ERR_NULL);
    p = base; p.stride_w = 0;
    CHECK_ST(bnn_conv2d_correction(&p, w, corr), BNN_ERR_INVALID);
    p = base; p.kh = 0;
    CHECK_ST(bnn_conv2d_correction(&p, w, corr), BNN_ERR_SHAPE);
    p = base; p.reserved[0] = 1;
    CHECK_ST(bnn_conv2d_correction(&p, w, corr), BNN_ERR_INVALID);
    p = base; p.pad_value = 3;
    CHECK_ST(bnn_conv2d_correction(&p, w, corr), BNN_ERR_INVALID);
    for (i = 0; i < 27; i++) CHECK_EQ(corr[i], CANARY_I32);
    CHECK_ST(bnn_conv2d_correction(&base, w, corr), BNN_OK);
    for (i = 0; i < 27; i++) CHECK_EQ(corr[i], 70); /* all +1 weights */
    {
        size_t wsb = 0;
        void *ws;
        p = base;
        p.pad_value = 1;
        CHECK_ST(bnn_conv2d_workspace_size(&p, 1, &wsb), BNN_OK);
        ws = bt_alloc(wsb);
        bufs_fill(&b);
        bt_ctx("bnn_conv2d_ex errors isa=%s", bt_isa_str(isa));
        CHECK_ST(bnn_conv2d_ex(NULL, x, w, corr, NULL, b.ci, ws, wsb), BNN_ERR_NULL);
        CHECK_ST(bnn_conv2d_ex(&base, NULL, w, corr, NULL, b.ci, ws, wsb), BNN_ERR_NULL);
        CHECK_ST(bnn_conv2d_ex(&base, x, w, corr, NULL, NULL, ws, wsb), BNN_ERR_NULL);
        p = base; p.pad_top = -1;
        CHECK_ST(bnn_conv2d_ex(&p, x, w, corr, NULL, b.ci, ws, wsb), BNN_ERR_INVALID);
        p = base; p.kw = 9;
        CHECK_ST(bnn_conv2d_ex(&p, x, w, corr, NULL, b.ci, ws, wsb), BNN_ERR_SHAPE);
        RUN(bufs_unchanged(&b));
        /* all +1 data, zero padding, with the correction */
        CHECK_ST(bnn_conv2d_ex(&base, x, w, corr, NULL, b.ci, ws, wsb), BNN_OK);
        CHECK_EQ(b.ci[0], 70 * 4);
        CHECK_EQ(b.ci[(2 * 5 + 2) * 3], 70 * 9);
        free(ws);
    }
    return 0;
}

/* bnn.h: the shape query rejects pad_byte outside 0..255 and bnn_conv2d
 * has "errors as for the shape query", so the binary convolution rejects
 * it as well (even though it does not use pad_byte). */
static int pad_byte_body(bnn_isa isa)
{
    const bnn_conv2d_params base = make_params(2, 5, 5, 70, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0);
    static uint64_t x[2 * 5 * 5 * 2], w[3 * 3 * 3 * 2];
    static err_bufs b;
    static const int32_t bad[] = {256, -1, INT32_MAX, INT32_MIN};
    bnn_conv2d_params p;
    size_t wsb = 0;
    unsigned char *ws;
    char what[64];
    int i;
    (void)isa;
    CHECK_ST(bnn_conv2d_workspace_size(&base, 1, &wsb), BNN_OK);
    ws = (unsigned char *)bt_alloc(wsb);
    for (i = 0; i < 4; i++) {
        p = base;
        p.pad_byte = bad[i];
        snprintf(what, sizeof what, "binary conv, pad_byte = %d", (int)bad[i]);
        RUN(expect_err(&p, x, w, &b, ws, wsb, BNN_ERR_INVALID, 1, what));
    }
    for (i = 0; i < 256; i += 85) { /* in range: accepted, ignored */
        p = base;
        p.pad_byte = i;
        bt_ctx("binary conv, pad_byte = %d", i);
        CHECK_ST(bnn_conv2d(&p, x, w, NULL, b.ci, ws, wsb), BNN_OK);
    }
    free(ws);
    return 0;
}

static int zero_batch_body(bnn_isa isa)
{
    int pv;
    for (pv = 0; pv < 2; pv++) {
        bnn_conv2d_params p = make_params(0, 5, 7, 65, 70, 3, 3, 2, 1, 1, 2, 1, 2, 3, 0, pv);
        static err_bufs b;
        static uint64_t x[4], w[70 * 9 * 2];
        int64_t oh = -1, ow = -1;
        size_t wsb = 0;
        void *ws;
        bnn_epilogue ef, eb;
        int32_t th[70] = {0};
        memset(w, 0, sizeof w);
        memset(x, 0, sizeof x);
        memset(&ef, 0, sizeof ef);
        ef.kind = BNN_EPI_FLOAT;
        memset(&eb, 0, sizeof eb);
        eb.kind = BNN_EPI_BITS;
        eb.thresh = th;
        bt_ctx("zero batch isa=%s pad_value=%d", bt_isa_str(isa), pv);
        CHECK_ST(bnn_conv2d_output_shape(&p, &oh, &ow), BNN_OK);
        CHECK_EQ(oh, out_dim(5, 1, 2, 3, 1, 2));
        CHECK_EQ(ow, out_dim(7, 3, 0, 3, 2, 1));
        CHECK_ST(bnn_conv2d_workspace_size(&p, 1, &wsb), BNN_OK);
        ws = bt_alloc(wsb);
        bufs_fill(&b);
        CHECK_ST(bnn_conv2d(&p, x, w, NULL, b.ci, ws, wsb), BNN_OK);
        CHECK_ST(bnn_conv2d(&p, x, w, &ef, b.cf, ws, wsb), BNN_OK);
        CHECK_ST(bnn_conv2d(&p, x, w, &eb, b.cb, ws, wsb), BNN_OK);
        RUN(bufs_unchanged(&b));
        free(ws);
    }
    return 0;
}

/* The shape query on a few hand-computed geometries. */
static int test_shapes(void)
{
    static const struct { int p[15]; int64_t oh, ow; } t[] = {
        /* n h w c o kh kw sh sw dh dw pt pb pl pr */
        {{1, 5, 5, 1, 1, 3, 3, 1, 1, 1, 1, 0, 0, 0, 0}, 3, 3},
        {{1, 5, 5, 1, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1}, 5, 5},
        {{1, 7, 8, 1, 1, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1}, 4, 4},
        {{1, 7, 9, 1, 1, 3, 2, 3, 2, 2, 1, 0, 0, 0, 0}, 1, 4},
        {{1, 3, 3, 1, 1, 3, 3, 1, 1, 1, 1, 4, 4, 4, 4}, 9, 9},
        {{1, 1, 1, 1, 1, 5, 5, 1, 1, 1, 1, 2, 2, 2, 2}, 1, 1},
        {{1, 1, 1, 1, 1, 1, 1, 3, 3, 2, 2, 4, 0, 0, 4}, 2, 2},
        {{1, 10, 10, 1, 1, 5, 5, 2, 3, 2, 1, 0, 1, 3, 0}, 2, 3},
    };
    size_t i;
    for (i = 0; i < sizeof t / sizeof t[0]; i++) {
        const int *a = t[i].p;
        bnn_conv2d_params p = make_params(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7],
                                          a[8], a[9], a[10], a[11], a[12], a[13], a[14], 0);
        int64_t oh = -1, ow = -1;
        bt_ctx("shape query case %d", (int)i);
        CHECK_ST(bnn_conv2d_output_shape(&p, &oh, &ow), BNN_OK);
        CHECK_EQ(oh, t[i].oh);
        CHECK_EQ(ow, t[i].ow);
    }
    return 0;
}

/* bnn_conv2d_check() names the field bnn_conv2d_output_shape() refuses,
 * with its status, and says "valid" otherwise. */
static int conv_report(const bnn_conv2d_params *p, bnn_status want, const char *field,
                       const char *message)
{
    bnn_param_report r;
    int64_t oh, ow;
    bt_ctx("bnn_conv2d_check: %s", message);
    memset(&r, 0x5a, sizeof r);
    CHECK_ST(bnn_conv2d_check(p, &r), want);
    CHECK_ST(r.status, want);
    CHECK_ST(bnn_conv2d_output_shape(p, &oh, &ow), want);
    CHECK_ST(bnn_conv2d_check(p, NULL), want);
    CHECK_MSG(strcmp(r.field, field) == 0, "field '%s', expected '%s'", r.field, field);
    CHECK_MSG(strcmp(r.message, message) == 0, "message '%s', expected '%s'", r.message,
              message);
    return 0;
}

static int test_reports(void)
{
    const bnn_conv2d_params base = make_params(2, 5, 5, 70, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0);
    bnn_conv2d_params p;
    bnn_param_report r;
    RUN(conv_report(&base, BNN_OK, "", "valid"));
    RUN(conv_report(NULL, BNN_ERR_NULL, "", "the parameters are NULL"));
    p = base; p.reserved[2] = 7;
    RUN(conv_report(&p, BNN_ERR_INVALID, "reserved[2]", "reserved[2] must be 0, got 7"));
    p = base; p.stride_h = 0;
    RUN(conv_report(&p, BNN_ERR_INVALID, "stride_h", "stride_h must be >= 1, got 0"));
    p = base; p.stride_w = -1;
    RUN(conv_report(&p, BNN_ERR_INVALID, "stride_w", "stride_w must be >= 1, got -1"));
    p = base; p.dilation_h = 0;
    RUN(conv_report(&p, BNN_ERR_INVALID, "dilation_h", "dilation_h must be >= 1, got 0"));
    p = base; p.dilation_w = INT32_MIN;
    RUN(conv_report(&p, BNN_ERR_INVALID, "dilation_w",
                    "dilation_w must be >= 1, got -2147483648"));
    p = base; p.pad_top = -1;
    RUN(conv_report(&p, BNN_ERR_INVALID, "pad_top", "pad_top must be >= 0, got -1"));
    p = base; p.pad_right = -5;
    RUN(conv_report(&p, BNN_ERR_INVALID, "pad_right", "pad_right must be >= 0, got -5"));
    p = base; p.pad_byte = 256;
    RUN(conv_report(&p, BNN_ERR_INVALID, "pad_byte", "pad_byte must be in 0..255, got 256"));
    p = base; p.pad_value = 2;
    RUN(conv_report(&p, BNN_ERR_INVALID, "pad_value", "pad_value must be 0 or 1, got 2"));
    p = base; p.n = -1;
    RUN(conv_report(&p, BNN_ERR_SHAPE, "n", "n must be >= 0, got -1"));
    p = base; p.c = 0;
    RUN(conv_report(&p, BNN_ERR_SHAPE, "c", "c must be >= 1, got 0"));
    p = base; p.o = -1;
    RUN(conv_report(&p, BNN_ERR_SHAPE, "o", "o must be >= 0, got -1"));
    p = base; p.kw = 0;
    RUN(conv_report(&p, BNN_ERR_SHAPE, "kw", "kw must be >= 1, got 0"));
    p = base; p.kh = 8;
    RUN(conv_report(&p, BNN_ERR_SHAPE, "kh", "kh must fit in the padded input (7 rows), got "
                    "8 taps spanning 8 rows at dilation 1"));
    p = base; p.dilation_w = 4;
    RUN(conv_report(&p, BNN_ERR_SHAPE, "kw", "kw must fit in the padded input (7 columns), got "
                    "3 taps spanning 9 columns at dilation 4"));
    p = base; p.n = INT64_MAX;
    RUN(conv_report(&p, BNN_ERR_OVERFLOW, "", "the input or filter extents overflow"));
    /* the first failure in the order of the checks: stride before padding */
    p = base; p.pad_top = -1; p.stride_h = 0;
    RUN(conv_report(&p, BNN_ERR_INVALID, "stride_h", "stride_h must be >= 1, got 0"));
    /* u8 convolutions run the same checks */
    p = base; p.pad_byte = -1;
    CHECK_ST(bnn_conv2d_check(&p, &r), BNN_ERR_INVALID);
    {
        size_t bytes;
        CHECK_ST(bnn_conv2d_u8_workspace_size(&p, 1, &bytes), r.status);
    }
    CHECK_MSG(strcmp(r.field, "pad_byte") == 0 && r.found == -1, "field '%s' found %lld",
              r.field, (long long)r.found);
    return 0;
}

int main(int argc, char **argv)
{
    case_list fixed_cases, rand_cases, thread_cases;
    int i, n_fixed = (int)(sizeof fixed / sizeof fixed[0]);
    const int n_rand = 160;
    int fails = 0;

    bt_init(argc, argv, "test_conv2d");
    if (bnn_get_num_threads() != 1) {
        fprintf(stderr, "test_conv2d: expected 1 thread by default\n");
        return 1;
    }
    fails += test_shapes() != 0;
    fails += test_reports() != 0;
    fails += for_each_isa(errors_body) != 0;
    fails += for_each_isa(pad_byte_body) != 0;
    fails += for_each_isa(ex_errors_body) != 0;
    fails += for_each_isa(zero_batch_body) != 0;
    fails += for_each_isa(corner_body) != 0;

    /* Fixed cases, each with both pad values. */
    fixed_cases.count = 2 * n_fixed;
    fixed_cases.v = (conv_case *)bt_alloc(sizeof(conv_case) * (size_t)fixed_cases.count);
    for (i = 0; i < fixed_cases.count; i++) {
        const int *a = fixed[i / 2];
        bnn_conv2d_params p = make_params(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7],
                                          a[8], a[9], a[10], a[11], a[12], a[13], a[14],
                                          i % 2);
        case_make(&fixed_cases.v[i], &p, 1000 + (uint64_t)i);
    }
    fails += for_each_isa_ctx("fixed geometries", fixed_body, &fixed_cases) != 0;

    /* Random geometries. */
    rand_cases.count = n_rand;
    rand_cases.v = (conv_case *)bt_alloc(sizeof(conv_case) * (size_t)n_rand);
    for (i = 0; i < n_rand; i++) {
        bt_rng r = bt_stream(5000 + (uint64_t)i);
        bnn_conv2d_params p = rand_params(&r);
        case_make(&rand_cases.v[i], &p, 6000 + (uint64_t)i);
    }
    fails += for_each_isa_ctx("random geometries", cases_body, &rand_cases) != 0;

    /* Threads: N=2, 16x16, C=128, O=128, 3x3 (rows*o*words = 512*128*18 >
     * 2^20, above the GEMM driver's parallel threshold), both pad values. */
    thread_cases.count = 2;
    thread_cases.v = (conv_case *)bt_alloc(sizeof(conv_case) * 2);
    for (i = 0; i < 2; i++) {
        bnn_conv2d_params p = make_params(2, 16, 16, 128, 128, 3, 3, 1, 1, 1, 1, 1, 1,
                                          1, 1, i);
        case_make(&thread_cases.v[i], &p, 8000 + (uint64_t)i);
    }
    fails += for_each_isa_ctx("threads 1/2/3, 1-thread workspace", thread_body,
                              &thread_cases) != 0;
    CHECK_ST(bnn_set_num_threads(1), BNN_OK);

    for (i = 0; i < fixed_cases.count; i++) case_free(&fixed_cases.v[i]);
    for (i = 0; i < rand_cases.count; i++) case_free(&rand_cases.v[i]);
    for (i = 0; i < thread_cases.count; i++) case_free(&thread_cases.v[i]);
    free(fixed_cases.v);
    free(rand_cases.v);
    free(thread_cases.v);
    if (fails) {
        printf("test_conv2d: %d test group(s) FAILED (seed %" PRIu64 ")\n", fails, bt_seed);
        return 1;
    }
    printf("test_conv2d: all passed\n");
    return 0;
}
