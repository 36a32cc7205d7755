/*
 * gemm_avx2.c -- AVX2 XNOR-popcount micro-kernel.
 *
 * AVX2 has no vector popcount, so each byte's count comes from two 16-entry
 * table lookups (vpshufb) on its low and high nibbles:
 *     popcount(x) per byte = LUT[x & 15] + LUT[(x >> 4) & 15]   (<= 8).
 * Byte counts are accumulated with vpaddb for at most 31 steps of 4 words
 * (31 * 8 = 248 < 256, no overflow), then widened with vpsadbw (sum of 8
 * bytes against zero) into 64-bit lanes.  Tiles are 2 rows of A by 4 rows
 * of W: 8 byte accumulators, the table, the nibble mask, 2 A vectors, one
 * W vector and 3 temporaries fill the 16 YMM registers.  Words past the
 * last multiple of 4 use scalar popcnt.
 */
#include "x86/avx2_internal.h"

#if BNN_X86
#include <immintrin.h>

#define CHUNK 31

static inline __attribute__((always_inline)) BNN_TARGET_AVX2 int64_t
hsum64(__m256i v)
{
    __m128i s = _mm_add_epi64(_mm256_castsi256_si128(v),
                              _mm256_extracti128_si256(v, 1));
    return _mm_cvtsi128_si64(s) + _mm_extract_epi64(s, 1);
}

/* An R x C tile (R <= 2, C <= 4, compile-time after inlining). */
static inline __attribute__((always_inline)) BNN_TARGET_AVX2 void
tile(const int R, const int C, int64_t kw, const uint64_t *a, int64_t lda,
     const uint64_t *w, int64_t ldw, int32_t *pc, int64_t ldpc)
{
    const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3,
                                         2, 3, 3, 4, 0, 1, 1, 2, 1, 2, 2, 3,
                                         1, 2, 2, 3, 2, 3, 3, 4);
    const __m256i mask = _mm256_set1_epi8(0x0f);
    const __m256i zero = _mm256_setzero_si256();
    __m256i acc64[2][4];
    int64_t steps = kw / 4, s0, q;
    int r, c;
    for (r = 0; r < R; r++)
        for (c = 0; c < C; c++) acc64[r][c] = zero;
    for (s0 = 0; s0 < steps; s0 += CHUNK) {
        int64_t s1 = BNN_MIN(steps, s0 + CHUNK), s;
        __m256i acc8[2][4];
        for (r = 0; r < R; r++)
            for (c = 0; c < C; c++) acc8[r][c] = zero;
        for (s = s0; s < s1; s++) {
            __m256i av[2];
            for (r = 0; r < R; r++)
                av[r] = _mm256_loadu_si256((const __m256i *)(a + r * lda + s * 4));
            for (c = 0; c < C; c++) {
                __m256i wv = _mm256_loadu_si256((const __m256i *)(w + c * ldw + s * 4));
                for (r = 0; r < R; r++)
                    acc8[r][c] = _mm256_add_epi8(
                        acc8[r][c], popcnt8(_mm256_xor_si256(av[r], wv), lut, mask));
            }
        }
        for (r = 0; r < R; r++)
            for (c = 0; c < C; c++)
                acc64[r][c] = _mm256_add_epi64(acc64[r][c],
                                               _mm256_sad_epu8(acc8[r][c], zero));
    }
    for (r = 0; r < R; r++) {
        if (C == 4) {
            /* reduce the 4 accumulators of a row together: lanes
             * [a0+a1, b0+b1, a2+a3, b2+b3] and [c.., d..], then the halves */
            __m256i x = _mm256_add_epi64(_mm256_unpacklo_epi64(acc64[r][0], acc64[r][1]),
                                         _mm256_unpackhi_epi64(acc64[r][0], acc64[r][1]));
            __m256i y = _mm256_add_epi64(_mm256_unpacklo_epi64(acc64[r][2], acc64[r][3]),
                                         _mm256_unpackhi_epi64(acc64[r][2], acc64[r][3]));
            __m256i z = _mm256_add_epi64(_mm256_permute2x128_si256(x, y, 0x20),
                                         _mm256_permute2x128_si256(x, y, 0x31));
            int64_t t4[4];
            _mm256_storeu_si256((__m256i *)t4, z);
            for (c = 0; c < 4; c++) {
                int64_t t = t4[c];
                for (q = steps * 4; q < kw; q++)
                    t += _mm_popcnt_u64(a[r * lda + q] ^ w[c * ldw + q]);
                pc[r * ldpc + c] = (int32_t)t;
            }
        } else {
            for (c = 0; c < C; c++) {
                int64_t t = hsum64(acc64[r][c]);
                for (q = steps * 4; q < kw; q++)
                    t += _mm_popcnt_u64(a[r * lda + q] ^ w[c * ldw + q]);
                pc[r * ldpc + c] = (int32_t)t;
            }
        }
    }
}

BNN_TARGET_AVX2 void bnn_popc_strip_avx2(int64_t mr, int64_t ncols, int64_t kw,
                                         const uint64_t *a, int64_t lda,
                                         const uint64_t *w, int64_t ldw,
                                         int32_t *pc, int64_t ldpc)
{
    int64_t i, j;
    for (i = 0; i + 2 <= mr; i += 2) {
        const uint64_t *ai = a + i * lda;
        int32_t *pi = pc + i * ldpc;
        for (j = 0; j + 4 <= ncols; j += 4)
            tile(2, 4, kw, ai, lda, w + j * ldw, ldw, pi + j, ldpc);
        for (; j < ncols; j++)
            tile(2, 1, kw, ai, lda, w + j * ldw, ldw, pi + j, ldpc);
    }
    for (; i < mr; i++) {
        const uint64_t *ai = a + i * lda;
        int32_t *pi = pc + i * ldpc;
        for (j = 0; j + 4 <= ncols; j += 4)
            tile(1, 4, kw, ai, lda, w + j * ldw, ldw, pi + j, ldpc);
        for (; j < ncols; j++)
            tile(1, 1, kw, ai, lda, w + j * ldw, ldw, pi + j, ldpc);
    }
}

BNN_TARGET_AVX2 void bnn_epi_f32_avx2(int64_t n, const int32_t *dot,
                                      const float *scale, const float *offset,
                                      float *out)
{
    const __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
    int64_t j;
    for (j = 0; j + 8 <= n; j += 8) {
        __m256 d = _mm256_cvtepi32_ps(_mm256_loadu_si256((const __m256i *)(dot + j)));
        __m256 s = scale ? _mm256_loadu_ps(scale + j) : one;
        __m256 o = offset ? _mm256_loadu_ps(offset + j) : zero;
        _mm256_storeu_ps(out + j, _mm256_fmadd_ps(d, s, o));
    }
    if (j < n)
        bnn_epi_f32_ref(n - j, dot + j, scale ? scale + j : NULL,
                        offset ? offset + j : NULL, out + j);
}

#endif /* BNN_X86 */
