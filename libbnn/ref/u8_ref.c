/*
 * u8_ref.c -- scalar uint8 x int8 dot products of the direct 8-bit first
 * layer: out = bias + sum_q x[q] * W(j, q), weights in the pair-interleaved
 * layout of bnn_kernels.h (oracle and fallback); and the masked sums of the
 * BNN_U8_MASKED method.
 */
#include "bnn_kernels.h"

/* Byte masks of four bits: byte t is 0xFF where bit t is set. */
static const uint32_t k_mask4[16] = {
    0x00000000u, 0x000000FFu, 0x0000FF00u, 0x0000FFFFu, 0x00FF0000u, 0x00FF00FFu,
    0x00FFFF00u, 0x00FFFFFFu, 0xFF000000u, 0xFF0000FFu, 0xFF00FF00u, 0xFF00FFFFu,
    0xFFFF0000u, 0xFFFF00FFu, 0xFFFFFF00u, 0xFFFFFFFFu,
};

/* Four pixels at a time, with 32-bit operations only (cores without a
 * popcount instruction or 64-bit registers): each bit nibble of the row
 * becomes a byte mask by table, and the masked pixels' bytes are summed:
 * by USADA8 where the core has the Arm DSP instructions (Cortex-M4, M7,
 * M33: the sum of |byte - 0|), else their even and odd bytes into two
 * 16-bit lanes (at most 2 * 255 a step), folded into the total every 128
 * steps (512 pixels, 16 groups of 32).  Pixels are assembled from bytes
 * (little-endian), so any alignment works. */
#if defined(__ARM_FEATURE_SIMD32) && __ARM_FEATURE_SIMD32
#  include <arm_acle.h>
#  define BNN_MASKED_STEP(acc, v) ((acc) = __usada8((v), 0u, (acc)))
#else
#  define BNN_MASKED_STEP(acc, v) ((acc) += ((v) & 0x00FF00FFu) + (((v) >> 8) & 0x00FF00FFu))
#endif

static uint32_t fold_lanes(uint32_t lanes)
{
#if defined(__ARM_FEATURE_SIMD32) && __ARM_FEATURE_SIMD32
    return lanes;              /* USADA8 accumulates one 32-bit sum */
#else
    return (lanes & 0xFFFFu) + (lanes >> 16);
#endif
}

uint32_t bnn_u8_masked_sum(int64_t kp, const uint8_t *x, const uint64_t *w)
{
    uint32_t total = 0, lanes = 0;
    const size_t groups = (size_t)(kp / 32);
    size_t g;
    for (g = 0; g < groups; g++) {
        const uint64_t word = w[g / 2];
        uint32_t bits = (g & 1) ? (uint32_t)(word >> 32) : (uint32_t)word;
        const uint8_t *p = x + 32 * g;
#define BNN_QUAD(t)                                                                     \
    do {                                                                                \
        const uint32_t v = ((uint32_t)p[4 * (t)] | (uint32_t)p[4 * (t) + 1] << 8         \
                            | (uint32_t)p[4 * (t) + 2] << 16                            \
                            | (uint32_t)p[4 * (t) + 3] << 24)                           \
                           & k_mask4[(bits >> (4 * (t))) & 0xFu];                        \
        BNN_MASKED_STEP(lanes, v);                                                      \
    } while (0)
        BNN_QUAD(0); BNN_QUAD(1); BNN_QUAD(2); BNN_QUAD(3);
        BNN_QUAD(4); BNN_QUAD(5); BNN_QUAD(6); BNN_QUAD(7);
#undef BNN_QUAD
        if (g % 16 == 15) {
            total += fold_lanes(lanes);
            lanes = 0;
        }
    }
    return total + fold_lanes(lanes);
}

void bnn_dot_u8_strip_ref(int64_t mr, int64_t j0, int64_t ncols, int64_t kp,
                          const uint8_t *x, int64_t ldx,
                          const int8_t *wt, int64_t opad, const int32_t *bias,
                          int32_t *out, int64_t ldo)
{
    int64_t i, j, q;
    (void)opad;
    for (i = 0; i < mr; i++)
        for (j = 0; j < ncols; j++) {
            const uint8_t *xr = x + i * ldx;
            int32_t s = bias[j0 + j];
            for (q = 0; q < kp; q++)
                s += (int32_t)xr[q] * wt[((j0 + j) / 64) * kp * 64 + (q / 2) * 128
                                         + ((j0 + j) % 64) * 2 + q % 2];
            out[i * ldo + j] = s;
        }
}
