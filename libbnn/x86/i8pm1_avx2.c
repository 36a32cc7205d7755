/*
 * i8pm1_avx2.c -- the int8 x (+-1) tile with vpmaddubsw.
 *
 * It sums q where the packed bit b is 1 (S = -1); the driver makes that
 * sum_j q*S = sum_j q - 2 sum_j q*b.  For a pair of rows (j, j+1) of S and 32 columns, the bits are spread to
 * bytes b in {0, 1}, interleaved per column (b_j, b_j+1), so vpmaddubsw
 * with the broadcast pair (q_j, q_j+1) gives, per column, the int16
 * b_j*q_j + b_j+1*q_j+1 (|.| <= 256: no saturation).  Four rows share each
 * spread; int16 sums are moved to int32 every 126 pairs (|sum| <= 32256).
 * Integer arithmetic: bitwise the reference's.
 */
#include "bnn_kernels.h"

#if BNN_X86
#include <immintrin.h>
#include <string.h>


/* The 32 bits of row j and of row j + 1 at columns k0 .. k0+31 as two
 * vectors of interleaved {0, 1} bytes (columns 0-15 and 16-31). */
BNN_TARGET_AVX2 static inline void spread_pair(uint32_t a, uint32_t b, __m256i *lo, __m256i *hi)
{
    const __m256i v = _mm256_set1_epi64x((long long)((uint64_t)a | ((uint64_t)b << 32)));
    /* byte 2l <- byte l/8 of a, byte 2l+1 <- byte l/8 of b (b starts at byte 4) */
    const __m256i idx_lo = _mm256_setr_epi8(0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4,
                                            1, 5, 1, 5, 1, 5, 1, 5, 1, 5, 1, 5, 1, 5, 1, 5);
    const __m256i idx_hi = _mm256_setr_epi8(2, 6, 2, 6, 2, 6, 2, 6, 2, 6, 2, 6, 2, 6, 2, 6,
                                            3, 7, 3, 7, 3, 7, 3, 7, 3, 7, 3, 7, 3, 7, 3, 7);
    const __m256i bit = _mm256_setr_epi8(1, 1, 2, 2, 4, 4, 8, 8, 16, 16, 32, 32, 64, 64,
                                         -128, -128, 1, 1, 2, 2, 4, 4, 8, 8, 16, 16, 32, 32,
                                         64, 64, -128, -128);
    const __m256i one = _mm256_set1_epi8(1);
    __m256i x = _mm256_and_si256(_mm256_shuffle_epi8(v, idx_lo), bit);
    *lo = _mm256_and_si256(_mm256_cmpeq_epi8(x, bit), one);
    x = _mm256_and_si256(_mm256_shuffle_epi8(v, idx_hi), bit);
    *hi = _mm256_and_si256(_mm256_cmpeq_epi8(x, bit), one);
}

BNN_TARGET_AVX2 static inline void flush16(__m256i acc, int32_t *t)
{
    /* int16 lanes 0-15 in column order -> int32 (lanes 0-7, then 8-15) */
    __m256i a = _mm256_cvtepi16_epi32(_mm256_castsi256_si128(acc));
    __m256i b = _mm256_cvtepi16_epi32(_mm256_extracti128_si256(acc, 1));
    _mm256_storeu_si256((__m256i *)t, _mm256_add_epi32(_mm256_loadu_si256((const __m256i *)t), a));
    _mm256_storeu_si256((__m256i *)(t + 8),
                        _mm256_add_epi32(_mm256_loadu_si256((const __m256i *)(t + 8)), b));
}

/* rows [0, MR) of a tile over the chunk's npair spread pairs: MR is a
 * constant where this is inlined, so the 2 * MR accumulators stay in
 * registers; the int16 sums are added into the tile's int32 rows t */
