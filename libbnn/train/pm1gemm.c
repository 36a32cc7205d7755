/*
 * pm1gemm.c -- C = A . S with S a +-1 matrix held as packed bits: the
 * backward products of a binary layer (input gradient g . W+-1 and weight
 * gradient g^T . x+-1) without a float copy of the +-1 operand.
 *
 * For each 64-column word of S and each block of BNN_PM1_JB rows of it,
 * the bits are expanded to +-1.0f in a small panel (four 16-column
 * sub-panels of 16 KB), and the pm1_tile kernel accumulates 6 x 16 tiles of
 * C in place over the block's rows j in order.  Every
 * element of C is one float accumulator that adds +-A(i, j) for j = 0, 1,
 * ... in order, starting from 0 (or from C's value), whatever the ISA,
 * the blocking or the thread count: results are bitwise reproducible.
 * Threads split the words of S (columns of C).
 */
#include "bnn_kernels.h"

#include <string.h>


typedef struct pm1_job {
    const bnn_kernels *kt;
    int64_t I, K, J, lda_i, lda_j, lds, ldc;
    const float *a;
    const uint64_t *s;
    float *c;
    int accumulate;
} pm1_job;

static void pm1_words(const pm1_job *jb, int64_t w0, int64_t w1)
{
    float panel[4 * BNN_PM1_JB * BNN_PM1_NR];      /* see bnn_pm1_panel_row() */
    const bnn_kernels *kt = jb->kt;
    int64_t w, j0, j, i0;
    for (w = w0; w < w1; w++) {
        const int64_t k0 = 64 * w;
        const int64_t nk = BNN_MIN((int64_t)64, jb->K - k0);
        const int64_t nq = BNN_CEIL_DIV(nk, BNN_PM1_NR);
        for (j0 = 0; j0 < jb->J; j0 += BNN_PM1_JB) {
            const int64_t jn = BNN_MIN((int64_t)BNN_PM1_JB, jb->J - j0);
            const int zero = j0 == 0 && !jb->accumulate;
            for (j = 0; j < jn; j++)
                bnn_pm1_panel_row(kt, jb->s + (j0 + j) * jb->lds + w, panel, j, nq);
            for (i0 = 0; i0 < jb->I; i0 += BNN_PM1_MR)
                bnn_pm1_panel_tile(kt, BNN_MIN((int64_t)BNN_PM1_MR, jb->I - i0), nk, jn,
                                   jb->a + i0 * jb->lda_i + j0 * jb->lda_j, jb->lda_i, jb->lda_j,
                                   panel, jb->c + i0 * jb->ldc + k0, jb->ldc, zero);
        }
    }
}

static void pm1_part(void *ctx, int part, int parts)
{
    const pm1_job *jb = (const pm1_job *)ctx;
    const int64_t words = bnn_words(jb->K);
    pm1_words(jb, words * part / parts, words * (part + 1) / parts);
}

bnn_status bnn_gemm_f32_pm1_check(int64_t I, int64_t K, int64_t J, const float *a,
                                  int64_t lda_i, int64_t lda_j, const uint64_t *s,
                                  int64_t lds, const float *c, int64_t ldc)
{
    int64_t words;
    if (I < 0 || K < 0 || J < 0) return BNN_ERR_SHAPE;
    if (I == 0 || K == 0) return BNN_OK;
    if (c == NULL) return BNN_ERR_NULL;
    words = bnn_words(K);
    if (ldc < K) return BNN_ERR_STRIDE;
    if (!bnn_extent_ok(I, ldc, K, sizeof(float))) return BNN_ERR_OVERFLOW;
    if (J == 0) return BNN_OK;                 /* an empty sum: a and s unread */
    if (a == NULL || s == NULL) return BNN_ERR_NULL;
    if (lda_i < 1 || lda_j < 1 || lds < words) return BNN_ERR_STRIDE;
    if (!bnn_extent_ok(I, lda_i, 1, sizeof(float)) || !bnn_extent_ok(J, lda_j, 1, sizeof(float))
        || !bnn_extent_ok(J, lds, words, sizeof(uint64_t)))
        return BNN_ERR_OVERFLOW;
    {   /* the last element of A: (I-1)*lda_i + (J-1)*lda_j */
        int64_t x, y;
        if (!bnn_mul_ok(I - 1, lda_i, &x) || !bnn_mul_ok(J - 1, lda_j, &y) || x > INT64_MAX - y)
            return BNN_ERR_OVERFLOW;
    }
    return BNN_OK;
}

bnn_status bnn_gemm_f32_pm1(int64_t I, int64_t K, int64_t J, const float *a, int64_t lda_i,
                            int64_t lda_j, const uint64_t *s, int64_t lds, float *c,
                            int64_t ldc, int accumulate)
{
    pm1_job jb;
    int64_t words, work, r;
    int parts;
    bnn_status st = bnn_gemm_f32_pm1_check(I, K, J, a, lda_i, lda_j, s, lds, c, ldc);
    if (st != BNN_OK || I == 0 || K == 0) return st;
    words = bnn_words(K);
    if (J == 0) {                              /* an empty sum */
        if (!accumulate)
            for (r = 0; r < I; r++) memset(c + r * ldc, 0, sizeof(float) * (size_t)K);
        return BNN_OK;
    }
    jb.kt = bnn_kernels_get();
    jb.I = I; jb.K = K; jb.J = J;
    jb.a = a; jb.lda_i = lda_i; jb.lda_j = lda_j;
    jb.s = s; jb.lds = lds;
    jb.c = c; jb.ldc = ldc;
    jb.accumulate = accumulate != 0;
    parts = 1;
    if (bnn_mul_ok(I, K, &work) && bnn_mul_ok(work, J, &work) && work >= ((int64_t)1 << 20))
        parts = (int)BNN_MIN(BNN_MIN((int64_t)bnn_get_num_threads(), words), (int64_t)64);
    if (parts > 1) bnn_run_parts(pm1_part, &jb, parts);
    else pm1_words(&jb, 0, words);
    return BNN_OK;
}

