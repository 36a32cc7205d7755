/*
 * test_model_check.c -- bnn_model_check() and its report, the record
 * layout helper and the per-layer description of a loaded model
 * (include/bnn.h "Model runtime", docs/model-format.md).
 *
 *  - Report: for each class of rejection (truncation, magic, versions,
 *    checksum, header fields, reserved bytes, record flags and sizes,
 *    parameters that break the chain, weight pad bits, flip values,
 *    padding between arrays, unused parameters, unknown types, trailing
 *    bytes) the status, record, field name, expected / found values and
 *    that offset points at the field, which the message names as well.
 *  - Agreement: bnn_model_check() gives the status of
 *    bnn_model_open_memory(), bnn_model_arena_size() and bnn_model_init()
 *    on hundreds of random bit flips (resealed so that the structural
 *    checks fire, and not); report == NULL gives the same status.
 *    (test_model.c checks the same on every truncation and every
 *    single-byte change.)
 *  - bnn_model_record_layout_of() against the sizes the builder writes
 *    (which the loader accepts), and its errors.
 *  - bnn_model_get_layer(): params, shapes, file offsets; its errors.
 */
#include "test_util.h"
#include "model_builder.h"

#define REC(m, i) ((int64_t)mb_record_offset((m), (i)))
#define PRM(m, i, j) (REC(m, i) + 16 + 4 * (int64_t)(j))

/* the start of array 0 / 1 / 2 of record i, from the builder's sizes */
static int64_t array_off(const mb_model *m, int i, int which)
{
    const mb_layer *L = &m->L[i];
    int64_t off = REC(m, i) + 64;
    if (which >= 1) off += mb_a64(L->rows * L->row_words * 8);
    if (which >= 2) off += mb_a64(4 * L->nout);
    return off;
}

static uint8_t *dup_bytes(const uint8_t *d, size_t n)
{
    uint8_t *p = (uint8_t *)bt_alloc(n ? n : 1);
    if (n) memcpy(p, d, n);
    return p;
}

/* The status of every loader on these bytes (they must agree). */
static int load_status(const uint8_t *d, size_t n, bnn_status *out)
{
    bnn_model *bm = NULL;
    size_t arena = 0;
    bnn_status a, b;
    a = bnn_model_open_memory(d, n, &bm);
    if (a == BNN_OK) bnn_model_free(bm);
    b = bnn_model_arena_size(d, n, &arena);
    CHECK_ST(b, a);
    if (a == BNN_OK) {
        void *mem = bt_alloc(arena);
        bm = NULL;
        CHECK_ST(bnn_model_init(mem, arena, d, n, &bm), BNN_OK);
        free(mem);
    }
    *out = a;
    return 0;
}

/* Check d (n bytes) and compare the report with what is expected.
 * field NULL: do not compare the field; expected/found compared only
 * when cmp_values. */
static int expect_report(const uint8_t *d, size_t n, bnn_status want, int64_t record,
                         const char *field, int64_t offset, int cmp_values, int64_t expected,
                         int64_t found, const char *what)
{
    bnn_model_report rep;
    bnn_status ld;
    char at[40];
    bt_ctx("%s", what);
    memset(&rep, 0x5A, sizeof rep);
    CHECK_ST(bnn_model_check(d, n, &rep), want);
    bt_ctx("%s: report \"%s\" (field '%s', offset %" PRId64 ", record %" PRId64
           ", expected %" PRId64 ", found %" PRId64 ")", what, rep.message, rep.field,
           rep.offset, rep.record, rep.expected, rep.found);
    CHECK_ST(rep.status, want);
    CHECK_EQ(rep.record, record);
    CHECK_EQ(rep.offset, offset);
    if (field) CHECK(strcmp(rep.field, field) == 0);
    if (cmp_values) {
        CHECK_EQ(rep.expected, expected);
        CHECK_EQ(rep.found, found);
    }
    /* the message names the offset and, for a record, its index */
    if (offset >= 0) {
        snprintf(at, sizeof at, "byte %" PRId64, offset);
        CHECK(strstr(rep.message, at) != NULL);
    }
    if (record >= 0) {
        snprintf(at, sizeof at, "record %" PRId64 " (", record);
        CHECK(strstr(rep.message, at) == rep.message);
    }
    CHECK_ST(bnn_model_check(d, n, NULL), want);
    RUN(load_status(d, n, &ld));
    CHECK_ST(ld, want);
    return 0;
}

