/*
 * conv2d.c -- binary 2-D convolution on NHWC data packed along channels.
 *
 * Each output pixel is one row of a binary product: its kh*kw input
 * pixels' words are gathered (bit-im2col, BNN_MR rows at a time into the
 * part's scratch, so no full im2col matrix is ever built) and multiplied
 * against the filters [o][kh*kw*words(c)] by the GEMM micro-kernel.  Pad
 * bits of every pixel are 0 in both operands, so the dot over the
 * gathered words counts exactly kh*kw*c products:
 *     dot = kh*kw*c - 2 * popcount(row XOR filter).
 * Padded taps are gathered as zero words, i.e. +1.  For pad_value 0
 * (zeros, what float training sees) each padded tap t must contribute 0
 * instead of dot(+1, w_t) = c - 2*popcount(w_t) =: S[o][t], so border
 * pixels subtract the S of their padded taps.  S is computed once per
 * call (o*kh*kw popcounts of c bits), a small fraction of the product.
 */
#include "core/bnn_engine.h"

#include <inttypes.h>
#include <string.h>

static int checked_dims(const bnn_conv2d_params *p)
{
    int64_t t;
    /* every tensor extent must be addressable */
    return bnn_mul_ok(p->n, p->h, &t) && bnn_mul_ok(t, p->w, &t)
        && bnn_mul_ok(t, BNN_MAX(p->c, 1), &t)
        && bnn_mul_ok(p->o, p->kh, &t) && bnn_mul_ok(t, p->kw, &t)
        && bnn_mul_ok(t, BNN_MAX(p->c, 1), &t)
        && (uint64_t)t < (uint64_t)(SIZE_MAX / 8);
}

/* A field below its minimum: the report names it. */

/* Every check of a geometry, in order, the first failure named in *r (may
 * be NULL); g is filled when all pass. */
