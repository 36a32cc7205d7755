/*
 * test_api.c -- the small public entry points: version, status strings,
 * sizes, ISA selection, thread count, peak probe.
 */
#include "test_util.h"

#include <limits.h>

/* ISA selection must be checked before anything calls bnn_set_isa(). */
static int test_isa_default(void)
{
    const char *env = getenv("BNN_ISA");
    bnn_isa want, best, cur = bnn_isa_current();
    const char *name = bnn_isa_name();

    bt_ctx("default ISA selection (BNN_ISA=%s)", env ? env : "(unset)");
    CHECK(name != NULL);
    CHECK_MSG(strcmp(name, "ref") == 0 || strcmp(name, "avx2") == 0
                  || strcmp(name, "avx512") == 0 || strcmp(name, "avx512vnni") == 0
                  || strcmp(name, "neon") == 0 || strcmp(name, "neondot") == 0,
              "bnn_isa_name() = '%s'", name);
    CHECK_MSG(strcmp(name, bt_isa_str(cur)) == 0, "name %s, current %d", name,
              (int)cur);
    CHECK(bnn_isa_supported(cur));
    CHECK(bnn_isa_supported(BNN_ISA_REF));
    /* AVX-512 here implies AVX2 (the dispatcher requires it). */
    if (bnn_isa_supported(BNN_ISA_AVX512)) CHECK(bnn_isa_supported(BNN_ISA_AVX2));
    if (bnn_isa_supported(BNN_ISA_AVX512_VNNI)) CHECK(bnn_isa_supported(BNN_ISA_AVX512));
    if (bnn_isa_supported(BNN_ISA_NEON_DOT)) CHECK(bnn_isa_supported(BNN_ISA_NEON));

    best = bnn_isa_supported(BNN_ISA_AVX512_VNNI) ? BNN_ISA_AVX512_VNNI
         : bnn_isa_supported(BNN_ISA_AVX512) ? BNN_ISA_AVX512
         : bnn_isa_supported(BNN_ISA_AVX2)   ? BNN_ISA_AVX2
         : bnn_isa_supported(BNN_ISA_NEON_DOT) ? BNN_ISA_NEON_DOT
         : bnn_isa_supported(BNN_ISA_NEON)   ? BNN_ISA_NEON
                                             : BNN_ISA_REF;
    if (env && bnn_isa_from_name(env, &want) == BNN_OK && bnn_isa_supported(want))
        CHECK_EQ(cur, want);
    else
        CHECK_EQ(cur, best); /* unset, unknown or unavailable -> best */
    /* a run on an emulated CPU may name the table its features must give */
    if ((env = getenv("BNN_TEST_EXPECT_ISA")) != NULL)
        CHECK_MSG(strcmp(name, env) == 0, "default isa %s, this CPU should give %s", name, env);
    printf("  default isa %s; supported:%s%s%s%s%s%s\n", name,
           bnn_isa_supported(BNN_ISA_REF) ? " ref" : "",
           bnn_isa_supported(BNN_ISA_AVX2) ? " avx2" : "",
           bnn_isa_supported(BNN_ISA_AVX512) ? " avx512" : "",
           bnn_isa_supported(BNN_ISA_AVX512_VNNI) ? " avx512vnni" : "",
           bnn_isa_supported(BNN_ISA_NEON) ? " neon" : "",
           bnn_isa_supported(BNN_ISA_NEON_DOT) ? " neondot" : "");
    return 0;
}

