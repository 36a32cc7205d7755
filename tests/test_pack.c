/*
 * test_pack.c -- bnn_pack_f32 / bnn_pack_i8 / bnn_unpack_f32 on every ISA
 * against plain-loop oracles: bit placement, pad bits, strides (gap words
 * untouched), special values, round trips and error paths.
 */
#include "oracle.h"

#define GARBAGE UINT64_C(0xffffffffffffffff)
#define CANARY_F 0x7fe5a5a5u /* a quiet NaN pattern no kernel would produce */

static const int64_t ks[] = {1, 3, 31, 32, 33, 63, 64, 65, 127, 128, 129,
                             1000, 4097};
#define NKS ((int)(sizeof ks / sizeof ks[0]))

/* Check a packed buffer against the oracle; words of each row beyond
 * bnn_words(k) and up to the stride must still hold GARBAGE. */
static int check_packed(int64_t rows, int64_t k, const uint64_t *got,
                        const uint64_t *want, int64_t ld)
{
    int64_t i, q, kw = bt_words(k);
    for (i = 0; i < rows; i++) {
        for (q = 0; q < kw; q++) {
            uint64_t g = got[i * ld + q], w = want[i * ld + q];
            CHECK_MSG(g == w,
                      "row %" PRId64 " word %" PRId64 ": got %016" PRIx64
                      " want %016" PRIx64 " (diff %016" PRIx64 ")",
                      i, q, g, w, g ^ w);
        }
        /* Pad bits of the last word are zero. */
        if (k % 64) {
            uint64_t pad = ~((UINT64_C(1) << (k % 64)) - 1u);
            CHECK_MSG((got[i * ld + kw - 1] & pad) == 0,
                      "row %" PRId64 ": pad bits set: %016" PRIx64, i,
                      got[i * ld + kw - 1] & pad);
        }
        if (i + 1 < rows)
            for (q = kw; q < ld; q++)
                CHECK_MSG(got[i * ld + q] == GARBAGE,
                          "row %" PRId64 ": stride word %" PRId64
                          " (beyond bnn_words(k)=%" PRId64 ") was written",
                          i, q, kw);
    }
    return 0;
}

/* One random case.  Buffers are sized exactly (ASan catches over-reads);
 * on failure they leak, which does not matter in a failing test. */
static int pack_random_case(bnn_isa isa, int64_t k, int rows, int variant,
                            uint64_t tag)
{
    int64_t kw = bt_words(k), i, j;
    bt_rng r = bt_stream(tag);
    /* variant 0: tight strides; 1, 2: padded strides. */
    int64_t ss = k + (variant ? bt_range(&r, 1, 19) : 0);
    int64_t ds = kw + (variant ? bt_range(&r, 1, 3) : 0);
    size_t ns = bt_extent(rows, ss, k), nd = bt_extent(rows, ds, kw);
    float *src = (float *)bt_alloc(ns * sizeof *src);
    float *back = (float *)bt_alloc(ns * sizeof *back);
    int8_t *src8 = (int8_t *)bt_alloc(ns);
    uint64_t *dst = (uint64_t *)bt_alloc(nd * 8);
    uint64_t *want = (uint64_t *)bt_alloc(nd * 8);

    bt_rand_floats(&r, src, ns);
    for (i = 0; i < (int64_t)ns; i++) src8[i] = bt_rand_i8(&r);

    bt_ctx("pack_f32 isa=%s rows=%d k=%" PRId64 " src_stride=%" PRId64
           " dst_stride=%" PRId64, bt_isa_str(isa), rows, k, ss, ds);
    bt_fill_u64(want, nd, GARBAGE);
    bt_pack_f32(rows, k, src, ss, want, ds);
    bt_fill_u64(dst, nd, GARBAGE);
    CHECK_ST(bnn_pack_f32(rows, k, src, ss, dst, ds), BNN_OK);
    RUN(check_packed(rows, k, dst, want, ds));

    bt_ctx("pack_i8 isa=%s rows=%d k=%" PRId64 " src_stride=%" PRId64
           " dst_stride=%" PRId64, bt_isa_str(isa), rows, k, ss, ds);
    bt_fill_u64(want, nd, GARBAGE);
    for (i = 0; i < rows; i++) bt_pack_row_i8(src8 + i * ss, k, want + i * ds);
    bt_fill_u64(dst, nd, GARBAGE);
    CHECK_ST(bnn_pack_i8(rows, k, src8, ss, dst, ds), BNN_OK);
    RUN(check_packed(rows, k, dst, want, ds));

    /* Round trip: unpack(pack(x)) == sign(x) with sign(0) = sign(NaN) = +1;
     * the unpack stride gaps keep their canary. */
    bt_ctx("unpack_f32(pack_f32(x)) isa=%s rows=%d k=%" PRId64 " stride=%" PRId64,
           bt_isa_str(isa), rows, k, ss);
    bt_fill_fbits(back, ns, CANARY_F);
    bt_fill_u64(dst, nd, GARBAGE);
    CHECK_ST(bnn_pack_f32(rows, k, src, ss, dst, ds), BNN_OK);
    CHECK_ST(bnn_unpack_f32(rows, k, dst, ds, back, ss), BNN_OK);
    for (i = 0; i < rows; i++) {
        for (j = 0; j < ss && (size_t)(i * ss + j) < ns; j++) {
            uint32_t g = bt_f2u(back[i * ss + j]);
            uint32_t w = j < k ? bt_f2u(bt_sign_f(src[i * ss + j])) : CANARY_F;
            CHECK_MSG(g == w, "row %" PRId64 " col %" PRId64
                      ": got 0x%08x want 0x%08x (x = 0x%08x)", i, j,
                      (unsigned)g, (unsigned)w,
                      j < k ? (unsigned)bt_f2u(src[i * ss + j]) : 0u);
        }
    }
    free(src);
    free(back);
    free(src8);
    free(dst);
    free(want);
    return 0;
}

