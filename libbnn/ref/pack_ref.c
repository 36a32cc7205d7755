/*
 * pack_ref.c -- scalar sign packing (oracle and fallback).
 *
 * Element j goes to word j/64, bit j%64; bit = (x < 0).  The comparison is
 * an ordered one, so NaN and -0.0 give 0 (+1), as the bit contract says.
 */
#include "bnn_kernels.h"

void bnn_pack_f32_ref(int64_t k, const float *src, uint64_t *dst)
{
    int64_t kw = bnn_words(k), q, j;
    for (q = 0; q < kw; q++) {
        uint64_t word = 0;
        int64_t n = BNN_MIN(64, k - q * 64);
        for (j = 0; j < n; j++)
            word |= (uint64_t)(src[q * 64 + j] < 0.0f) << j;
        dst[q] = word;
    }
}

void bnn_pack_i8_ref(int64_t k, const int8_t *src, uint64_t *dst)
{
    int64_t kw = bnn_words(k), q, j;
    for (q = 0; q < kw; q++) {
        uint64_t word = 0;
        int64_t n = BNN_MIN(64, k - q * 64);
        for (j = 0; j < n; j++)
            word |= (uint64_t)(src[q * 64 + j] < 0) << j;
        dst[q] = word;
    }
}

void bnn_unpack_f32_ref(int64_t k, const uint64_t *src, float *dst)
{
    int64_t j;
    for (j = 0; j < k; j++)
        dst[j] = ((src[j / 64] >> (j % 64)) & 1) ? -1.0f : 1.0f;
}
