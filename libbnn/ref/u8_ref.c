/*
 * u8_ref.c -- scalar uint8 x int8 dot products of the direct 8-bit first
 * layer: out = bias + sum_q x[q] * W(j, q), weights in the pair-interleaved
 * layout of bnn_kernels.h (oracle and fallback).
 */
#include "bnn_kernels.h"

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