/* Copy, store v (width 1, 4 or 8 bytes) at off, reseal the checksum unless
 * !seal, and expect the report. */
static int edit_report(const uint8_t *base, size_t n, int64_t off, int width, uint64_t v,
                       int seal, bnn_status want, int64_t record, const char *field,
                       int64_t at, int cmp_values, int64_t expected, int64_t found,
                       const char *what)
{
    uint8_t *d = dup_bytes(base, n);
    if (width == 8) mb_put64(d + off, v);
    else if (width == 4) mb_put32(d + off, (uint32_t)v);
    else d[off] = (uint8_t)v;
    if (seal) mb_set_checksum(d, n);
    RUN(expect_report(d, n, want, record, field, at, cmp_values, expected, found, what));
    free(d);
    return 0;
}

static int test_header_reports(const mb_model *m)
{
    size_t n;
    uint8_t *b = mb_serialize(m, &n), *d;
    const int64_t N = (int64_t)n;
    bnn_model_report rep;

    RUN(expect_report(b, n, BNN_OK, -1, "", -1, 1, 0, 0, "valid mlp"));
    /* truncation: the size field disagrees with the data */
    RUN(expect_report(b, n - 1, BNN_ERR_FORMAT, -1, "size", 16, 1, N - 1, N, "truncated by 1"));
    RUN(expect_report(b, n - 64, BNN_ERR_FORMAT, -1, "size", 16, 1, N - 64, N,
                      "truncated by 64"));
    RUN(expect_report(b, 63, BNN_ERR_FORMAT, -1, "size", -1, 1, 64, 63, "63 bytes"));
    RUN(expect_report(b, 0, BNN_ERR_FORMAT, -1, "size", -1, 1, 64, 0, "0 bytes"));
    RUN(edit_report(b, n, 0, 1, 'b', 1, BNN_ERR_FORMAT, -1, "magic", 0, 0, 0, 0, "bad magic"));
    RUN(edit_report(b, n, 8, 4, 0, 1, BNN_ERR_FORMAT, -1, "format_version", 8, 1, 1, 0,
                    "format version 0"));
    RUN(edit_report(b, n, 8, 4, 2, 1, BNN_ERR_UNSUPPORTED, -1, "format_version", 8, 1, 1, 2,
                    "format version 2"));
    RUN(edit_report(b, n, 12, 4, 7, 1, BNN_ERR_UNSUPPORTED, -1, "layout_version", 12, 1,
                    BNN_LAYOUT_VERSION, 7, "layout version 7"));
    RUN(edit_report(b, n, 16, 8, n + 64, 1, BNN_ERR_FORMAT, -1, "size", 16, 1, N, N + 64,
                    "size field + 64"));
    /* a stale checksum: expected is what bnn_model_checksum computes */
    d = dup_bytes(b, n);
    d[100] ^= 4;
    RUN(expect_report(d, n, BNN_ERR_FORMAT, -1, "checksum", 24, 1,
                      (int64_t)bnn_model_checksum(d, n), (int64_t)mb_get64(d + 24),
                      "checksum stale"));
    free(d);
    RUN(edit_report(b, n, 32, 4, 0, 1, BNN_ERR_FORMAT, -1, "records", 32, 1, 1, 0,
                    "0 records"));
    RUN(edit_report(b, n, 32, 4, 4097, 1, BNN_ERR_FORMAT, -1, "records", 32, 1,
                    BNN_MODEL_MAX_RECORDS, 4097, "4097 records"));
    RUN(edit_report(b, n, 36, 4, 0, 1, BNN_ERR_FORMAT, -1, "input_h", 36, 1, 1, 0,
                    "input_h 0"));
    RUN(edit_report(b, n, 40, 4, 1u << 25, 1, BNN_ERR_FORMAT, -1, "input_w", 40, 1, 1 << 24,
                    1 << 25, "input_w 2^25"));
    RUN(edit_report(b, n, 44, 4, 0, 1, BNN_ERR_FORMAT, -1, "input_c", 44, 0, 0, 0,
                    "input_c 0"));
    RUN(edit_report(b, n, 48, 4, 0, 1, BNN_ERR_FORMAT, -1, "classes", 48, 1, 1, 0,
                    "classes 0"));
    RUN(edit_report(b, n, 61, 1, 9, 1, BNN_ERR_FORMAT, -1, "reserved", 61, 1, 0, 9,
                    "reserved byte 61"));
    /* one record more than the file holds: the last record is no longer
     * the last, so its SCORES flag is refused first */
    RUN(edit_report(b, n, 32, 4, (uint64_t)m->n + 1, 1, BNN_ERR_FORMAT, m->n - 1, "flags",
                    REC(m, m->n - 1) + 4, 1, 0, MB_SCORES, "records one over"));
    /* one record less: the new last record lacks SCORES */
    RUN(edit_report(b, n, 32, 4, (uint64_t)m->n - 1, 1, BNN_ERR_FORMAT, m->n - 2, "flags",
                    REC(m, m->n - 2) + 4, 1, MB_SCORES, 0, "records one short"));
    /* 64 bytes appended (resealed) */
    d = (uint8_t *)bt_alloc(n + 64);
    memcpy(d, b, n);
    mb_reseal(d, n + 64);
    RUN(expect_report(d, n + 64, BNN_ERR_FORMAT, -1, "records", N, 1, 64, 0,
                      "64 bytes appended"));
    free(d);

    bt_ctx("bnn_model_check(NULL)");
    memset(&rep, 0, sizeof rep);
    CHECK_ST(bnn_model_check(NULL, n, &rep), BNN_ERR_NULL);
    CHECK_ST(rep.status, BNN_ERR_NULL);
    CHECK_ST(bnn_model_check(NULL, 0, NULL), BNN_ERR_NULL);
    bt_ctx("bnn_model_checksum");
    CHECK(bnn_model_checksum(b, n) == mb_get64(b + 24));
    CHECK(bnn_model_checksum(NULL, 5) == 0);
    CHECK(bnn_model_checksum(b, 0) == UINT64_C(0xcbf29ce484222325));
    free(b);
    printf("  %-34s ok\n", "header reports");
    return 0;
}

