/*
 * bn_avx2.c -- the shift-based batch norm passes (bn_shift_* of
 * bnn_kernels.h) four features at a time in double, with AP2 on the
 * exponent bits (bnn_ap2_pd, exact for every value, so no pass is ever
 * redone).  Each lane adds its feature's rows in order, as the reference
 * does, and IEEE add, mul and the float <-> double conversions round the
 * same in every lane: the results are bitwise the reference's.  Features
 * go sixteen at a time (four independent sums in flight), then four, then
 * one by one.
 */
#include "avx2_internal.h"

#if BNN_X86

/* d = x - mean of four features of one row */
BNN_TARGET_AVX2 static inline __m256d diff4(const float *x, __m256d mean)
{
    return _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(x)), mean);
}

BNN_TARGET_AVX2 void bnn_bn_shift_var_avx2(int64_t n, int64_t ld, int64_t nj, const float *x,
                                           const double *mean, double *var)
{
    int64_t i, j = 0;
    for (; j + 16 <= nj; j += 16) {
        const __m256d m0 = _mm256_loadu_pd(mean + j), m1 = _mm256_loadu_pd(mean + j + 4);
        const __m256d m2 = _mm256_loadu_pd(mean + j + 8), m3 = _mm256_loadu_pd(mean + j + 12);
        __m256d v0 = _mm256_setzero_pd(), v1 = v0, v2 = v0, v3 = v0;
        for (i = 0; i < n; i++) {
            const float *xr = x + i * ld + j;
            __m256d d0 = diff4(xr, m0), d1 = diff4(xr + 4, m1);
            __m256d d2 = diff4(xr + 8, m2), d3 = diff4(xr + 12, m3);
            v0 = _mm256_add_pd(v0, _mm256_mul_pd(bnn_ap2_pd(d0), d0));
            v1 = _mm256_add_pd(v1, _mm256_mul_pd(bnn_ap2_pd(d1), d1));
            v2 = _mm256_add_pd(v2, _mm256_mul_pd(bnn_ap2_pd(d2), d2));
            v3 = _mm256_add_pd(v3, _mm256_mul_pd(bnn_ap2_pd(d3), d3));
        }
        _mm256_storeu_pd(var + j, v0);
        _mm256_storeu_pd(var + j + 4, v1);
        _mm256_storeu_pd(var + j + 8, v2);
        _mm256_storeu_pd(var + j + 12, v3);
    }
    for (; j + 4 <= nj; j += 4) {
        const __m256d m0 = _mm256_loadu_pd(mean + j);
        __m256d v0 = _mm256_setzero_pd();
        for (i = 0; i < n; i++) {
            __m256d d0 = diff4(x + i * ld + j, m0);
            v0 = _mm256_add_pd(v0, _mm256_mul_pd(bnn_ap2_pd(d0), d0));
        }
        _mm256_storeu_pd(var + j, v0);
    }
    for (; j < nj; j++) {
        double s = 0.0;
        for (i = 0; i < n; i++) {
            double d = x[i * ld + j] - mean[j];
            s += bnn_ap2_inline(d) * d;
        }
        var[j] = s;
    }
}

BNN_TARGET_AVX2 int bnn_bn_shift_sums_avx2(int64_t n, int64_t ld, int64_t nj, const float *x,
                                           const float *dy, const double *mean, double *sg,
                                           double *sgx)
{
    int64_t i, j = 0;
    for (; j + 8 <= nj; j += 8) {
        const __m256d m0 = _mm256_loadu_pd(mean + j), m1 = _mm256_loadu_pd(mean + j + 4);
        __m256d g0 = _mm256_setzero_pd(), g1 = g0, s0 = g0, s1 = g0;
        for (i = 0; i < n; i++) {
            const float *xr = x + i * ld + j, *gr = dy + i * ld + j;
            __m256d y0 = _mm256_cvtps_pd(_mm_loadu_ps(gr));
            __m256d y1 = _mm256_cvtps_pd(_mm_loadu_ps(gr + 4));
            g0 = _mm256_add_pd(g0, y0);
            g1 = _mm256_add_pd(g1, y1);
            s0 = _mm256_add_pd(s0, _mm256_mul_pd(bnn_ap2_pd(diff4(xr, m0)), y0));
            s1 = _mm256_add_pd(s1, _mm256_mul_pd(bnn_ap2_pd(diff4(xr + 4, m1)), y1));
        }
        _mm256_storeu_pd(sg + j, g0);
        _mm256_storeu_pd(sg + j + 4, g1);
        _mm256_storeu_pd(sgx + j, s0);
        _mm256_storeu_pd(sgx + j + 4, s1);
    }
    for (; j < nj; j++) {
        double a = 0.0, b = 0.0;
        for (i = 0; i < n; i++) {
            double d = x[i * ld + j] - mean[j], gi = dy[i * ld + j];
            a += gi;
            b += bnn_ap2_inline(d) * gi;
        }
        sg[j] = a;
        sgx[j] = b;
    }
    /* a sum of float dy is finite unless some dy is inf or NaN */
    for (j = 0; j < nj; j++)
        if (sg[j] - sg[j] != 0.0) return 1;
    return 0;
}

BNN_TARGET_AVX2 void bnn_bn_shift_dx_avx2(int64_t n, int64_t ld, int64_t nj, const float *x,
                                          const float *dy, const double *mean,
                                          const double *gsc, const double *sg, const double *k2,
                                          float *dx)
{
    int64_t i, j;
    for (i = 0; i < n; i++) {
        const float *xr = x + i * ld, *gr = dy + i * ld;
        float *dr = dx + i * ld;
        for (j = 0; j + 4 <= nj; j += 4) {
            __m256d ct = bnn_ap2_pd(diff4(xr + j, _mm256_loadu_pd(mean + j)));
            __m256d t = _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(gr + j)),
                                      _mm256_loadu_pd(sg + j));
            t = _mm256_sub_pd(t, _mm256_mul_pd(ct, _mm256_loadu_pd(k2 + j)));
            _mm_storeu_ps(dr + j, _mm256_cvtpd_ps(_mm256_mul_pd(_mm256_loadu_pd(gsc + j), t)));
        }
        for (; j < nj; j++) {
            double d = xr[j] - mean[j];
            dr[j] = (float)(gsc[j] * (gr[j] - sg[j] - bnn_ap2_inline(d) * k2[j]));
        }
    }
}

#endif
