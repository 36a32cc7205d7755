/*
 * pm1_avx2.c -- the float x (+-1) tile with FMA: 6 rows x 16 columns in
 * twelve accumulators, read from and written to C in place, one broadcast
 * of a(r, j) per row and two panel loads per j.  fma(a, +-1, acc) rounds
 * acc +- a once, exactly as the reference's add of the exact product, so
 * results are bitwise the reference's.  Edge tiles (fewer rows or
 * columns) go through a local 6 x 16 tile.
 */
#include "bnn_kernels.h"

#if BNN_X86
#include <immintrin.h>
#include <string.h>

BNN_TARGET_AVX2 static void tile6x16(int64_t jn, const float *a, int64_t lda_i, int64_t lda_j,
                                     const float *panel, float *c, int64_t ldc, int zero)
{
    __m256 c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
    const float *a0 = a, *a1 = a + lda_i, *a2 = a + 2 * lda_i;
    const float *a3 = a + 3 * lda_i, *a4 = a + 4 * lda_i, *a5 = a + 5 * lda_i;
    int64_t j;
    if (zero) {
        c00 = c01 = c10 = c11 = c20 = c21 = _mm256_setzero_ps();
        c30 = c31 = c40 = c41 = c50 = c51 = _mm256_setzero_ps();
    } else {
        c00 = _mm256_loadu_ps(c), c01 = _mm256_loadu_ps(c + 8);
        c10 = _mm256_loadu_ps(c + ldc), c11 = _mm256_loadu_ps(c + ldc + 8);
        c20 = _mm256_loadu_ps(c + 2 * ldc), c21 = _mm256_loadu_ps(c + 2 * ldc + 8);
        c30 = _mm256_loadu_ps(c + 3 * ldc), c31 = _mm256_loadu_ps(c + 3 * ldc + 8);
        c40 = _mm256_loadu_ps(c + 4 * ldc), c41 = _mm256_loadu_ps(c + 4 * ldc + 8);
        c50 = _mm256_loadu_ps(c + 5 * ldc), c51 = _mm256_loadu_ps(c + 5 * ldc + 8);
    }
    for (j = 0; j < jn; j++) {
        const __m256 b0 = _mm256_loadu_ps(panel + j * BNN_PM1_NR);
        const __m256 b1 = _mm256_loadu_ps(panel + j * BNN_PM1_NR + 8);
        const int64_t o = j * lda_j;
        __m256 x = _mm256_broadcast_ss(a0 + o);
        c00 = _mm256_fmadd_ps(x, b0, c00); c01 = _mm256_fmadd_ps(x, b1, c01);
        x = _mm256_broadcast_ss(a1 + o);
        c10 = _mm256_fmadd_ps(x, b0, c10); c11 = _mm256_fmadd_ps(x, b1, c11);
        x = _mm256_broadcast_ss(a2 + o);
        c20 = _mm256_fmadd_ps(x, b0, c20); c21 = _mm256_fmadd_ps(x, b1, c21);
        x = _mm256_broadcast_ss(a3 + o);
        c30 = _mm256_fmadd_ps(x, b0, c30); c31 = _mm256_fmadd_ps(x, b1, c31);
        x = _mm256_broadcast_ss(a4 + o);
        c40 = _mm256_fmadd_ps(x, b0, c40); c41 = _mm256_fmadd_ps(x, b1, c41);
        x = _mm256_broadcast_ss(a5 + o);
        c50 = _mm256_fmadd_ps(x, b0, c50); c51 = _mm256_fmadd_ps(x, b1, c51);
    }
    _mm256_storeu_ps(c, c00); _mm256_storeu_ps(c + 8, c01);
    _mm256_storeu_ps(c + ldc, c10); _mm256_storeu_ps(c + ldc + 8, c11);
    _mm256_storeu_ps(c + 2 * ldc, c20); _mm256_storeu_ps(c + 2 * ldc + 8, c21);
    _mm256_storeu_ps(c + 3 * ldc, c30); _mm256_storeu_ps(c + 3 * ldc + 8, c31);
    _mm256_storeu_ps(c + 4 * ldc, c40); _mm256_storeu_ps(c + 4 * ldc + 8, c41);
    _mm256_storeu_ps(c + 5 * ldc, c50); _mm256_storeu_ps(c + 5 * ldc + 8, c51);
}

BNN_TARGET_AVX2 void bnn_pm1_tile_avx2(int64_t mr, int64_t nc, int64_t jn, const float *a,
                                       int64_t lda_i, int64_t lda_j, const float *panel,
                                       float *c, int64_t ldc, int zero)
{
    float t[BNN_PM1_MR * BNN_PM1_NR];
    int64_t r, j;
    if (mr == BNN_PM1_MR && nc == BNN_PM1_NR) {
        tile6x16(jn, a, lda_i, lda_j, panel, c, ldc, zero);
        return;
    }
    memset(t, 0, sizeof t);
    for (r = 0; r < mr; r++) {               /* an edge: rows one at a time, locally */
        __m256 c0, c1;
        const float *ar = a + r * lda_i;
        if (!zero) memcpy(t + r * BNN_PM1_NR, c + r * ldc, sizeof(float) * (size_t)nc);
        c0 = _mm256_loadu_ps(t + r * BNN_PM1_NR);
        c1 = _mm256_loadu_ps(t + r * BNN_PM1_NR + 8);
        for (j = 0; j < jn; j++) {
            const __m256 x = _mm256_broadcast_ss(ar + j * lda_j);
            c0 = _mm256_fmadd_ps(x, _mm256_loadu_ps(panel + j * BNN_PM1_NR), c0);
            c1 = _mm256_fmadd_ps(x, _mm256_loadu_ps(panel + j * BNN_PM1_NR + 8), c1);
        }
        _mm256_storeu_ps(t + r * BNN_PM1_NR, c0);
        _mm256_storeu_ps(t + r * BNN_PM1_NR + 8, c1);
        memcpy(c + r * ldc, t + r * BNN_PM1_NR, sizeof(float) * (size_t)nc);
    }
}
#endif
