/*
 * pool.c -- max-pooling of packed sign bits and of int32 tensors (NHWC).
 *
 * Bits: with bit 1 meaning -1, the max of +-1 values is +1 (bit 0) as soon
 * as one input is +1, i.e. the AND of the bits; the min is the OR.  A
 * channel whose folded batch norm is increasing (flip 0) pools by max,
 * a decreasing one (flip 1) by min, which is exactly pooling the integer
 * pre-activations before batch norm and sign.  Pad bits: AND and OR of
 * zero bits stay zero.
 */
#include "bnn_internal.h"

#include <inttypes.h>
#include <string.h>

/* A field below its minimum: the report names it. */
/* Each side's padding below the window's extent there. */
#define POOL_PAD(field, win)                                                  \
    if (p->field >= p->win)                                                   \
    return bnn_param_reject(r, BNN_ERR_INVALID, #field, p->field,             \
                            "must be smaller than the window (%" PRId32 "), got %" PRId32, \
                            p->win, p->field)

/* Every check of a geometry, in order, the first failure named in *r (may
 * be NULL); oh, ow are set when all pass. */
static bnn_status pool_geom(const bnn_pool2d_params *p, int64_t *oh, int64_t *ow,
                            bnn_param_report *r)
{
    int64_t t;
    bnn_status st0;
    if (p == NULL) return bnn_param_reject(r, BNN_ERR_NULL, "", 0, "the parameters are NULL");
    if ((st0 = bnn_param_reserved(r, p->reserved)) != BNN_OK) return st0;
    BNN_PARAM_MIN(BNN_ERR_INVALID, kh, 1);
    BNN_PARAM_MIN(BNN_ERR_INVALID, kw, 1);
    BNN_PARAM_MIN(BNN_ERR_INVALID, stride_h, 1);
    BNN_PARAM_MIN(BNN_ERR_INVALID, stride_w, 1);
    BNN_PARAM_MIN(BNN_ERR_INVALID, pad_top, 0);
    BNN_PARAM_MIN(BNN_ERR_INVALID, pad_bottom, 0);
    BNN_PARAM_MIN(BNN_ERR_INVALID, pad_left, 0);
    BNN_PARAM_MIN(BNN_ERR_INVALID, pad_right, 0);
    POOL_PAD(pad_top, kh);
    POOL_PAD(pad_bottom, kh);
    POOL_PAD(pad_left, kw);
    POOL_PAD(pad_right, kw);
    BNN_PARAM_MIN(BNN_ERR_SHAPE, n, 0);
    BNN_PARAM_MIN(BNN_ERR_SHAPE, h, 0);
    BNN_PARAM_MIN(BNN_ERR_SHAPE, w, 0);
    BNN_PARAM_MIN(BNN_ERR_SHAPE, c, 1);
    if (!bnn_mul_ok(p->n, p->h, &t) || !bnn_mul_ok(t, p->w, &t)
        || !bnn_mul_ok(t, p->c, &t) || (uint64_t)t >= (uint64_t)(SIZE_MAX / 8)
        || p->h > INT64_MAX - 2 * (int64_t)INT32_MAX || p->w > INT64_MAX - 2 * (int64_t)INT32_MAX)
        return bnn_param_reject(r, BNN_ERR_OVERFLOW, "", 0, "the input extents overflow");
    if (p->h + p->pad_top + p->pad_bottom < p->kh)
        return bnn_param_reject(r, BNN_ERR_SHAPE, "kh", p->kh,
                                "must fit in the padded input of %" PRId64 " rows, got %" PRId32,
                                p->h + p->pad_top + p->pad_bottom, p->kh);
    if (p->w + p->pad_left + p->pad_right < p->kw)
        return bnn_param_reject(r, BNN_ERR_SHAPE, "kw", p->kw,
                                "must fit in the padded input of %" PRId64 " columns, got %"
                                PRId32, p->w + p->pad_left + p->pad_right, p->kw);
    *oh = (p->h + p->pad_top + p->pad_bottom - p->kh) / p->stride_h + 1;
    *ow = (p->w + p->pad_left + p->pad_right - p->kw) / p->stride_w + 1;
    return bnn_param_reject(r, BNN_OK, "", 0, "valid");
}
#undef POOL_PAD

