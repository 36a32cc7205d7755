/* pack.c -- public packing and unpacking: validation and the row loop,
 * split over threads by rows for large tensors (every row is independent,
 * so the result does not depend on the split). */
#include "bnn_kernels.h"

/* Elements below which a call stays on the calling thread. */
#define BNN_PACK_PAR_MIN ((int64_t)1 << 21)

typedef struct rows_ctx {
    int kind;                 /* 0 pack f32, 1 pack i8, 2 unpack f32 */
    int64_t rows, k, ss, ds;  /* strides in elements / words */
    const void *src;
    void *dst;
    const bnn_kernels *kt;
} rows_ctx;

static void rows_part(void *vctx, int part, int parts)
{
    const rows_ctx *c = (const rows_ctx *)vctx;
    int64_t i, i0 = c->rows * part / parts, i1 = c->rows * (part + 1) / parts;
    for (i = i0; i < i1; i++) {
        switch (c->kind) {
        case 0:
            c->kt->pack_f32(c->k, (const float *)c->src + i * c->ss, (uint64_t *)c->dst + i * c->ds);
            break;
        case 1:
            c->kt->pack_i8(c->k, (const int8_t *)c->src + i * c->ss, (uint64_t *)c->dst + i * c->ds);
            break;
        default:
            c->kt->unpack_f32(c->k, (const uint64_t *)c->src + i * c->ss, (float *)c->dst + i * c->ds);
            break;
        }
    }
}

static void run_rows(int kind, int64_t rows, int64_t k, const void *src, int64_t ss, void *dst,
                     int64_t ds)
{
    rows_ctx c;
    int threads = bnn_get_num_threads();
    c.kind = kind; c.rows = rows; c.k = k; c.ss = ss; c.ds = ds;
    c.src = src; c.dst = dst; c.kt = bnn_kernels_get();
    if (threads > 1 && rows > 1 && rows * k >= BNN_PACK_PAR_MIN)
        bnn_run_parts(rows_part, &c, (int)BNN_MIN(BNN_MIN((int64_t)threads, rows), 8));
    else
        rows_part(&c, 0, 1);
}

bnn_status bnn_pack_check(int64_t rows, int64_t k, const void *src, int64_t src_stride,
                          size_t src_elem, const void *dst, int64_t dst_stride_words)
{
    int64_t kw;
    if (rows < 0 || k < 0) return BNN_ERR_SHAPE;
    if (rows == 0 || k == 0) return BNN_OK;
    if (src == NULL || dst == NULL) return BNN_ERR_NULL;
    kw = bnn_words(k);
    if (src_stride < k || dst_stride_words < kw) return BNN_ERR_STRIDE;
    if (!bnn_extent_ok(rows, src_stride, k, src_elem)
        || !bnn_extent_ok(rows, dst_stride_words, kw, sizeof(uint64_t)))
        return BNN_ERR_OVERFLOW;
    return BNN_OK;
}

bnn_status bnn_pack_f32(int64_t rows, int64_t k, const float *src,
                        int64_t src_stride, uint64_t *dst,
                        int64_t dst_stride_words)
{
    bnn_status st = bnn_pack_check(rows, k, src, src_stride, sizeof(float), dst,
                               dst_stride_words);
    if (st != BNN_OK || rows == 0 || k == 0) return st;
    run_rows(0, rows, k, src, src_stride, dst, dst_stride_words);
    return BNN_OK;
}

bnn_status bnn_pack_i8(int64_t rows, int64_t k, const int8_t *src,
                       int64_t src_stride, uint64_t *dst,
                       int64_t dst_stride_words)
{
    bnn_status st = bnn_pack_check(rows, k, src, src_stride, 1, dst,
                               dst_stride_words);
    if (st != BNN_OK || rows == 0 || k == 0) return st;
    run_rows(1, rows, k, src, src_stride, dst, dst_stride_words);
    return BNN_OK;
}

bnn_status bnn_unpack_f32(int64_t rows, int64_t k, const uint64_t *src,
                          int64_t src_stride_words, float *dst,
                          int64_t dst_stride)
{
    int64_t kw;
    if (rows < 0 || k < 0) return BNN_ERR_SHAPE;
    if (rows == 0 || k == 0) return BNN_OK;
    if (src == NULL || dst == NULL) return BNN_ERR_NULL;
    kw = bnn_words(k);
    if (src_stride_words < kw || dst_stride < k) return BNN_ERR_STRIDE;
    if (!bnn_extent_ok(rows, src_stride_words, kw, sizeof(uint64_t))
        || !bnn_extent_ok(rows, dst_stride, k, sizeof(float)))
        return BNN_ERR_OVERFLOW;
    run_rows(2, rows, k, src, src_stride_words, dst, dst_stride);
    return BNN_OK;
}
