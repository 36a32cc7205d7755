/*
 * neon.c -- the aarch64 Advanced SIMD (NEON) kernels: sign packing of
 * floats and int8 (compare, weight by the bit's value, add across lanes)
 * and the XNOR popcount strip (veor + vcnt per byte, pairwise widening
 * adds, register-blocked over 4 rows by 4 columns).  The table of core/dispatch.c takes the reference kernels for the
 * other entries.  Bit-exact with ref/ (integers and compares only).
 */
#include "bnn_kernels.h"

#if BNN_ARM64
#include <arm_neon.h>

void bnn_pack_f32_neon(int64_t k, const float *src, uint64_t *dst)
{
    static const uint32_t wv[4] = {1, 2, 4, 8};
    const uint32x4_t weights = vld1q_u32(wv);
    const float32x4_t zero = vdupq_n_f32(0.0f);
    const int64_t full = k / 64;
    int64_t q, g;
    for (q = 0; q < full; q++) {
        const float *s = src + q * 64;
        uint64_t word = 0;
        for (g = 0; g < 16; g++) {       /* x < 0: ordered, so NaN and -0 give 0 */
            const uint32x4_t m = vcltq_f32(vld1q_f32(s + 4 * g), zero);
            word |= (uint64_t)vaddvq_u32(vandq_u32(m, weights)) << (4 * g);
        }
        dst[q] = word;
    }
    if (k % 64) bnn_pack_f32_ref(k - full * 64, src + full * 64, dst + full);
}

void bnn_pack_i8_neon(int64_t k, const int8_t *src, uint64_t *dst)
{
    static const uint8_t wv[8] = {1, 2, 4, 8, 16, 32, 64, 128};
    const uint8x8_t weights = vld1_u8(wv);
    const int64_t full = k / 64;
    int64_t q, g;
    for (q = 0; q < full; q++) {
        const int8_t *s = src + q * 64;
        uint64_t word = 0;
        for (g = 0; g < 8; g++) {
            const uint8x8_t m = vcltz_s8(vld1_s8(s + 8 * g));
            word |= (uint64_t)vaddv_u8(vand_u8(m, weights)) << (8 * g);
        }
        dst[q] = word;
    }
    if (k % 64) bnn_pack_i8_ref(k - full * 64, src + full * 64, dst + full);
}

void bnn_unpack_f32_neon(int64_t k, const uint64_t *src, float *dst)
{
    static const uint32_t wv[4] = {1, 2, 4, 8};
    const uint32x4_t weights = vld1q_u32(wv);
    const float32x4_t pos = vdupq_n_f32(1.0f), neg = vdupq_n_f32(-1.0f);
    const int64_t full = k / 4;
    int64_t g;
    for (g = 0; g < full; g++) {          /* elements 4g .. 4g+3: one nibble */
        const uint32_t nib = (uint32_t)(src[g / 16] >> (4 * (g % 16))) & 15u;
        const uint32x4_t set = vtstq_u32(vdupq_n_u32(nib), weights);
        vst1q_f32(dst + 4 * g, vbslq_f32(set, neg, pos));
    }
    for (g = 4 * full; g < k; g++) dst[g] = ((src[g / 64] >> (g % 64)) & 1) ? -1.0f : 1.0f;
}

/* fmaf((float)dot, scale, offset): vfmaq rounds once, as fmaf does. */
void bnn_epi_f32_neon(int64_t n, const int32_t *dot, const float *scale, const float *offset,
                      float *out)
{
    int64_t j = 0;
    for (; j + 4 <= n; j += 4) {
        const float32x4_t d = vcvtq_f32_s32(vld1q_s32(dot + j));
        const float32x4_t sc = scale ? vld1q_f32(scale + j) : vdupq_n_f32(1.0f);
        const float32x4_t of = offset ? vld1q_f32(offset + j) : vdupq_n_f32(0.0f);
        vst1q_f32(out + j, vfmaq_f32(of, d, sc));
    }
    if (j < n)
        bnn_epi_f32_ref(n - j, dot + j, scale ? scale + j : NULL, offset ? offset + j : NULL,
                        out + j);
}

/* bit = flip ? dot > thresh : dot < thresh, four outputs per nibble. */
void bnn_epi_bits_neon(int64_t n, const int32_t *dot, const int32_t *thresh,
                       const uint8_t *flip, uint64_t *out)
{
    static const uint32_t wv[4] = {1, 2, 4, 8};
    const uint32x4_t weights = vld1q_u32(wv);
    const int64_t full = n / 64;
    int64_t q, g;
    for (q = 0; q < full; q++) {
        uint64_t word = 0;
        for (g = 0; g < 16; g++) {
            const int64_t j = q * 64 + 4 * g;
            const int32x4_t d = vld1q_s32(dot + j), t = vld1q_s32(thresh + j);
            uint32x4_t f = vdupq_n_u32(0), bit;
            if (flip) {                         /* any non-zero flip byte counts as 1 */
                const uint32_t fb = (uint32_t)(flip[j] != 0) | (uint32_t)(flip[j + 1] != 0) << 1
                                    | (uint32_t)(flip[j + 2] != 0) << 2
                                    | (uint32_t)(flip[j + 3] != 0) << 3;
                f = vtstq_u32(vdupq_n_u32(fb), weights);
            }
            bit = vbslq_u32(f, vcgtq_s32(d, t), vcltq_s32(d, t));
            word |= (uint64_t)vaddvq_u32(vandq_u32(bit, weights)) << (4 * g);
        }
        out[q] = word;
    }
    if (n % 64)
        bnn_epi_bits_ref(n - full * 64, dot + full * 64, thresh + full * 64,
                         flip ? flip + full * 64 : NULL, out + full);
}

