/*
 * test_pool.c -- bnn_pool2d_output_shape, bnn_maxpool2d_bits and
 * bnn_maxpool2d_i32.
 *
 *  - maxpool2d_bits on random packed bits equals a plain-loop oracle: per
 *    channel the AND of the window's bits where flip is 0 (max of +-1) and
 *    the OR where flip is 1 (min), padded positions ignored; pad bits of
 *    the output are 0; every ISA equals the reference byte for byte.
 *  - maxpool2d_i32 equals a plain max with padding ignored (-inf), with
 *    INT32_MIN / INT32_MAX in the data.
 *  - Pooling after the threshold equals pooling before batch norm: for the
 *    int32 pre-activations s of a binary convolution (plain-loop oracle),
 *    max-pool s in double, then scale*m + offset < 0, equals
 *    bnn_conv2d(BITS, folded thresholds) -> bnn_maxpool2d_bits(flip), for
 *    gamma > 0, gamma < 0 and mixed channels; pool 2x2/2, 3x3/2 pad 1 and
 *    asymmetric windows on odd sizes.  Likewise bnn_maxpool2d_i32 then the
 *    threshold.
 *  - Errors write nothing; n == 0 is valid and writes nothing.
 */
#include "oracle.h"

#include <limits.h>

#define CANARY_I32 BT_CANARY_I32
#define CANARY_W BT_CANARY_W

static bnn_pool2d_params pool_params(int64_t n, int64_t h, int64_t w, int64_t c,
                                     int kh, int kw, int sh, int sw, int pt, int pb,
                                     int pl, int pr)
{
    bnn_pool2d_params p;
    memset(&p, 0, sizeof p);
    p.n = n; p.h = h; p.w = w; p.c = c;
    p.kh = kh; p.kw = kw; p.stride_h = sh; p.stride_w = sw;
    p.pad_top = pt; p.pad_bottom = pb; p.pad_left = pl; p.pad_right = pr;
    return p;
}

static int64_t pool_dim(int64_t in, int pa, int pb, int k, int st)
{
    return bt_out_dim(in, pa, pb, k, 1, st);
}

static void pool_desc(const bnn_pool2d_params *p, char *buf, size_t len)
{
    snprintf(buf, len,
             "n=%" PRId64 " h=%" PRId64 " w=%" PRId64 " c=%" PRId64 " k=%dx%d "
             "stride=%d,%d pad(t,b,l,r)=%d,%d,%d,%d", p->n, p->h, p->w, p->c, p->kh,
             p->kw, p->stride_h, p->stride_w, p->pad_top, p->pad_bottom, p->pad_left,
             p->pad_right);
}

/* Random valid pooling geometry. */
static bnn_pool2d_params rand_pool(bt_rng *r)
{
    static const int64_t cs[] = {1, 3, 63, 64, 65, 130};
    bnn_pool2d_params p;
    memset(&p, 0, sizeof p);
    p.n = bt_range(r, 1, 3);
    p.c = cs[bt_below(r, 6)];
    p.kh = (int32_t)bt_range(r, 1, 4);
    p.kw = (int32_t)bt_range(r, 1, 4);
    p.stride_h = (int32_t)bt_range(r, 1, 3);
    p.stride_w = (int32_t)bt_range(r, 1, 3);
    p.pad_top = (int32_t)bt_range(r, 0, p.kh - 1);
    p.pad_bottom = (int32_t)bt_range(r, 0, p.kh - 1);
    p.pad_left = (int32_t)bt_range(r, 0, p.kw - 1);
    p.pad_right = (int32_t)bt_range(r, 0, p.kw - 1);
    p.h = bt_below(r, 4) ? 2 * bt_range(r, 0, 5) + 1 : 2 * bt_range(r, 1, 5);
    p.w = bt_below(r, 4) ? 2 * bt_range(r, 0, 5) + 1 : 2 * bt_range(r, 1, 5);
    if (p.h + p.pad_top + p.pad_bottom < p.kh) p.h = p.kh - p.pad_top - p.pad_bottom;
    if (p.w + p.pad_left + p.pad_right < p.kw) p.w = p.kw - p.pad_left - p.pad_right;
    return p;
}

/* The oracles are bt_maxpool_bits and bt_maxpool_i32 (oracle.h). */

/* ------------------------------------------------------------------ */
/* Random pooling against the oracles                                   */
/* ------------------------------------------------------------------ */

