/*
 * check.c -- the one strict pass over a .bnn file (docs/model-format.md).
 *
 * bnn_model_check() and every loader run bnn_model_parse(): it checks
 * everything the runtime will rely on (sizes, checksum, versions,
 * parameters, the shape chain, flip values, zero pad bits and zero
 * padding) and, on a second pass with memory, fills in the layer table.
 * Reads of the file go through bnn_rd32/bnn_rd64 after an explicit bounds
 * check, so a hostile file can make loading fail but never read outside
 * the bytes it was given.  Each rejection says where (byte offset, record,
 * field) and why in the caller's report, formatted only when one is asked
 * for (so loading never formats, never allocates).
 */
#include "model/model_internal.h"

#include <inttypes.h>
#include <stdarg.h>
#include <string.h>

static const char *type_name(int64_t type)
{
    switch (type) {
    case BNN_RECORD_DENSE: return "dense";
    case BNN_RECORD_CONV: return "conv";
    case BNN_RECORD_MAXPOOL: return "max-pool";
    case BNN_RECORD_FLATTEN: return "flatten";
    default: return "unknown type";
    }
}

static int host_little_endian(void)
{
    const uint16_t one = 1;
    uint8_t b;
    memcpy(&b, &one, 1);
    return b == 1;
}

/* Fill the report (if any) and return st.  record < 0: the header or the
 * whole file; offset < 0: no single field. */
static bnn_status reject(bnn_model_report *r, bnn_status st, int64_t offset, int64_t record,
                         int64_t type, const char *field, int64_t expected, int64_t found,
                         const char *fmt, ...)
{
    char reason[192];
    va_list ap;
    int n;
    if (r == NULL) return st;
    r->status = st;
    r->offset = offset;
    r->record = record;
    r->expected = expected;
    r->found = found;
    memset(r->field, 0, sizeof r->field);
    strncpy(r->field, field, sizeof r->field - 1);
    va_start(ap, fmt);
    n = bnn_vformat(reason, sizeof reason, fmt, ap);
    va_end(ap);
    if (n < 0) reason[0] = '\0';
    if (record >= 0)
        n = bnn_format(r->message, sizeof r->message, "record %" PRId64 " (%s) at byte %" PRId64
                     ": %s", record, type_name(type), offset, reason);
    else if (offset >= 0)
        n = bnn_format(r->message, sizeof r->message, "header at byte %" PRId64 ": %s", offset,
                     reason);
    else
        n = bnn_format(r->message, sizeof r->message, "file: %s", reason);
    if (n < 0) r->message[0] = '\0';
    return st;
}

/* Reject with the current record (li, L.type) as context. */
#define REJ(st, off, field, exp, fnd, ...) \
    return reject(report, (st), (off), li, L.type, (field), (exp), (fnd), __VA_ARGS__)
#define FAIL(off, field, exp, fnd, ...) REJ(BNN_ERR_FORMAT, off, field, exp, fnd, __VA_ARGS__)

/* Index of the first non-zero byte of p[from, to), or -1. */
static int64_t first_nonzero(const uint8_t *p, int64_t from, int64_t to)
{
    int64_t i;
    for (i = from; i < to; i++)
        if (p[i] != 0) return i;
    return -1;
}

static const char *const conv_param[12] = {
    "c", "o", "kh", "kw", "stride_h", "stride_w", "dilation_h", "dilation_w",
    "pad_top", "pad_bottom", "pad_left", "pad_right"};
static const char *const pool_param[4] = {"kh", "kw", "stride_h", "stride_w"};
static const char *const unused_param[12] = {
    "params[0]", "params[1]", "params[2]", "params[3]", "params[4]", "params[5]",
    "params[6]", "params[7]", "params[8]", "params[9]", "params[10]", "params[11]"};

