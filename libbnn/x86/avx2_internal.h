/* avx2_internal.h -- the AVX2 nibble-lookup byte popcount, shared by the
 * GEMM micro-kernel and the peak probe (which must time the same step). */
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

#endif /* BNN_X86 */

#endif /* BNN_AVX2_INTERNAL_H */
