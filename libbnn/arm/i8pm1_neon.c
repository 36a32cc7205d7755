/*
 * i8pm1_neon.c -- the int8 x (+-1) chunk (i8pm1_chunk in bnn_kernels.h)
 * with NEON masks and pairwise widening adds.
 *
 * It sums q where the packed bit b is 1 (S = -1); the driver makes that
 * sum_j q*S = sum_j q - 2 sum_j q*b.  For a pair of rows (j, j+1) of S and
 * 32 columns, the bits are spread to bytes 0xFF / 0 interleaved per column
 * (b_j, b_j+1): byte 2l + h of vector v is column 8v + l, row j + h (a
 * table lookup and a bit test), once per call for every row of q.  ANDed
 * with the broadcast pair (q_j, q_j+1) they hold q where the bit is set,
 * and vpadal (signed) adds each column's two bytes into its int16 lane:
 * |q_j + q_j+1| <= 256 per pair, and a chunk has at most 126 pairs
 * (|sum| <= 32256 < 2^15).  Four rows share each spread pair; the int16
 * sums are widened into int32 at the end.  Integer arithmetic: bitwise
 * the reference's.
 */
#include "bnn_kernels.h"

#if BNN_ARM64
#include <arm_neon.h>
#include <string.h>

/* The 32 bits of row j (a) and row j + 1 (b) at 32 columns as four
 * vectors of interleaved 0xFF / 0 bytes (columns 8v .. 8v + 7). */
static inline void spread_pair(uint32_t a, uint32_t b, uint8x16_t m[4])
{
    /* byte 2l <- byte v of a, byte 2l + 1 <- byte v of b (b at byte 4) */
    static const uint8_t idx[4][16] = {
        {0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4},
        {1, 5, 1, 5, 1, 5, 1, 5, 1, 5, 1, 5, 1, 5, 1, 5},
        {2, 6, 2, 6, 2, 6, 2, 6, 2, 6, 2, 6, 2, 6, 2, 6},
        {3, 7, 3, 7, 3, 7, 3, 7, 3, 7, 3, 7, 3, 7, 3, 7},
    };
    static const uint8_t sel[16] = {1, 1, 2, 2, 4, 4, 8, 8, 16, 16, 32, 32, 64, 64, 128, 128};
    const uint8x16_t v = vreinterpretq_u8_u64(vdupq_n_u64((uint64_t)a | ((uint64_t)b << 32)));
    const uint8x16_t bit = vld1q_u8(sel);
    int i;
    for (i = 0; i < 4; i++) m[i] = vtstq_u8(vqtbl1q_u8(v, vld1q_u8(idx[i])), bit);
}

/* R rows (1..4) of q over the chunk's npair spread pairs; the int16 sums
 * are added into the tile's int32 rows t. */
static inline __attribute__((always_inline)) void
tile_pairs(const int R, int64_t npair, const uint8x16_t *panel, const int8_t *q, int64_t ldq,
           int32_t (*t)[32])
{
    int16x8_t acc[4][4];
    int64_t p;
    int r, v;
    for (r = 0; r < R; r++)
        for (v = 0; v < 4; v++) acc[r][v] = vdupq_n_s16(0);
    for (p = 0; p < npair; p++) {
        const uint8x16_t *m = panel + 4 * p;
        for (r = 0; r < R; r++) {
            uint16_t pair;
            int8x16_t qq;
            memcpy(&pair, q + r * ldq + 2 * p, 2);     /* (q_j, q_j+1), little-endian */
            qq = vreinterpretq_s8_u16(vdupq_n_u16(pair));
            for (v = 0; v < 4; v++)
                acc[r][v] = vpadalq_s8(acc[r][v], vandq_s8(qq, vreinterpretq_s8_u8(m[v])));
        }
    }
    for (r = 0; r < R; r++)
        for (v = 0; v < 4; v++) {
            int32_t *d = t[r] + 8 * v;
            vst1q_s32(d, vaddw_s16(vld1q_s32(d), vget_low_s16(acc[r][v])));
            vst1q_s32(d + 4, vaddw_high_s16(vld1q_s32(d + 4), acc[r][v]));
        }
}

void bnn_i8pm1_chunk_neon(int64_t rows, int64_t nc, int64_t jn, const int8_t *q, int64_t ldq,
                          const uint64_t *s, int64_t lds, int64_t k0, int32_t *c, int64_t ldc,
                          int first)
{
    uint8x16_t panel[2 * BNN_I8_CHUNK];    /* 4 vectors per pair: 8 KB */
    int32_t t[4][32];
    const int64_t w = k0 / 64, sh = k0 % 64, npair = jn / 2;
    int64_t p, i0;
    for (p = 0; p < npair; p++)
        spread_pair((uint32_t)(s[2 * p * lds + w] >> sh),
                    (uint32_t)(s[(2 * p + 1) * lds + w] >> sh), panel + 4 * p);
    for (i0 = 0; i0 < rows; i0 += 4) {
        const int64_t mr = BNN_MIN((int64_t)4, rows - i0);
        const int8_t *qi = q + i0 * ldq;
        memset(t, 0, sizeof t);
        switch (mr) {
        case 4: tile_pairs(4, npair, panel, qi, ldq, t); break;
        case 3: tile_pairs(3, npair, panel, qi, ldq, t); break;
        case 2: tile_pairs(2, npair, panel, qi, ldq, t); break;
        default: tile_pairs(1, npair, panel, qi, ldq, t); break;
        }
        bnn_i8pm1_finish(mr, jn, s[(jn - 1) * lds + w] >> sh, qi, ldq, t, nc, c + i0 * ldc,
                         ldc, first);
    }
}

#else
typedef int bnn_i8pm1_neon_is_empty; /* ISO C wants a declaration in every file */
#endif
