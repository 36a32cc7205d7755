/*
 * u8_neon.c -- NEON micro-kernel of the 8-bit first layer (uint8 pixels
 * times +-1 weights; the dot_u8_strip contract in bnn_kernels.h) without
 * the dot product instructions.
 *
 * NEON has no uint8 x int8 multiply-add, but none is needed: it reads the
 * weights' sign-bit copy, b = 1 for a -1 weight and 0 for +1 (and for a
 * padded tap, where x = 0), so w = 1 - 2b and
 *     sum_q x_q w_q = X - 2 sum_q (x_q AND mask_q),   X = sum_q x_q,
 * mask_q = 0xFF where b_q = 1, else 0: the product with a 0/1 factor is a
 * masked byte.  X is one sum per row.  Each word of bits (16 outputs x 4
 * taps) becomes 4 mask vectors (bnn_neon_bits_to_bytes: a table lookup and
 * a bit test each), shared by every row; a row's 4 taps x[4q..4q+3] are
 * broadcast to the 32-bit lanes, so byte 4l + t of mask vector v meets tap
 * t for output 4v + l.  After the AND, vpadal adds byte pairs into 16-bit
 * lanes (2 * 255 = 510 per lane per group of taps, so 128 groups stay
 * below 2^16: 128 * 510 = 65280); every 128 groups vpadal adds those pairs
 * into 32-bit lanes, one per output.  A tile is R <= 4 rows by 16
 * outputs: 16 accumulators, 4 masks and the broadcasts in the 32 vector
 * registers; the 32-bit totals are touched once per 128 groups.
 */
#include "bnn_kernels.h"

#if BNN_ARM64
#include "arm/neon_internal.h"

#define U8_CHUNK 128   /* groups of 4 taps per 16-bit accumulation */

/* R rows against 16 outputs whose bit word of group q is wz[4q]. */
static inline __attribute__((always_inline)) void
u8_tile(const int R, const uint8_t *x, int64_t ldx, int64_t quads, const uint64_t *wz,
        const int32_t *bias, const uint32_t *xsum, int32_t *out, int64_t ldo, int64_t nj)
{
    uint32_t tot[4][16];
    int64_t q0, q;
    int r, v;
    memset(tot, 0, sizeof tot);
    for (q0 = 0; q0 < quads; q0 += U8_CHUNK) {
        const int64_t q1 = BNN_MIN(quads, q0 + U8_CHUNK);
        uint16x8_t acc[4][4];
        for (r = 0; r < R; r++)
            for (v = 0; v < 4; v++) acc[r][v] = vdupq_n_u16(0);
        for (q = q0; q < q1; q++) {
            uint8x16_t m[4];
            bnn_neon_bits_to_bytes(wz[4 * q], m);
            for (r = 0; r < R; r++) {
                const uint8x16_t xb = bnn_neon_dup4(x + r * ldx + 4 * q);
                for (v = 0; v < 4; v++) acc[r][v] = vpadalq_u8(acc[r][v], vandq_u8(xb, m[v]));
            }
        }
        for (r = 0; r < R; r++)
            for (v = 0; v < 4; v++)
                vst1q_u32(tot[r] + 4 * v, vpadalq_u16(vld1q_u32(tot[r] + 4 * v), acc[r][v]));
    }
    for (r = 0; r < R; r++) {
        uint32x4_t s[4];
        for (v = 0; v < 4; v++) s[v] = vld1q_u32(tot[r] + 4 * v);
        bnn_neon_u8_store(s, bias, xsum[r], out + r * ldo, nj);
    }
}

void bnn_dot_u8_strip_neon(int64_t mr, int64_t j0, int64_t ncols, int64_t kp,
                           const uint8_t *x, int64_t ldx, const int8_t *wt, int64_t opad,
                           const int32_t *bias, int32_t *out, int64_t ldo)
{
    BNN_NEON_U8_STRIP(u8_tile);
}

#else
typedef int bnn_u8_neon_is_empty; /* ISO C wants a declaration in every file */
#endif