/* MLP: dense u8 48 -> 70, dense 70 -> 65, dense scores 65 -> 10. */
static int test_mlp_reports(const mb_model *m)
{
    size_t n;
    uint8_t *b = mb_serialize(m, &n);
    int64_t at;

    RUN(edit_report(b, n, PRM(m, 1, 0), 4, 71, 1, BNN_ERR_FORMAT, 1, "k", PRM(m, 1, 0), 1, 70,
                    71, "record 1 k = 71"));
    RUN(edit_report(b, n, PRM(m, 0, 0), 4, 47, 1, BNN_ERR_FORMAT, 0, "k", PRM(m, 0, 0), 1, 48,
                    47, "record 0 k = 47 (the image has 48)"));
    RUN(edit_report(b, n, PRM(m, 1, 1), 4, 0, 1, BNN_ERR_FORMAT, 1, "m", PRM(m, 1, 1), 1, 1, 0,
                    "record 1 m = 0"));
    RUN(edit_report(b, n, PRM(m, 2, 1), 4, 11, 1, BNN_ERR_FORMAT, 2, "m", PRM(m, 2, 1), 1, 10,
                    11, "scores m = 11 (10 classes)"));
    RUN(edit_report(b, n, REC(m, 1) + 4, 4, 8, 1, BNN_ERR_FORMAT, 1, "flags", REC(m, 1) + 4, 1,
                    7, 8, "unknown flag bit"));
    RUN(edit_report(b, n, REC(m, 1) + 4, 4, MB_PAD_ONE, 1, BNN_ERR_FORMAT, 1, "flags",
                    REC(m, 1) + 4, 0, 0, 0, "PAD_ONE on a dense record"));
    RUN(edit_report(b, n, REC(m, 1) + 4, 4, MB_INPUT_U8, 1, BNN_ERR_FORMAT, 1, "flags",
                    REC(m, 1) + 4, 0, 0, 0, "INPUT_U8 on record 1"));
    RUN(edit_report(b, n, REC(m, 2) + 4, 4, 0, 1, BNN_ERR_FORMAT, 2, "flags", REC(m, 2) + 4, 0,
                    0, 0, "last record without SCORES"));
    RUN(edit_report(b, n, REC(m, 1) + 8, 8, (uint64_t)mb_record_size(&m->L[1]) + 64, 1,
                    BNN_ERR_FORMAT, 1, "record_size", REC(m, 1) + 8, 1,
                    mb_record_size(&m->L[1]), mb_record_size(&m->L[1]) + 64,
                    "record 1 size + 64"));
    RUN(edit_report(b, n, REC(m, 1) + 8, 8, 100, 1, BNN_ERR_FORMAT, 1, "record_size",
                    REC(m, 1) + 8, 0, 0, 0, "record 1 size 100"));
    RUN(edit_report(b, n, REC(m, 1) + 8, 8, UINT64_MAX, 1, BNN_ERR_FORMAT, 1, "record_size",
                    REC(m, 1) + 8, 0, 0, 0, "record 1 size 2^64-1"));
    RUN(edit_report(b, n, REC(m, 1), 4, 9, 1, BNN_ERR_FORMAT, 1, "type", REC(m, 1), 1, 0, 9,
                    "unknown type 9"));
    RUN(edit_report(b, n, PRM(m, 1, 5), 4, 3, 1, BNN_ERR_FORMAT, 1, "params[5]", PRM(m, 1, 5),
                    1, 0, 3, "unused parameter 5"));
    /* k = 48: bits 48..63 of each row's word are pad; row 5 */
    at = array_off(m, 0, 0) + 8 * 5 + 7;
    RUN(edit_report(b, n, at, 1, 0x80, 1, BNN_ERR_FORMAT, 0, "weights pad bits", at - 7, 1, 0,
                    (int64_t)(UINT64_C(1) << 63), "record 0 row 5 pad bit 63"));
    /* k = 70: two words per row, the second holds 6 elements */
    at = array_off(m, 1, 0) + 8 * (2 * 64 + 1);
    RUN(edit_report(b, n, at, 1, (uint8_t)(b[at] | 0x40), 1, BNN_ERR_FORMAT, 1,
                    "weights pad bits", at, 1, 0, 0x40, "record 1 row 64 pad bit 6"));
    at = array_off(m, 1, 2) + 3;
    RUN(edit_report(b, n, at, 1, 2, 1, BNN_ERR_FORMAT, 1, "flip", at, 1, 1, 2,
                    "record 1 flip[3] = 2"));
    /* padding: weights 65 x 2 words = 1040 bytes (to 1088), thresh 260
     * (to 320), flip 65 (to 128) */
    at = array_off(m, 1, 0) + 1040;
    RUN(edit_report(b, n, at, 1, 1, 1, BNN_ERR_FORMAT, 1, "padding after weights", at, 1, 0, 1,
                    "padding after weights"));
    at = array_off(m, 1, 1) + 260;
    RUN(edit_report(b, n, at + 59, 1, 7, 1, BNN_ERR_FORMAT, 1, "padding after thresh", at + 59,
                    1, 0, 7, "padding after thresh"));
    at = array_off(m, 1, 2) + 65;
    RUN(edit_report(b, n, at, 1, 1, 1, BNN_ERR_FORMAT, 1, "padding after flip", at, 1, 0, 1,
                    "padding after flip"));
    at = array_off(m, 2, 2) + 40;
    RUN(edit_report(b, n, at, 1, 1, 1, BNN_ERR_FORMAT, 2, "padding after offset", at, 1, 0, 1,
                    "padding after offset"));
    free(b);
    printf("  %-34s ok\n", "mlp record reports");
    return 0;
}

