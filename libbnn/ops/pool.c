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

#include <string.h>

static bnn_status pool_geom(const bnn_pool2d_params *p, int64_t *oh, int64_t *ow)
{
    int64_t t;
    int i;
    if (p == NULL) return BNN_ERR_NULL;
    for (i = 0; i < 4; i++)
        if (p->reserved[i] != 0) return BNN_ERR_INVALID;
    if (p->kh < 1 || p->kw < 1 || p->stride_h < 1 || p->stride_w < 1
        || p->pad_top < 0 || p->pad_bottom < 0 || p->pad_left < 0 || p->pad_right < 0
        || p->pad_top >= p->kh || p->pad_bottom >= p->kh
        || p->pad_left >= p->kw || p->pad_right >= p->kw)
        return BNN_ERR_INVALID;
    if (p->n < 0 || p->h < 0 || p->w < 0 || p->c < 1) return BNN_ERR_SHAPE;
    if (!bnn_mul_ok(p->n, p->h, &t) || !bnn_mul_ok(t, p->w, &t)
        || !bnn_mul_ok(t, p->c, &t) || (uint64_t)t >= (uint64_t)(SIZE_MAX / 8)
        || p->h > INT64_MAX - 2 * (int64_t)INT32_MAX || p->w > INT64_MAX - 2 * (int64_t)INT32_MAX)
        return BNN_ERR_OVERFLOW;
    if (p->h + p->pad_top + p->pad_bottom < p->kh || p->w + p->pad_left + p->pad_right < p->kw)
        return BNN_ERR_SHAPE;
    *oh = (p->h + p->pad_top + p->pad_bottom - p->kh) / p->stride_h + 1;
    *ow = (p->w + p->pad_left + p->pad_right - p->kw) / p->stride_w + 1;
    return BNN_OK;
}

bnn_status bnn_pool2d_output_shape(const bnn_pool2d_params *p, int64_t *oh, int64_t *ow)
{
    int64_t a, b;
    bnn_status st = pool_geom(p, &a, &b);
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
    bnn_status st = pool_geom(p, &oh, &ow);
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
    bnn_status st = pool_geom(p, &oh, &ow);
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
