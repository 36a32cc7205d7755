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
#include "../bnn_kernels.h"

#if BNN_X86
#include <immintrin.h>
#include <string.h>

#define CHUNK 31

static inline __attribute__((always_inline)) BNN_TARGET_AVX2 __m256i
popcnt8(__m256i x, __m256i lut, __m256i mask)
{
    __m256i lo = _mm256_and_si256(x, mask);
    __m256i hi = _mm256_and_si256(_mm256_srli_epi16(x, 4), mask);
    return _mm256_add_epi8(_mm256_shuffle_epi8(lut, lo),
                           _mm256_shuffle_epi8(lut, hi));
}

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

/* uint8 x int8 dots, vectorised over outputs: for each pair of taps the
 * two input bytes are broadcast to every 16-bit lane and vpmaddubsw
 * multiplies them with the pair's weights of 16 outputs, adding the two
 * products into int16 (|sum| <= 2 * 255, so 64 pairs stay below 32767);
 * every 64 pairs the int16 sums are widened into int32.  A block of 64
 * outputs keeps 4 int16 and 8 int32 accumulators (started from the bias)
 * in registers. */
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

/* Peak probe: the kernel's inner step (XOR, nibble popcount, byte add) on
 * 10 independent register accumulators, no memory traffic. */
BNN_TARGET_AVX2 uint64_t bnn_probe_avx2(int64_t iters, uint64_t *sink)
{
    const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3,
                                         2, 3, 3, 4, 0, 1, 1, 2, 1, 2, 2, 3,
                                         1, 2, 2, 3, 2, 3, 3, 4);
    const __m256i mask = _mm256_set1_epi8(0x0f);
    __m256i acc[10], x = _mm256_set1_epi64x((long long)0x9e3779b97f4a7c15ULL);
    const __m256i step = _mm256_set1_epi64x(0x3c6ef372fe94f82bLL);
    uint64_t out[4], s = 0;
    int64_t it;
    int i;
    for (i = 0; i < 10; i++) acc[i] = _mm256_set1_epi8((char)i);
    for (it = 0; it < iters; it++) {
        x = _mm256_add_epi64(x, step);
        for (i = 0; i < 10; i++)
            acc[i] = _mm256_add_epi8(acc[i],
                popcnt8(_mm256_xor_si256(acc[i], x), lut, mask));
    }
    for (i = 1; i < 10; i++) acc[0] = _mm256_xor_si256(acc[0], acc[i]);
    _mm256_storeu_si256((__m256i *)out, acc[0]);
    for (i = 0; i < 4; i++) s += out[i];
    *sink = s;
    return (uint64_t)iters * 10u * 256u;
}

#endif /* BNN_X86 */