static int run_bits_case(const bnn_pool2d_params *p, bnn_isa isa, uint64_t tag)
{
    bt_rng r = bt_stream(tag);
    int64_t oh = pool_dim(p->h, p->pad_top, p->pad_bottom, p->kh, p->stride_h);
    int64_t ow = pool_dim(p->w, p->pad_left, p->pad_right, p->kw, p->stride_w);
    int64_t cw = bt_words(p->c), px = p->n * p->h * p->w, i, j, qh = -1, qw = -1;
    size_t nout = (size_t)(p->n * oh * ow * cw);
    uint64_t *x = (uint64_t *)bt_alloc((size_t)(px * cw) * 8);
    uint64_t *want = (uint64_t *)bt_alloc(nout * 8);
    uint64_t *got = (uint64_t *)bt_alloc(nout * 8);
    uint64_t *got0 = (uint64_t *)bt_alloc(nout * 8);
    uint8_t *flip = (uint8_t *)bt_alloc((size_t)p->c);
    int mode = (int)(tag % 4), v;
    char desc[160];

    pool_desc(p, desc, sizeof desc);
    /* Bits: random, with a bias so that AND and OR both see 0 and 1. */
    for (i = 0; i < px; i++) {
        uint64_t *row = x + i * cw;
        int bias = (int)bt_below(&r, 4);
        for (j = 0; j < cw; j++) {
            uint64_t a = bt_next(&r), b = bt_next(&r);
            row[j] = bias == 0 ? (a | b) : bias == 1 ? (a & b) : a;
        }
        if (p->c % 64) row[cw - 1] &= ((uint64_t)1 << (p->c % 64)) - 1;
    }
    for (j = 0; j < p->c; j++)
        flip[j] = (uint8_t)(mode == 0 ? 0 : mode == 1 ? 1 : (int)bt_below(&r, 2));

    CHECK_ST(bnn_pool2d_output_shape(p, &qh, &qw), BNN_OK);
    CHECK_EQ(qh, oh);
    CHECK_EQ(qw, ow);
    for (v = 0; v < 2; v++) {
        const uint8_t *fl = v ? NULL : flip;
        bt_ctx("isa=%s maxpool2d_bits flip%s %s", bt_isa_str(isa), v ? "=NULL" : "", desc);
        bt_maxpool_bits(p, x, fl, CANARY_W, want); /* CANARY_W: oracle misuse */
        bt_fill_u64(got, nout, CANARY_W);
        CHECK_ST(bnn_maxpool2d_bits(p, x, fl, got), BNN_OK);
        for (i = 0; i < (int64_t)nout; i++)
            CHECK_MSG(got[i] == want[i],
                      "word %" PRId64 " (pixel %" PRId64 ", word %" PRId64 "): got "
                      "%016" PRIx64 " want %016" PRIx64, i, i / cw, i % cw, got[i],
                      want[i]);
        if (isa != BNN_ISA_REF) {
            CHECK_ST(bnn_set_isa(BNN_ISA_REF), BNN_OK);
            bt_fill_u64(got0, nout, CANARY_W);
            CHECK_ST(bnn_maxpool2d_bits(p, x, fl, got0), BNN_OK);
            CHECK_ST(bnn_set_isa(isa), BNN_OK);
            CHECK_MSG(memcmp(got, got0, nout * 8) == 0, "%s differs from ref",
                      bt_isa_str(isa));
        }
    }
    free(x);
    free(want);
    free(got);
    free(got0);
    free(flip);
    return 0;
}

static int run_i32_case(const bnn_pool2d_params *p, bnn_isa isa, uint64_t tag)
{
    bt_rng r = bt_stream(tag);
    int64_t oh = pool_dim(p->h, p->pad_top, p->pad_bottom, p->kh, p->stride_h);
    int64_t ow = pool_dim(p->w, p->pad_left, p->pad_right, p->kw, p->stride_w);
    int64_t nin = p->n * p->h * p->w * p->c, i;
    size_t nout = (size_t)(p->n * oh * ow * p->c);
    int32_t *x = (int32_t *)bt_alloc((size_t)nin * 4);
    int32_t *want = (int32_t *)bt_alloc(nout * 4);
    int32_t *got = (int32_t *)bt_alloc(nout * 4);
    int32_t *got0 = (int32_t *)bt_alloc(nout * 4);
    char desc[160];

    pool_desc(p, desc, sizeof desc);
    for (i = 0; i < nin; i++) {
        switch (bt_below(&r, 10)) {
        case 0: x[i] = INT32_MIN; break;
        case 1: x[i] = INT32_MAX; break;
        case 2: x[i] = INT32_MIN + 1; break;
        case 3: x[i] = -1; break;
        case 4: x[i] = 0; break;
        default: x[i] = (int32_t)(uint32_t)bt_next(&r); break;
        }
        if (tag % 3 == 0) x[i] = (int32_t)bt_range(&r, -5, 5); /* many ties */
    }
    bt_maxpool_i32(p, x, want);
    bt_ctx("isa=%s maxpool2d_i32 %s", bt_isa_str(isa), desc);
    for (i = 0; i < (int64_t)nout; i++) got[i] = CANARY_I32;
    CHECK_ST(bnn_maxpool2d_i32(p, x, got), BNN_OK);
    for (i = 0; i < (int64_t)nout; i++)
        CHECK_MSG(got[i] == want[i], "out[%" PRId64 "] (pixel %" PRId64 ", channel %"
                  PRId64 ") = %d, want %d", i, i / p->c, i % p->c, (int)got[i],
                  (int)want[i]);
    if (isa != BNN_ISA_REF) {
        CHECK_ST(bnn_set_isa(BNN_ISA_REF), BNN_OK);
        CHECK_ST(bnn_maxpool2d_i32(p, x, got0), BNN_OK);
        CHECK_ST(bnn_set_isa(isa), BNN_OK);
        CHECK_MSG(memcmp(got, got0, nout * 4) == 0, "%s differs from ref", bt_isa_str(isa));
    }
    free(x);
    free(want);
    free(got);
    free(got0);
    return 0;
}