static int pack_random_body(bnn_isa isa)
{
    int ki, rows, variant;
    for (ki = 0; ki < NKS; ki++)
        for (rows = 1; rows <= 5; rows += 2)
            for (variant = 0; variant < 3; variant++)
                RUN(pack_random_case(isa, ks[ki], rows, variant,
                                     (uint64_t)(ki * 100 + rows * 10 + variant)));
    return 0;
}

/* Rows made of one special value, at every length that exercises a vector
 * lane, a word boundary and the scalar tail. */
static int pack_special_body(bnn_isa isa)
{
    static const struct {
        uint32_t bits;
        int bit;
        const char *name;
    } sv[] = {
        {0x00000000u, 0, "+0"},        {0x80000000u, 0, "-0"},
        {0x7fc00000u, 0, "+qNaN"},     {0xffc00000u, 0, "-qNaN"},
        {0x7f800001u, 0, "+sNaN"},     {0xff800001u, 0, "-sNaN"},
        {0xffffffffu, 0, "NaN all-ones"},
        {0xff800000u, 1, "-inf"},      {0x7f800000u, 0, "+inf"},
        {0x80000001u, 1, "-denormal"}, {0x00000001u, 0, "+denormal"},
        {0x80800000u, 1, "-FLT_MIN"},  {0xff7fffffu, 1, "-FLT_MAX"},
        {0x3f800000u, 0, "+1"},        {0xbf800000u, 1, "-1"},
    };
    static const int64_t lens[] = {1, 7, 8, 9, 31, 32, 33, 63, 64, 65, 100, 128, 200};
    size_t v, li;
    for (v = 0; v < sizeof sv / sizeof sv[0]; v++) {
        for (li = 0; li < sizeof lens / sizeof lens[0]; li++) {
            int64_t k = lens[li], kw = bt_words(k), j;
            float *src = (float *)bt_alloc((size_t)k * sizeof *src);
            uint64_t *dst = (uint64_t *)bt_alloc((size_t)kw * 8);
            bnn_status st;
            int bad = -1;
            for (j = 0; j < k; j++) src[j] = bt_u2f(sv[v].bits);
            bt_fill_u64(dst, (size_t)kw, GARBAGE);
            st = bnn_pack_f32(1, k, src, k, dst, kw);
            for (j = 0; st == BNN_OK && j < 64 * kw; j++) {
                int want = j < k ? sv[v].bit : 0;
                if (bt_getbit(dst, j) != want) { bad = (int)j; break; }
            }
            free(src);
            free(dst);
            bt_ctx("pack_f32 isa=%s: row of %" PRId64 " x %s", bt_isa_str(isa), k,
                   sv[v].name);
            CHECK_ST(st, BNN_OK);
            CHECK_MSG(bad < 0, "%s: wrong bit at position %d (want %d for j < k, 0 pad)",
                      sv[v].name, bad, sv[v].bit);
        }
    }

    /* One special value at each position in a row of +1s and of -1s. */
    {
        const int64_t k = 131, kw = bt_words(k);
        float src[131];
        uint64_t dst[3], want[3];
        int64_t pos;
        for (v = 0; v < sizeof sv / sizeof sv[0]; v++) {
            int bg;
            for (bg = 0; bg < 2; bg++) {
                for (pos = 0; pos < k; pos++) {
                    int64_t j;
                    for (j = 0; j < k; j++) src[j] = bg ? -1.5f : 1.5f;
                    src[pos] = bt_u2f(sv[v].bits);
                    bt_pack_row_f32(src, k, want);
                    /* the oracle agrees with the table */
                    bt_ctx("oracle self-check %s", sv[v].name);
                    CHECK_EQ(bt_getbit(want, pos), sv[v].bit);
                    bt_fill_u64(dst, 3, GARBAGE);
                    bt_ctx("pack_f32 isa=%s: %s at %" PRId64 " among %s",
                           bt_isa_str(isa), sv[v].name, pos, bg ? "-1.5" : "+1.5");
                    CHECK_ST(bnn_pack_f32(1, k, src, k, dst, kw), BNN_OK);
                    CHECK(dst[0] == want[0] && dst[1] == want[1] && dst[2] == want[2]);
                }
            }
        }
    }

    /* int8: -128..127 each at every position of a 64 + 64 + 3 row. */
    {
        const int64_t k = 131, kw = bt_words(k);
        int8_t src[131];
        uint64_t dst[3];
        int val;
        for (val = -128; val <= 127; val++) {
            int64_t j;
            for (j = 0; j < k; j++) src[j] = (int8_t)val;
            bt_fill_u64(dst, 3, GARBAGE);
            bt_ctx("pack_i8 isa=%s: row of %d", bt_isa_str(isa), val);
            CHECK_ST(bnn_pack_i8(1, k, src, k, dst, kw), BNN_OK);
            for (j = 0; j < 64 * kw; j++)
                CHECK_EQ(bt_getbit(dst, j), j < k ? val < 0 : 0);
        }
    }
    return 0;
}

