/*
 * binarize.c -- binarization for training: the straight-through
 * estimator with cancellation (gradient passes where |x| <= 1), its mask
 * packed one bit per activation, and stochastic binarization from a
 * counter-based generator.
 */
#include "bnn_internal.h"

#include <math.h>

/* ---- straight-through estimator ----------------------------------------- */

bnn_status bnn_ste_backward(int64_t n, const float *x, const float *grad, float *out)
{
    int64_t i;
    if (n < 0) return BNN_ERR_SHAPE;
    if (n == 0) return BNN_OK;
    if (!x || !grad || !out) return BNN_ERR_NULL;
    for (i = 0; i < n; i++) out[i] = fabsf(x[i]) <= 1.0f ? grad[i] : 0.0f;
    return BNN_OK;
}

static bnn_status rows_check(int64_t rows, int64_t k, const void *a, int64_t sa, size_t ea,
                             const void *b, int64_t sb_words)
{
    int64_t kw;
    if (rows < 0 || k < 0) return BNN_ERR_SHAPE;
    if (rows == 0 || k == 0) return BNN_OK;
    if (a == NULL || b == NULL) return BNN_ERR_NULL;
    kw = bnn_words(k);
    if (sa < k || sb_words < kw) return BNN_ERR_STRIDE;
    if (!bnn_extent_ok(rows, sa, k, ea) || !bnn_extent_ok(rows, sb_words, kw, 8))
        return BNN_ERR_OVERFLOW;
    return BNN_OK;
}

bnn_status bnn_ste_mask_pack(int64_t rows, int64_t k, const float *x, int64_t x_stride,
                             uint64_t *mask, int64_t mask_stride_words)
{
    int64_t i, j;
    bnn_status st = rows_check(rows, k, x, x_stride, sizeof(float), mask, mask_stride_words);
    if (st != BNN_OK || rows == 0 || k == 0) return st;
    for (i = 0; i < rows; i++) {
        const float *xr = x + i * x_stride;
        uint64_t *mr = mask + i * mask_stride_words;
        for (j = 0; j < bnn_words(k); j++) mr[j] = 0;
        for (j = 0; j < k; j++)
            mr[j / 64] |= (uint64_t)(fabsf(xr[j]) <= 1.0f) << (j % 64);
    }
    return BNN_OK;
}

bnn_status bnn_ste_backward_packed(int64_t rows, int64_t k, const uint64_t *mask,
                                   int64_t mask_stride_words, const float *grad,
                                   int64_t grad_stride, float *out, int64_t out_stride)
{
    int64_t i, j;
    bnn_status st = rows_check(rows, k, grad, grad_stride, sizeof(float), mask,
                               mask_stride_words);
    if (st != BNN_OK || rows == 0 || k == 0) return st;
    if (out == NULL) return BNN_ERR_NULL;
    if (out_stride < k) return BNN_ERR_STRIDE;
    if (!bnn_extent_ok(rows, out_stride, k, sizeof(float))) return BNN_ERR_OVERFLOW;
    for (i = 0; i < rows; i++) {
        const uint64_t *mr = mask + i * mask_stride_words;
        const float *g = grad + i * grad_stride;
        float *o = out + i * out_stride;
        for (j = 0; j < k; j++) o[j] = ((mr[j / 64] >> (j % 64)) & 1) ? g[j] : 0.0f;
    }
    return BNN_OK;
}

/* ---- stochastic binarization -------------------------------------------- */

/* A counter-based generator: splitmix64's finaliser over seed and index. */
static uint64_t mix64(uint64_t seed, uint64_t e)
{
    uint64_t z = seed ^ (e * 0x9e3779b97f4a7c15ULL);
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

bnn_status bnn_pack_stochastic_f32(int64_t rows, int64_t k, const float *src,
                                   int64_t src_stride, uint64_t seed, uint64_t counter,
                                   uint64_t *dst, int64_t dst_stride_words)
{
    int64_t i, j;
    bnn_status st = rows_check(rows, k, src, src_stride, sizeof(float), dst, dst_stride_words);
    if (st != BNN_OK || rows == 0 || k == 0) return st;
    for (i = 0; i < rows; i++) {
        const float *xr = src + i * src_stride;
        uint64_t *dr = dst + i * dst_stride_words;
        uint64_t base = counter + (uint64_t)i * (uint64_t)k;
        for (j = 0; j < bnn_words(k); j++) dr[j] = 0;
        for (j = 0; j < k; j++) {
            float x = xr[j];
            /* p(+1) = clip((x + 1)/2, 0, 1); NaN counts as +1 */
            float pp = isnan(x) ? 1.0f : (x + 1.0f) * 0.5f;
            float u = (float)(mix64(seed, base + (uint64_t)j) >> 40) * (1.0f / 16777216.0f);
            pp = pp < 0.0f ? 0.0f : (pp > 1.0f ? 1.0f : pp);
            dr[j / 64] |= (uint64_t)(u >= pp) << (j % 64);
        }
    }
    return BNN_OK;
}