static int test_version(void)
{
    char buf[64];
    const char *v = bnn_version_string();
    int maj = -1, min = -1, pat = -1, used = 0;

    bt_ctx("version");
    CHECK_EQ(bnn_version_number(), BNN_VERSION_NUMBER);
    CHECK_EQ(BNN_VERSION_NUMBER, BNN_VERSION_MAJOR * 10000
                                     + BNN_VERSION_MINOR * 100
                                     + BNN_VERSION_PATCH);
    CHECK(BNN_VERSION_MINOR < 100 && BNN_VERSION_PATCH < 100);
    CHECK(v != NULL);
    CHECK_MSG(sscanf(v, "%d.%d.%d%n", &maj, &min, &pat, &used) == 3
                  && v[used] == '\0',
              "version string '%s'", v);
    CHECK_EQ(maj, BNN_VERSION_MAJOR);
    CHECK_EQ(min, BNN_VERSION_MINOR);
    CHECK_EQ(pat, BNN_VERSION_PATCH);
    /* Exactly "MAJOR.MINOR.PATCH" in decimal, no padding or suffix. */
    snprintf(buf, sizeof buf, "%d.%d.%d", BNN_VERSION_MAJOR, BNN_VERSION_MINOR,
             BNN_VERSION_PATCH);
    CHECK_MSG(strcmp(v, buf) == 0, "'%s' != '%s'", v, buf);
    CHECK(v == bnn_version_string() || strcmp(v, bnn_version_string()) == 0);
    CHECK_EQ(BNN_LAYOUT_VERSION, 1);
    CHECK_EQ(BNN_WORD_BITS, 64);
    return 0;
}

static int test_status_strings(void)
{
    static const bnn_status all[] = {
        BNN_OK, BNN_ERR_NULL, BNN_ERR_SHAPE, BNN_ERR_OVERFLOW,
        BNN_ERR_INVALID, BNN_ERR_UNSUPPORTED, BNN_ERR_NOMEM, BNN_ERR_STRIDE, BNN_ERR_FORMAT,
        BNN_ERR_IO, BNN_ERR_DEVICE,
    };
    static const int unknown[] = {1, 2, -11, -12, 100, -1000, INT_MAX, INT_MIN};
    const int n = (int)(sizeof all / sizeof all[0]);
    int i, j;

    /* Values are ABI. */
    CHECK_EQ(BNN_OK, 0);
    CHECK_EQ(BNN_ERR_NULL, -1);
    CHECK_EQ(BNN_ERR_SHAPE, -2);
    CHECK_EQ(BNN_ERR_OVERFLOW, -3);
    CHECK_EQ(BNN_ERR_INVALID, -4);
    CHECK_EQ(BNN_ERR_UNSUPPORTED, -5);
    CHECK_EQ(BNN_ERR_NOMEM, -6);
    CHECK_EQ(BNN_ERR_STRIDE, -7);
    CHECK_EQ(BNN_ERR_FORMAT, -8);
    CHECK_EQ(BNN_ERR_IO, -9);
    CHECK_EQ(BNN_ERR_DEVICE, -10);

    for (i = 0; i < n; i++) {
        const char *s = bnn_status_string(all[i]);
        bt_ctx("status %d", (int)all[i]);
        CHECK(s != NULL);
        CHECK(s[0] != '\0');
        CHECK_MSG(strcmp(s, "unknown status") != 0, "status %d is 'unknown'",
                  (int)all[i]);
        CHECK(strcmp(s, bnn_status_string(all[i])) == 0);
        for (j = 0; j < i; j++)
            CHECK_MSG(strcmp(s, bnn_status_string(all[j])) != 0,
                      "statuses %d and %d share the string '%s'", (int)all[i],
                      (int)all[j], s);
    }
    for (i = 0; i < (int)(sizeof unknown / sizeof unknown[0]); i++) {
        const char *s = bnn_status_string((bnn_status)unknown[i]);
        bt_ctx("unknown status %d", unknown[i]);
        CHECK(s != NULL);
        CHECK_MSG(strcmp(s, "unknown status") == 0, "got '%s'", s);
    }
    return 0;
}

static int test_words(void)
{
    bt_ctx("bnn_words");
    CHECK_EQ(bnn_words(0), 0);
    CHECK_EQ(bnn_words(-1), 0);
    CHECK_EQ(bnn_words(-64), 0);
    CHECK_EQ(bnn_words(INT64_MIN), 0);
    CHECK_EQ(bnn_words(1), 1);
    CHECK_EQ(bnn_words(63), 1);
    CHECK_EQ(bnn_words(64), 1);
    CHECK_EQ(bnn_words(65), 2);
    CHECK_EQ(bnn_words(128), 2);
    CHECK_EQ(bnn_words(129), 3);
    CHECK_EQ(bnn_words(INT64_MAX), INT64_MAX / 64 + 1);
    CHECK_EQ(bnn_words(INT64_MAX - 63), INT64_MAX / 64); /* 2^63 - 64 = 64 * (2^57 - 1) */
    CHECK_EQ(BNN_WORDS(0), 0);
    CHECK_EQ(BNN_WORDS(1), 1);
    CHECK_EQ(BNN_WORDS(64), 1);
    CHECK_EQ(BNN_WORDS(65), 2);
    {
        int64_t k;
        for (k = 0; k < 1000; k++) CHECK_EQ(bnn_words(k), bt_words(k));
    }
    return 0;
}

