/*
 * u8_avx2.c -- AVX2 micro-kernel of the 8-bit first layer (uint8 pixels
 * times int8 weights in {-1, 0, +1}; the contract is in bnn_kernels.h).
 *
 * uint8 x int8 dots, vectorised over outputs: for each pair of taps the
 * two input bytes are broadcast to every 16-bit lane and vpmaddubsw
 * multiplies them with the pair's weights of 16 outputs, adding the two
 * products into int16 (|sum| <= 2 * 255, so 64 pairs stay below 32767);
 * every 64 pairs the int16 sums are widened into int32.  A block of 64
 * outputs keeps 4 int16 and 8 int32 accumulators (started from the bias)
 * in registers.
 */
#include "bnn_kernels.h"

#if BNN_X86
#include <immintrin.h>
#include <string.h>

/* Rows i and i+1 (or just i when two == 0) against one block of 64
 * outputs: each weight vector loaded once serves both rows. */
BNN_TARGET_AVX2 static inline void u8_block2(const uint8_t *x0, const uint8_t *x1, int two,
                                             int64_t pairs, const int8_t *wb,
                                             const int32_t *bias, int32_t *o0, int32_t *o1,
                                             int64_t nj)
{
    __m256i a0[8], a1[8];
    int32_t tmp[64];
    int64_t p0, p;
    int b;
    for (b = 0; b < 8; b++) {
        a0[b] = _mm256_loadu_si256((const __m256i *)(bias + 8 * b));
        a1[b] = a0[b];
    }
    for (p0 = 0; p0 < pairs; p0 += 64) {
        int64_t p1 = BNN_MIN(pairs, p0 + 64);
        __m256i s0[4], s1[4];
        for (b = 0; b < 4; b++) s0[b] = s1[b] = _mm256_setzero_si256();
        for (p = p0; p < p1; p++) {
            const int8_t *wp = wb + p * 128;
            __m256i w0 = _mm256_loadu_si256((const __m256i *)wp);
            __m256i w1 = _mm256_loadu_si256((const __m256i *)(wp + 32));
            __m256i w2 = _mm256_loadu_si256((const __m256i *)(wp + 64));
            __m256i w3 = _mm256_loadu_si256((const __m256i *)(wp + 96));
            uint16_t pr0, pr1;
            __m256i xb0, xb1;
            memcpy(&pr0, x0 + 2 * p, 2);
            memcpy(&pr1, x1 + 2 * p, 2);
            xb0 = _mm256_set1_epi16((short)pr0);
            xb1 = _mm256_set1_epi16((short)pr1);
            s0[0] = _mm256_add_epi16(s0[0], _mm256_maddubs_epi16(xb0, w0));
            s0[1] = _mm256_add_epi16(s0[1], _mm256_maddubs_epi16(xb0, w1));
            s0[2] = _mm256_add_epi16(s0[2], _mm256_maddubs_epi16(xb0, w2));
            s0[3] = _mm256_add_epi16(s0[3], _mm256_maddubs_epi16(xb0, w3));
            s1[0] = _mm256_add_epi16(s1[0], _mm256_maddubs_epi16(xb1, w0));
            s1[1] = _mm256_add_epi16(s1[1], _mm256_maddubs_epi16(xb1, w1));
            s1[2] = _mm256_add_epi16(s1[2], _mm256_maddubs_epi16(xb1, w2));
            s1[3] = _mm256_add_epi16(s1[3], _mm256_maddubs_epi16(xb1, w3));
        }
        /* int16 sums of at most 64 pairs of |x*w| <= 255 stay below 2^15 */
        for (b = 0; b < 4; b++) {
            a0[2 * b] = _mm256_add_epi32(a0[2 * b], _mm256_cvtepi16_epi32(_mm256_castsi256_si128(s0[b])));
            a0[2 * b + 1] = _mm256_add_epi32(a0[2 * b + 1],
                                             _mm256_cvtepi16_epi32(_mm256_extracti128_si256(s0[b], 1)));
            a1[2 * b] = _mm256_add_epi32(a1[2 * b], _mm256_cvtepi16_epi32(_mm256_castsi256_si128(s1[b])));
            a1[2 * b + 1] = _mm256_add_epi32(a1[2 * b + 1],
                                             _mm256_cvtepi16_epi32(_mm256_extracti128_si256(s1[b], 1)));
        }
    }
    if (nj == 64) {
        for (b = 0; b < 8; b++) _mm256_storeu_si256((__m256i *)(o0 + 8 * b), a0[b]);
        if (two)
            for (b = 0; b < 8; b++) _mm256_storeu_si256((__m256i *)(o1 + 8 * b), a1[b]);
    } else {
        for (b = 0; b < 8; b++) _mm256_storeu_si256((__m256i *)(tmp + 8 * b), a0[b]);
        for (b = 0; b < nj; b++) o0[b] = tmp[b];
        if (two) {
            for (b = 0; b < 8; b++) _mm256_storeu_si256((__m256i *)(tmp + 8 * b), a1[b]);
            for (b = 0; b < nj; b++) o1[b] = tmp[b];
        }
    }
}

BNN_TARGET_AVX2 void bnn_dot_u8_strip_avx2(int64_t mr, int64_t j0, int64_t ncols, int64_t kp,
                                           const uint8_t *x, int64_t ldx,
                                           const int8_t *wt, int64_t opad,
                                           const int32_t *bias, int32_t *out, int64_t ldo)
{
    int64_t i, jb, pairs = kp / 2;
    (void)opad;
    for (jb = 0; jb < ncols; jb += 64) {
        const int8_t *wb = wt + ((j0 + jb) / 64) * kp * 64;  /* this block's pairs */
        int64_t nj = BNN_MIN(64, ncols - jb);
        for (i = 0; i < mr; i += 2) {
            int two = i + 1 < mr;
            u8_block2(x + i * ldx, x + (i + two) * ldx, two, pairs, wb, bias + j0 + jb,
                      out + i * ldo + jb, out + (i + two) * ldo + jb, nj);
        }
    }
}

#endif /* BNN_X86 */
