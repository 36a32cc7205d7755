/* pack.c -- public packing and unpacking: validation and the row loop. */
#include "bnn_kernels.h"

static bnn_status check_pack(int64_t rows, int64_t k, const void *src,
                             int64_t src_stride, size_t src_elem,
                             const void *dst, int64_t dst_stride_words)
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
    const bnn_kernels *kt;
    int64_t i;
    bnn_status st = check_pack(rows, k, src, src_stride, sizeof(float), dst,
                               dst_stride_words);
    if (st != BNN_OK || rows == 0 || k == 0) return st;
    kt = bnn_kernels_get();
    for (i = 0; i < rows; i++)
        kt->pack_f32(k, src + i * src_stride, dst + i * dst_stride_words);
    return BNN_OK;
}

bnn_status bnn_pack_i8(int64_t rows, int64_t k, const int8_t *src,
                       int64_t src_stride, uint64_t *dst,
                       int64_t dst_stride_words)
{
    const bnn_kernels *kt;
    int64_t i;
    bnn_status st = check_pack(rows, k, src, src_stride, 1, dst,
                               dst_stride_words);
    if (st != BNN_OK || rows == 0 || k == 0) return st;
    kt = bnn_kernels_get();
    for (i = 0; i < rows; i++)
        kt->pack_i8(k, src + i * src_stride, dst + i * dst_stride_words);
    return BNN_OK;
}

bnn_status bnn_unpack_f32(int64_t rows, int64_t k, const uint64_t *src,
                          int64_t src_stride_words, float *dst,
                          int64_t dst_stride)
{
    const bnn_kernels *kt;
    int64_t i, kw;
    if (rows < 0 || k < 0) return BNN_ERR_SHAPE;
    if (rows == 0 || k == 0) return BNN_OK;
    if (src == NULL || dst == NULL) return BNN_ERR_NULL;
    kw = bnn_words(k);
    if (src_stride_words < kw || dst_stride < k) return BNN_ERR_STRIDE;
    if (!bnn_extent_ok(rows, src_stride_words, kw, sizeof(uint64_t))
        || !bnn_extent_ok(rows, dst_stride, k, sizeof(float)))
        return BNN_ERR_OVERFLOW;
    kt = bnn_kernels_get();
    for (i = 0; i < rows; i++)
        kt->unpack_f32(k, src + i * src_stride_words, dst + i * dst_stride);
    return BNN_OK;
}
