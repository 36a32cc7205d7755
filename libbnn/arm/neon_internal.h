/*
 * neon_internal.h -- helpers shared by the aarch64 NEON kernels (private;
 * included only where BNN_ARM64 holds).
 */
#ifndef BNN_NEON_INTERNAL_H
#define BNN_NEON_INTERNAL_H

#include "bnn_kernels.h"

#include <arm_neon.h>
#include <string.h>

/* One bit per byte: m[v] byte k = 0xFF where bit 16v + k of `word` is set,
 * else 0.  A table lookup copies byte 2v + k/8 of the word into byte k of
 * vector v, and vtst keeps bit k % 8 of it.  For the first layer's sign-bit
 * copy (bit (output % 16) * 4 + tap), byte 4l + t of m[v] is then output
 * 4v + l, tap t: the order in which a 32-bit lane meets 4 taps. */
static inline __attribute__((always_inline)) void bnn_neon_bits_to_bytes(uint64_t word,
                                                                         uint8x16_t m[4])
{
    static const uint8_t idx[4][16] = {
        {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1},
        {2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3},
        {4, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5},
        {6, 6, 6, 6, 6, 6, 6, 6, 7, 7, 7, 7, 7, 7, 7, 7},
    };
    static const uint8_t sel[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
    const uint8x16_t wb = vreinterpretq_u8_u64(vdupq_n_u64(word));
    const uint8x16_t bit = vld1q_u8(sel);
    int v;
    for (v = 0; v < 4; v++) m[v] = vtstq_u8(vqtbl1q_u8(wb, vld1q_u8(idx[v])), bit);
}

/* Four bytes x[0..3] in every 32-bit lane. */
static inline __attribute__((always_inline)) uint8x16_t bnn_neon_dup4(const uint8_t *x)
{
    uint32_t v;
    memcpy(&v, x, 4);
    return vreinterpretq_u8_u32(vdupq_n_u32(v));
}

/* sum of x[0..n) (n * 255 must fit in 32 bits). */
static inline uint32_t bnn_neon_sum_u8(int64_t n, const uint8_t *x)
{
    uint32x4_t acc = vdupq_n_u32(0);
    uint32_t s;
    int64_t q = 0;
    for (; q + 16 <= n; q += 16) acc = vpadalq_u16(acc, vpaddlq_u8(vld1q_u8(x + q)));
    s = vaddvq_u32(acc);
    for (; q < n; q++) s += x[q];
    return s;
}

/* out[l] = bias[l] + xsum - 2 * s[l] for the 16 outputs of four vectors
 * of sums (the first layer's sum x*w = sum x - 2 * sum x*b), nj <= 16 of
 * them stored. */
static inline __attribute__((always_inline)) void
bnn_neon_u8_store(const uint32x4_t s[4], const int32_t *bias, uint32_t xsum, int32_t *out,
                  int64_t nj)
{
    const int32x4_t xs = vdupq_n_s32((int32_t)xsum);
    int32_t tmp[16];
    int32_t *dst = nj >= 16 ? out : tmp;
    int v;
    for (v = 0; v < 4; v++)
        vst1q_s32(dst + 4 * v, vsubq_s32(vaddq_s32(vld1q_s32(bias + 4 * v), xs),
                                         vshlq_n_s32(vreinterpretq_s32_u32(s[v]), 1)));
    if (nj < 16) memcpy(out, tmp, (size_t)nj * sizeof(int32_t));
}

/* The body of a first-layer strip (the table's dot_u8_strip, arguments
 * mr, j0, ncols, kp, x, ldx, wt, opad, bias, out, ldo) over a tile
 * function of up to 16 outputs, tile(R, x, ldx, quads, wz, bias, xsum,
 * out, ldo, nj) with R the rows: the walk the plain NEON and the
 * dot-product kernels share.  A macro, so it takes each kernel's target
 * attribute. */
#define BNN_NEON_U8_STRIP(tile)                                                        \
    do {                                                                               \
        const uint64_t *bits_ = (const uint64_t *)(wt + opad * kp);                    \
        const int64_t quads_ = kp / 4;                                                 \
        uint32_t xsum_[BNN_MR];                                                        \
        int64_t r_, jb_;                                                               \
        for (r_ = 0; r_ < mr; r_++) xsum_[r_] = bnn_neon_sum_u8(kp, x + r_ * ldx);     \
        for (jb_ = 0; jb_ < ncols; jb_ += 16) {                                        \
            const int64_t j_ = j0 + jb_; /* a multiple of 16: word (j % 64) / 16 */    \
            const uint64_t *wz_ = bits_ + (j_ / 64) * quads_ * 4 + (j_ % 64) / 16;     \
            const int64_t nj_ = BNN_MIN(16, ncols - jb_);                              \
            switch (mr) { /* mr <= BNN_MR = 4 */                                       \
            case 4: tile(4, x, ldx, quads_, wz_, bias + j_, xsum_, out + jb_, ldo, nj_); break; \
            case 3: tile(3, x, ldx, quads_, wz_, bias + j_, xsum_, out + jb_, ldo, nj_); break; \
            case 2: tile(2, x, ldx, quads_, wz_, bias + j_, xsum_, out + jb_, ldo, nj_); break; \
            default: tile(1, x, ldx, quads_, wz_, bias + j_, xsum_, out + jb_, ldo, nj_); break; \
            }                                                                          \
        }                                                                              \
    } while (0)

#endif /* BNN_NEON_INTERNAL_H */