static int test_packed_size(void)
{
    const size_t canary = (size_t)0x12345678u;
    size_t b;

    bt_ctx("bnn_packed_size");
    b = canary;
    CHECK_ST(bnn_packed_size(0, 0, &b), BNN_OK);
    CHECK_EQ(b, 0);
    CHECK_ST(bnn_packed_size(5, 0, &b), BNN_OK);
    CHECK_EQ(b, 0);
    CHECK_ST(bnn_packed_size(0, 100, &b), BNN_OK);
    CHECK_EQ(b, 0);
    CHECK_ST(bnn_packed_size(1, 1, &b), BNN_OK);
    CHECK_EQ(b, 8);
    CHECK_ST(bnn_packed_size(3, 64, &b), BNN_OK);
    CHECK_EQ(b, 24);
    CHECK_ST(bnn_packed_size(3, 65, &b), BNN_OK);
    CHECK_EQ(b, 48);
    CHECK_ST(bnn_packed_size(7, 1000, &b), BNN_OK);
    CHECK_EQ(b, 7 * 16 * 8);

    /* Errors leave *bytes unchanged. */
    b = canary;
    CHECK_ST(bnn_packed_size(-1, 10, &b), BNN_ERR_SHAPE);
    CHECK_EQ(b, canary);
    CHECK_ST(bnn_packed_size(10, -1, &b), BNN_ERR_SHAPE);
    CHECK_EQ(b, canary);
    CHECK_ST(bnn_packed_size(INT64_MIN, INT64_MIN, &b), BNN_ERR_SHAPE);
    CHECK_EQ(b, canary);
    CHECK_ST(bnn_packed_size(INT64_MAX, 64, &b), BNN_ERR_OVERFLOW);
    CHECK_EQ(b, canary);
    CHECK_ST(bnn_packed_size(INT64_MAX, INT64_MAX, &b), BNN_ERR_OVERFLOW);
    CHECK_EQ(b, canary);
    CHECK_ST(bnn_packed_size((int64_t)1 << 40, (int64_t)1 << 40, &b),
             BNN_ERR_OVERFLOW);
    CHECK_EQ(b, canary);
    /* bnn_words(INT64_MAX) = 2^57: 64 rows overflow int64 words. */
    CHECK_ST(bnn_packed_size(64, INT64_MAX, &b), BNN_ERR_OVERFLOW);
    CHECK_EQ(b, canary);
    if (SIZE_MAX == UINT64_MAX) {
        /* 2^61 words are 2^64 bytes: one too many; 2^60 words fit. */
        CHECK_ST(bnn_packed_size((int64_t)1 << 61, 64, &b), BNN_ERR_OVERFLOW);
        CHECK_EQ(b, canary);
        CHECK_ST(bnn_packed_size((int64_t)1 << 60, 64, &b), BNN_OK);
        CHECK(b == (size_t)1 << 63);
        b = canary;
        CHECK_ST(bnn_packed_size(16, INT64_MAX, &b), BNN_ERR_OVERFLOW);
        CHECK_EQ(b, canary);
        CHECK_ST(bnn_packed_size(8, INT64_MAX, &b), BNN_OK);
        CHECK(b == (size_t)1 << 63);
    } else {
        CHECK_ST(bnn_packed_size((int64_t)1 << 30, 64, &b), BNN_ERR_OVERFLOW);
    }
    CHECK_ST(bnn_packed_size(1, 1, NULL), BNN_ERR_NULL);
    CHECK_ST(bnn_packed_size(0, 0, NULL), BNN_ERR_NULL);
    return 0;
}