/* The XNOR popcount strip, register-blocked: a tile of R rows of A (R <= 4)
 * by C rows of W (C = 4, or 1 for the last columns) keeps R*C accumulators
 * of eight 16-bit lanes.  Each step loads two words of every row once
 * (R + C loads for R*C products), and per pair of rows
 *     veor -> vcnt (count per byte, <= 8) -> vpadal (pairs of bytes added
 *     into the 16-bit lanes, <= 16 per lane per step),
 * so 4095 steps stay below 2^16 (4095 * 16 = 65520); every chunk of 4095
 * steps is added across its lanes into an int64 total.  An odd last word
 * is counted on one 64-bit register.  The 4 x 4 tile uses 16 accumulators,
 * 4 A and 1 W vector plus temporaries of the 32 vector registers. */
#define POPC_CHUNK 4095

static inline __attribute__((always_inline)) void
popc_tile(const int R, const int C, int64_t kw, const uint64_t *a, int64_t lda,
          const uint64_t *w, int64_t ldw, int32_t *pc, int64_t ldpc)
{
    int64_t tot[4][4] = {{0}};
    const int64_t steps = kw / 2;
    int64_t s0, s;
    int r, c;
    for (s0 = 0; s0 < steps; s0 += POPC_CHUNK) {
        const int64_t s1 = BNN_MIN(steps, s0 + POPC_CHUNK);
        uint16x8_t acc[4][4];
        for (r = 0; r < R; r++)
            for (c = 0; c < C; c++) acc[r][c] = vdupq_n_u16(0);
        for (s = s0; s < s1; s++) {
            uint8x16_t av[4];
            for (r = 0; r < R; r++) av[r] = vreinterpretq_u8_u64(vld1q_u64(a + r * lda + 2 * s));
            for (c = 0; c < C; c++) {
                const uint8x16_t wv = vreinterpretq_u8_u64(vld1q_u64(w + c * ldw + 2 * s));
                for (r = 0; r < R; r++)
                    acc[r][c] = vpadalq_u8(acc[r][c], vcntq_u8(veorq_u8(av[r], wv)));
            }
        }
        for (r = 0; r < R; r++)
            for (c = 0; c < C; c++) tot[r][c] += (int64_t)vaddlvq_u16(acc[r][c]);
    }
    for (r = 0; r < R; r++)
        for (c = 0; c < C; c++) {
            int64_t t = tot[r][c];
            if (kw % 2)
                t += vaddv_u8(vcnt_u8(vcreate_u8(a[r * lda + kw - 1] ^ w[c * ldw + kw - 1])));
            pc[r * ldpc + c] = (int32_t)t;
        }
}

/* R rows against every column: 4 at a time, then one at a time. */
static inline __attribute__((always_inline)) void
popc_rows(const int R, int64_t ncols, int64_t kw, const uint64_t *a, int64_t lda,
          const uint64_t *w, int64_t ldw, int32_t *pc, int64_t ldpc)
{
    int64_t j;
    for (j = 0; j + 4 <= ncols; j += 4) popc_tile(R, 4, kw, a, lda, w + j * ldw, ldw, pc + j, ldpc);
    for (; j < ncols; j++) popc_tile(R, 1, kw, a, lda, w + j * ldw, ldw, pc + j, ldpc);
}

void bnn_popc_strip_neon(int64_t mr, int64_t ncols, int64_t kw, const uint64_t *a, int64_t lda,
                         const uint64_t *w, int64_t ldw, int32_t *pc, int64_t ldpc)
{
    int64_t i = 0;
    for (; i + 4 <= mr; i += 4)   /* once: mr <= BNN_MR = 4 */
        popc_rows(4, ncols, kw, a + i * lda, lda, w, ldw, pc + i * ldpc, ldpc);
    switch (mr - i) {
    case 3: popc_rows(3, ncols, kw, a + i * lda, lda, w, ldw, pc + i * ldpc, ldpc); break;
    case 2: popc_rows(2, ncols, kw, a + i * lda, lda, w, ldw, pc + i * ldpc, ldpc); break;
    case 1: popc_rows(1, ncols, kw, a + i * lda, lda, w, ldw, pc + i * ldpc, ldpc); break;
    default: break;
    }
}

#else
typedef int bnn_neon_is_empty; /* ISO C wants a declaration in every file */
#endif