/* CNN: conv u8 6x6x3 -> 70, max-pool, conv 70 -> 65, flatten, dense 585 -> 10. */
static int test_cnn_reports(const mb_model *m)
{
    size_t n;
    uint8_t *b = mb_serialize(m, &n);

    RUN(edit_report(b, n, PRM(m, 2, 0), 4, 71, 1, BNN_ERR_FORMAT, 2, "c", PRM(m, 2, 0), 1, 70,
                    71, "conv c = 71 (input 70)"));
    RUN(edit_report(b, n, PRM(m, 2, 4), 4, 0, 1, BNN_ERR_FORMAT, 2, "stride_h", PRM(m, 2, 4), 1,
                    1, 0, "conv stride_h = 0"));
    RUN(edit_report(b, n, PRM(m, 2, 9), 4, 70000, 1, BNN_ERR_FORMAT, 2, "pad_bottom",
                    PRM(m, 2, 9), 1, 1 << 16, 70000, "conv pad_bottom = 70000"));
    RUN(edit_report(b, n, PRM(m, 1, 0), 4, 0, 1, BNN_ERR_FORMAT, 1, "kh", PRM(m, 1, 0), 1, 1, 0,
                    "pool kh = 0"));
    RUN(edit_report(b, n, PRM(m, 1, 1), 4, 9, 1, BNN_ERR_FORMAT, 1, "kw", PRM(m, 1, 1), 1, 6, 9,
                    "pool kw = 9 on 6 columns"));
    RUN(edit_report(b, n, PRM(m, 1, 4), 4, 1, 1, BNN_ERR_FORMAT, 1, "params[4]", PRM(m, 1, 4),
                    1, 0, 1, "pool unused parameter 4"));
    RUN(edit_report(b, n, REC(m, 1) + 4, 4, 4, 1, BNN_ERR_FORMAT, 1, "flags", REC(m, 1) + 4, 0,
                    0, 0, "pool with flags"));
    RUN(edit_report(b, n, REC(m, 0) + 4, 4, MB_INPUT_U8 | MB_PAD_ONE, 1, BNN_ERR_FORMAT, 0,
                    "flags", REC(m, 0) + 4, 0, 0, 0, "u8 conv with PAD_ONE"));
    RUN(edit_report(b, n, REC(m, 3), 4, 9, 1, BNN_ERR_FORMAT, 3, "type", REC(m, 3), 1, 0, 9,
                    "flatten made type 9"));
    RUN(edit_report(b, n, PRM(m, 4, 0), 4, 584, 1, BNN_ERR_FORMAT, 4, "k", PRM(m, 4, 0), 1, 585,
                    584, "dense k = 584 (585 features)"));
    free(b);
    printf("  %-34s ok\n", "cnn record reports");
    return 0;
}

