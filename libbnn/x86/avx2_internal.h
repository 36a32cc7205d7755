/* avx2_internal.h -- the AVX2 nibble-lookup byte popcount, shared by the
 * GEMM micro-kernel and the peak probe (which must time the same step),
 * and AP2 of four doubles, shared by the shift-based optimizer and batch
 * norm. */
#ifndef BNN_AVX2_INTERNAL_H
#define BNN_AVX2_INTERNAL_H

#include "bnn_kernels.h"

#if BNN_X86
#include <immintrin.h>

/* popcount of each byte: LUT[x & 15] + LUT[(x >> 4) & 15] (<= 8). */
static inline __attribute__((always_inline)) BNN_TARGET_AVX2 __m256i
popcnt8(__m256i x, __m256i lut, __m256i mask)
{
    __m256i lo = _mm256_and_si256(x, mask);
    __m256i hi = _mm256_and_si256(_mm256_srli_epi16(x, 4), mask);
    return _mm256_add_epi8(_mm256_shuffle_epi8(lut, lo),
                           _mm256_shuffle_epi8(lut, hi));
}

/* AP2 of four doubles on the exponent bits, equal to bnn_ap2_inline in
 * every lane, without a branch: adding 2^52 - S to the bits carries into
 * the exponent exactly when the fraction is at least S (the sqrt(2) rule),
 * and clearing the fraction leaves the power of two with the sign (an
 * exponent carried to 0x7FF is inf, as ldexp gives).  Lanes whose |bits|
 * are at or above those of inf (inf, NaN) keep their value; zeros become
 * +0.  A subnormal lane is scaled by 2^64 first, exactly, to a normal
 * number whose fraction is the normalized mantissa frexp compares, and its
 * power of two scaled back by 2^-64, exactly (2^-1074 ... 2^-1022). */
static inline __attribute__((always_inline)) BNN_TARGET_AVX2 __m256d
bnn_ap2_pd(__m256d x)
{
    const __m256i absmask = _mm256_set1_epi64x(0x7FFFFFFFFFFFFFFFLL);
    const __m256d small = _mm256_castsi256_pd(_mm256_cmpgt_epi64(
        _mm256_set1_epi64x(1LL << 52), _mm256_and_si256(_mm256_castpd_si256(x), absmask)));
    const __m256i u = _mm256_castpd_si256(
        _mm256_blendv_pd(x, _mm256_mul_pd(x, _mm256_set1_pd(0x1p64)), small));
    const __m256i mag = _mm256_and_si256(u, absmask);
    const __m256i r = _mm256_andnot_si256(
        _mm256_set1_epi64x(0xFFFFFFFFFFFFFLL),
        _mm256_add_epi64(u, _mm256_set1_epi64x((long long)((1ULL << 52) - BNN_AP2_SQRT2_FRACTION))));
    const __m256i special = _mm256_cmpgt_epi64(mag, _mm256_set1_epi64x(0x7FEFFFFFFFFFFFFFLL));
    const __m256i zero = _mm256_cmpeq_epi64(mag, _mm256_setzero_si256());
    const __m256d out = _mm256_castsi256_pd(_mm256_andnot_si256(zero, _mm256_blendv_epi8(r, u, special)));
    return _mm256_blendv_pd(out, _mm256_mul_pd(out, _mm256_set1_pd(0x1p-64)), small);
}

#endif /* BNN_X86 */

#endif /* BNN_AVX2_INTERNAL_H */
