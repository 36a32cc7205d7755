/*
 * binarize.c -- binarization for training: the straight-through
 * estimator with cancellation (gradient passes where |x| <= 1), its mask
 * packed one bit per activation, and stochastic binarization from a
 * counter-based generator.
 */
#include "bnn_kernels.h"

#include <math.h>
#include <string.h>

/* ---- straight-through estimator ----------------------------------------- */

bnn_status bnn_ste_backward(int64_t n, const float *x, const float *grad, float *out)
{
    int64_t i;
    if (n < 0) return BNN_ERR_SHAPE;
    if (n == 0) return BNN_OK;
    if (!x || !grad || !out) return BNN_ERR_NULL;
    for (i = 0; i < n; i++) out[i] = fabsf(x[i]) <= 1.0f ? grad[i] : 0.0f;
    return BNN_OK;
}

static bnn_status rows_check(int64_t rows, int64_t k, const void *a, int64_t sa, size_t ea,
                             const void *b, int64_t sb_words)
{
    int64_t kw;
    if (rows < 0 || k < 0) return BNN_ERR_SHAPE;
    if (rows == 0 || k == 0) return BNN_OK;
    if (a == NULL || b == NULL) return BNN_ERR_NULL;
    kw = bnn_words(k);
    if (sa < k || sb_words < kw) return BNN_ERR_STRIDE;
    if (!bnn_extent_ok(rows, sa, k, ea) || !bnn_extent_ok(rows, sb_words, kw, 8))
        return BNN_ERR_OVERFLOW;
    return BNN_OK;
}

bnn_status bnn_ste_mask_pack(int64_t rows, int64_t k, const float *x, int64_t x_stride,
                             uint64_t *mask, int64_t mask_stride_words)
{
    int64_t i, j;
    bnn_status st = rows_check(rows, k, x, x_stride, sizeof(float), mask, mask_stride_words);
    if (st != BNN_OK || rows == 0 || k == 0) return st;
    for (i = 0; i < rows; i++) {
        const float *xr = x + i * x_stride;
        uint64_t *mr = mask + i * mask_stride_words;
        for (j = 0; j < bnn_words(k); j++) mr[j] = 0;
        for (j = 0; j < k; j++)
            mr[j / 64] |= (uint64_t)(fabsf(xr[j]) <= 1.0f) << (j % 64);
    }
    return BNN_OK;
}

bnn_status bnn_ste_backward_packed_check(int64_t rows, int64_t k, const uint64_t *mask,
                                         int64_t mask_stride_words, const float *grad,
                                         int64_t grad_stride, const float *out,
                                         int64_t out_stride)
{
    bnn_status st = rows_check(rows, k, grad, grad_stride, sizeof(float), mask,
                               mask_stride_words);
    if (st != BNN_OK || rows == 0 || k == 0) return st;
    if (out == NULL) return BNN_ERR_NULL;
    if (out_stride < k) return BNN_ERR_STRIDE;
    if (!bnn_extent_ok(rows, out_stride, k, sizeof(float))) return BNN_ERR_OVERFLOW;
    return BNN_OK;
}

bnn_status bnn_ste_backward_packed(int64_t rows, int64_t k, const uint64_t *mask,
                                   int64_t mask_stride_words, const float *grad,
                                   int64_t grad_stride, float *out, int64_t out_stride)
{
    int64_t i, j;
    bnn_status st = bnn_ste_backward_packed_check(rows, k, mask, mask_stride_words, grad,
                                                  grad_stride, out, out_stride);
    if (st != BNN_OK || rows == 0 || k == 0) return st;
    for (i = 0; i < rows; i++) {
        const uint64_t *mr = mask + i * mask_stride_words;
        const float *g = grad + i * grad_stride;
        float *o = out + i * out_stride;
        for (j = 0; j < k; j++) o[j] = ((mr[j / 64] >> (j % 64)) & 1) ? g[j] : 0.0f;
    }
    return BNN_OK;
}

/* ---- stochastic binarization -------------------------------------------- */

bnn_status bnn_pack_stochastic_f32(int64_t rows, int64_t k, const float *src,
                                   int64_t src_stride, uint64_t seed, uint64_t counter,
                                   uint64_t *dst, int64_t dst_stride_words)
{
    int64_t i, j;
    bnn_status st = rows_check(rows, k, src, src_stride, sizeof(float), dst, dst_stride_words);
    if (st != BNN_OK || rows == 0 || k == 0) return st;
    for (i = 0; i < rows; i++) {
        const float *xr = src + i * src_stride;
        uint64_t *dr = dst + i * dst_stride_words;
        uint64_t base = counter + (uint64_t)i * (uint64_t)k;
        for (j = 0; j < bnn_words(k); j++) dr[j] = 0;
        for (j = 0; j < k; j++) {
            float x = xr[j];
            /* p(+1) = clip((x + 1)/2, 0, 1); NaN counts as +1 */
            float pp = isnan(x) ? 1.0f : (x + 1.0f) * 0.5f;
            float u = (float)(bnn_mix64(seed, base + (uint64_t)j) >> 40) * (1.0f / 16777216.0f);
            pp = pp < 0.0f ? 0.0f : (pp > 1.0f ? 1.0f : pp);
            dr[j / 64] |= (uint64_t)(u >= pp) << (j % 64);
        }
    }
    return BNN_OK;
}

/* ---- stochastic rounding to int8 ------------------------------------------ */

#define BNN_QUANT_COLS 1024           /* columns per block (stack inverses) */

typedef struct quant_job {
    int64_t rows, k, lda, ldq;
    const float *a;               /* by column: the block's first column */
    int by_column;
    uint64_t seed, counter;       /* counter: element (0, j0) of the block */
    int64_t row_len;              /* elements per row of the whole matrix */
    int8_t *q;
    float *scale;
    const float *inv;             /* by column: the block's inverse scales */
} quant_job;