/* Unpack on its own: arbitrary (pad-zero) bits, strided rows, gaps kept. */
static int unpack_body(bnn_isa isa)
{
    int ki;
    for (ki = 0; ki < NKS; ki++) {
        const int rows = 3;
        int64_t k = ks[ki], kw = bt_words(k), i, j;
        bt_rng r = bt_stream(5000 + (uint64_t)ki);
        int64_t ss = kw + bt_range(&r, 0, 2), ds = k + bt_range(&r, 0, 9);
        size_t ns = bt_extent(rows, ss, kw), nd = bt_extent(rows, ds, k);
        uint64_t *src = (uint64_t *)bt_alloc(ns * 8);
        float *dst = (float *)bt_alloc(nd * sizeof *dst);
        bt_rand_words(&r, src, ns);
        for (i = 0; i < rows; i++)
            if (k % 64) src[i * ss + kw - 1] &= (UINT64_C(1) << (k % 64)) - 1u;
        bt_fill_fbits(dst, nd, CANARY_F);
        bt_ctx("unpack_f32 isa=%s k=%" PRId64 " src_stride=%" PRId64
               " dst_stride=%" PRId64, bt_isa_str(isa), k, ss, ds);
        CHECK_ST(bnn_unpack_f32(rows, k, src, ss, dst, ds), BNN_OK);
        for (i = 0; i < rows; i++) {
            for (j = 0; j < ds && (size_t)(i * ds + j) < nd; j++) {
                uint32_t g = bt_f2u(dst[i * ds + j]);
                uint32_t w = j < k ? bt_f2u(bt_getbit(src + i * ss, j) ? -1.0f : 1.0f)
                                   : CANARY_F;
                CHECK_MSG(g == w, "row %" PRId64 " col %" PRId64
                          ": got 0x%08x want 0x%08x", i, j, (unsigned)g,
                          (unsigned)w);
            }
        }
        free(src);
        free(dst);
    }
    return 0;
}