bnn_status bnn_model_parse(const uint8_t *d, size_t bytes, bnn_parse_out *po,
                           bnn_layer_rt *layers, uint8_t *corr_mem, bnn_model_report *report)
{
    int64_t size, off, li = -1, state, h, w, c, corr_used = 0, binw = 0, act = 0, classes;
    uint32_t nl, ver, lay;
    uint64_t sum;
    bnn_layer_rt prev, L;
    int has_prev = 0;

    memset(&prev, 0, sizeof prev);
    memset(&L, 0, sizeof L);
    if (!host_little_endian())
        REJ(BNN_ERR_UNSUPPORTED, -1, "", 0, 0, "the runtime needs a little-endian host");
    /* ---- the header ---- */
    if (bytes < BNN_MODEL_HEADER_BYTES)
        FAIL(-1, "size", BNN_MODEL_HEADER_BYTES, (int64_t)bytes,
             "%" PRId64 " bytes are shorter than the 64-byte header", (int64_t)bytes);
    if (memcmp(d + BNN_HDR_MAGIC, BNN_MODEL_MAGIC_BYTES, 8) != 0)
        FAIL(BNN_HDR_MAGIC, "magic", 0, 0, "the magic is not \"BNNMODEL\"");
    ver = bnn_rd32(d + BNN_HDR_FORMAT_VERSION);
    lay = bnn_rd32(d + BNN_HDR_LAYOUT_VERSION);
    if (ver == 0)
        FAIL(BNN_HDR_FORMAT_VERSION, "format_version", BNN_MODEL_FORMAT_VERSION, 0,
             "format version 0 does not exist");
    if (ver != BNN_MODEL_FORMAT_VERSION)
        REJ(BNN_ERR_UNSUPPORTED, BNN_HDR_FORMAT_VERSION, "format_version",
            BNN_MODEL_FORMAT_VERSION, ver, "format version %" PRIu32 " is not supported (this "
            "runtime reads version %d)", ver, BNN_MODEL_FORMAT_VERSION);
    if (lay != BNN_LAYOUT_VERSION)
        REJ(BNN_ERR_UNSUPPORTED, BNN_HDR_LAYOUT_VERSION, "layout_version", BNN_LAYOUT_VERSION,
            lay, "layout version %" PRIu32 " is not supported (this runtime reads version %d)",
            lay, BNN_LAYOUT_VERSION);
    if (bnn_rd64(d + BNN_HDR_SIZE) != (uint64_t)bytes) {
        uint64_t said = bnn_rd64(d + BNN_HDR_SIZE);
        FAIL(BNN_HDR_SIZE, "size", (int64_t)bytes, (int64_t)said,
             "the header says %" PRIu64 " bytes, but the data has %" PRIu64 "%s", said,
             (uint64_t)bytes, said > (uint64_t)bytes ? " (truncated)" : "");
    }
    if ((uint64_t)bytes > (uint64_t)INT64_MAX / 2)
        FAIL(BNN_HDR_SIZE, "size", INT64_MAX / 2, (int64_t)INT64_MAX,
             "a file this large is not supported");
    size = (int64_t)bytes;
    sum = bnn_model_checksum(d, bytes);
    if (sum != bnn_rd64(d + BNN_HDR_CHECKSUM))
        FAIL(BNN_HDR_CHECKSUM, "checksum", (int64_t)sum, (int64_t)bnn_rd64(d + BNN_HDR_CHECKSUM),
             "checksum 0x%016" PRIx64 " stored, 0x%016" PRIx64 " computed (corrupt file)",
             bnn_rd64(d + BNN_HDR_CHECKSUM), sum);
    nl = bnn_rd32(d + BNN_HDR_RECORDS);
    h = bnn_rd32(d + BNN_HDR_IN_H);
    w = bnn_rd32(d + BNN_HDR_IN_W);
    c = bnn_rd32(d + BNN_HDR_IN_C);
    classes = bnn_rd32(d + BNN_HDR_CLASSES);
    if (nl < 1 || nl > BNN_MODEL_MAX_RECORDS)
        FAIL(BNN_HDR_RECORDS, "records", nl < 1 ? 1 : BNN_MODEL_MAX_RECORDS, nl,
             "%" PRIu32 " records, outside 1..%d", nl, BNN_MODEL_MAX_RECORDS);
    if (h < 1 || h > BNN_MODEL_MAX_DIM)
        FAIL(BNN_HDR_IN_H, "input_h", h < 1 ? 1 : BNN_MODEL_MAX_DIM, h,
             "input height %" PRId64 " outside 1..2^24", h);
    if (w < 1 || w > BNN_MODEL_MAX_DIM)
        FAIL(BNN_HDR_IN_W, "input_w", w < 1 ? 1 : BNN_MODEL_MAX_DIM, w,
             "input width %" PRId64 " outside 1..2^24", w);
    if (c < 1 || c > BNN_MODEL_MAX_DIM)
        FAIL(BNN_HDR_IN_C, "input_c", c < 1 ? 1 : BNN_MODEL_MAX_DIM, c,
             "input channels %" PRId64 " outside 1..2^24", c);
    if (h * w > BNN_MODEL_MAX_DIM)
        FAIL(BNN_HDR_IN_W, "input_w", BNN_MODEL_MAX_DIM / h, w,
             "input height x width = %" PRId64 " exceeds 2^24", h * w);
    if (h * w * c > BNN_MODEL_MAX_DOT)
        FAIL(BNN_HDR_IN_C, "input_c", BNN_MODEL_MAX_DOT / (h * w), c,
             "input height x width x channels = %" PRId64 " exceeds (2^31 - 1) / 256",
             h * w * c);
    if (classes < 1 || classes > BNN_MODEL_MAX_DIM)
        FAIL(BNN_HDR_CLASSES, "classes", classes < 1 ? 1 : BNN_MODEL_MAX_DIM, classes,
             "%" PRId64 " classes, outside 1..2^24", classes);
    {
        int64_t nz = first_nonzero(d, BNN_HDR_RESERVED, BNN_MODEL_HEADER_BYTES);
        if (nz >= 0)
            FAIL(nz, "reserved", 0, d[nz], "reserved header byte %" PRId64 " is %d, not 0", nz,
                 (int)d[nz]);
    }

    memset(po, 0, sizeof *po);
    po->info.in_h = h; po->info.in_w = w; po->info.in_c = c;
    po->info.classes = classes;
    po->info.layers = nl;
    po->info.file_bytes = size;
    po->info.format_version = (int32_t)ver;
    po->info.layout_version = (int32_t)lay;
    po->n_layers = nl;
    state = BNN_ACT_IMAGE;
    off = BNN_MODEL_HEADER_BYTES;

    /* ---- the records ---- */
    for (li = 0; li < (int64_t)nl; li++) {
        const uint8_t *r, *arr;
        const uint32_t *prm;
        bnn_model_record_layout lay_out;
        int64_t rsize, q, np, pof = off + BNN_REC_PARAMS;   /* params offset */
        uint32_t uflags;
        int i;
        memset(&L, 0, sizeof L);
        memset(&lay_out, 0, sizeof lay_out);
        if (size - off < BNN_MODEL_RECORD_HEADER_BYTES)
            FAIL(off, "record_size", BNN_MODEL_RECORD_HEADER_BYTES, size - off,
                 "the file ends %" PRId64 " bytes into this record's 64-byte header (the header "
                 "says %" PRIu32 " records)", size - off, nl);
        r = d + off;
        L.type = (int32_t)bnn_rd32(r + BNN_REC_TYPE);
        uflags = bnn_rd32(r + BNN_REC_FLAGS);
        L.flags = (int32_t)uflags;
        L.file_offset = off;
        for (i = 0; i < BNN_MODEL_MAX_PARAMS; i++) L.prm[i] = bnn_rd32(r + BNN_REC_PARAMS + 4 * i);
        prm = L.prm;
        if (uflags & ~(uint32_t)BNN_RECORD_FLAGS_ALL)
            FAIL(off + BNN_REC_FLAGS, "flags", BNN_RECORD_FLAGS_ALL, uflags,
                 "unknown flag bits 0x%" PRIx32, uflags & ~(uint32_t)BNN_RECORD_FLAGS_ALL);
        if (bnn_rd64(r + BNN_REC_SIZE) > (uint64_t)(size - off))
            FAIL(off + BNN_REC_SIZE, "record_size", size - off,
                 (int64_t)BNN_MIN(bnn_rd64(r + BNN_REC_SIZE), (uint64_t)INT64_MAX),
                 "record size %" PRIu64 " runs past the end of the file (%" PRId64
                 " bytes left)", bnn_rd64(r + BNN_REC_SIZE), size - off);
        rsize = (int64_t)bnn_rd64(r + BNN_REC_SIZE);
        L.record_bytes = rsize;
        if (rsize < BNN_MODEL_RECORD_HEADER_BYTES || rsize % BNN_MODEL_ALIGN)
            FAIL(off + BNN_REC_SIZE, "record_size", BNN_MODEL_ALIGN, rsize,
                 "record size %" PRId64 " is not a positive multiple of 64", rsize);
        /* INPUT_U8 exactly on the first record, SCORES exactly on the last */
        if (((L.flags & BNN_RECORD_INPUT_U8) != 0) != (li == 0))
            FAIL(off + BNN_REC_FLAGS, "flags", li == 0 ? BNN_RECORD_INPUT_U8 : 0,
                 L.flags & BNN_RECORD_INPUT_U8, li == 0 ? "the first record must read the "
                 "uint8 image (INPUT_U8)" : "only the first record may read the uint8 image "
                 "(INPUT_U8)");
        if (((L.flags & BNN_RECORD_SCORES) != 0) != (li == (int64_t)nl - 1))
            FAIL(off + BNN_REC_FLAGS, "flags", li == (int64_t)nl - 1 ? BNN_RECORD_SCORES : 0,
                 L.flags & BNN_RECORD_SCORES, li == (int64_t)nl - 1 ? "the last record must "
                 "give the scores (SCORES)" : "only the last record may give the scores "
                 "(SCORES)");
        L.in_h = h; L.in_w = w; L.in_c = c;
        arr = r + BNN_MODEL_RECORD_HEADER_BYTES;
        np = 0;
        switch (L.type) {
        case BNN_RECORD_DENSE: {
            int64_t kw;
            np = 2;
            L.k = prm[0]; L.m = prm[1];
            if (L.k < 1 || L.k > BNN_MODEL_MAX_DOT)
                FAIL(pof, "k", L.k < 1 ? 1 : BNN_MODEL_MAX_DOT, L.k,
                     "k = %" PRId64 " outside 1..(2^31 - 1) / 256", L.k);
            if (L.m < 1 || L.m > BNN_MODEL_MAX_DIM)
                FAIL(pof + 4, "m", L.m < 1 ? 1 : BNN_MODEL_MAX_DIM, L.m,
                     "m = %" PRId64 " outside 1..2^24", L.m);
            if (L.flags & BNN_RECORD_PAD_ONE)
                FAIL(off + BNN_REC_FLAGS, "flags", 0, BNN_RECORD_PAD_ONE,
                     "PAD_ONE is only for conv records");
            if (state == BNN_ACT_IMAGE) {
                if (L.k != h * w * c)
                    FAIL(pof, "k", h * w * c, L.k, "k = %" PRId64 ", but the image has %"
                         PRId64 " values (%" PRId64 "x%" PRId64 "x%" PRId64 ")", L.k,
                         h * w * c, h, w, c);
            } else if (state != BNN_ACT_FLAT) {
                FAIL(off + BNN_REC_TYPE, "type", BNN_RECORD_FLATTEN, L.type,
                     "a dense layer reads a flat input, but the previous record gives [%"
                     PRId64 ", %" PRId64 ", %" PRId64 "] (a flatten is missing)", h, w, c);
            } else if (L.k != c) {
                FAIL(pof, "k", c, L.k, "k = %" PRId64 ", but its input has %" PRId64
                     " features", L.k, c);
            }
            if ((L.flags & BNN_RECORD_SCORES) && L.m != classes)
                FAIL(pof + 4, "m", classes, L.m, "m = %" PRId64 ", but the header says %"
                     PRId64 " classes", L.m, classes);
            kw = bnn_words(L.k);
            if (bnn_model_record_layout_of(L.type, L.flags, prm, &lay_out) != BNN_OK)
                FAIL(pof, "k", 0, L.k, "the record's size overflows");
            if (lay_out.record_bytes != rsize)
                FAIL(off + BNN_REC_SIZE, "record_size", lay_out.record_bytes, rsize,
                     "record size %" PRId64 ", but k = %" PRId64 " and m = %" PRId64
                     " make it %" PRId64, rsize, L.k, L.m, lay_out.record_bytes);
            L.w = (const uint64_t *)(r + lay_out.array_offset[0]);
            L.ldw = kw;
            if (L.flags & BNN_RECORD_SCORES) {
                L.scale = (const float *)(r + lay_out.array_offset[1]);
                L.offset = (const float *)(r + lay_out.array_offset[2]);
            } else {
                L.thresh = (const int32_t *)(r + lay_out.array_offset[1]);
                L.flip = r + lay_out.array_offset[2];
            }
            /* pad bits of every row must be 0 (the kernels rely on it) */
            if (L.k % 64) {
                uint64_t padmask = ~(uint64_t)0 << (L.k % 64);
                for (q = 0; q < L.m; q++) {
                    int64_t at = 8 * (q * kw + kw - 1);
                    uint64_t word = bnn_rd64(arr + at);
                    if (word & padmask)
                        FAIL(off + 64 + at, "weights pad bits", 0, (int64_t)(word & padmask),
                             "weight row %" PRId64 " has pad bits set past element %" PRId64
                             " (k = %" PRId64 ")", q, L.k - 1, L.k);
                }
            }
            if (L.flags & BNN_RECORD_INPUT_U8) {
                int64_t pb = bnn_align64((int64_t)bnn_u8_prep_bytes(NULL, L.m, L.k));
                if (layers) {
                    L.prep = corr_mem + corr_used;
                    bnn_u8_prepare(NULL, L.m, L.k, L.w, L.ldw, L.prep);
                }
                corr_used += pb;
            }
            binw += L.m * L.k;
            h = 1; w = 1; c = L.m;
            state = BNN_ACT_FLAT;
            break;
        }
        case BNN_RECORD_CONV: {
            bnn_conv2d_params *p = &L.cp;
            int64_t cw, oh, ow, taps;
            np = 12;
            memset(p, 0, sizeof *p);
            p->n = 1; p->h = h; p->w = w; p->c = prm[0]; p->o = prm[1];
            p->kh = prm[2]; p->kw = prm[3];
            for (i = 2; i < 12; i++)
                if ((int64_t)prm[i] > BNN_MODEL_MAX_GEOM)
                    FAIL(pof + 4 * i, conv_param[i], BNN_MODEL_MAX_GEOM, (int64_t)prm[i],
                         "parameter %s = %" PRIu32 " exceeds 2^16", conv_param[i], prm[i]);
            p->stride_h = (int32_t)prm[4]; p->stride_w = (int32_t)prm[5];
            p->dilation_h = (int32_t)prm[6]; p->dilation_w = (int32_t)prm[7];
            p->pad_top = (int32_t)prm[8]; p->pad_bottom = (int32_t)prm[9];
            p->pad_left = (int32_t)prm[10]; p->pad_right = (int32_t)prm[11];
            p->pad_value = (L.flags & BNN_RECORD_PAD_ONE) ? 1 : 0;
            p->pad_byte = 128;
            if (state != BNN_ACT_IMAGE && state != BNN_ACT_SPATIAL)
                FAIL(off + BNN_REC_TYPE, "type", 0, L.type, "a conv layer reads an NHWC "
                     "input, but the previous record gives a flat one");
            if (L.flags & BNN_RECORD_SCORES)
                FAIL(off + BNN_REC_FLAGS, "flags", 0, BNN_RECORD_SCORES,
                     "a conv layer cannot carry SCORES");
            if ((L.flags & BNN_RECORD_INPUT_U8) && (L.flags & BNN_RECORD_PAD_ONE))
                FAIL(off + BNN_REC_FLAGS, "flags", BNN_RECORD_INPUT_U8, L.flags,
                     "the 8-bit first layer cannot pad with +1 (PAD_ONE)");
            if (p->c != c)
                FAIL(pof, "c", c, p->c, "c = %" PRId64 ", but its input has %" PRId64
                     " channels", p->c, c);
            if (p->o < 1 || p->o > BNN_MODEL_MAX_DIM)
                FAIL(pof + 4, "o", p->o < 1 ? 1 : BNN_MODEL_MAX_DIM, p->o,
                     "o = %" PRId64 " outside 1..2^24", p->o);
            if (p->kh < 1) FAIL(pof + 8, "kh", 1, 0, "parameter kh = 0");
            if (p->kw < 1) FAIL(pof + 12, "kw", 1, 0, "parameter kw = 0");
            for (i = 4; i < 8; i++)
                if (prm[i] < 1)
                    FAIL(pof + 4 * i, conv_param[i], 1, 0, "parameter %s = 0", conv_param[i]);
            if (bnn_conv2d_output_shape(p, &oh, &ow) != BNN_OK) {
                int64_t eh = (int64_t)p->dilation_h * (p->kh - 1) + 1;
                int64_t ph = h + p->pad_top + p->pad_bottom;
                int64_t ew = (int64_t)p->dilation_w * (p->kw - 1) + 1;
                int64_t pw = w + p->pad_left + p->pad_right;
                if (eh > ph)
                    FAIL(pof + 8, "kh", ph, eh, "the kernel spans %" PRId64 " rows, more "
                         "than the padded input's %" PRId64, eh, ph);
                FAIL(pof + 12, "kw", pw, ew, "the kernel spans %" PRId64 " columns, the "
                     "padded input has %" PRId64, ew, pw);
            }
            if (oh < 1 || ow < 1 || oh * ow > BNN_MODEL_MAX_DIM)
                FAIL(pof + 16, "stride_h", 0, oh * ow, "the output has %" PRId64 "x%" PRId64
                     " pixels, more than 2^24", oh, ow);
            taps = p->kh * p->kw;
            if (taps * c > BNN_MODEL_MAX_DOT)
                FAIL(pof + 8, "kh", BNN_MODEL_MAX_DOT, taps * c, "kh x kw x c = %" PRId64
                     " exceeds (2^31 - 1) / 256", taps * c);
            cw = bnn_words(c);
            if (bnn_model_record_layout_of(L.type, L.flags, prm, &lay_out) != BNN_OK)
                FAIL(pof + 4, "o", 0, p->o, "the record's size overflows");
            if (lay_out.record_bytes != rsize)
                FAIL(off + BNN_REC_SIZE, "record_size", lay_out.record_bytes, rsize,
                     "record size %" PRId64 ", but its parameters make it %" PRId64, rsize,
                     lay_out.record_bytes);
            L.w = (const uint64_t *)(r + lay_out.array_offset[0]);
            L.ldw = taps * cw;
            L.thresh = (const int32_t *)(r + lay_out.array_offset[1]);
            L.flip = r + lay_out.array_offset[2];
            if (c % 64) {
                uint64_t padmask = ~(uint64_t)0 << (c % 64);
                for (q = 0; q < p->o * taps; q++) {
                    int64_t at = 8 * (q * cw + cw - 1);
                    uint64_t word = bnn_rd64(arr + at);
                    if (word & padmask)
                        FAIL(off + 64 + at, "weights pad bits", 0, (int64_t)(word & padmask),
                             "filter %" PRId64 " tap %" PRId64 " has pad bits set past "
                             "element %" PRId64 " (c = %" PRId64 ")", q / taps, q % taps,
                             c - 1, c);
                }
            }
            if (L.flags & BNN_RECORD_INPUT_U8) {
                int64_t pb = bnn_align64((int64_t)bnn_u8_prep_bytes(p, p->o, taps * c));
                if (layers) {
                    L.prep = corr_mem + corr_used;
                    bnn_u8_prepare(p, p->o, taps * c, L.w, L.ldw, L.prep);
                }
                corr_used += pb;
            }
            if (!(L.flags & BNN_RECORD_INPUT_U8) && !(L.flags & BNN_RECORD_PAD_ONE)) {
                int64_t cb = bnn_align64(4 * taps * p->o);
                if (layers) {
                    L.corr = (int32_t *)(corr_mem + corr_used);
                    if (bnn_conv2d_correction(p, L.w, L.corr) != BNN_OK)
                        FAIL(off, "", 0, 0, "the zero-padding correction cannot be computed");
                }
                corr_used += cb;
            }
            binw += p->o * taps * c;
            L.m = p->o;
            h = oh; w = ow; c = p->o;
            state = BNN_ACT_SPATIAL;
            break;
        }
        case BNN_RECORD_MAXPOOL: {
            bnn_pool2d_params *p = &L.pp;
            int64_t oh, ow;
            np = 4;
            if (L.flags != 0)
                FAIL(off + BNN_REC_FLAGS, "flags", 0, L.flags, "a max-pool takes no flags");
            if (rsize != BNN_MODEL_RECORD_HEADER_BYTES)
                FAIL(off + BNN_REC_SIZE, "record_size", BNN_MODEL_RECORD_HEADER_BYTES, rsize,
                     "a max-pool record is 64 bytes, not %" PRId64, rsize);
            if (state != BNN_ACT_SPATIAL || !has_prev || prev.type != BNN_RECORD_CONV)
                FAIL(off + BNN_REC_TYPE, "type", 0, L.type,
                     "a max-pool must follow a conv record");
            for (i = 0; i < 4; i++)
                if (prm[i] < 1 || (int64_t)prm[i] > BNN_MODEL_MAX_GEOM)
                    FAIL(pof + 4 * i, pool_param[i], prm[i] < 1 ? 1 : BNN_MODEL_MAX_GEOM,
                         (int64_t)prm[i], "parameter %s = %" PRIu32 " outside 1..2^16",
                         pool_param[i], prm[i]);
            memset(p, 0, sizeof *p);
            p->n = 1; p->h = h; p->w = w; p->c = c;
            p->kh = (int32_t)prm[0]; p->kw = (int32_t)prm[1];
            p->stride_h = (int32_t)prm[2]; p->stride_w = (int32_t)prm[3];
            if (bnn_pool2d_output_shape(p, &oh, &ow) != BNN_OK || oh < 1 || ow < 1) {
                if (p->kh > h)
                    FAIL(pof, "kh", h, p->kh, "a %" PRId32 "-row window on a %" PRId64
                         "-row input", p->kh, h);
                FAIL(pof + 4, "kw", w, p->kw, "a %" PRId32 "-column window on a %" PRId64
                     "-column input", p->kw, w);
            }
            L.flip = prev.flip;
            h = oh; w = ow;
            break;
        }
        case BNN_RECORD_FLATTEN:
            if (L.flags != 0)
                FAIL(off + BNN_REC_FLAGS, "flags", 0, L.flags, "a flatten takes no flags");
            if (rsize != BNN_MODEL_RECORD_HEADER_BYTES)
                FAIL(off + BNN_REC_SIZE, "record_size", BNN_MODEL_RECORD_HEADER_BYTES, rsize,
                     "a flatten record is 64 bytes, not %" PRId64, rsize);
            if (state != BNN_ACT_SPATIAL)
                FAIL(off + BNN_REC_TYPE, "type", 0, L.type,
                     "a flatten reads an NHWC input, but the previous record gives a flat one");
            if (h * w * c > BNN_MODEL_MAX_DOT)
                FAIL(off + BNN_REC_TYPE, "type", BNN_MODEL_MAX_DOT, h * w * c,
                     "flattening gives %" PRId64 " features, more than (2^31 - 1) / 256",
                     h * w * c);
            c = h * w * c; h = 1; w = 1;
            state = BNN_ACT_FLAT;
            break;
        default:
            FAIL(off + BNN_REC_TYPE, "type", 0, L.type, "unknown record type %" PRIu32,
                 (uint32_t)L.type);
        }
        for (i = (int)np; i < 12; i++)
            if (prm[i] != 0)
                FAIL(pof + 4 * i, unused_param[i], 0, (int64_t)prm[i],
                     "unused parameter %d is %" PRIu32 ", not 0", i, prm[i]);
        if (L.flip != NULL && L.type != BNN_RECORD_MAXPOOL) {
            for (q = 0; q < L.m; q++)
                if (L.flip[q] > 1)
                    FAIL((int64_t)(L.flip + q - d), "flip", 1, L.flip[q],
                         "flip[%" PRId64 "] = %d: flip values must be 0 or 1", q,
                         (int)L.flip[q]);
        }
        /* the bytes between arrays (and after the last) are zero */
        if (L.type == BNN_RECORD_DENSE || L.type == BNN_RECORD_CONV) {
            static const char *const pad_names[2][3] = {
                {"padding after weights", "padding after thresh", "padding after flip"},
                {"padding after weights", "padding after scale", "padding after offset"}};
            int sc = (L.flags & BNN_RECORD_SCORES) != 0;
            for (i = 0; i < 3; i++) {
                int64_t from = lay_out.array_offset[i] + lay_out.array_bytes[i];
                int64_t to = i < 2 ? lay_out.array_offset[i + 1] : lay_out.record_bytes;
                int64_t nz = first_nonzero(r, from, to);
                if (nz >= 0)
                    FAIL(off + nz, pad_names[sc][i], 0, r[nz], "%s is not zero (byte %"
                         PRId64 " of the record is %d)", pad_names[sc][i], nz, (int)r[nz]);
            }
        }
        L.out_h = h; L.out_w = w; L.out_c = c;
        {
            int64_t words = h * w * bnn_words(c);
            if (words > act) act = words;
        }
        if (layers) layers[li] = L;
        prev = L;
        has_prev = 1;
        off += rsize;
    }
    li = -1;
    memset(&L, 0, sizeof L);
    if (off != size)
        FAIL(off, "records", size - off, 0, "the records end at byte %" PRId64 ", but the "
             "file has %" PRId64 " bytes (the header says %" PRIu32 " records)", off, size, nl);
    /* load-time tables (the first layer's expanded weights: 64-output
     * blocks, 9 bits per weight) stay within 128x the file: a tiny file
     * cannot ask for gigabytes */
    if (corr_used > BNN_MODEL_TABLE_RATIO * size + ((int64_t)1 << 20))
        FAIL(-1, "load tables", BNN_MODEL_TABLE_RATIO * size + ((int64_t)1 << 20), corr_used,
             "the tables prepared at load time would take %" PRId64 " bytes, more than 128x "
             "the file plus 1 MiB", corr_used);
    po->info.binary_weights = binw;
    po->corr_bytes = corr_used;
    po->act_words = act;
    if (report) {
        memset(report, 0, sizeof *report);
        report->status = BNN_OK;
        report->offset = -1;
        report->record = -1;
        if (bnn_format(report->message, sizeof report->message, "valid: %" PRIu32 " records, "
                     "input %" PRId64 "x%" PRId64 "x%" PRId64 ", %" PRId64 " classes", nl,
                     po->info.in_h, po->info.in_w, po->info.in_c, classes) < 0)
            report->message[0] = '\0';
    }
    return BNN_OK;
}

bnn_status bnn_model_check(const void *data, size_t bytes, bnn_model_report *report)
{
    bnn_parse_out po;
    if (data == NULL) return reject(report, BNN_ERR_NULL, -1, -1, 0, "", 0, 0, "data is NULL");
    return bnn_model_parse((const uint8_t *)data, bytes, &po, NULL, NULL, report);
}