/* check() == every loader on random bit flips, resealed and not. */
static int test_bit_flips(const mb_model *m, const char *name, int count)
{
    size_t n;
    uint8_t *b = mb_serialize(m, &n), *d = (uint8_t *)bt_alloc(n);
    bt_rng r = bt_stream(0xF11F ^ (uint64_t)n);
    int i, j, seal, ok = 0;
    for (i = 0; i < count; i++) {
        int flips = 1 + (int)bt_below(&r, 3);
        bnn_model_report rep;
        bnn_status ld, ck;
        memcpy(d, b, n);
        for (j = 0; j < flips; j++) {
            /* half of the flips land in the header and record headers */
            size_t off = bt_below(&r, 2) ? (size_t)bt_below(&r, 64)
                                         : (size_t)bt_below(&r, n);
            d[off] ^= (uint8_t)(1u << bt_below(&r, 8));
        }
        seal = (int)bt_below(&r, 4) != 0;
        if (seal) mb_set_checksum(d, n);
        bt_ctx("%s flip case %d (seal %d)", name, i, seal);
        ck = bnn_model_check(d, n, &rep);
        RUN(load_status(d, n, &ld));
        CHECK_MSG(ck == ld, "check %d (%s), open %d", (int)ck, rep.message, (int)ld);
        CHECK_ST(rep.status, ck);
        CHECK_ST(bnn_model_check(d, n, NULL), ck);
        ok += ck == BNN_OK;
    }
    free(b);
    free(d);
    printf("  %-34s %d cases ok (%d still valid)\n", name, count, ok);
    return 0;
}

