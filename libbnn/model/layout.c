/*
 * layout.c -- the size of a record and where its arrays are: 64 header
 * bytes, then each array padded to BNN_MODEL_ALIGN.  The checker
 * accepts a record only with exactly this size, and writers ask the same
 * function (bnn_model_record_layout_of), so the rule is written once.
 */
#include "model/format.h"

bnn_status bnn_model_record_layout_of(int32_t type, int32_t flags, const uint32_t *params,
                                      bnn_model_record_layout *out)
{
    bnn_model_record_layout L;
    int64_t rows, wbytes, nout, i;
    if (params == NULL || out == NULL) return BNN_ERR_NULL;
    if ((uint32_t)flags & ~(uint32_t)BNN_RECORD_FLAGS_ALL) return BNN_ERR_INVALID;
    memset(&L, 0, sizeof L);
    L.record_bytes = BNN_MODEL_RECORD_HEADER_BYTES;
    switch (type) {
    case BNN_RECORD_DENSE: {
        int64_t k = params[0], m = params[1];
        if (k < 1 || m < 1) return BNN_ERR_SHAPE;
        rows = m;
        if (!bnn_mul_ok(rows, bnn_words(k), &wbytes) || !bnn_mul_ok(wbytes, 8, &wbytes))
            return BNN_ERR_OVERFLOW;
        nout = m;
        break;
    }
    case BNN_RECORD_CONV: {
        int64_t c = params[0], o = params[1], kh = params[2], kw = params[3];
        if (c < 1 || o < 1 || kh < 1 || kw < 1) return BNN_ERR_SHAPE;
        if (!bnn_mul_ok(o, kh, &rows) || !bnn_mul_ok(rows, kw, &rows)
            || !bnn_mul_ok(rows, bnn_words(c), &wbytes) || !bnn_mul_ok(wbytes, 8, &wbytes))
            return BNN_ERR_OVERFLOW;
        nout = o;
        break;
    }
    case BNN_RECORD_MAXPOOL:
    case BNN_RECORD_FLATTEN:
        *out = L;
        return BNN_OK;
    default:
        return BNN_ERR_INVALID;
    }
    /* weights, then thresh + flip (or, for dense SCORES, scale + offset);
     * nout < 2^32, so the per-output arrays cannot overflow */
    if (wbytes > INT64_MAX / 4) return BNN_ERR_OVERFLOW;
    L.n_arrays = 3;
    L.array_bytes[0] = wbytes;
    L.array_bytes[1] = 4 * nout;
    L.array_bytes[2] = (type == BNN_RECORD_DENSE && (flags & BNN_RECORD_SCORES)) ? 4 * nout
                                                                                 : nout;
    for (i = 0; i < 3; i++) {
        L.array_offset[i] = L.record_bytes;
        L.record_bytes += bnn_align64(L.array_bytes[i]);
    }
    *out = L;
    return BNN_OK;
}

/* ---- writing: the byte layout of the headers, for writers ------------- */

static void wr32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}

static void wr64(uint8_t *p, uint64_t v)
{
    wr32(p, (uint32_t)v);
    wr32(p + 4, (uint32_t)(v >> 32));
}

bnn_status bnn_model_write_header(void *out, uint64_t file_bytes, uint32_t records,
                                  uint32_t in_h, uint32_t in_w, uint32_t in_c, uint32_t classes)
{
    uint8_t *p = (uint8_t *)out;
    if (p == NULL) return BNN_ERR_NULL;
    memset(p, 0, BNN_MODEL_HEADER_BYTES);
    memcpy(p + BNN_HDR_MAGIC, BNN_MODEL_MAGIC_BYTES, 8);
    wr32(p + BNN_HDR_FORMAT_VERSION, BNN_MODEL_FORMAT_VERSION);
    wr32(p + BNN_HDR_LAYOUT_VERSION, BNN_LAYOUT_VERSION);
    wr64(p + BNN_HDR_SIZE, file_bytes);
    wr32(p + BNN_HDR_RECORDS, records);
    wr32(p + BNN_HDR_IN_H, in_h);
    wr32(p + BNN_HDR_IN_W, in_w);
    wr32(p + BNN_HDR_IN_C, in_c);
    wr32(p + BNN_HDR_CLASSES, classes);
    return BNN_OK;
}

bnn_status bnn_model_write_record_header(void *out, int32_t type, int32_t flags,
                                         const uint32_t *params)
{
    bnn_model_record_layout L;
    uint8_t *p = (uint8_t *)out;
    bnn_status st;
    int i;
    if (p == NULL) return BNN_ERR_NULL;
    st = bnn_model_record_layout_of(type, flags, params, &L);
    if (st != BNN_OK) return st;
    memset(p, 0, BNN_MODEL_RECORD_HEADER_BYTES);
    wr32(p + BNN_REC_TYPE, (uint32_t)type);
    wr32(p + BNN_REC_FLAGS, (uint32_t)flags);
    wr64(p + BNN_REC_SIZE, (uint64_t)L.record_bytes);
    for (i = 0; i < BNN_MODEL_MAX_PARAMS; i++) wr32(p + BNN_REC_PARAMS + 4 * i, params[i]);
    return BNN_OK;
}

bnn_status bnn_model_seal(void *data, size_t bytes)
{
    uint8_t *p = (uint8_t *)data;
    if (p == NULL) return BNN_ERR_NULL;
    if (bytes < BNN_MODEL_HEADER_BYTES) return BNN_ERR_SHAPE;
    wr64(p + BNN_HDR_CHECKSUM, bnn_model_checksum(p, bytes));
    return BNN_OK;
}
