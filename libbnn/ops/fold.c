/*
 * fold.c -- fold "affine map, then sign" into an integer threshold.
 *
 * For a channel with scale a and offset b (doubles), the output bit of an
 * integer pre-activation s is neg(s) = (a*s + b < 0), evaluated in double
 * with two roundings (product, then sum).  Rounding is monotone, so for
 * a >= 0, a*s + b is non-decreasing in s and neg(s) holds exactly for
 * s < T, where T is the least s in [-k, k] with !neg(s) (k + 1 if none);
 * for a < 0 it holds exactly for s > T', T' the greatest s with !neg(s)
 * (-k - 1 if none).  A binary search over [-k, k] finds T or T' with
 * O(log k) evaluations of the very expression it must reproduce, so the
 * fold is exact rather than approximately ceil(-b/a).
 */
#include "bnn_internal.h"

#include <math.h>

static int neg_at(double a, double b, int64_t s)
{
    /* volatile keeps the compiler from fusing into one FMA rounding */
    volatile double p = a * (double)s;
    return p + b < 0.0;
}

bnn_status bnn_fold_threshold(int64_t channels, int64_t k,
                              const double *scale, const double *offset,
                              int32_t *thresh, uint8_t *flip)
{
    int64_t j;
    if (channels < 0 || k < 0) return BNN_ERR_SHAPE;
    if (k > (int64_t)INT32_MAX - 1) return BNN_ERR_OVERFLOW;
    if (channels == 0) return BNN_OK;
    if (!scale || !offset || !thresh || !flip) return BNN_ERR_NULL;
    for (j = 0; j < channels; j++)
        if (!isfinite(scale[j]) || !isfinite(offset[j]))
            return BNN_ERR_INVALID;
    for (j = 0; j < channels; j++) {
        double a = scale[j], b = offset[j];
        int64_t lo = -k, hi = k + 1;  /* search in [lo, hi) */
        if (a >= 0.0) {
            /* least s with !neg(s); hi (= k+1) when none */
            while (lo < hi) {
                int64_t mid = lo + (hi - lo) / 2;
                if (neg_at(a, b, mid)) lo = mid + 1; else hi = mid;
            }
            thresh[j] = (int32_t)lo;
            flip[j] = 0;
        } else {
            /* least s with neg(s); the answer is that minus one */
            while (lo < hi) {
                int64_t mid = lo + (hi - lo) / 2;
                if (neg_at(a, b, mid)) hi = mid; else lo = mid + 1;
            }
            thresh[j] = (int32_t)(lo - 1);
            flip[j] = 1;
        }
    }
    return BNN_OK;
}