static bnn_status conv_geom(const bnn_conv2d_params *p, bnn_conv_geom *g, bnn_param_report *r)
{
    int64_t span_h, span_w, in_h, in_w, t;
    bnn_status st0;
    if (p == NULL) return bnn_param_reject(r, BNN_ERR_NULL, "", 0, "the parameters are NULL");
    if ((st0 = bnn_param_reserved(r, p->reserved)) != BNN_OK) return st0;
    BNN_PARAM_MIN(BNN_ERR_INVALID, stride_h, 1);
    BNN_PARAM_MIN(BNN_ERR_INVALID, stride_w, 1);
    BNN_PARAM_MIN(BNN_ERR_INVALID, dilation_h, 1);
    BNN_PARAM_MIN(BNN_ERR_INVALID, dilation_w, 1);
    BNN_PARAM_MIN(BNN_ERR_INVALID, pad_top, 0);
    BNN_PARAM_MIN(BNN_ERR_INVALID, pad_bottom, 0);
    BNN_PARAM_MIN(BNN_ERR_INVALID, pad_left, 0);
    BNN_PARAM_MIN(BNN_ERR_INVALID, pad_right, 0);
    /* both fields are checked whichever op reads them */
    if (p->pad_byte < 0 || p->pad_byte > 255)
        return bnn_param_reject(r, BNN_ERR_INVALID, "pad_byte", p->pad_byte,
                                "must be in 0..255, got %" PRId32, p->pad_byte);
    if (p->pad_value != 0 && p->pad_value != 1)
        return bnn_param_reject(r, BNN_ERR_INVALID, "pad_value", p->pad_value,
                                "must be 0 or 1, got %" PRId32, p->pad_value);
    BNN_PARAM_MIN(BNN_ERR_SHAPE, n, 0);
    BNN_PARAM_MIN(BNN_ERR_SHAPE, h, 0);
    BNN_PARAM_MIN(BNN_ERR_SHAPE, w, 0);
    BNN_PARAM_MIN(BNN_ERR_SHAPE, c, 1);
    BNN_PARAM_MIN(BNN_ERR_SHAPE, o, 0);
    BNN_PARAM_MIN(BNN_ERR_SHAPE, kh, 1);
    BNN_PARAM_MIN(BNN_ERR_SHAPE, kw, 1);
    if (!checked_dims(p))
        return bnn_param_reject(r, BNN_ERR_OVERFLOW, "", 0,
                                "the input or filter extents overflow");
    /* effective kernel extent and padded input, overflow-checked */
    if (p->kh - 1 > (INT64_MAX - 1) / p->dilation_h
        || p->kw - 1 > (INT64_MAX - 1) / p->dilation_w)
        return bnn_param_reject(r, BNN_ERR_OVERFLOW, "", 0,
                                "the dilated kernel's extent overflows");
    span_h = (p->kh - 1) * p->dilation_h + 1;
    span_w = (p->kw - 1) * p->dilation_w + 1;
    if (p->h > INT64_MAX - (int64_t)p->pad_top - p->pad_bottom
        || p->w > INT64_MAX - (int64_t)p->pad_left - p->pad_right)
        return bnn_param_reject(r, BNN_ERR_OVERFLOW, "", 0, "the padded input's extent overflows");
    in_h = p->h + p->pad_top + p->pad_bottom;
    in_w = p->w + p->pad_left + p->pad_right;
    if (span_h > in_h)
        return bnn_param_reject(r, BNN_ERR_SHAPE, "kh", p->kh,
                                "must fit in the padded input (%" PRId64 " rows), got %" PRId64
                                " taps spanning %" PRId64 " rows at dilation %" PRId32,
                                in_h, p->kh, span_h, p->dilation_h);
    if (span_w > in_w)
        return bnn_param_reject(r, BNN_ERR_SHAPE, "kw", p->kw,
                                "must fit in the padded input (%" PRId64 " columns), got %" PRId64
                                " taps spanning %" PRId64 " columns at dilation %" PRId32,
                                in_w, p->kw, span_w, p->dilation_w);
    g->n = p->n; g->h = p->h; g->w = p->w; g->c = p->c; g->o = p->o;
    g->kh = p->kh; g->kw = p->kw;
    g->sh = p->stride_h; g->sw = p->stride_w;
    g->dh = p->dilation_h; g->dw = p->dilation_w;
    g->pt = p->pad_top; g->pl = p->pad_left;
    g->oh = (in_h - span_h) / g->sh + 1;
    g->ow = (in_w - span_w) / g->sw + 1;
    g->taps = g->kh * g->kw;
    /* output and im2col extents must fit too */
    if (!bnn_mul_ok(g->n, g->oh, &t) || !bnn_mul_ok(t, g->ow, &t)
        || !bnn_mul_ok(t, BNN_MAX(g->o, 1), &t) || (uint64_t)t >= (uint64_t)(SIZE_MAX / 8)
        || !bnn_mul_ok(g->taps, bnn_words(g->c) * 64, &t) || t > INT32_MAX)
        return bnn_param_reject(r, BNN_ERR_OVERFLOW, "", 0, "the output extents overflow");
    return bnn_param_reject(r, BNN_OK, "", 0, "valid");
}

bnn_status bnn_conv_geom_init(const bnn_conv2d_params *p, int u8, bnn_conv_geom *g)
{
    (void)u8;
    return conv_geom(p, g, NULL);
}

bnn_status bnn_conv2d_check(const bnn_conv2d_params *p, bnn_param_report *report)
{
    bnn_conv_geom g;
    return conv_geom(p, &g, report);
}

bnn_status bnn_conv2d_output_shape(const bnn_conv2d_params *p, int64_t *oh, int64_t *ow)
{
    bnn_conv_geom g;
    bnn_status st = bnn_conv_geom_init(p, 0, &g);
    if (st != BNN_OK) return st;
    if (oh) *oh = g.oh;
    if (ow) *ow = g.ow;
    return BNN_OK;
}

typedef struct conv_op {
    bnn_conv_geom g;
    int64_t cw, kwords, kdot;   /* words per pixel, per row; elements   */
    const uint64_t *x, *w;
    const int32_t *S;           /* [taps][o] or NULL (pad_value 1)      */
} conv_op;