/* Error paths and zero sizes.  Nothing may be written on error. */
static int errors_body(bnn_isa isa)
{
    float src[3 * 70];
    int8_t src8[3 * 70];
    uint64_t dst[3 * 2];
    float back[3 * 70];
    int i;
    const int64_t big = (int64_t)1 << 40;

    for (i = 0; i < 3 * 70; i++) {
        src[i] = (i % 3) ? 1.0f : -1.0f;
        src8[i] = (int8_t)((i % 3) ? 1 : -1);
    }
#define DST_UNCHANGED()                                                       \
    do {                                                                      \
        int q_;                                                               \
        for (q_ = 0; q_ < 6; q_++) CHECK_MSG(dst[q_] == GARBAGE, "dst[%d] written", q_); \
    } while (0)
#define BACK_UNCHANGED()                                                      \
    do {                                                                      \
        int q_;                                                               \
        for (q_ = 0; q_ < 3 * 70; q_++)                                       \
            CHECK_MSG(bt_f2u(back[q_]) == CANARY_F, "back[%d] written", q_); \
    } while (0)

    bt_fill_u64(dst, 6, GARBAGE);
    bt_fill_fbits(back, 3 * 70, CANARY_F);
    bt_ctx("pack errors isa=%s", bt_isa_str(isa));

    /* NULL with rows, k > 0. */
    CHECK_ST(bnn_pack_f32(3, 70, NULL, 70, dst, 2), BNN_ERR_NULL);
    CHECK_ST(bnn_pack_f32(3, 70, src, 70, NULL, 2), BNN_ERR_NULL);
    CHECK_ST(bnn_pack_i8(3, 70, NULL, 70, dst, 2), BNN_ERR_NULL);
    CHECK_ST(bnn_pack_i8(3, 70, src8, 70, NULL, 2), BNN_ERR_NULL);
    CHECK_ST(bnn_unpack_f32(3, 70, NULL, 2, back, 70), BNN_ERR_NULL);
    CHECK_ST(bnn_unpack_f32(3, 70, dst, 2, NULL, 70), BNN_ERR_NULL);
    DST_UNCHANGED();
    BACK_UNCHANGED();

    /* Negative sizes. */
    CHECK_ST(bnn_pack_f32(-1, 70, src, 70, dst, 2), BNN_ERR_SHAPE);
    CHECK_ST(bnn_pack_f32(3, -1, src, 70, dst, 2), BNN_ERR_SHAPE);
    CHECK_ST(bnn_pack_f32(INT64_MIN, INT64_MIN, src, 70, dst, 2), BNN_ERR_SHAPE);
    CHECK_ST(bnn_pack_i8(-1, 70, src8, 70, dst, 2), BNN_ERR_SHAPE);
    CHECK_ST(bnn_pack_i8(3, -70, src8, 70, dst, 2), BNN_ERR_SHAPE);
    DST_UNCHANGED();
    CHECK_ST(bnn_unpack_f32(-1, 70, dst, 2, back, 70), BNN_ERR_SHAPE);
    CHECK_ST(bnn_unpack_f32(3, -1, dst, 2, back, 70), BNN_ERR_SHAPE);
    BACK_UNCHANGED();

    /* Strides too small (including negative). */
    CHECK_ST(bnn_pack_f32(3, 70, src, 69, dst, 2), BNN_ERR_STRIDE);
    CHECK_ST(bnn_pack_f32(3, 70, src, 70, dst, 1), BNN_ERR_STRIDE);
    CHECK_ST(bnn_pack_f32(3, 70, src, -70, dst, 2), BNN_ERR_STRIDE);
    CHECK_ST(bnn_pack_f32(3, 70, src, 70, dst, -2), BNN_ERR_STRIDE);
    CHECK_ST(bnn_pack_f32(3, 70, src, 0, dst, 0), BNN_ERR_STRIDE);
    CHECK_ST(bnn_pack_i8(3, 70, src8, 69, dst, 2), BNN_ERR_STRIDE);
    CHECK_ST(bnn_pack_i8(3, 70, src8, 70, dst, 1), BNN_ERR_STRIDE);
    CHECK_ST(bnn_pack_f32(1, 64, src, 63, dst, 1), BNN_ERR_STRIDE);
    CHECK_ST(bnn_pack_f32(1, 65, src, 70, dst, 1), BNN_ERR_STRIDE);
    DST_UNCHANGED();
    CHECK_ST(bnn_unpack_f32(3, 70, dst, 1, back, 70), BNN_ERR_STRIDE);
    CHECK_ST(bnn_unpack_f32(3, 70, dst, 2, back, 69), BNN_ERR_STRIDE);
    CHECK_ST(bnn_unpack_f32(3, 70, dst, -2, back, 70), BNN_ERR_STRIDE);
    BACK_UNCHANGED();

    /* Extents that overflow: an error, and nothing written.  (bnn.h lists
     * only NULL/SHAPE/STRIDE for packing; the library reports OVERFLOW.) */
    {
        bnn_status s1 = bnn_pack_f32(big, 70, src, big, dst, 2);
        bnn_status s2 = bnn_pack_f32(big, 70, src, 70, dst, big);
        bnn_status s3 = bnn_pack_i8(INT64_MAX, 1, src8, INT64_MAX, dst, 1);
        bnn_status s4 = bnn_unpack_f32(big, 70, dst, big, back, 70);
        bnn_status s5 = bnn_pack_f32(2, 70, src, INT64_MAX, dst, 2);
        CHECK_MSG(s1 != BNN_OK && s2 != BNN_OK && s3 != BNN_OK && s4 != BNN_OK
                      && s5 != BNN_OK,
                  "overflowing extents accepted: %d %d %d %d %d", (int)s1,
                  (int)s2, (int)s3, (int)s4, (int)s5);
        CHECK_EQ(s1, BNN_ERR_OVERFLOW);
        CHECK_EQ(s2, BNN_ERR_OVERFLOW);
        CHECK_EQ(s3, BNN_ERR_OVERFLOW);
        CHECK_EQ(s4, BNN_ERR_OVERFLOW);
        CHECK_EQ(s5, BNN_ERR_OVERFLOW);
        DST_UNCHANGED();
        BACK_UNCHANGED();
    }

    /* Zero sizes: OK, nothing written, NULL pointers allowed. */
    bt_ctx("pack zero sizes isa=%s", bt_isa_str(isa));
    CHECK_ST(bnn_pack_f32(0, 70, src, 70, dst, 2), BNN_OK);
    CHECK_ST(bnn_pack_f32(3, 0, src, 70, dst, 2), BNN_OK);
    CHECK_ST(bnn_pack_f32(0, 0, src, 0, dst, 0), BNN_OK);
    CHECK_ST(bnn_pack_f32(0, 70, NULL, 70, NULL, 2), BNN_OK);
    CHECK_ST(bnn_pack_f32(3, 0, NULL, 0, NULL, 0), BNN_OK);
    CHECK_ST(bnn_pack_f32(0, 0, NULL, 0, NULL, 0), BNN_OK);
    CHECK_ST(bnn_pack_i8(0, 70, src8, 70, dst, 2), BNN_OK);
    CHECK_ST(bnn_pack_i8(3, 0, src8, 70, dst, 2), BNN_OK);
    CHECK_ST(bnn_pack_i8(0, 70, NULL, 70, NULL, 2), BNN_OK);
    CHECK_ST(bnn_pack_i8(3, 0, NULL, 0, NULL, 0), BNN_OK);
    DST_UNCHANGED();
    CHECK_ST(bnn_unpack_f32(0, 70, dst, 2, back, 70), BNN_OK);
    CHECK_ST(bnn_unpack_f32(3, 0, dst, 2, back, 70), BNN_OK);
    CHECK_ST(bnn_unpack_f32(0, 70, NULL, 2, NULL, 70), BNN_OK);
    CHECK_ST(bnn_unpack_f32(3, 0, NULL, 0, NULL, 0), BNN_OK);
    BACK_UNCHANGED();

    /* Sanity: the same buffers are accepted by a valid call. */
    CHECK_ST(bnn_pack_f32(3, 70, src, 70, dst, 2), BNN_OK);
    CHECK_ST(bnn_unpack_f32(3, 70, dst, 2, back, 70), BNN_OK);
    for (i = 0; i < 3 * 70; i++) CHECK(back[i] == src[i]);
#undef DST_UNCHANGED
#undef BACK_UNCHANGED
    return 0;
}

