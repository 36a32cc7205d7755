/*
 * format.h -- the .bnn layout, written once (docs/model-format.md).
 *
 * The public constants (sizes, alignment, record types and flags) are in
 * bnn.h for writers; this private header adds what only the reader needs:
 * the magic, the byte offsets of every header and record field, the
 * runtime's limits, and bounds-checked little-endian reads.
 */
#ifndef BNN_MODEL_FORMAT_H
#define BNN_MODEL_FORMAT_H

#include "bnn_internal.h"

#include <string.h>

#define BNN_MODEL_MAGIC_BYTES "BNNMODEL"   /* 8 bytes, no NUL in the file */

/* Header fields (byte offsets from the start of the file). */
#define BNN_HDR_MAGIC           0    /* char[8]                            */
#define BNN_HDR_FORMAT_VERSION  8    /* u32 BNN_MODEL_FORMAT_VERSION       */
#define BNN_HDR_LAYOUT_VERSION 12    /* u32 BNN_LAYOUT_VERSION             */
#define BNN_HDR_SIZE           16    /* u64 file size                      */
#define BNN_HDR_CHECKSUM       24    /* u64 FNV-1a, itself read as zero    */
#define BNN_HDR_CHECKSUM_END   32
#define BNN_HDR_RECORDS        32    /* u32 record count                   */
#define BNN_HDR_IN_H           36    /* u32                                */
#define BNN_HDR_IN_W           40    /* u32                                */
#define BNN_HDR_IN_C           44    /* u32                                */
#define BNN_HDR_CLASSES        48    /* u32                                */
#define BNN_HDR_RESERVED       52    /* zero up to BNN_MODEL_HEADER_BYTES  */

/* Record header fields (byte offsets from the record start). */
#define BNN_REC_TYPE    0            /* u32 bnn_model_record_type          */
#define BNN_REC_FLAGS   4            /* u32 flag bits                      */
#define BNN_REC_SIZE    8            /* u64 record size                    */
#define BNN_REC_PARAMS 16            /* u32[BNN_MODEL_MAX_PARAMS]          */

#define BNN_RECORD_FLAGS_ALL (BNN_RECORD_INPUT_U8 | BNN_RECORD_SCORES | BNN_RECORD_PAD_ONE)

/* Limits of the C runtime (larger files are refused as malformed). */
#define BNN_MODEL_MAX_DIM  ((int64_t)1 << 24)  /* any single dimension     */
#define BNN_MODEL_MAX_GEOM ((int64_t)1 << 16)  /* kernel, stride, dilation, pad */
#define BNN_MODEL_MAX_DOT  ((int64_t)INT32_MAX / 256) /* k or kh*kw*c: u8 sums fit */
/* load-time tables at most this many times the file, plus 1 MiB */
#define BNN_MODEL_TABLE_RATIO 128

/* Little-endian reads; the caller has checked the range. */
static inline uint32_t bnn_rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16)
           | ((uint32_t)p[3] << 24);
}

static inline uint64_t bnn_rd64(const uint8_t *p)
{
    return (uint64_t)bnn_rd32(p) | ((uint64_t)bnn_rd32(p + 4) << 32);
}

/* x rounded up to BNN_MODEL_ALIGN (x >= 0, far from INT64_MAX). */
static inline int64_t bnn_align64(int64_t x)
{
    return (x + (BNN_MODEL_ALIGN - 1)) & ~(int64_t)(BNN_MODEL_ALIGN - 1);
}

#endif /* BNN_MODEL_FORMAT_H */
