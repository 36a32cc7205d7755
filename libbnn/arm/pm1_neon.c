/*
 * pm1_neon.c -- the float x (+-1) tile (pm1_tile in bnn_kernels.h) with
 * NEON: up to 4 rows x 16 columns at a time in 16 accumulators of four
 * floats (the 6-row tile as 4 + 2 rows: 24 accumulators, the panel and
 * six broadcasts would not fit the 32 registers without spills), read
 * from and written to C in place; per j four panel loads and one
 * broadcast of a(r, j) per row, then vfmaq.  The panel holds +-1.0f, so a * panel is
 * exact and fma(a, +-1, acc) rounds acc +- a once, exactly as the
 * reference's add of the exact product: bitwise the reference, j in the
 * same order.  Tiles of fewer than 16 columns go row by row through a
 * local row of 16 floats, so nothing outside the mr x nc elements of C is
 * touched.
 */
#include "bnn_kernels.h"

#if BNN_ARM64
#include <arm_neon.h>
#include <string.h>

/* R rows (R <= 4) by 16 columns, C at c / ldc. */
static inline __attribute__((always_inline)) void
pm1_rows(const int R, int64_t jn, const float *a, int64_t lda_i, int64_t lda_j,
         const float *panel, float *c, int64_t ldc, int zero)
{
    float32x4_t acc[4][4];
    int64_t j;
    int r, v;
    for (r = 0; r < R; r++)
        for (v = 0; v < 4; v++)
            acc[r][v] = zero ? vdupq_n_f32(0.0f) : vld1q_f32(c + r * ldc + 4 * v);
    for (j = 0; j < jn; j++) {
        const float *p = panel + j * BNN_PM1_NR;
        float32x4_t b[4];
        for (v = 0; v < 4; v++) b[v] = vld1q_f32(p + 4 * v);
        for (r = 0; r < R; r++) {
            const float32x4_t x = vld1q_dup_f32(a + r * lda_i + j * lda_j);
            for (v = 0; v < 4; v++) acc[r][v] = vfmaq_f32(acc[r][v], x, b[v]);
        }
    }
    for (r = 0; r < R; r++)
        for (v = 0; v < 4; v++) vst1q_f32(c + r * ldc + 4 * v, acc[r][v]);
}

void bnn_pm1_tile_neon(int64_t mr, int64_t nc, int64_t jn, const float *a, int64_t lda_i,
                       int64_t lda_j, const float *panel, float *c, int64_t ldc, int zero)
{
    float t[BNN_PM1_NR];
    int64_t r;
    if (nc == BNN_PM1_NR) {
        for (r = 0; r + 4 <= mr; r += 4)
            pm1_rows(4, jn, a + r * lda_i, lda_i, lda_j, panel, c + r * ldc, ldc, zero);
        switch (mr - r) {
        case 3: pm1_rows(3, jn, a + r * lda_i, lda_i, lda_j, panel, c + r * ldc, ldc, zero); break;
        case 2: pm1_rows(2, jn, a + r * lda_i, lda_i, lda_j, panel, c + r * ldc, ldc, zero); break;
        case 1: pm1_rows(1, jn, a + r * lda_i, lda_i, lda_j, panel, c + r * ldc, ldc, zero); break;
        default: break;
        }
        return;
    }
    for (r = 0; r < mr; r++) {        /* fewer columns: one row at a time, locally */
        memset(t, 0, sizeof t);
        if (!zero) memcpy(t, c + r * ldc, sizeof(float) * (size_t)nc);
        pm1_rows(1, jn, a + r * lda_i, lda_i, lda_j, panel, t, BNN_PM1_NR, zero);
        memcpy(c + r * ldc, t, sizeof(float) * (size_t)nc);
    }
}

#else
typedef int bnn_pm1_neon_is_empty; /* ISO C wants a declaration in every file */
#endif
