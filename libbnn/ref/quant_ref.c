/*
 * quant_ref.c -- the reference kernels of stochastic rounding to int8
 * (bnn_quantize_i8): the largest |a| of a row and the rounding of a row
 * with 16 uniform bits per element from the counter-based generator.
 */
#include "bnn_kernels.h"

#include <math.h>

float bnn_absmax_f32_ref(int64_t k, const float *a)
{
    float amax = 0.0f;
    int64_t j;
    for (j = 0; j < k; j++) {
        const float v = fabsf(a[j]);
        amax = v > amax ? v : amax;          /* NaN never wins */
    }
    return amax;
}

void bnn_round_i8_ref(int64_t k, const float *a, const float *inv, int64_t inv_step,
                      uint64_t seed, uint64_t e0, int8_t *q, int64_t q_step)
{
    int64_t j;
    for (j = 0; j < k; j++) {
        const uint64_t e = e0 + (uint64_t)j;
        const uint32_t bits = (uint32_t)(bnn_mix64(seed, e >> 2) >> (16 * (e & 3))) & 0xffffu;
        const float u = (float)bits * (1.0f / 65536.0f);
        const float y = a[j] * inv[j * inv_step] + u;
        float f;
        int8_t v = 0;
        if (y == y) {
            f = floorf(y);
            v = (int8_t)(f < -127.0f ? -127 : (f > 127.0f ? 127 : (int)f));
        }
        q[j * q_step] = v;
    }
}