static int test_isa_names(void)
{
    bnn_isa out;
    static const char *bad[] = {"", "REF", "Ref", "avx", "avx5", "avx51",
                                "avx5120", "avx2 ", " ref", "ref\n", "sse",
                                "NEON", "neon ", "avx512vpopcntdq", "best", "auto",
                                "avx512_vnni", "vnni", "avx512vnni ", "AVX512VNNI",
                                "neon_dot", "neondot ", "NEONDOT", "dotprod"};
    size_t i;

    bt_ctx("bnn_isa_from_name");
    out = (bnn_isa)77;
    CHECK_ST(bnn_isa_from_name("ref", &out), BNN_OK);
    CHECK_EQ(out, BNN_ISA_REF);
    CHECK_ST(bnn_isa_from_name("avx2", &out), BNN_OK);
    CHECK_EQ(out, BNN_ISA_AVX2);
    CHECK_ST(bnn_isa_from_name("avx512", &out), BNN_OK);
    CHECK_EQ(out, BNN_ISA_AVX512);
    CHECK_ST(bnn_isa_from_name("avx512vnni", &out), BNN_OK);
    CHECK_EQ(out, BNN_ISA_AVX512_VNNI);
    CHECK_ST(bnn_isa_from_name("neon", &out), BNN_OK);
    CHECK_EQ(out, BNN_ISA_NEON);
    CHECK_ST(bnn_isa_from_name("neondot", &out), BNN_OK);
    CHECK_EQ(out, BNN_ISA_NEON_DOT);
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        bt_ctx("bnn_isa_from_name('%s')", bad[i]);
        out = (bnn_isa)77;
        CHECK_ST(bnn_isa_from_name(bad[i], &out), BNN_ERR_INVALID);
        CHECK_EQ(out, 77);
    }
    bt_ctx("bnn_isa_from_name NULL");
    out = (bnn_isa)77;
    CHECK_ST(bnn_isa_from_name(NULL, &out), BNN_ERR_NULL);
    CHECK_EQ(out, 77);
    CHECK_ST(bnn_isa_from_name("ref", NULL), BNN_ERR_NULL);
    return 0;
}

static int test_set_isa(void)
{
    bnn_isa before = bnn_isa_current();
    const char *name_before = bnn_isa_name();
    int i;

    for (i = 0; i < BT_N_ISAS; i++) {
        bnn_isa isa = bt_all_isas[i];
        bt_ctx("bnn_set_isa(%s)", bt_isa_str(isa));
        if (bnn_isa_supported(isa)) {
            CHECK_ST(bnn_set_isa(isa), BNN_OK);
            CHECK_EQ(bnn_isa_current(), isa);
            CHECK_MSG(strcmp(bnn_isa_name(), bt_isa_str(isa)) == 0, "name %s",
                      bnn_isa_name());
        } else {
            /* Unsupported: refused, and nothing changes. */
            bnn_isa cur = bnn_isa_current();
            CHECK_ST(bnn_set_isa(isa), BNN_ERR_UNSUPPORTED);
            CHECK_EQ(bnn_isa_current(), cur);
            CHECK_MSG(strcmp(bnn_isa_name(), bt_isa_str(cur)) == 0, "name %s",
                      bnn_isa_name());
            printf("  %s not supported here: set_isa refused as it should\n",
                   bt_isa_str(isa));
        }
    }
    /* Values outside the enum are never supported. */
    {
        static const int junk[] = {6, 7, -1, 100, INT_MAX, INT_MIN};
        size_t j;
        CHECK_ST(bnn_set_isa(before), BNN_OK);
        for (j = 0; j < sizeof junk / sizeof junk[0]; j++) {
            bt_ctx("bnn_set_isa(%d)", junk[j]);
            CHECK(!bnn_isa_supported((bnn_isa)junk[j]));
            CHECK_ST(bnn_set_isa((bnn_isa)junk[j]), BNN_ERR_UNSUPPORTED);
            CHECK_EQ(bnn_isa_current(), before);
            CHECK(strcmp(bnn_isa_name(), name_before) == 0);
        }
    }
    CHECK_ST(bnn_set_isa(before), BNN_OK);
    CHECK_EQ(bnn_isa_current(), before);
    return 0;
}