static int layout_matches(const mb_model *m, const char *name)
{
    size_t n;
    uint8_t *b = mb_serialize(m, &n);
    int i, k;
    for (i = 0; i < m->n; i++) {
        const mb_layer *L = &m->L[i];
        bnn_model_record_layout lay;
        bt_ctx("%s record %d layout", name, i);
        memset(&lay, 0x77, sizeof lay);
        CHECK_ST(bnn_model_record_layout_of((int32_t)L->type, (int32_t)L->flags, L->prm, &lay),
                 BNN_OK);
        CHECK_EQ(lay.record_bytes, mb_record_size(L));
        /* the size field the loader accepted */
        CHECK_EQ(lay.record_bytes, (int64_t)mb_get64(b + REC(m, i) + 8));
        if (L->type == MB_POOL || L->type == MB_FLATTEN) {
            CHECK_EQ(lay.n_arrays, 0);
            continue;
        }
        CHECK_EQ(lay.n_arrays, 3);
        for (k = 0; k < 3; k++) {
            CHECK_EQ(REC(m, i) + lay.array_offset[k], array_off(m, i, k));
            CHECK_EQ(lay.array_offset[k] % BNN_MODEL_ALIGN, 0);
        }
        CHECK_EQ(lay.array_bytes[0], L->rows * L->row_words * 8);
        CHECK_EQ(lay.array_bytes[1], 4 * L->nout);
        CHECK_EQ(lay.array_bytes[2], (L->flags & MB_SCORES) ? 4 * L->nout : L->nout);
    }
    free(b);
    return 0;
}

static int test_layout(const mb_model *mlp, const mb_model *cnn, const mb_model *var)
{
    bnn_model_record_layout lay;
    uint32_t p[BNN_MODEL_MAX_PARAMS];
    RUN(layout_matches(mlp, "mlp"));
    RUN(layout_matches(cnn, "cnn"));
    RUN(layout_matches(var, "variant"));

    bt_ctx("bnn_model_record_layout_of errors");
    memset(p, 0, sizeof p);
    p[0] = 70; p[1] = 65;
    memset(&lay, 0x33, sizeof lay);
    CHECK_ST(bnn_model_record_layout_of(BNN_RECORD_DENSE, 0, NULL, &lay), BNN_ERR_NULL);
    CHECK_ST(bnn_model_record_layout_of(BNN_RECORD_DENSE, 0, p, NULL), BNN_ERR_NULL);
    CHECK_ST(bnn_model_record_layout_of(9, 0, p, &lay), BNN_ERR_INVALID);
    CHECK_ST(bnn_model_record_layout_of(0, 0, p, &lay), BNN_ERR_INVALID);
    CHECK_ST(bnn_model_record_layout_of(BNN_RECORD_DENSE, 8, p, &lay), BNN_ERR_INVALID);
    CHECK_ST(bnn_model_record_layout_of(BNN_RECORD_DENSE, -1, p, &lay), BNN_ERR_INVALID);
    CHECK(lay.record_bytes == (int64_t)0x3333333333333333LL);   /* untouched */
    p[0] = 0;
    CHECK_ST(bnn_model_record_layout_of(BNN_RECORD_DENSE, 0, p, &lay), BNN_ERR_SHAPE);
    p[0] = 70; p[1] = 0;
    CHECK_ST(bnn_model_record_layout_of(BNN_RECORD_DENSE, 0, p, &lay), BNN_ERR_SHAPE);
    memset(p, 0, sizeof p);
    p[0] = 3; p[1] = 8; p[2] = 0; p[3] = 3;
    CHECK_ST(bnn_model_record_layout_of(BNN_RECORD_CONV, 0, p, &lay), BNN_ERR_SHAPE);
    p[0] = p[1] = p[2] = p[3] = UINT32_MAX;
    CHECK_ST(bnn_model_record_layout_of(BNN_RECORD_CONV, 0, p, &lay), BNN_ERR_OVERFLOW);
    CHECK(lay.record_bytes == (int64_t)0x3333333333333333LL);
    /* the largest dense is representable */
    memset(p, 0, sizeof p);
    p[0] = UINT32_MAX; p[1] = UINT32_MAX;
    CHECK_ST(bnn_model_record_layout_of(BNN_RECORD_DENSE, BNN_RECORD_SCORES, p, &lay), BNN_OK);
    CHECK(lay.record_bytes > 0 && lay.record_bytes % 64 == 0);
    CHECK_ST(bnn_model_record_layout_of(BNN_RECORD_MAXPOOL, 0, p, &lay), BNN_OK);
    CHECK_EQ(lay.record_bytes, BNN_MODEL_RECORD_HEADER_BYTES);
    CHECK_EQ(lay.n_arrays, 0);
    printf("  %-34s ok\n", "record layout");
    return 0;
}

