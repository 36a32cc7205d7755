/*
 * gemm_ref.c -- scalar XNOR-popcount micro-kernel and its float and bits
 * epilogues.
 *
 * With +1 -> bit 0 and -1 -> bit 1, a product of two elements is +1 when
 * their bits agree and -1 when they differ, so over K elements
 *     dot = (#agree) - (#differ) = K - 2 * popcount(a XOR b),
 * pad bits being 0 in both rows.  This file computes the popcounts; the
 * driver turns them into dots.
 */
#include "bnn_kernels.h"

#include <math.h>

void bnn_popc_strip_ref(int64_t mr, int64_t ncols, int64_t kw,
                        const uint64_t *a, int64_t lda,
                        const uint64_t *w, int64_t ldw,
                        int32_t *pc, int64_t ldpc)
{
    int64_t i, j, q;
    for (i = 0; i < mr; i++) {
        for (j = 0; j < ncols; j++) {
            const uint64_t *ar = a + i * lda, *wr = w + j * ldw;
            int64_t s = 0;
            for (q = 0; q < kw; q++) s += bnn_popcount64(ar[q] ^ wr[q]);
            pc[i * ldpc + j] = (int32_t)s;
        }
    }
}

void bnn_epi_f32_ref(int64_t n, const int32_t *dot,
                     const float *scale, const float *offset, float *out)
{
    int64_t j;
    for (j = 0; j < n; j++)
        out[j] = fmaf((float)dot[j], scale ? scale[j] : 1.0f,
                      offset ? offset[j] : 0.0f);
}

void bnn_epi_bits_ref(int64_t n, const int32_t *dot, const int32_t *thresh,
                      const uint8_t *flip, uint64_t *out)
{
    int64_t q, nw = bnn_words(n);
    for (q = 0; q < nw; q++) {
        uint64_t word = 0;
        int64_t b, nb = BNN_MIN(64, n - q * 64);
        for (b = 0; b < nb; b++) {
            int64_t j = q * 64 + b;
            int neg = (flip && flip[j]) ? dot[j] > thresh[j] : dot[j] < thresh[j];
            word |= (uint64_t)neg << b;
        }
        out[q] = word;
    }
}