bnn_status bnn_pool2d_check(const bnn_pool2d_params *p, bnn_param_report *report)
{
    int64_t oh, ow;
    return pool_geom(p, &oh, &ow, report);
}

bnn_status bnn_pool2d_output_shape(const bnn_pool2d_params *p, int64_t *oh, int64_t *ow)
{
    int64_t a, b;
    bnn_status st = pool_geom(p, &a, &b, NULL);
    if (st != BNN_OK) return st;
    if (oh) *oh = a;
    if (ow) *ow = b;
    return BNN_OK;
}

/* The window of output (y, x), clipped to the input. */
static void window(const bnn_pool2d_params *p, int64_t y, int64_t x, int64_t *h0,
                   int64_t *h1, int64_t *w0, int64_t *w1)
{
    int64_t ys = y * p->stride_h - p->pad_top, xs = x * p->stride_w - p->pad_left;
    *h0 = BNN_MAX(ys, 0); *h1 = BNN_MIN(ys + p->kh, p->h);
    *w0 = BNN_MAX(xs, 0); *w1 = BNN_MIN(xs + p->kw, p->w);
}

bnn_status bnn_maxpool2d_bits(const bnn_pool2d_params *p, const uint64_t *x,
                              const uint8_t *flip, uint64_t *out)
{
    int64_t oh, ow, cw, nb, y, xx, q, h0, h1, w0, w1, ih, iw, j;
    bnn_status st = pool_geom(p, &oh, &ow, NULL);
    if (st != BNN_OK) return st;
    if (p->n == 0) return BNN_OK;
    if (x == NULL || out == NULL) return BNN_ERR_NULL;
    cw = bnn_words(p->c);
    for (nb = 0; nb < p->n; nb++)
        for (y = 0; y < oh; y++)
            for (xx = 0; xx < ow; xx++) {
                uint64_t *o = out + ((nb * oh + y) * ow + xx) * cw;
                window(p, y, xx, &h0, &h1, &w0, &w1);
                for (q = 0; q < cw; q++) {
                    uint64_t and_ = ~(uint64_t)0, or_ = 0, mask = 0;
                    for (ih = h0; ih < h1; ih++)
                        for (iw = w0; iw < w1; iw++) {
                            uint64_t v = x[((nb * p->h + ih) * p->w + iw) * cw + q];
                            and_ &= v;
                            or_ |= v;
                        }
                    if (flip) {
                        int64_t nbits = BNN_MIN(64, p->c - q * 64);
                        for (j = 0; j < nbits; j++)
                            mask |= (uint64_t)(flip[q * 64 + j] != 0) << j;
                    }
                    o[q] = (and_ & ~mask) | (or_ & mask);
                }
            }
    return BNN_OK;
}

bnn_status bnn_maxpool2d_i32(const bnn_pool2d_params *p, const int32_t *x, int32_t *out)
{
    int64_t oh, ow, nb, y, xx, h0, h1, w0, w1, ih, iw, ch;
    bnn_status st = pool_geom(p, &oh, &ow, NULL);
    if (st != BNN_OK) return st;
    if (p->n == 0) return BNN_OK;
    if (x == NULL || out == NULL) return BNN_ERR_NULL;
    for (nb = 0; nb < p->n; nb++)
        for (y = 0; y < oh; y++)
            for (xx = 0; xx < ow; xx++) {
                int32_t *o = out + ((nb * oh + y) * ow + xx) * p->c;
                window(p, y, xx, &h0, &h1, &w0, &w1);
                for (ch = 0; ch < p->c; ch++) o[ch] = INT32_MIN;
                for (ih = h0; ih < h1; ih++)
                    for (iw = w0; iw < w1; iw++) {
                        const int32_t *v = x + ((nb * p->h + ih) * p->w + iw) * p->c;
                        for (ch = 0; ch < p->c; ch++) o[ch] = v[ch] > o[ch] ? v[ch] : o[ch];
                    }
            }
    return BNN_OK;
}

/* Channels [0, nc) of one window: out and its taps (int32, the width of
 * the floats, so the compare-selects vectorize). */