/* ---- the int8 product: C = Q . S in exact integers ---------------------- */

#define BNN_I8_ROWS 256       /* rows of Q whose sums are taken at once */

typedef struct i8_job {
    const bnn_kernels *kt;
    int64_t rows, K, J, ldq, lds, ldc;
    const int8_t *q;           /* the chunk's first row */
    const uint64_t *s;
    int32_t *c;                /* the chunk's first row */
    const int32_t *rowsum;     /* sum_j q of each of the chunk's rows */
} i8_job;

static void i8_blocks(const i8_job *jb, int64_t b0, int64_t b1)
{
    int64_t b, j0, r, col;
    for (b = b0; b < b1; b++) {
        const int64_t k0 = 32 * b, nc = BNN_MIN((int64_t)32, jb->K - k0);
        int32_t *c = jb->c + k0;
        for (j0 = 0; j0 < jb->J; j0 += BNN_I8_CHUNK)
            jb->kt->i8pm1_chunk(jb->rows, nc, BNN_MIN((int64_t)BNN_I8_CHUNK, jb->J - j0),
                                jb->q + j0, jb->ldq, jb->s + j0 * jb->lds, jb->lds, k0, c,
                                jb->ldc, j0 == 0);
        for (r = 0; r < jb->rows; r++)                 /* sum q*S = sum q - 2 sum q*b */
            for (col = 0; col < nc; col++)
                c[r * jb->ldc + col] = jb->rowsum[r] - 2 * c[r * jb->ldc + col];
    }
}

static void i8_part(void *ctx, int part, int parts)
{
    const i8_job *jb = (const i8_job *)ctx;
    const int64_t blocks = BNN_CEIL_DIV(jb->K, (int64_t)32);
    i8_blocks(jb, blocks * part / parts, blocks * (part + 1) / parts);
}

bnn_status bnn_gemm_i8_pm1_check(int64_t I, int64_t K, int64_t J, const int8_t *q,
                                 int64_t ldq, const uint64_t *s, int64_t lds, const int32_t *c,
                                 int64_t ldc)
{
    int64_t words;
    if (I < 0 || K < 0 || J < 0 || J >= ((int64_t)1 << 24)) return BNN_ERR_SHAPE;
    if (I == 0 || K == 0) return BNN_OK;
    if (c == NULL) return BNN_ERR_NULL;
    words = bnn_words(K);
    if (ldc < K) return BNN_ERR_STRIDE;
    if (!bnn_extent_ok(I, ldc, K, sizeof(int32_t))) return BNN_ERR_OVERFLOW;
    if (J == 0) return BNN_OK;
    if (q == NULL || s == NULL) return BNN_ERR_NULL;
    if (ldq < J || lds < words) return BNN_ERR_STRIDE;
    if (!bnn_extent_ok(I, ldq, J, 1) || !bnn_extent_ok(J, lds, words, sizeof(uint64_t)))
        return BNN_ERR_OVERFLOW;
    return BNN_OK;
}

bnn_status bnn_gemm_i8_pm1(int64_t I, int64_t K, int64_t J, const int8_t *q, int64_t ldq,
                           const uint64_t *s, int64_t lds, int32_t *c, int64_t ldc)
{
    i8_job jb;
    int32_t rowsum[BNN_I8_ROWS];
    int64_t work, r, j, i0, blocks;
    int parts;
    bnn_status st = bnn_gemm_i8_pm1_check(I, K, J, q, ldq, s, lds, c, ldc);
    if (st != BNN_OK || I == 0 || K == 0) return st;
    if (J == 0) {
        for (r = 0; r < I; r++) memset(c + r * ldc, 0, sizeof(int32_t) * (size_t)K);
        return BNN_OK;
    }
    jb.kt = bnn_kernels_get();
    jb.K = K; jb.J = J; jb.ldq = ldq; jb.s = s; jb.lds = lds; jb.ldc = ldc;
    jb.rowsum = rowsum;
    blocks = BNN_CEIL_DIV(K, (int64_t)32);
    for (i0 = 0; i0 < I; i0 += BNN_I8_ROWS) {
        jb.rows = BNN_MIN((int64_t)BNN_I8_ROWS, I - i0);
        jb.q = q + i0 * ldq;
        jb.c = c + i0 * ldc;
        for (r = 0; r < jb.rows; r++) {
            int32_t total = 0;
            for (j = 0; j < J; j++) total += jb.q[r * ldq + j];
            rowsum[r] = total;
        }
        parts = 1;
        if (bnn_mul_ok(jb.rows, K, &work) && bnn_mul_ok(work, J, &work)
            && work >= ((int64_t)1 << 20))
            parts = (int)BNN_MIN(BNN_MIN((int64_t)bnn_get_num_threads(), blocks), (int64_t)64);
        if (parts > 1) bnn_run_parts(i8_part, &jb, parts);
        else i8_blocks(&jb, 0, blocks);
    }
    return BNN_OK;
}