static void quant_rows(const quant_job *jb, int64_t r0, int64_t r1)
{
    const bnn_kernels *kt = bnn_kernels_get();
    int64_t r;
    for (r = r0; r < r1; r++) {
        const float *ar = jb->a + r * jb->lda;
        const uint64_t e0 = jb->counter + (uint64_t)r * (uint64_t)jb->row_len;
        if (!jb->by_column) {
            const float sc = kt->absmax_f32(jb->k, ar) / 127.0f;
            const float inv = sc > 0.0f ? 1.0f / sc : 0.0f;
            jb->scale[r] = sc;
            kt->round_i8(jb->k, ar, &inv, 0, jb->seed, e0, jb->q + r * jb->ldq, 1);
        } else {
            /* transposed: 16 rows at a time through a [k][16] tile, so each
             * column's 16 bytes are written together */
            int8_t tile[BNN_QUANT_COLS * 16];
            const int64_t rn = BNN_MIN((int64_t)16, r1 - r);
            int64_t i, j;
            for (i = 0; i < rn; i++)
                kt->round_i8(jb->k, ar + i * jb->lda, jb->inv, 1, jb->seed,
                             e0 + (uint64_t)i * (uint64_t)jb->row_len, tile + i, 16);
            for (j = 0; j < jb->k; j++)
                memcpy(jb->q + j * jb->ldq + r, tile + j * 16, (size_t)rn);
            r += rn - 1;
        }
    }
}

static void quant_part(void *ctx, int part, int parts)
{
    const quant_job *jb = (const quant_job *)ctx;
    quant_rows(jb, jb->rows * part / parts, jb->rows * (part + 1) / parts);
}

static void quant_run(quant_job *jb)
{
    int64_t total;
    int parts = 1;
    if (bnn_mul_ok(jb->rows, jb->k, &total) && total >= ((int64_t)1 << 18))
        parts = (int)BNN_MIN(BNN_MIN((int64_t)bnn_get_num_threads(), jb->rows),
                             (int64_t)BNN_MAX_THREADS);
    if (parts > 1) bnn_run_parts(quant_part, jb, parts);
    else quant_rows(jb, 0, jb->rows);
}


bnn_status bnn_quantize_i8_check(int64_t rows, int64_t k, const float *a, int64_t lda,
                                 int by_column, const int8_t *q, int64_t ldq, const float *scale)
{
    if (rows < 0 || k < 0) return BNN_ERR_SHAPE;
    if (rows == 0 || k == 0) {
        const int64_t ns = by_column ? k : rows;
        return ns > 0 && scale == NULL ? BNN_ERR_NULL : BNN_OK;
    }
    if (a == NULL || q == NULL || scale == NULL) return BNN_ERR_NULL;
    if (lda < k || ldq < (by_column ? rows : k)) return BNN_ERR_STRIDE;
    if (!bnn_extent_ok(rows, lda, k, sizeof(float))
        || !(by_column ? bnn_extent_ok(k, ldq, rows, 1) : bnn_extent_ok(rows, ldq, k, 1)))
        return BNN_ERR_OVERFLOW;
    return BNN_OK;
}

bnn_status bnn_quantize_i8(int64_t rows, int64_t k, const float *a, int64_t lda, int by_column,
                           uint64_t seed, uint64_t counter, int8_t *q, int64_t ldq, float *scale)
{
    quant_job jb;
    int64_t r, j, j0;
    bnn_status st = bnn_quantize_i8_check(rows, k, a, lda, by_column, q, ldq, scale);
    if (st != BNN_OK) return st;
    if (rows == 0 || k == 0) {
        const int64_t ns = by_column ? k : rows;
        for (j = 0; j < ns; j++) scale[j] = 0.0f;
        return BNN_OK;
    }
    jb.rows = rows; jb.k = k; jb.lda = lda; jb.ldq = ldq; jb.a = a;
    jb.by_column = by_column != 0;
    jb.seed = seed; jb.counter = counter; jb.row_len = k;
    jb.q = q; jb.scale = scale; jb.inv = NULL;
    if (!jb.by_column) {
        quant_run(&jb);
        return BNN_OK;
    }
    for (j = 0; j < k; j++) scale[j] = 0.0f;          /* column maxima */
    for (r = 0; r < rows; r++) {
        const float *ar = a + r * lda;
        for (j = 0; j < k; j++) {      /* v > scale ? v : scale, as masks (NaN never wins) */
            uint32_t vb, sb;
            const float v = fabsf(ar[j]);
            const uint32_t m = 0u - (uint32_t)(v > scale[j]);
            memcpy(&vb, &v, 4);
            memcpy(&sb, scale + j, 4);
            sb = (vb & m) | (sb & ~m);
            memcpy(scale + j, &sb, 4);
        }
    }
    for (j = 0; j < k; j++) scale[j] = scale[j] / 127.0f;
    for (j0 = 0; j0 < k; j0 += BNN_QUANT_COLS) {
        float inv[BNN_QUANT_COLS];
        quant_job sub = jb;
        sub.k = BNN_MIN((int64_t)BNN_QUANT_COLS, k - j0);
        for (j = 0; j < sub.k; j++)
            inv[j] = scale[j0 + j] > 0.0f ? 1.0f / scale[j0 + j] : 0.0f;
        sub.a = a + j0;
        sub.q = q + j0 * ldq;
        sub.counter = counter + (uint64_t)j0;   /* e = counter + r*k + j, whole rows */
        sub.inv = inv;
        quant_run(&sub);
    }
    return BNN_OK;
}