static int test_threads(void)
{
    static const int bad[] = {0, -1, 257, 1000, INT_MIN, INT_MAX};
    size_t i;

    bt_ctx("bnn_set_num_threads");
    CHECK_EQ(bnn_get_num_threads(), 1); /* the default */
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        bt_ctx("bnn_set_num_threads(%d)", bad[i]);
        CHECK_ST(bnn_set_num_threads(bad[i]), BNN_ERR_INVALID);
        CHECK_EQ(bnn_get_num_threads(), 1);
    }
    CHECK_ST(bnn_set_num_threads(2), BNN_OK);
    CHECK_EQ(bnn_get_num_threads(), 2);
    CHECK_ST(bnn_set_num_threads(0), BNN_ERR_INVALID);
    CHECK_EQ(bnn_get_num_threads(), 2);
    CHECK_ST(bnn_set_num_threads(257), BNN_ERR_INVALID);
    CHECK_EQ(bnn_get_num_threads(), 2);
    CHECK_ST(bnn_set_num_threads(256), BNN_OK);
    CHECK_EQ(bnn_get_num_threads(), 256);
    CHECK_ST(bnn_set_num_threads(1), BNN_OK);
    CHECK_EQ(bnn_get_num_threads(), 1);
    return 0;
}

static int probe_body(bnn_isa isa)
{
    uint64_t macs = 0, sink = 0, macs2 = 0, sink2 = 0;
    bt_ctx("bnn_peak_probe(%s)", bt_isa_str(isa));
    CHECK_ST(bnn_peak_probe(isa, 1000, &macs, &sink), BNN_OK);
    CHECK_MSG(macs > 0, "bit_macs = %" PRIu64, macs);
    /* More iterations, proportionally more work. */
    CHECK_ST(bnn_peak_probe(isa, 3000, &macs2, &sink2), BNN_OK);
    CHECK_MSG(macs2 == 3 * macs, "%" PRIu64 " vs 3 * %" PRIu64, macs2, macs);
    /* Zero iterations are valid. */
    CHECK_ST(bnn_peak_probe(isa, 0, &macs, &sink), BNN_OK);
    CHECK_EQ(macs, 0);
    return 0;
}

static int test_probe(void)
{
    uint64_t macs = 42, sink = 43;
    int i;

    bt_ctx("bnn_peak_probe errors");
    CHECK_ST(bnn_peak_probe(BNN_ISA_REF, 10, NULL, &sink), BNN_ERR_NULL);
    CHECK_ST(bnn_peak_probe(BNN_ISA_REF, 10, &macs, NULL), BNN_ERR_NULL);
    CHECK_ST(bnn_peak_probe(BNN_ISA_REF, 10, NULL, NULL), BNN_ERR_NULL);
    CHECK_EQ(sink, 43);
    CHECK_ST(bnn_peak_probe(BNN_ISA_REF, -1, &macs, &sink), BNN_ERR_INVALID);
    CHECK_ST(bnn_peak_probe(BNN_ISA_REF, INT64_MIN, &macs, &sink),
             BNN_ERR_INVALID);
    CHECK_EQ(macs, 42);
    CHECK_EQ(sink, 43);
    for (i = 0; i < BT_N_ISAS; i++) {
        if (bnn_isa_supported(bt_all_isas[i])) continue;
        bt_ctx("bnn_peak_probe(%s) unsupported", bt_isa_str(bt_all_isas[i]));
        CHECK_ST(bnn_peak_probe(bt_all_isas[i], 10, &macs, &sink),
                 BNN_ERR_UNSUPPORTED);
        CHECK_EQ(macs, 42);
    }
    CHECK_ST(bnn_peak_probe((bnn_isa)9, 10, &macs, &sink), BNN_ERR_UNSUPPORTED);
    CHECK_EQ(macs, 42);
    RUN(for_each_isa(probe_body));
    return 0;
}

int main(int argc, char **argv)
{
    bt_init(argc, argv, "test_api");
    RUN(test_isa_default());
    RUN(test_version());
    RUN(test_status_strings());
    RUN(test_words());
    RUN(test_packed_size());
    RUN(test_isa_names());
    RUN(test_set_isa());
    RUN(test_threads());
    RUN(test_probe());
    printf("test_api: all passed\n");
    return 0;
}
