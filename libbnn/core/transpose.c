/*
 * transpose.c -- bnn_transpose_bits: a packed bit matrix transposed in
 * 64 x 64 blocks.  A block is 64 words a[r] (bit c of a[r] = element
 * (r, c), LSB first); it is transposed in place by swapping off-diagonal
 * j x j sub-blocks for j = 32, 16, ..., 1: row k (bit j of k clear) gives
 * its bits [j, 2j) of every 2j group to row k + j, which gives its bits
 * [0, j) back:  t = ((a[k] >> j) ^ a[k+j]) & m_j;  a[k+j] ^= t;
 * a[k] ^= t << j,  with m_j the low j bits of every 2j group.  Six rounds
 * of 32 swaps: about 400 word operations for 4096 bits.  Blocks at the
 * edges read zeros past rows/cols, and pad bits come out zero.
 */
#include "bnn_internal.h"

#include <string.h>

static void transpose64(uint64_t a[64])
{
    uint64_t m = 0x00000000FFFFFFFFULL;
    int j = 32, k;
    while (j != 0) {
        for (k = 0; k < 64; k = (k + j + 1) & ~j) {
            const uint64_t t = ((a[k] >> j) ^ a[k + j]) & m;
            a[k + j] ^= t;
            a[k] ^= t << j;
        }
        j >>= 1;
        m ^= m << j;
    }
}

bnn_status bnn_transpose_bits(int64_t rows, int64_t cols, const uint64_t *src,
                              int64_t src_stride_words, uint64_t *dst,
                              int64_t dst_stride_words)
{
    const int64_t cw = bnn_words(cols), rw = bnn_words(rows);
    uint64_t blk[64];
    int64_t rb, cb, r;
    if (rows < 0 || cols < 0) return BNN_ERR_SHAPE;
    if (rows == 0 || cols == 0) return BNN_OK;
    if (src == NULL || dst == NULL) return BNN_ERR_NULL;
    if (src_stride_words < cw || dst_stride_words < rw) return BNN_ERR_STRIDE;
    if (!bnn_extent_ok(rows, src_stride_words, cw, sizeof(uint64_t))
        || !bnn_extent_ok(cols, dst_stride_words, rw, sizeof(uint64_t)))
        return BNN_ERR_OVERFLOW;
    for (rb = 0; rb < rw; rb++)
        for (cb = 0; cb < cw; cb++) {
            const int64_t nr = BNN_MIN((int64_t)64, rows - 64 * rb);
            const int64_t nc = BNN_MIN((int64_t)64, cols - 64 * cb);
            const uint64_t cmask = nc == 64 ? ~(uint64_t)0 : (((uint64_t)1 << nc) - 1);
            for (r = 0; r < nr; r++) blk[r] = src[(64 * rb + r) * src_stride_words + cb] & cmask;
            if (nr < 64) memset(blk + nr, 0, sizeof(uint64_t) * (size_t)(64 - nr));
            transpose64(blk);
            for (r = 0; r < nc; r++) dst[(64 * cb + r) * dst_stride_words + rb] = blk[r];
        }
    return BNN_OK;
}
