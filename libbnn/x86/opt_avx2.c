/*
 * opt_avx2.c -- Adam and AdaMax steps, four elements at a time.
 *
 * The arithmetic is the reference's (bnn_opt_range_ref in ref/opt_ref.c), in
 * double, operation for operation and in the same order: IEEE add, mul,
 * div and sqrt are correctly rounded in every lane, and float <-> double
 * conversions round to nearest like C casts, so the results are bitwise
 * those of the reference.  Clipping compares with ordered predicates, so
 * a NaN passes through unclipped as in the reference.  Shift-based
 * AdaMax takes AP2 on the exponent bits (bnn_ap2_pd, as bnn_ap2_inline);
 * the last n % 4 elements use the reference code.
 */
#include "avx2_internal.h"

#if BNN_X86
#include <immintrin.h>

BNN_TARGET_AVX2 static inline __m128 clip4(__m128 w, __m128 lo, __m128 hi)
{
    w = _mm_blendv_ps(w, lo, _mm_cmp_ps(w, lo, _CMP_LT_OQ));
    return _mm_blendv_ps(w, hi, _mm_cmp_ps(w, hi, _CMP_GT_OQ));
}

/* Where BNN_OPT_MAX(bv, ag) (bnn_internal.h) is ag: where ag is larger, or
 * where bv is NaN and ag is not. */
BNN_TARGET_AVX2 static inline __m256d fmax_takes_ag(__m256d ag, __m256d bv)
{
    return _mm256_or_pd(_mm256_cmp_pd(ag, bv, _CMP_GT_OQ),
                        _mm256_andnot_pd(_mm256_cmp_pd(ag, ag, _CMP_UNORD_Q),
                                         _mm256_cmp_pd(bv, bv, _CMP_UNORD_Q)));
}

BNN_TARGET_AVX2 void bnn_opt_range_avx2(const bnn_opt_params *p, double step, int64_t i0,
                                        int64_t i1, float *param, const float *grad, float *m,
                                        float *v)
{
    const __m256d b1 = _mm256_set1_pd(p->beta1), c1 = _mm256_set1_pd(1.0 - p->beta1);
    const __m256d b2 = _mm256_set1_pd(p->beta2), c2 = _mm256_set1_pd(1.0 - p->beta2);
    const __m256d eps = _mm256_set1_pd(p->eps), st = _mm256_set1_pd(step);
    const __m256d zero = _mm256_setzero_pd();
    const __m256d absmask = _mm256_castsi256_pd(_mm256_set1_epi64x(0x7fffffffffffffffLL));
    const int clip = p->clip > 0.0;
    const __m128 hi = _mm_set1_ps((float)p->clip), lo = _mm_set1_ps(-(float)p->clip);
    int64_t i = i0;

    if (p->kind == BNN_OPT_ADAM) {
        for (; i + 4 <= i1; i += 4) {
            __m256d g = _mm256_cvtps_pd(_mm_loadu_ps(grad + i));
            __m256d mi = _mm256_add_pd(_mm256_mul_pd(b1, _mm256_cvtps_pd(_mm_loadu_ps(m + i))),
                                       _mm256_mul_pd(c1, g));
            __m256d vi = _mm256_add_pd(_mm256_mul_pd(b2, _mm256_cvtps_pd(_mm_loadu_ps(v + i))),
                                       _mm256_mul_pd(_mm256_mul_pd(c2, g), g));
            __m256d den = _mm256_add_pd(_mm256_sqrt_pd(vi), eps);
            __m256d q = _mm256_and_pd(_mm256_div_pd(mi, den), _mm256_cmp_pd(den, zero, _CMP_GT_OQ));
            __m256d w = _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(param + i)), _mm256_mul_pd(st, q));
            __m128 wf = _mm256_cvtpd_ps(w);
            _mm_storeu_ps(m + i, _mm256_cvtpd_ps(mi));
            _mm_storeu_ps(v + i, _mm256_cvtpd_ps(vi));
            _mm_storeu_ps(param + i, clip ? clip4(wf, lo, hi) : wf);
        }
    } else if (p->kind == BNN_OPT_ADAMAX || p->kind == BNN_OPT_SHIFT_ADAMAX) {
        const int shift = p->kind == BNN_OPT_SHIFT_ADAMAX;
        for (; i + 4 <= i1; i += 4) {
            __m256d g = _mm256_cvtps_pd(_mm_loadu_ps(grad + i));
            __m256d mi = _mm256_add_pd(_mm256_mul_pd(b1, _mm256_cvtps_pd(_mm_loadu_ps(m + i))),
                                       _mm256_mul_pd(c1, g));
            /* fmax(b2 * v, |g|), NaN rules included */
            __m256d bv = _mm256_mul_pd(b2, _mm256_cvtps_pd(_mm_loadu_ps(v + i)));
            __m256d ag = _mm256_and_pd(g, absmask);
            __m256d vi = _mm256_blendv_pd(bv, ag, fmax_takes_ag(ag, bv));
            __m256d den, q, w;
            __m128 wf;
            if (shift) {                /* v = AP2(fmax) + eps, the step divides by it */
                vi = _mm256_add_pd(bnn_ap2_pd(vi), eps);
                den = vi;
            } else {                    /* v = fmax, the step divides by v + eps */
                den = _mm256_add_pd(vi, eps);
            }
            q = _mm256_and_pd(_mm256_div_pd(mi, den), _mm256_cmp_pd(den, zero, _CMP_GT_OQ));
            w = _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(param + i)), _mm256_mul_pd(st, q));
            wf = _mm256_cvtpd_ps(w);
            _mm_storeu_ps(m + i, _mm256_cvtpd_ps(mi));
            _mm_storeu_ps(v + i, _mm256_cvtpd_ps(vi));
            _mm_storeu_ps(param + i, clip ? clip4(wf, lo, hi) : wf);
        }
    }
    if (i < i1) bnn_opt_range_ref(p, step, i, i1, param, grad, m, v);
}
#endif