BNN_TARGET_AVX2 static inline __attribute__((always_inline)) void
tile_pairs(int64_t MR, int64_t npair, const __m256i *panel, const int8_t *q, int64_t ldq,
           int32_t (*t)[32])
{
    __m256i acc[4][2];
    int64_t r, p;
    for (r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
    for (p = 0; p < npair; p++) {
        const __m256i lo = _mm256_load_si256(panel + 2 * p), hi = _mm256_load_si256(panel + 2 * p + 1);
        for (r = 0; r < MR; r++) {
            int16_t pair;
            __m256i qq;
            memcpy(&pair, q + r * ldq + 2 * p, 2);   /* (q_j, q_j+1), little-endian */
            qq = _mm256_set1_epi16(pair);
            acc[r][0] = _mm256_add_epi16(acc[r][0], _mm256_maddubs_epi16(lo, qq));
            acc[r][1] = _mm256_add_epi16(acc[r][1], _mm256_maddubs_epi16(hi, qq));
        }
    }
    for (r = 0; r < MR; r++) {
        flush16(acc[r][0], t[r]);
        flush16(acc[r][1], t[r] + 16);
    }
}

/* The 4-row tile with its eight accumulators named, each row finished
 * before the next (an empty asm pins the pair): left to itself the
 * compiler issues all eight products first, needs 18 vectors and spills
 * an accumulator to the stack -- a store-to-load chain every pair. */
BNN_TARGET_AVX2 static void tile_pairs4(int64_t npair, const __m256i *panel, const int8_t *q,
                                        int64_t ldq, int32_t (*t)[32])
{
    __m256i a0l = _mm256_setzero_si256(), a0h = a0l, a1l = a0l, a1h = a0l;
    __m256i a2l = a0l, a2h = a0l, a3l = a0l, a3h = a0l;
    const int8_t *q0 = q, *q1 = q + ldq, *q2 = q + 2 * ldq, *q3 = q + 3 * ldq;
    int64_t p;
    for (p = 0; p < npair; p++) {
        const __m256i lo = _mm256_load_si256(panel + 2 * p), hi = _mm256_load_si256(panel + 2 * p + 1);
        int16_t pair;
        __m256i b;
#define BNN_ROW(qr, al, ah)                                              \
        memcpy(&pair, (qr) + 2 * p, 2);                                  \
        b = _mm256_set1_epi16(pair);                                     \
        al = _mm256_add_epi16(al, _mm256_maddubs_epi16(lo, b));          \
        ah = _mm256_add_epi16(ah, _mm256_maddubs_epi16(hi, b));          \
        __asm__("" : "+x"(al), "+x"(ah));  /* one row at a time: no spill */
        BNN_ROW(q0, a0l, a0h)
        BNN_ROW(q1, a1l, a1h)
        BNN_ROW(q2, a2l, a2h)
        BNN_ROW(q3, a3l, a3h)
#undef BNN_ROW
    }
    flush16(a0l, t[0]); flush16(a0h, t[0] + 16);
    flush16(a1l, t[1]); flush16(a1h, t[1] + 16);
    flush16(a2l, t[2]); flush16(a2h, t[2] + 16);
    flush16(a3l, t[3]); flush16(a3h, t[3] + 16);
}

BNN_TARGET_AVX2 void bnn_i8pm1_chunk_avx2(int64_t rows, int64_t nc, int64_t jn,
                                          const int8_t *q, int64_t ldq, const uint64_t *s,
                                          int64_t lds, int64_t k0, int32_t *c, int64_t ldc,
                                          int first)
{
    /* the chunk's pairs of S rows, spread once for every row of q */
    __m256i panel[BNN_I8_CHUNK];          /* 8 KB, aligned as its type */
    int32_t t[4][32];
    const int64_t w = k0 / 64, sh = k0 % 64, npair = jn / 2;
    int64_t p, i0;
    for (p = 0; p < npair; p++)
        spread_pair((uint32_t)(s[2 * p * lds + w] >> sh), (uint32_t)(s[(2 * p + 1) * lds + w] >> sh),
                    &panel[2 * p], &panel[2 * p + 1]);
    for (i0 = 0; i0 < rows; i0 += 4) {
        const int64_t mr = BNN_MIN((int64_t)4, rows - i0);
        const int8_t *qi = q + i0 * ldq;
        memset(t, 0, sizeof t);
        if (mr == 4) tile_pairs4(npair, panel, qi, ldq, t);
        else tile_pairs(mr, npair, panel, qi, ldq, t);
        bnn_i8pm1_finish(mr, jn, s[(jn - 1) * lds + w] >> sh, qi, ldq, t, nc, c + i0 * ldc,
                         ldc, first);
    }
}
#endif
