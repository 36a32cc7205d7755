/*
 * pack_avx2.c -- AVX2 sign packing and unpacking.
 *
 * float32: an ordered "less than zero" compare (_CMP_LT_OQ: false for NaN
 * and for -0.0) gives all-ones lanes for x < 0; movemask collects the 8
 * lane signs into 8 bits; eight of those make a word.  int8: the sign bit
 * of a byte is exactly x < 0, so movemask_epi8 packs 32 elements at once.
 * Partial words at the row end use the reference code.
 */
#include "bnn_kernels.h"

#if BNN_X86
#include <immintrin.h>

BNN_TARGET_AVX2 void bnn_pack_f32_avx2(int64_t k, const float *src, uint64_t *dst)
{
    const __m256 zero = _mm256_setzero_ps();
    int64_t full = k / 64, q;
    for (q = 0; q < full; q++) {
        const float *s = src + q * 64;
        uint64_t word = 0;
        int g;
        for (g = 0; g < 8; g++) {
            __m256 v = _mm256_loadu_ps(s + g * 8);
            uint64_t bits = (uint32_t)_mm256_movemask_ps(
                _mm256_cmp_ps(v, zero, _CMP_LT_OQ));
            word |= bits << (g * 8);
        }
        dst[q] = word;
    }
    if (k % 64) bnn_pack_f32_ref(k % 64, src + full * 64, dst + full);
}

BNN_TARGET_AVX2 void bnn_pack_i8_avx2(int64_t k, const int8_t *src, uint64_t *dst)
{
    int64_t full = k / 64, q;
    for (q = 0; q < full; q++) {
        const __m256i *s = (const __m256i *)(src + q * 64);
        uint64_t lo = (uint32_t)_mm256_movemask_epi8(_mm256_loadu_si256(s));
        uint64_t hi = (uint32_t)_mm256_movemask_epi8(_mm256_loadu_si256(s + 1));
        dst[q] = lo | (hi << 32);
    }
    if (k % 64) bnn_pack_i8_ref(k % 64, src + full * 64, dst + full);
}

/* Each group of 8 bits selects +1 or -1 per lane: lane l tests bit l. */
BNN_TARGET_AVX2 void bnn_unpack_f32_avx2(int64_t k, const uint64_t *src, float *dst)
{
    const __m256i lanebit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    const __m256 pos = _mm256_set1_ps(1.0f), neg = _mm256_set1_ps(-1.0f);
    int64_t groups = k / 8, g;
    for (g = 0; g < groups; g++) {
        int bits = (int)((src[g / 8] >> ((g % 8) * 8)) & 0xff);
        __m256i sel = _mm256_and_si256(_mm256_set1_epi32(bits), lanebit);
        __m256 m = _mm256_castsi256_ps(_mm256_cmpeq_epi32(sel, lanebit));
        _mm256_storeu_ps(dst + g * 8, _mm256_blendv_ps(pos, neg, m));
    }
    for (g = groups * 8; g < k; g++)
        dst[g] = ((src[g / 64] >> (g % 64)) & 1) ? -1.0f : 1.0f;
}

#endif /* BNN_X86 */
