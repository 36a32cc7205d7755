/*
 * neon.c -- the aarch64 Advanced SIMD (NEON) kernels: sign packing of
 * floats and int8 (compare, weight by the bit's value, add across lanes)
 * and the XNOR popcount strip (veor + vcnt per byte, pairwise widening
 * adds).  The table of core/dispatch.c takes the reference kernels for the
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

/* popcount(a XOR w) over kw words: bytes counted by vcnt, added pairwise
 * into 16-bit lanes (at most 16 per lane per step; 2048 steps stay below
 * 2^15), folded into 32-bit lanes every 2048 steps. */
static int32_t popc_xor(const uint64_t *a, const uint64_t *w, int64_t kw)
{
    uint32x4_t acc32 = vdupq_n_u32(0);
    int64_t q = 0;
    while (q + 2 <= kw) {
        uint16x8_t acc16 = vdupq_n_u16(0);
        int64_t steps = 0;
        for (; q + 2 <= kw && steps < 2048; q += 2, steps++) {
            const uint8x16_t x = veorq_u8(vreinterpretq_u8_u64(vld1q_u64(a + q)),
                                          vreinterpretq_u8_u64(vld1q_u64(w + q)));
            acc16 = vpadalq_u8(acc16, vcntq_u8(x));
        }
        acc32 = vpadalq_u16(acc32, acc16);
    }
    {
        int64_t s = (int64_t)vaddvq_u32(acc32);
        if (q < kw) s += vaddv_u8(vcnt_u8(vcreate_u8(a[q] ^ w[q])));
        return (int32_t)s;
    }
}

void bnn_popc_strip_neon(int64_t mr, int64_t ncols, int64_t kw, const uint64_t *a, int64_t lda,
                         const uint64_t *w, int64_t ldw, int32_t *pc, int64_t ldpc)
{
    int64_t i, j;
    for (i = 0; i < mr; i++)
        for (j = 0; j < ncols; j++) pc[i * ldpc + j] = popc_xor(a + i * lda, w + j * ldw, kw);
}

#else
typedef int bnn_neon_is_empty; /* ISO C wants a declaration in every file */
#endif
