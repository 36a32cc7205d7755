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
