/*
 * epi_bits_avx512.c -- the BITS epilogue (folded batch norm + sign) with AVX-512:
 * compare 16 int32 dots with their thresholds both ways, pick the
 * "greater" result where the channel's flip is set, and gather the lane
 * results into the output word.  A partial last word uses the reference
 * code.
 */
#include "bnn_kernels.h"

#if BNN_X86
#include <immintrin.h>

BNN_TARGET_AVX512 void bnn_epi_bits_avx512(int64_t n, const int32_t *dot,
                                           const int32_t *thresh, const uint8_t *flip,
                                           uint64_t *out)
{
    int64_t q, full = n / 64;
    for (q = 0; q < full; q++) {
        uint64_t word = 0;
        int g;
        for (g = 0; g < 4; g++) {
            const int64_t j = q * 64 + g * 16;
            __m512i d = _mm512_loadu_si512((const void *)(dot + j));
            __m512i t = _mm512_loadu_si512((const void *)(thresh + j));
            __mmask16 lt = _mm512_cmplt_epi32_mask(d, t);
            __mmask16 bits = lt;
            if (flip) {
                __m128i f = _mm_loadu_si128((const __m128i *)(flip + j));
                __mmask16 fm = _mm_test_epi8_mask(f, f);
                __mmask16 gt = _mm512_cmpgt_epi32_mask(d, t);
                bits = (__mmask16)((lt & ~fm) | (gt & fm));
            }
            word |= (uint64_t)bits << (g * 16);
        }
        out[q] = word;
    }
    if (full * 64 < n)
        bnn_epi_bits_ref(n - full * 64, dot + full * 64, thresh + full * 64,
                         flip ? flip + full * 64 : NULL, out + full);
}

#endif /* BNN_X86 */