static size_t s_table_bytes(const bnn_conv_geom *g, int pad_value)
{
    size_t b = pad_value == 0 ? (size_t)g->o * (size_t)g->taps * sizeof(int32_t) : 0;
    return (b + 63) & ~(size_t)63;
}

static size_t part_bytes(const bnn_conv_geom *g)
{
    return ((size_t)BNN_MR * (size_t)(g->taps * bnn_words(g->c)) * 8 + 63) & ~(size_t)63;
}

static int clamp_threads(int threads)
{
    if (threads <= 0) threads = bnn_get_num_threads();
    return BNN_MAX(1, BNN_MIN(threads, 256));
}

bnn_status bnn_conv2d_workspace_size(const bnn_conv2d_params *p, int threads, size_t *bytes)
{
    bnn_conv_geom g;
    bnn_status st;
    if (bytes == NULL) return BNN_ERR_NULL;
    if ((st = bnn_conv_geom_init(p, 0, &g)) != BNN_OK) return st;
    *bytes = s_table_bytes(&g, p->pad_value) + (size_t)clamp_threads(threads) * part_bytes(&g);
    return BNN_OK;
}

/* Gather the kh*kw pixels of output pixel `pix` (zero words for padding). */
static void gather_row(const conv_op *cv, int64_t pix, uint64_t *dst)
{
    const bnn_conv_geom *g = &cv->g;
    int64_t nb, ih0, iw0, r, s, q;
    bnn_conv_origin(g, pix, &nb, &ih0, &iw0);
    for (r = 0; r < g->kh; r++) {
        int64_t ih = ih0 + r * g->dh;
        for (s = 0; s < g->kw; s++, dst += cv->cw) {
            int64_t iw = iw0 + s * g->dw;
            if (ih < 0 || ih >= g->h || iw < 0 || iw >= g->w) {
                for (q = 0; q < cv->cw; q++) dst[q] = 0;
            } else {
                const uint64_t *src = cv->x + ((nb * g->h + ih) * g->w + iw) * cv->cw;
                for (q = 0; q < cv->cw; q++) dst[q] = src[q];
            }
        }
    }
}

/* Subtract the S of padded taps of pixel `pix` from its dots (pad 0). */
static void zero_pad_fix(const conv_op *cv, int64_t pix, int64_t j0, int64_t nc,
                         int32_t *dot)
{
    const bnn_conv_geom *g = &cv->g;
    int64_t nb, ih0, iw0, r, s, j;
    bnn_conv_origin(g, pix, &nb, &ih0, &iw0);
    /* interior pixels (the common case) need nothing */
    if (ih0 >= 0 && ih0 + (g->kh - 1) * g->dh < g->h
        && iw0 >= 0 && iw0 + (g->kw - 1) * g->dw < g->w)
        return;
    for (r = 0; r < g->kh; r++) {
        int64_t ih = ih0 + r * g->dh;
        for (s = 0; s < g->kw; s++) {
            int64_t iw = iw0 + s * g->dw, t = r * g->kw + s;
            if (ih >= 0 && ih < g->h && iw >= 0 && iw < g->w) continue;
            const int32_t *St = cv->S + t * g->o + j0;  /* [taps][o] */
            for (j = 0; j < nc; j++) dot[j] -= St[j];
        }
    }
}

static void conv_strip(const bnn_engine *e, int64_t i0, int64_t mr, int64_t j0,
                       int64_t nc, int32_t *dot, int64_t ldd, void *scratch)
{
    const conv_op *cv = (const conv_op *)e->op;
    uint64_t *rows = (uint64_t *)scratch;
    int64_t r, j;
    for (r = 0; r < mr; r++) gather_row(cv, i0 + r, rows + r * cv->kwords);
    e->kt->popc_strip(mr, nc, cv->kwords, rows, cv->kwords,
                      cv->w + j0 * cv->kwords, cv->kwords, dot, ldd);
    for (r = 0; r < mr; r++) {
        int32_t *d = dot + r * ldd;
        for (j = 0; j < nc; j++) d[j] = (int32_t)(cv->kdot - 2 * (int64_t)d[j]);
        if (cv->S) zero_pad_fix(cv, i0 + r, j0, nc, d);
    }
}

