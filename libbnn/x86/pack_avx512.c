/*
 * pack_avx512.c -- AVX-512 sign packing.
 *
 * float32: _mm512_cmp_ps_mask(x, 0, _CMP_LT_OQ) yields 16 bits (x < 0,
 * false for NaN and -0.0); four make a word.  int8: movepi8_mask takes
 * the 64 sign bits of 64 bytes, one whole word.  Partial words use the
 * reference code.
 */
#include "bnn_kernels.h"

#if BNN_X86
#include <immintrin.h>

BNN_TARGET_AVX512 void bnn_pack_f32_avx512(int64_t k, const float *src, uint64_t *dst)
{
    const __m512 zero = _mm512_setzero_ps();
    int64_t full = k / 64, q;
    for (q = 0; q < full; q++) {
        const float *s = src + q * 64;
        uint64_t m0 = _mm512_cmp_ps_mask(_mm512_loadu_ps(s), zero, _CMP_LT_OQ);
        uint64_t m1 = _mm512_cmp_ps_mask(_mm512_loadu_ps(s + 16), zero, _CMP_LT_OQ);
        uint64_t m2 = _mm512_cmp_ps_mask(_mm512_loadu_ps(s + 32), zero, _CMP_LT_OQ);
        uint64_t m3 = _mm512_cmp_ps_mask(_mm512_loadu_ps(s + 48), zero, _CMP_LT_OQ);
        dst[q] = m0 | (m1 << 16) | (m2 << 32) | (m3 << 48);
    }
    if (k % 64) bnn_pack_f32_ref(k % 64, src + full * 64, dst + full);
}

BNN_TARGET_AVX512 void bnn_pack_i8_avx512(int64_t k, const int8_t *src, uint64_t *dst)
{
    int64_t full = k / 64, q;
    for (q = 0; q < full; q++)
        dst[q] = (uint64_t)_mm512_movepi8_mask(_mm512_loadu_si512(src + q * 64));
    if (k % 64) bnn_pack_i8_ref(k % 64, src + full * 64, dst + full);
}

#endif /* BNN_X86 */
