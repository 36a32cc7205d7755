/*
 * epi_bits_avx2.c -- the BITS epilogue (folded batch norm + sign) with AVX2:
 * compare 8 int32 dots with their thresholds both ways, pick the
 * "greater" result where the channel's flip is set, and gather the lane
 * results into the output word.  A partial last word uses the reference
 * code.
 */
#include "bnn_kernels.h"

#if BNN_X86
#include <immintrin.h>

BNN_TARGET_AVX2 void bnn_epi_bits_avx2(int64_t n, const int32_t *dot, const int32_t *thresh,
                                       const uint8_t *flip, uint64_t *out)
{
    int64_t q, full = n / 64;
    const __m256i zero = _mm256_setzero_si256();
    for (q = 0; q < full; q++) {
        uint64_t word = 0;
        int g;
        for (g = 0; g < 8; g++) {
            const int64_t j = q * 64 + g * 8;
            __m256i d = _mm256_loadu_si256((const __m256i *)(dot + j));
            __m256i t = _mm256_loadu_si256((const __m256i *)(thresh + j));
            __m256i r = _mm256_cmpgt_epi32(t, d);                 /* dot < t */
            if (flip) {
                __m256i f = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(flip + j)));
                __m256i fm = _mm256_xor_si256(_mm256_cmpeq_epi32(f, zero),
                                              _mm256_set1_epi32(-1));  /* flip != 0 */
                r = _mm256_blendv_epi8(r, _mm256_cmpgt_epi32(d, t), fm);
            }
            word |= (uint64_t)(uint32_t)_mm256_movemask_ps(_mm256_castsi256_ps(r)) << (g * 8);
        }
        out[q] = word;
    }
    if (full * 64 < n)
        bnn_epi_bits_ref(n - full * 64, dot + full * 64, thresh + full * 64,
                         flip ? flip + full * 64 : NULL, out + full);
}
#endif