static void compute_correction(const bnn_conv_geom *g, const uint64_t *w, int32_t *S)
{
    int64_t cw = bnn_words(g->c), j, t, q;
    for (j = 0; j < g->o; j++)
        for (t = 0; t < g->taps; t++) {
            const uint64_t *wt = w + (j * g->taps + t) * cw;
            int64_t pc = 0;
            for (q = 0; q < cw; q++) pc += bnn_popcount64(wt[q]);
            S[t * g->o + j] = (int32_t)(g->c - 2 * pc);
        }
}

bnn_status bnn_conv2d_correction(const bnn_conv2d_params *p, const uint64_t *w, int32_t *corr)
{
    bnn_conv_geom g;
    bnn_status st = bnn_conv_geom_init(p, 0, &g);
    if (st != BNN_OK) return st;
    if (g.o == 0) return BNN_OK;
    if (w == NULL || corr == NULL) return BNN_ERR_NULL;
    compute_correction(&g, w, corr);
    return BNN_OK;
}

bnn_status bnn_conv2d(const bnn_conv2d_params *p, const uint64_t *x, const uint64_t *w,
                      const bnn_epilogue *epi, void *out, void *workspace,
                      size_t workspace_bytes)
{
    return bnn_conv2d_ex(p, x, w, NULL, epi, out, workspace, workspace_bytes);
}

bnn_status bnn_conv2d_ex(const bnn_conv2d_params *p, const uint64_t *x, const uint64_t *w,
                         const int32_t *corr, const bnn_epilogue *epi, void *out,
                         void *workspace, size_t workspace_bytes)
{
    bnn_conv_geom g;
    conv_op cv;
    bnn_engine e;
    size_t elem, sbytes, pbytes;
    int64_t row_out, rows;
    bnn_status st;

    if ((st = bnn_conv_geom_init(p, 0, &g)) != BNN_OK) return st;
    if ((st = bnn_epilogue_check(&epi, g.o, &elem, &row_out)) != BNN_OK) return st;
    rows = g.n * g.oh * g.ow;
    if (rows == 0 || g.o == 0) return BNN_OK;
    if (x == NULL || w == NULL || out == NULL || workspace == NULL) return BNN_ERR_NULL;
    sbytes = corr ? 0 : s_table_bytes(&g, p->pad_value);
    pbytes = part_bytes(&g);
    if (((uintptr_t)workspace & 7) != 0 || workspace_bytes < sbytes + pbytes)
        return BNN_ERR_INVALID;

    cv.g = g;
    cv.cw = bnn_words(g.c);
    cv.kwords = g.taps * cv.cw;
    cv.kdot = g.taps * g.c;
    cv.x = x; cv.w = w;
    cv.S = NULL;
    if (p->pad_value == 0) {
        if (corr == NULL) {
            compute_correction(&g, w, (int32_t *)workspace);
            corr = (const int32_t *)workspace;
        }
        cv.S = corr;
    }

    e.kt = bnn_kernels_get();
    e.n = rows; e.m = g.o;
    e.mc = bnn_engine_block(g.o, cv.kwords * 8);
    e.strip = conv_strip;
    e.op = &cv;
    e.epi = epi; e.c = out; e.ldc = row_out;
    e.scratch = (char *)workspace + sbytes;
    e.scratch_part = pbytes;
    e.max_parts = (int)BNN_MIN((workspace_bytes - sbytes) / pbytes, 256);
    if (!bnn_mul_ok(rows, g.o, &e.work) || !bnn_mul_ok(e.work, cv.kwords, &e.work))
        e.work = INT64_MAX;
    bnn_engine_run(&e);
    return BNN_OK;
}
