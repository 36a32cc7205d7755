/*
 * pm1_ref.c -- the reference tile of the float x (+-1) product
 * (bnn_gemm_f32_pm1): c[r][q] += a(r, j) * panel[j][q] for j in order.
 * panel holds +-1.0f, so a * panel is exact and each step rounds once:
 * the same floats as an FMA kernel (libbnn is compiled with
 * -ffp-contract=off, so the compiler fuses nothing here).
 */
#include "bnn_kernels.h"

void bnn_pm1_tile_ref(int64_t mr, int64_t nc, int64_t jn, const float *a, int64_t lda_i,
                      int64_t lda_j, const float *panel, float *c, int64_t ldc, int zero)
{
    int64_t r, j, q;
    for (r = 0; r < mr; r++)
        for (q = 0; q < nc; q++) {
            float acc = zero ? 0.0f : c[r * ldc + q];
            for (j = 0; j < jn; j++)
                acc = acc + a[r * lda_i + j * lda_j] * panel[j * BNN_PM1_NR + q];
            c[r * ldc + q] = acc;
        }
}

/* The int8 x (bit) chunk: exact integer sums of q where the bit is set. */
void bnn_i8pm1_chunk_ref(int64_t rows, int64_t nc, int64_t jn, const int8_t *q, int64_t ldq,
                         const uint64_t *s, int64_t lds, int64_t k0, int32_t *c, int64_t ldc,
                         int first)
{
    int64_t r, col, j;
    for (r = 0; r < rows; r++)
        for (col = 0; col < nc; col++) {
            const int64_t k = k0 + col;
            int32_t acc = first ? 0 : c[r * ldc + col];
            for (j = 0; j < jn; j++)
                acc += ((s[j * lds + k / 64] >> (k % 64)) & 1u) ? q[r * ldq + j] : 0;
            c[r * ldc + col] = acc;
        }
}