static void maxpool_f32_block(const float *x, int64_t row, int64_t px, int64_t nc,
                              int64_t h0, int64_t h1, int64_t w0, int64_t w1, int64_t ys,
                              int64_t xs, int64_t kw, float *restrict o, int32_t *restrict t32)
{
    int64_t ih, iw, ch;
    int first = 1;
    for (ih = h0; ih < h1; ih++)
        for (iw = w0; iw < w1; iw++) {
            const float *restrict v = x + (ih * row + iw) * px;
            const int32_t t = (int32_t)((ih - ys) * kw + (iw - xs));
            if (first) {
                for (ch = 0; ch < nc; ch++) { o[ch] = v[ch]; t32[ch] = t; }
                first = 0;
                continue;
            }
            for (ch = 0; ch < nc; ch++) {      /* as masks, so it vectorizes */
                uint32_t a, b;
                const uint32_t m = 0u - (uint32_t)(v[ch] > o[ch]);
                memcpy(&a, v + ch, 4);
                memcpy(&b, o + ch, 4);
                b = (a & m) | (b & ~m);
                memcpy(o + ch, &b, 4);
                t32[ch] = (int32_t)(((uint32_t)t & m) | ((uint32_t)t32[ch] & ~m));
            }
        }
}

bnn_status bnn_maxpool2d_f32_train(const bnn_pool2d_params *p, const float *x, float *out,
                                   uint8_t *tap)
{
    int64_t oh, ow, nb, y, xx, h0, h1, w0, w1, c0, ch;
    int32_t t32[256];
    bnn_status st = pool_geom(p, &oh, &ow, NULL);
    if (st != BNN_OK) return st;
    if ((int64_t)p->kh * p->kw > 255) return BNN_ERR_INVALID;
    if (p->n == 0) return BNN_OK;
    if (x == NULL || out == NULL || tap == NULL) return BNN_ERR_NULL;
    for (nb = 0; nb < p->n; nb++)
        for (y = 0; y < oh; y++)
            for (xx = 0; xx < ow; xx++) {
                const int64_t o0 = ((nb * oh + y) * ow + xx) * p->c;
                const int64_t ys = y * p->stride_h - p->pad_top, xs = xx * p->stride_w - p->pad_left;
                window(p, y, xx, &h0, &h1, &w0, &w1);
                for (c0 = 0; c0 < p->c; c0 += 256) {
                    const int64_t nc = BNN_MIN((int64_t)256, p->c - c0);
                    maxpool_f32_block(x + nb * p->h * p->w * p->c + c0, p->w, p->c, nc, h0, h1,
                                      w0, w1, ys, xs, p->kw, out + o0 + c0, t32);
                    for (ch = 0; ch < nc; ch++) tap[o0 + c0 + ch] = (uint8_t)t32[ch];
                }
            }
    return BNN_OK;
}

bnn_status bnn_maxpool2d_f32_backward(const bnn_pool2d_params *p, const float *grad,
                                      const uint8_t *tap, float *gx)
{
    int64_t oh, ow, nb, y, xx, ch;
    bnn_status st = pool_geom(p, &oh, &ow, NULL);
    if (st != BNN_OK) return st;
    if ((int64_t)p->kh * p->kw > 255) return BNN_ERR_INVALID;
    if (p->n == 0) return BNN_OK;
    if (grad == NULL || tap == NULL || gx == NULL) return BNN_ERR_NULL;
    memset(gx, 0, sizeof(float) * (size_t)(p->n * p->h * p->w * p->c));
    for (nb = 0; nb < p->n; nb++)
        for (y = 0; y < oh; y++)
            for (xx = 0; xx < ow; xx++) {
                const int64_t o0 = ((nb * oh + y) * ow + xx) * p->c;
                const int64_t ys = y * p->stride_h - p->pad_top, xs = xx * p->stride_w - p->pad_left;
                for (ch = 0; ch < p->c; ch++) {
                    const int64_t t = tap[o0 + ch];
                    const int64_t ih = ys + t / p->kw, iw = xs + t % p->kw;
                    if (t >= (int64_t)p->kh * p->kw || ih < 0 || ih >= p->h || iw < 0 || iw >= p->w)
                        continue;              /* not a tap of the window: nothing routed */
                    gx[((nb * p->h + ih) * p->w + iw) * p->c + ch] += grad[o0 + ch];
                }
            }
    return BNN_OK;
}
