/*
 * quant_neon.c -- stochastic rounding to int8 with NEON (absmax_f32 and
 * round_i8 in bnn_kernels.h).
 *
 * absmax: |a| (vabs clears the sign bit, as fabsf) kept per lane where it
 * is greater than the lane's maximum; a compare with NaN is false, so NaN
 * never wins, as in the reference.  The maximum of non-negative floats
 * does not depend on the order, so the lanes' maxima combine exactly.
 *
 * round_i8: the generator's words come from the scalar bnn_mix64 (NEON has
 * no 64-bit lane multiply; aarch64's scalar MUL does one per 4 elements),
 * then per 4 elements u = bits * 2^-16 (exact), y = a * inv + u with the
 * product and the sum each rounded once (vmul, vadd: no FMA, as the
 * reference), floor (FRINTM), clamp to [-127, 127], NaN -> 0 (y != y),
 * convert and narrow.  Bitwise the reference.
 */
#include "bnn_kernels.h"

#if BNN_ARM64
#include <arm_neon.h>
#include <math.h>

float bnn_absmax_f32_neon(int64_t k, const float *a)
{
    float32x4_t acc = vdupq_n_f32(0.0f);
    float lanes[4], amax = 0.0f;
    int64_t j = 0;
    int l;
    for (; j + 4 <= k; j += 4) {
        const float32x4_t v = vabsq_f32(vld1q_f32(a + j));
        acc = vbslq_f32(vcgtq_f32(v, acc), v, acc);
    }
    vst1q_f32(lanes, acc);
    for (l = 0; l < 4; l++) amax = lanes[l] > amax ? lanes[l] : amax;
    for (; j < k; j++) {
        const float v = fabsf(a[j]);
        amax = v > amax ? v : amax;
    }
    return amax;
}

/* four floats -> four int32: clamp(floor(a * inv + u)), NaN -> 0 */
static inline int32x4_t round4(float32x4_t a, float32x4_t inv, uint16x4_t u16)
{
    const float32x4_t u = vmulq_n_f32(vcvtq_f32_u32(vmovl_u16(u16)), 1.0f / 65536.0f);
    const float32x4_t y = vaddq_f32(vmulq_f32(a, inv), u);
    const uint32x4_t num = vceqq_f32(y, y);
    float32x4_t f = vrndmq_f32(y);
    f = vminq_f32(vmaxq_f32(f, vdupq_n_f32(-127.0f)), vdupq_n_f32(127.0f));
    return vandq_s32(vcvtq_s32_f32(f), vreinterpretq_s32_u32(num));
}

void bnn_round_i8_neon(int64_t k, const float *a, const float *inv, int64_t inv_step,
                       uint64_t seed, uint64_t e0, int8_t *q, int64_t q_step)
{
    int64_t j = 0;
    /* up to the first element whose index is a multiple of 4, one at a time */
    while (j < k && ((e0 + (uint64_t)j) & 3) != 0) {
        bnn_round_i8_ref(1, a + j, inv + j * inv_step, 0, seed, e0 + (uint64_t)j, q + j * q_step, 1);
        j++;
    }
    /* 8 elements (two generator words) at a time; the element index must
     * not wrap within a block (the tail takes it) */
    for (; j + 8 <= k && e0 + (uint64_t)j <= UINT64_MAX - 7; j += 8) {
        const uint64_t w = (e0 + (uint64_t)j) >> 2;
        const uint64x2_t bits = vcombine_u64(vcreate_u64(bnn_mix64(seed, w)),
                                             vcreate_u64(bnn_mix64(seed, w + 1)));
        const uint16x8_t u = vreinterpretq_u16_u64(bits);   /* 8 uniforms, in order */
        float32x4_t i0, i1;
        int16x8_t q16;
        int8x8_t q8;
        if (inv_step == 0) {
            i0 = i1 = vdupq_n_f32(inv[0]);
        } else if (inv_step == 1) {
            i0 = vld1q_f32(inv + j);
            i1 = vld1q_f32(inv + j + 4);
        } else {
            float tmp[8];
            int l;
            for (l = 0; l < 8; l++) tmp[l] = inv[(j + l) * inv_step];
            i0 = vld1q_f32(tmp);
            i1 = vld1q_f32(tmp + 4);
        }
        q16 = vcombine_s16(vmovn_s32(round4(vld1q_f32(a + j), i0, vget_low_u16(u))),
                           vmovn_s32(round4(vld1q_f32(a + j + 4), i1, vget_high_u16(u))));
        q8 = vmovn_s16(q16);                     /* values in [-127, 127]: exact */
        if (q_step == 1) {
            vst1_s8(q + j, q8);
        } else {
            int8_t tmp[8];
            int l;
            vst1_s8(tmp, q8);
            for (l = 0; l < 8; l++) q[(j + l) * q_step] = tmp[l];
        }
    }
    if (j < k)
        bnn_round_i8_ref(k - j, a + j, inv + j * inv_step, inv_step, seed, e0 + (uint64_t)j,
                         q + j * q_step, q_step);
}

#else
typedef int bnn_quant_neon_is_empty; /* ISO C wants a declaration in every file */
#endif