static int random_body(bnn_isa isa)
{
    int i;
    /* Fixed: 2x2/2, 3x3/2 pad 1, global pooling, odd sizes, asymmetric. */
    static const int fx[][12] = {
        /* n h w c kh kw sh sw pt pb pl pr */
        {1, 7, 9, 65, 2, 2, 2, 2, 0, 0, 0, 0},
        {2, 7, 7, 130, 3, 3, 2, 2, 1, 1, 1, 1},
        {3, 5, 9, 1, 3, 3, 2, 2, 1, 1, 1, 1},
        {1, 5, 5, 64, 5, 5, 1, 1, 0, 0, 0, 0},
        {1, 1, 1, 3, 1, 1, 1, 1, 0, 0, 0, 0},
        {2, 9, 7, 63, 3, 2, 1, 3, 2, 0, 0, 1},
        {1, 1, 1, 70, 3, 3, 1, 1, 2, 0, 1, 1},
        {1, 6, 6, 64, 2, 2, 2, 2, 1, 1, 1, 1},
    };
    for (i = 0; i < (int)(sizeof fx / sizeof fx[0]); i++) {
        const int *a = fx[i];
        bnn_pool2d_params p = pool_params(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7],
                                          a[8], a[9], a[10], a[11]);
        RUN(run_bits_case(&p, isa, 100 + (uint64_t)i));
        RUN(run_i32_case(&p, isa, 200 + (uint64_t)i));
    }
    for (i = 0; i < 120; i++) {
        bt_rng r = bt_stream(300 + (uint64_t)i);
        bnn_pool2d_params p = rand_pool(&r);
        RUN(run_bits_case(&p, isa, 1000 + (uint64_t)i));
        RUN(run_i32_case(&p, isa, 2000 + (uint64_t)i));
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Pool after threshold == pool before batch norm                       */
/* ------------------------------------------------------------------ */

typedef struct conv_data {
    bnn_conv2d_params p;
    int64_t oh, ow, cw, kdot;
    uint64_t *x, *w;
    int32_t *s;      /* [n][oh][ow][o] pre-activations (oracle) */
} conv_data;

/* Plain-loop integer convolution of +-1 data (padded taps 0 or +1). */
static void conv_make(conv_data *cd, const bnn_conv2d_params *p, uint64_t tag)
{
    bt_rng r = bt_stream(tag);
    int64_t c = p->c, xr = p->n * p->h * p->w, wr = p->o * p->kh * p->kw, i, j;
    int32_t *xi;
    int8_t *xs = (int8_t *)bt_alloc((size_t)(xr * c));
    int8_t *ws = (int8_t *)bt_alloc((size_t)(wr * c));
    memset(cd, 0, sizeof *cd);
    cd->p = *p;
    cd->oh = bt_out_dim(p->h, p->pad_top, p->pad_bottom, p->kh, p->dilation_h,
                        p->stride_h);
    cd->ow = bt_out_dim(p->w, p->pad_left, p->pad_right, p->kw, p->dilation_w,
                        p->stride_w);
    cd->cw = bt_words(c);
    cd->kdot = p->kh * p->kw * c;
    /* Biased signs per pixel so that pre-activations spread widely. */
    for (i = 0; i < xr; i++) {
        int bias = (int)bt_below(&r, 5);
        for (j = 0; j < c; j++)
            xs[i * c + j] = (int8_t)((int)bt_below(&r, 8) < 2 + bias ? -1 : 1);
    }
    for (i = 0; i < wr * c; i++) ws[i] = bt_below(&r, 2) ? -1 : 1;
    cd->x = (uint64_t *)bt_alloc((size_t)(xr * cd->cw) * 8);
    cd->w = (uint64_t *)bt_alloc((size_t)(wr * cd->cw) * 8);
    for (i = 0; i < xr; i++) bt_pack_row_i8(xs + i * c, c, cd->x + i * cd->cw);
    for (i = 0; i < wr; i++) bt_pack_row_i8(ws + i * c, c, cd->w + i * cd->cw);
    cd->s = (int32_t *)bt_alloc((size_t)(p->n * cd->oh * cd->ow * p->o) * 4);
    xi = (int32_t *)bt_alloc((size_t)(xr * c) * sizeof(int32_t));
    for (i = 0; i < xr * c; i++) xi[i] = xs[i];
    bt_conv2d(p, xi, p->pad_value, 0, ws, cd->s);
    free(xi);
    free(xs);
    free(ws);
}

static void conv_free(conv_data *cd)
{
    free(cd->x);
    free(cd->w);
    free(cd->s);
}

static int pool_bn_case(const conv_data *cd, const bnn_pool2d_params *pp, int mode,
                        bnn_isa isa, uint64_t tag)
{
    bt_rng r = bt_stream(tag);
    const bnn_conv2d_params *p = &cd->p;
    int64_t o = p->o, ow_ = bt_words(o), rows = p->n * cd->oh * cd->ow, j, b, y, x;
    int64_t ph = -1, pw = -1;
    double *sc = (double *)bt_alloc((size_t)o * sizeof(double));
    double *of = (double *)bt_alloc((size_t)o * sizeof(double));
    int32_t *th = (int32_t *)bt_alloc((size_t)o * 4);
    uint8_t *fl = (uint8_t *)bt_alloc((size_t)o);
    size_t wsb = 0;
    void *ws;
    uint64_t *bits, *pooled;
    int32_t *pre, *pooled_i, *maxs;
    bnn_epilogue e;
    char desc[160];

    pool_desc(pp, desc, sizeof desc);
    bt_ctx("pool-before-BN isa=%s mode=%d pool %s (conv o=%" PRId64 " c=%" PRId64
           " k=%" PRId64 "x%" PRId64 " pad_value=%d)", bt_isa_str(isa), mode, desc, o,
           p->c, p->kh, p->kw, p->pad_value);
    for (j = 0; j < o; j++) {
        double gamma = 0.05 + bt_unit(&r) * 2.0, var = 0.1 + bt_unit(&r) * 10.0;
        double mean = (bt_unit(&r) - 0.5) * (double)cd->kdot;
        double beta = bt_unit(&r) - 0.5;
        if (mode == 1 || (mode == 2 && bt_below(&r, 2))) gamma = -gamma;
        if (mode == 2 && bt_below(&r, 8) == 0) gamma = 0.0;
        sc[j] = gamma / sqrt(var + 1e-5);
        of[j] = beta - mean * sc[j];
        if (bt_below(&r, 2)) /* boundary exactly on an occurring value */
            of[j] = -(sc[j] * (double)cd->s[(int64_t)bt_below(&r, (uint64_t)rows) * o + j]);
    }
    CHECK_ST(bnn_fold_threshold(o, cd->kdot, sc, of, th, fl), BNN_OK);
    memset(&e, 0, sizeof e);
    e.kind = BNN_EPI_BITS;
    e.thresh = th;
    e.flip = fl;
    CHECK_ST(bnn_conv2d_workspace_size(p, 1, &wsb), BNN_OK);
    ws = bt_alloc(wsb);
    bits = (uint64_t *)bt_alloc((size_t)(rows * ow_) * 8);
    pre = (int32_t *)bt_alloc((size_t)(rows * o) * 4);
    CHECK_ST(bnn_conv2d(p, cd->x, cd->w, &e, bits, ws, wsb), BNN_OK);
    CHECK_ST(bnn_conv2d(p, cd->x, cd->w, NULL, pre, ws, wsb), BNN_OK);
    CHECK_MSG(memcmp(pre, cd->s, (size_t)(rows * o) * 4) == 0,
              "conv INT32 differs from the plain-loop oracle");

    CHECK_EQ(pp->n, p->n);
    CHECK_EQ(pp->h, cd->oh);
    CHECK_EQ(pp->w, cd->ow);
    CHECK_EQ(pp->c, o);
    CHECK_ST(bnn_pool2d_output_shape(pp, &ph, &pw), BNN_OK);
    pooled = (uint64_t *)bt_alloc((size_t)(p->n * ph * pw * ow_) * 8);
    pooled_i = (int32_t *)bt_alloc((size_t)(p->n * ph * pw * o) * 4);
    CHECK_ST(bnn_maxpool2d_bits(pp, bits, fl, pooled), BNN_OK);
    CHECK_ST(bnn_maxpool2d_i32(pp, pre, pooled_i), BNN_OK);
    /* max s per window of the oracle's pre-activations (padding ignored) */
    maxs = (int32_t *)bt_alloc((size_t)(p->n * ph * pw * o) * 4);
    bt_maxpool_i32(pp, cd->s, maxs);

    for (b = 0; b < p->n; b++)
        for (y = 0; y < ph; y++)
            for (x = 0; x < pw; x++) {
                const uint64_t *prow = pooled + ((b * ph + y) * pw + x) * ow_;
                const int32_t *irow = pooled_i + ((b * ph + y) * pw + x) * o;
                const int32_t *mrow = maxs + ((b * ph + y) * pw + x) * o;
                for (j = 0; j < o; j++) {
                    double m = (double)mrow[j];
                    int want, got;
                    want = bt_affine_neg(sc[j], of[j], (int64_t)m);
                    got = bt_getbit(prow, j);
                    CHECK_MSG(got == want,
                              "[b=%" PRId64 " y=%" PRId64 " x=%" PRId64 " ch=%" PRId64
                              "]: pooled bit %d, sign(BN(max s = %g)) gives %d (scale "
                              "%.17g offset %.17g; folded t=%d flip=%d)", b, y, x, j, got,
                              m, want, sc[j], of[j], (int)th[j], fl[j]);
                    CHECK_MSG(irow[j] == (int32_t)m, "maxpool2d_i32 %d, oracle %g",
                              (int)irow[j], m);
                    /* threshold after pooling the integers: the same bit */
                    CHECK_EQ(fl[j] ? irow[j] > th[j] : irow[j] < th[j], want);
                }
                for (j = o; j < 64 * ow_; j++)
                    CHECK_MSG(bt_getbit(prow, j) == 0, "pad bit %" PRId64 " set", j);
            }
    free(sc);
    free(of);
    free(th);
    free(fl);
    free(ws);
    free(bits);
    free(pre);
    free(pooled);
    free(pooled_i);
    free(maxs);
    return 0;
}

static int pool_bn_body(bnn_isa isa)
{
    /* conv: n h w c o kh kw stride pad pad_value -> odd outputs */
    static const int cv[][10] = {
        {2, 9, 11, 65, 70, 3, 3, 1, 1, 0},  /* 9x11 */
        {1, 7, 7, 3, 5, 3, 3, 1, 1, 1},     /* 7x7  */
        {3, 8, 10, 130, 1, 2, 2, 1, 0, 0},  /* 7x9  */
        {1, 11, 9, 64, 64, 5, 3, 2, 2, 0},  /* 6x5  */
    };
    /* pool: kh kw sh sw pt pb pl pr */
    static const int pl[][8] = {
        {2, 2, 2, 2, 0, 0, 0, 0},
        {3, 3, 2, 2, 1, 1, 1, 1},
        {3, 2, 1, 2, 2, 0, 0, 1},
        {1, 1, 1, 1, 0, 0, 0, 0},
    };
    size_t i, k;
    int mode;
    for (i = 0; i < sizeof cv / sizeof cv[0]; i++) {
        const int *a = cv[i];
        bnn_conv2d_params p;
        conv_data cd;
        memset(&p, 0, sizeof p);
        p.n = a[0]; p.h = a[1]; p.w = a[2]; p.c = a[3]; p.o = a[4];
        p.kh = a[5]; p.kw = a[6];
        p.stride_h = p.stride_w = a[7];
        p.dilation_h = p.dilation_w = 1;
        p.pad_top = p.pad_bottom = p.pad_left = p.pad_right = a[8];
        p.pad_value = a[9];
        conv_make(&cd, &p, 50 + i);
        for (k = 0; k < sizeof pl / sizeof pl[0]; k++) {
            const int *q = pl[k];
            bnn_pool2d_params pp = pool_params(p.n, cd.oh, cd.ow, p.o, q[0], q[1], q[2],
                                               q[3], q[4], q[5], q[6], q[7]);
            for (mode = 0; mode < 3; mode++)
                RUN(pool_bn_case(&cd, &pp, mode, isa, 100 * i + 10 * k + (uint64_t)mode));
        }
        conv_free(&cd);
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Shapes, errors, zero batch                                           */
/* ------------------------------------------------------------------ */

static int test_shapes(void)
{
    static const struct { int a[12]; int64_t oh, ow; } t[] = {
        /* n h w c kh kw sh sw pt pb pl pr */
        {{1, 7, 9, 1, 2, 2, 2, 2, 0, 0, 0, 0}, 3, 4},
        {{1, 7, 7, 1, 3, 3, 2, 2, 1, 1, 1, 1}, 4, 4},
        {{1, 8, 8, 1, 3, 3, 2, 2, 1, 1, 1, 1}, 4, 4},
        {{1, 1, 1, 1, 3, 3, 1, 1, 2, 0, 1, 1}, 1, 1},
        {{1, 9, 7, 1, 3, 2, 1, 3, 2, 0, 0, 1}, 9, 3},
        {{1, 5, 5, 1, 5, 5, 1, 1, 0, 0, 0, 0}, 1, 1},
    };
    size_t i;
    for (i = 0; i < sizeof t / sizeof t[0]; i++) {
        const int *a = t[i].a;
        bnn_pool2d_params p = pool_params(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7],
                                          a[8], a[9], a[10], a[11]);
        int64_t oh = -1, ow = -1;
        bt_ctx("pool shape case %d", (int)i);
        CHECK_ST(bnn_pool2d_output_shape(&p, &oh, &ow), BNN_OK);
        CHECK_EQ(oh, t[i].oh);
        CHECK_EQ(ow, t[i].ow);
        CHECK_ST(bnn_pool2d_output_shape(&p, NULL, NULL), BNN_OK);
    }
    return 0;
}

#define NB 64

static int pool_expect(const bnn_pool2d_params *p, const void *xb, const void *xi,
                       bnn_status want, int alt, const char *what)
{
    static uint64_t ob[NB];
    static int32_t oi[NB];
    static const uint8_t flip[NB] = {1};
    int64_t oh = -77, ow = -77;
    bnn_status s;
    int i;
    bt_fill_u64(ob, NB, CANARY_W);
    for (i = 0; i < NB; i++) oi[i] = CANARY_I32;
    bt_ctx("pool errors isa=%s: %s", bnn_isa_name(), what);
#define POOL_OK_STATUS(s) ((s) == want || (alt && (s) == (bnn_status)alt))
    s = bnn_pool2d_output_shape(p, &oh, &ow);
    CHECK_MSG(POOL_OK_STATUS(s), "output_shape: got %d (%s), want %d (%s)", (int)s,
              bnn_status_string(s), (int)want, bnn_status_string(want));
    CHECK_MSG(oh == -77 && ow == -77, "output_shape wrote oh/ow on error");
    s = bnn_maxpool2d_bits(p, (const uint64_t *)xb, flip, ob);
    CHECK_MSG(POOL_OK_STATUS(s), "maxpool2d_bits: got %d (%s), want %d (%s)", (int)s,
              bnn_status_string(s), (int)want, bnn_status_string(want));
    s = bnn_maxpool2d_bits(p, (const uint64_t *)xb, NULL, ob);
    CHECK_MSG(POOL_OK_STATUS(s), "maxpool2d_bits(flip NULL): got %d (%s)", (int)s,
              bnn_status_string(s));
    s = bnn_maxpool2d_i32(p, (const int32_t *)xi, oi);
    CHECK_MSG(POOL_OK_STATUS(s), "maxpool2d_i32: got %d (%s), want %d (%s)", (int)s,
              bnn_status_string(s), (int)want, bnn_status_string(want));
#undef POOL_OK_STATUS
    for (i = 0; i < NB; i++) {
        CHECK_MSG(ob[i] == CANARY_W, "bits output [%d] written", i);
        CHECK_MSG(oi[i] == CANARY_I32, "int32 output [%d] written", i);
    }
    return 0;
}

static int errors_body(bnn_isa isa)
{
    /* Valid base: n=1 4x4x2, 2x2/2 -> 2x2x2 (8 int32 / 4 words). */
    const bnn_pool2d_params base = pool_params(1, 4, 4, 2, 2, 2, 2, 2, 0, 0, 0, 0);
    static uint64_t xb[NB];
    static int32_t xi[NB];
    static uint64_t ob[NB];
    static int32_t oi[NB];
    bnn_pool2d_params p;
    char what[80];
    int i;
    (void)isa;
    memset(xb, 0, sizeof xb);
    memset(xi, 0, sizeof xi);

    bt_ctx("pool errors isa=%s: NULL", bt_isa_str(isa));
    bt_fill_u64(ob, NB, CANARY_W);
    for (i = 0; i < NB; i++) oi[i] = CANARY_I32;
    CHECK_ST(bnn_pool2d_output_shape(NULL, NULL, NULL), BNN_ERR_NULL);
    CHECK_ST(bnn_maxpool2d_bits(NULL, xb, NULL, ob), BNN_ERR_NULL);
    CHECK_ST(bnn_maxpool2d_bits(&base, NULL, NULL, ob), BNN_ERR_NULL);
    CHECK_ST(bnn_maxpool2d_bits(&base, xb, NULL, NULL), BNN_ERR_NULL);
    CHECK_ST(bnn_maxpool2d_i32(NULL, xi, oi), BNN_ERR_NULL);
    CHECK_ST(bnn_maxpool2d_i32(&base, NULL, oi), BNN_ERR_NULL);
    CHECK_ST(bnn_maxpool2d_i32(&base, xi, NULL), BNN_ERR_NULL);
    for (i = 0; i < NB; i++) {
        CHECK(ob[i] == CANARY_W);
        CHECK(oi[i] == CANARY_I32);
    }
    /* Sanity: the base is valid. */
    CHECK_ST(bnn_maxpool2d_bits(&base, xb, NULL, ob), BNN_OK);
    CHECK_ST(bnn_maxpool2d_i32(&base, xi, oi), BNN_OK);
    CHECK(ob[4] == CANARY_W);
    CHECK(oi[8] == CANARY_I32);

    /* SHAPE */
    /* bnn.h gives no code for a zero-size pooling window; bnn_conv2d says
     * SHAPE for a zero-size kernel, INVALID is accepted as well. */
    p = base; p.kh = 0;
    RUN(pool_expect(&p, xb, xi, BNN_ERR_SHAPE, BNN_ERR_INVALID, "kh = 0"));
    p = base; p.kw = -1;
    RUN(pool_expect(&p, xb, xi, BNN_ERR_SHAPE, BNN_ERR_INVALID, "kw = -1"));
    p = base; p.kh = 5;
    RUN(pool_expect(&p, xb, xi, BNN_ERR_SHAPE, 0, "kh 5 > h 4 (no padding)"));
    p = base; p.kw = 7; p.pad_left = 1; p.pad_right = 1;
    RUN(pool_expect(&p, xb, xi, BNN_ERR_SHAPE, 0, "kw 7 > 4 + 2 padding"));
    p = base; p.n = -1;
    RUN(pool_expect(&p, xb, xi, BNN_ERR_SHAPE, 0, "n = -1"));
    p = base; p.h = -1;
    RUN(pool_expect(&p, xb, xi, BNN_ERR_SHAPE, 0, "h = -1"));
    p = base; p.w = INT64_MIN;
    RUN(pool_expect(&p, xb, xi, BNN_ERR_SHAPE, 0, "w = INT64_MIN"));
    p = base; p.c = -1;
    RUN(pool_expect(&p, xb, xi, BNN_ERR_SHAPE, 0, "c = -1"));
    /* INVALID */
    p = base; p.stride_h = 0;
    RUN(pool_expect(&p, xb, xi, BNN_ERR_INVALID, 0, "stride_h = 0"));
    p = base; p.stride_w = -1;
    RUN(pool_expect(&p, xb, xi, BNN_ERR_INVALID, 0, "stride_w = -1"));
    p = base; p.pad_top = -1;
    RUN(pool_expect(&p, xb, xi, BNN_ERR_INVALID, 0, "pad_top = -1"));
    p = base; p.pad_right = INT32_MIN;
    RUN(pool_expect(&p, xb, xi, BNN_ERR_INVALID, 0, "pad_right = INT32_MIN"));
    for (i = 0; i < 4; i++) {
        p = base; p.reserved[i] = -1;
        snprintf(what, sizeof what, "reserved[%d] = -1", i);
        RUN(pool_expect(&p, xb, xi, BNN_ERR_INVALID, 0, what));
    }
    /* Padding >= window on any side (a window could see only padding). */
    p = base; p.pad_top = 2;
    RUN(pool_expect(&p, xb, xi, BNN_ERR_INVALID, BNN_ERR_SHAPE, "pad_top 2 >= kh 2"));
    p = base; p.pad_bottom = 2;
    RUN(pool_expect(&p, xb, xi, BNN_ERR_INVALID, BNN_ERR_SHAPE, "pad_bottom 2 >= kh 2"));
    p = base; p.pad_left = 3;
    RUN(pool_expect(&p, xb, xi, BNN_ERR_INVALID, BNN_ERR_SHAPE, "pad_left 3 >= kw 2"));
    p = base; p.pad_right = 2;
    RUN(pool_expect(&p, xb, xi, BNN_ERR_INVALID, BNN_ERR_SHAPE, "pad_right 2 >= kw 2"));
    p = pool_params(1, 1, 1, 2, 1, 1, 1, 1, 1, 0, 0, 0);
    RUN(pool_expect(&p, xb, xi, BNN_ERR_INVALID, BNN_ERR_SHAPE, "1x1 window, pad_top 1"));
    /* OVERFLOW: sizes whose products overflow (small dummy buffers). */
    p = pool_params((int64_t)1 << 40, (int64_t)1 << 12, (int64_t)1 << 12, 64, 1, 1, 1, 1,
                    0, 0, 0, 0);
    RUN(pool_expect(&p, xb, xi, BNN_ERR_OVERFLOW, 0, "n*h*w*c = 2^70"));
    p = pool_params(1, (int64_t)1 << 32, (int64_t)1 << 32, 1, 1, 1, 1, 1, 0, 0, 0, 0);
    RUN(pool_expect(&p, xb, xi, BNN_ERR_OVERFLOW, 0, "h*w = 2^64"));
    p = pool_params(1, 1, 1, INT64_MAX, 1, 1, 1, 1, 0, 0, 0, 0);
    RUN(pool_expect(&p, xb, xi, BNN_ERR_OVERFLOW, 0, "c = INT64_MAX"));
    p = pool_params(1, INT64_MAX, 1, 1, 2, 1, 1, 1, 1, 1, 0, 0);
    RUN(pool_expect(&p, xb, xi, BNN_ERR_OVERFLOW, 0, "h + padding overflows"));
    return 0;
}

static int zero_batch_body(bnn_isa isa)
{
    bnn_pool2d_params p = pool_params(0, 7, 7, 65, 3, 3, 2, 2, 1, 1, 1, 1);
    uint64_t xb[4] = {0}, ob[NB];
    int32_t xi[4] = {0}, oi[NB];
    int64_t oh = -1, ow = -1;
    uint8_t flip[65] = {0};
    int i;
    bt_ctx("pool zero batch isa=%s", bt_isa_str(isa));
    bt_fill_u64(ob, NB, CANARY_W);
    for (i = 0; i < NB; i++) oi[i] = CANARY_I32;
    CHECK_ST(bnn_pool2d_output_shape(&p, &oh, &ow), BNN_OK);
    CHECK_EQ(oh, 4);
    CHECK_EQ(ow, 4);
    CHECK_ST(bnn_maxpool2d_bits(&p, xb, flip, ob), BNN_OK);
    CHECK_ST(bnn_maxpool2d_bits(&p, xb, NULL, ob), BNN_OK);
    CHECK_ST(bnn_maxpool2d_i32(&p, xi, oi), BNN_OK);
    for (i = 0; i < NB; i++) {
        CHECK(ob[i] == CANARY_W);
        CHECK(oi[i] == CANARY_I32);
    }
    return 0;
}

/* bnn_pool2d_check() names the field bnn_pool2d_output_shape() refuses,
 * with its status, and says "valid" otherwise. */
static int pool_report(const bnn_pool2d_params *p, bnn_status want, const char *field,
                       const char *message)
{
    bnn_param_report r;
    int64_t oh, ow;
    bt_ctx("bnn_pool2d_check: %s", message);
    memset(&r, 0x5a, sizeof r);
    CHECK_ST(bnn_pool2d_check(p, &r), want);
    CHECK_ST(r.status, want);
    CHECK_ST(bnn_pool2d_output_shape(p, &oh, &ow), want);
    CHECK_ST(bnn_pool2d_check(p, NULL), want);
    CHECK_MSG(strcmp(r.field, field) == 0, "field '%s', expected '%s'", r.field, field);
    CHECK_MSG(strcmp(r.message, message) == 0, "message '%s', expected '%s'", r.message,
              message);
    return 0;
}

static int test_reports(void)
{
    const bnn_pool2d_params base = pool_params(1, 4, 4, 2, 2, 2, 2, 2, 0, 0, 0, 0);
    bnn_pool2d_params p;
    RUN(pool_report(&base, BNN_OK, "", "valid"));
    RUN(pool_report(NULL, BNN_ERR_NULL, "", "the parameters are NULL"));
    p = base; p.reserved[0] = -1;
    RUN(pool_report(&p, BNN_ERR_INVALID, "reserved[0]", "reserved[0] must be 0, got -1"));
    p = base; p.kh = 0;
    RUN(pool_report(&p, BNN_ERR_INVALID, "kh", "kh must be >= 1, got 0"));
    p = base; p.stride_w = 0;
    RUN(pool_report(&p, BNN_ERR_INVALID, "stride_w", "stride_w must be >= 1, got 0"));
    p = base; p.pad_left = -2;
    RUN(pool_report(&p, BNN_ERR_INVALID, "pad_left", "pad_left must be >= 0, got -2"));
    p = base; p.pad_bottom = 2;
    RUN(pool_report(&p, BNN_ERR_INVALID, "pad_bottom",
                    "pad_bottom must be smaller than the window (2), got 2"));
    p = base; p.h = -1;
    RUN(pool_report(&p, BNN_ERR_SHAPE, "h", "h must be >= 0, got -1"));
    p = base; p.c = 0;
    RUN(pool_report(&p, BNN_ERR_SHAPE, "c", "c must be >= 1, got 0"));
    p = base; p.kh = 5;
    RUN(pool_report(&p, BNN_ERR_SHAPE, "kh", "kh must fit in the padded input of 4 rows, got 5"));
    p = base; p.kw = 7; p.pad_left = 1; p.pad_right = 1;
    RUN(pool_report(&p, BNN_ERR_SHAPE, "kw",
                    "kw must fit in the padded input of 6 columns, got 7"));
    p = base; p.n = INT64_MAX;
    RUN(pool_report(&p, BNN_ERR_OVERFLOW, "", "the input extents overflow"));
    return 0;
}

int main(int argc, char **argv)
{
    int fails = 0;
    bt_init(argc, argv, "test_pool");
    fails += test_shapes() != 0;
    fails += test_reports() != 0;
    fails += for_each_isa(errors_body) != 0;
    fails += for_each_isa(zero_batch_body) != 0;
    fails += for_each_isa(random_body) != 0;
    fails += for_each_isa(pool_bn_body) != 0;
    if (fails) {
        printf("test_pool: %d test group(s) FAILED (seed %" PRIu64 ")\n", fails, bt_seed);
        return 1;
    }
    printf("test_pool: all passed\n");
    return 0;
}