/* Large tensors are split over threads by rows: every thread count gives
 * the single-thread words and floats, ragged k and strided rows included. */
static int threads_body(bnn_isa isa)
{
    enum { ROWS = 67, K = 33001, SS = K + 5 };
    const int64_t kw = bnn_words(K), ds = kw + 1;
    float *src = (float *)malloc((size_t)ROWS * SS * sizeof(float));
    int8_t *s8 = (int8_t *)malloc((size_t)ROWS * SS);
    uint64_t *w1 = (uint64_t *)calloc((size_t)ROWS * ds, sizeof(uint64_t));
    uint64_t *wt = (uint64_t *)calloc((size_t)ROWS * ds, sizeof(uint64_t));
    float *u1 = (float *)calloc((size_t)ROWS * SS, sizeof(float));
    float *ut = (float *)calloc((size_t)ROWS * SS, sizeof(float));
    bt_rng r = bt_stream(0x7a2);
    static const int threads[] = {2, 3, 8};
    int64_t i;
    int t;
    (void)isa;
    CHECK(src && s8 && w1 && wt && u1 && ut);
    for (i = 0; i < (int64_t)ROWS * SS; i++) {
        src[i] = (float)(bt_unit(&r) - 0.5);
        s8[i] = (int8_t)(bt_next(&r) & 0xff);
    }
    CHECK_ST(bnn_set_num_threads(1), BNN_OK);
    CHECK_ST(bnn_pack_f32(ROWS, K, src, SS, w1, ds), BNN_OK);
    CHECK_ST(bnn_unpack_f32(ROWS, K, w1, ds, u1, SS), BNN_OK);
    for (t = 0; t < 3; t++) {
        bt_ctx("pack/unpack on %d threads", threads[t]);
        CHECK_ST(bnn_set_num_threads(threads[t]), BNN_OK);
        memset(wt, 0xA5, (size_t)ROWS * ds * sizeof(uint64_t));
        CHECK_ST(bnn_pack_f32(ROWS, K, src, SS, wt, ds), BNN_OK);
        for (i = 0; i < ROWS; i++)
            CHECK(memcmp(w1 + i * ds, wt + i * ds, (size_t)kw * sizeof(uint64_t)) == 0);
        CHECK_ST(bnn_unpack_f32(ROWS, K, wt, ds, ut, SS), BNN_OK);
        for (i = 0; i < ROWS; i++)
            CHECK(memcmp(u1 + i * SS, ut + i * SS, (size_t)K * sizeof(float)) == 0);
    }
    CHECK_ST(bnn_set_num_threads(1), BNN_OK);
    CHECK_ST(bnn_pack_i8(ROWS, K, s8, SS, w1, ds), BNN_OK);
    CHECK_ST(bnn_set_num_threads(3), BNN_OK);
    CHECK_ST(bnn_pack_i8(ROWS, K, s8, SS, wt, ds), BNN_OK);
    for (i = 0; i < ROWS; i++)
        CHECK(memcmp(w1 + i * ds, wt + i * ds, (size_t)kw * sizeof(uint64_t)) == 0);
    CHECK_ST(bnn_set_num_threads(1), BNN_OK);
    free(src); free(s8); free(w1); free(wt); free(u1); free(ut);
    return 0;
}