static int layers_match(const mb_model *m, const char *name)
{
    size_t n;
    uint8_t *b = mb_serialize(m, &n);
    bnn_model *bm = NULL;
    bnn_model_layer_info li;
    bnn_model_info info;
    int i, j;
    bt_ctx("%s: open", name);
    CHECK_ST(bnn_model_open_memory(b, n, &bm), BNN_OK);
    CHECK_ST(bnn_model_get_info(bm, &info), BNN_OK);
    CHECK_EQ(info.layers, m->n);
    for (i = 0; i < m->n; i++) {
        const mb_layer *L = &m->L[i];
        bt_ctx("%s: layer %d", name, i);
        memset(&li, 0x55, sizeof li);
        CHECK_ST(bnn_model_get_layer(bm, i, &li), BNN_OK);
        CHECK_EQ(li.type, (int32_t)L->type);
        CHECK_EQ(li.flags, (int32_t)L->flags);
        for (j = 0; j < BNN_MODEL_MAX_PARAMS; j++) CHECK_EQ(li.params[j], L->prm[j]);
        CHECK_EQ(li.in_h, L->in_h);
        CHECK_EQ(li.in_w, L->in_w);
        CHECK_EQ(li.in_c, L->in_c);
        CHECK_EQ(li.out_h, L->out_h);
        CHECK_EQ(li.out_w, L->out_w);
        CHECK_EQ(li.out_c, L->out_c);
        CHECK_EQ(li.file_offset, REC(m, i));
        CHECK_EQ(li.record_bytes, mb_record_size(L));
    }
    bt_ctx("%s: get_layer errors", name);
    CHECK_ST(bnn_model_get_layer(bm, -1, &li), BNN_ERR_SHAPE);
    CHECK_ST(bnn_model_get_layer(bm, m->n, &li), BNN_ERR_SHAPE);
    CHECK_ST(bnn_model_get_layer(bm, INT64_MAX, &li), BNN_ERR_SHAPE);
    CHECK_ST(bnn_model_get_layer(bm, INT64_MIN, &li), BNN_ERR_SHAPE);
    CHECK_ST(bnn_model_get_layer(NULL, 0, &li), BNN_ERR_NULL);
    CHECK_ST(bnn_model_get_layer(bm, 0, NULL), BNN_ERR_NULL);
    bnn_model_free(bm);
    free(b);
    return 0;
}

static int test_get_layer(const mb_model *mlp, const mb_model *cnn, const mb_model *var,
                          const mb_model *one)
{
    RUN(layers_match(mlp, "mlp"));
    RUN(layers_match(cnn, "cnn"));
    RUN(layers_match(var, "variant"));
    RUN(layers_match(one, "single"));
    printf("  %-34s ok\n", "bnn_model_get_layer");
    return 0;
}

/* The writers (bnn_model_write_header, _write_record_header, _seal) with
 * the arrays copied from the builder's bytes give the builder's file byte
 * for byte: the library's header layout matches the independent one. */
static int test_writers(const mb_model *m, const char *what)
{
    size_t n = 0, off;
    uint8_t *want = mb_serialize(m, &n);
    uint8_t *got = (uint8_t *)calloc(n, 1);
    int i;
    bt_ctx(what);
    CHECK(got != NULL);
    CHECK_ST(bnn_model_write_header(got, (uint64_t)n, (uint32_t)m->n, m->h, m->w, m->c,
                                    m->classes), BNN_OK);
    off = BNN_MODEL_HEADER_BYTES;
    for (i = 0; i < m->n; i++) {
        const mb_layer *L = &m->L[i];
        size_t rsize = (size_t)mb_record_size(L);
        CHECK_ST(bnn_model_write_record_header(got + off, (int32_t)L->type, (int32_t)L->flags,
                                               L->prm), BNN_OK);
        memcpy(got + off + BNN_MODEL_RECORD_HEADER_BYTES, want + off + BNN_MODEL_RECORD_HEADER_BYTES,
               rsize - BNN_MODEL_RECORD_HEADER_BYTES);
        off += rsize;
    }
    CHECK(off == n);
    CHECK(memcmp(got + 32, want + 32, n - 32) == 0);         /* all but magic..checksum */
    CHECK_ST(bnn_model_seal(got, n), BNN_OK);
    CHECK(memcmp(got, want, n) == 0);
    CHECK_ST(bnn_model_check(got, n, NULL), BNN_OK);
    /* errors */
    CHECK_ST(bnn_model_write_header(NULL, 64, 1, 1, 1, 1, 1), BNN_ERR_NULL);
    CHECK_ST(bnn_model_write_record_header(NULL, BNN_RECORD_FLATTEN, 0, m->L[0].prm),
             BNN_ERR_NULL);
    CHECK_ST(bnn_model_write_record_header(got, 9, 0, m->L[0].prm), BNN_ERR_INVALID);
    CHECK(memcmp(got, want, n) == 0);                        /* nothing written */
    CHECK_ST(bnn_model_seal(NULL, n), BNN_ERR_NULL);
    CHECK_ST(bnn_model_seal(got, 63), BNN_ERR_SHAPE);
    free(got);
    free(want);
    return 0;
}

int main(int argc, char **argv)
{
    mb_model mlp, cnn, var, one;
    int fails = 0;
    bt_init(argc, argv, "test_model_check");

    mb_tiny_mlp(&mlp, bt_seed ^ 0x11);
    mb_tiny_cnn(&cnn, bt_seed ^ 0x22);
    mb_tiny_variant(&var, bt_seed ^ 0x33);
    mb_one_dense(&one, bt_seed ^ 0x44);

    fails += test_header_reports(&mlp) != 0;
    fails += test_mlp_reports(&mlp) != 0;
    fails += test_cnn_reports(&cnn) != 0;
    fails += test_bit_flips(&mlp, "bit flips: mlp", 300) != 0;
    fails += test_bit_flips(&cnn, "bit flips: cnn", 300) != 0;
    fails += test_bit_flips(&var, "bit flips: variant", 200) != 0;
    fails += test_layout(&mlp, &cnn, &var) != 0;
    fails += test_get_layer(&mlp, &cnn, &var, &one) != 0;
    fails += test_writers(&mlp, "writers: mlp") != 0;
    fails += test_writers(&cnn, "writers: cnn") != 0;
    fails += test_writers(&var, "writers: variant") != 0;

    mb_free(&mlp);
    mb_free(&cnn);
    mb_free(&var);
    mb_free(&one);
    if (fails) {
        printf("test_model_check: %d test group(s) FAILED (seed %" PRIu64 ")\n", fails,
               bt_seed);
        return 1;
    }
    printf("test_model_check: all passed\n");
    return 0;
}