/* bnn_transpose_bits against the bit-by-bit oracle: ragged shapes around
 * the 64-bit blocks, strides with gap words (left untouched), garbage in
 * the source's pad bits (ignored), transposing twice gives the matrix back;
 * and its errors. */
static int transpose_test(void)
{
    static const int64_t dims[] = {1, 3, 63, 64, 65, 127, 128, 129, 200};
    bt_rng r = bt_stream(0x7a5);
    size_t a, b;
    int cases = 0;
    for (a = 0; a < sizeof dims / sizeof dims[0]; a++)
        for (b = 0; b < sizeof dims / sizeof dims[0]; b++) {
            const int64_t rows = dims[a], cols = dims[b];
            const int64_t lds = bt_words(cols) + 1, ldd = bt_words(rows) + 2;
            uint64_t *src = (uint64_t *)malloc(sizeof(uint64_t) * (size_t)(rows * lds));
            uint64_t *clean = (uint64_t *)malloc(sizeof(uint64_t) * (size_t)(rows * lds));
            uint64_t *got = (uint64_t *)malloc(sizeof(uint64_t) * (size_t)(cols * ldd));
            uint64_t *want = (uint64_t *)malloc(sizeof(uint64_t) * (size_t)(cols * ldd));
            uint64_t *back = (uint64_t *)malloc(sizeof(uint64_t) * (size_t)(rows * lds));
            int64_t i, w;
            CHECK(src && clean && got && want && back);
            bt_rand_words(&r, src, (size_t)(rows * lds));         /* pad bits: garbage */
            bt_rand_words(&r, got, (size_t)(cols * ldd));
            memcpy(want, got, sizeof(uint64_t) * (size_t)(cols * ldd));
            bt_transpose_bits(rows, cols, src, lds, want, ldd);
            CHECK_ST(bnn_transpose_bits(rows, cols, src, lds, got, ldd), BNN_OK);
            for (i = 0; i < cols; i++)
                for (w = 0; w < ldd; w++)
                    CHECK_MSG(got[i * ldd + w] == want[i * ldd + w],
                              "%dx%d: dst row %d word %d = %016" PRIx64 ", oracle %016" PRIx64,
                              (int)rows, (int)cols, (int)i, (int)w, got[i * ldd + w],
                              want[i * ldd + w]);
            /* twice: the source without its pad bits */
            memcpy(clean, src, sizeof(uint64_t) * (size_t)(rows * lds));
            for (i = 0; i < rows; i++) {
                if (cols % 64) clean[i * lds + bt_words(cols) - 1] &= (~(uint64_t)0) >> (64 - cols % 64);
                clean[i * lds + bt_words(cols)] = 0;
            }
            memset(back, 0, sizeof(uint64_t) * (size_t)(rows * lds));
            CHECK_ST(bnn_transpose_bits(cols, rows, got, ldd, back, lds), BNN_OK);
            CHECK(memcmp(back, clean, sizeof(uint64_t) * (size_t)(rows * lds)) == 0);
            free(src); free(clean); free(got); free(want); free(back);
            cases++;
        }
    {
        uint64_t s1[2] = {1, 2}, d1[2] = {7, 7};
        CHECK_ST(bnn_transpose_bits(-1, 3, s1, 1, d1, 1), BNN_ERR_SHAPE);
        CHECK_ST(bnn_transpose_bits(2, 3, NULL, 1, d1, 1), BNN_ERR_NULL);
        CHECK_ST(bnn_transpose_bits(2, 3, s1, 1, NULL, 1), BNN_ERR_NULL);
        CHECK_ST(bnn_transpose_bits(2, 65, s1, 1, d1, 1), BNN_ERR_STRIDE);
        CHECK_ST(bnn_transpose_bits(65, 2, s1, 1, d1, 1), BNN_ERR_STRIDE);
        CHECK_ST(bnn_transpose_bits(INT64_MAX / 2, 3, s1, 1, d1, INT64_MAX / 64),
                 BNN_ERR_OVERFLOW);
        CHECK(d1[0] == 7 && d1[1] == 7);
        CHECK_ST(bnn_transpose_bits(0, 3, NULL, 0, NULL, 0), BNN_OK);
        CHECK_ST(bnn_transpose_bits(2, 1, s1, 1, d1, 1), BNN_OK);    /* [1; 0] -> 0b01 */
        CHECK(d1[0] == 1);
    }
    printf("  %-34s %d shapes ok\n", "transpose bits == oracle", cases);
    return 0;
}

int main(int argc, char **argv)
{
    bt_init(argc, argv, "test_pack");
    RUN(for_each_isa(pack_random_body));
    RUN(for_each_isa(pack_special_body));
    RUN(for_each_isa(unpack_body));
    RUN(for_each_isa(errors_body));
    RUN(for_each_isa(threads_body));
    RUN(transpose_test());
    printf("test_pack: all passed\n");
    return 0;
}
