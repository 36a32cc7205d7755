/*
 * test_util.h -- shared helpers for the libbnn C tests (header only, C99).
 *
 *  - A seeded PRNG (splitmix64).  The seed comes from argv[1], else from
 *    the environment variable BNN_TEST_SEED, else a fixed default; it is
 *    printed at start and on every failure so a run can be reproduced:
 *        ./test_gemm 12345      or      BNN_TEST_SEED=12345 ctest
 *  - Random float / int8 rows with the awkward values packing must get
 *    right (+0, -0, NaN of both signs, denormals).
 *  - Words per packed row and the bit reader; the reference
 *    implementations (packing, dots, convolution, pooling, epilogues)
 *    are in oracle.h, which includes this header.
 *  - CHECK macros: on failure they print file:line, the expression, the
 *    seed, the current ISA and a free-form context string, then make the
 *    enclosing function return 1.  Test functions return int (0 = pass)
 *    and main() returns the first failure, so the process exits with 1.
 *  - for_each_isa(fn): runs fn once per ISA that bnn_isa_supported()
 *    reports, with that ISA forced by bnn_set_isa(), and prints which
 *    ISAs ran and which were skipped because the CPU lacks them.
 *
 * Exit codes: 0 pass, 1 fail, 77 skip (CTest SKIP_RETURN_CODE).
 */
#ifndef BNN_TEST_UTIL_H
#define BNN_TEST_UTIL_H

#include "bnn.h"

#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BT_SKIP 77
#define BT_DEFAULT_SEED UINT64_C(0x5eedb17c0ffee)

/* ------------------------------------------------------------------ */
/* Global state: seed, PRNG, failure context                           */
/* ------------------------------------------------------------------ */

typedef struct bt_rng {
    uint64_t s;
} bt_rng;

static uint64_t bt_seed = BT_DEFAULT_SEED;
static bt_rng bt_g = {BT_DEFAULT_SEED};
static char bt_context[512];

static inline uint64_t bt_next(bt_rng *r)
{
    /* splitmix64 */
    uint64_t z = (r->s += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* An independent stream derived from the global seed and a tag, so that a
 * test case regenerates the same data whatever ran before it. */
static inline bt_rng bt_stream(uint64_t tag)
{
    bt_rng r;
    r.s = bt_seed ^ (tag * UINT64_C(0xd1b54a32d192ed03));
    (void)bt_next(&r);
    return r;
}

/* Uniform in [0, n) (n > 0; the tiny modulo bias does not matter here). */
static inline uint64_t bt_below(bt_rng *r, uint64_t n)
{
    return bt_next(r) % n;
}

/* Uniform integer in [lo, hi]. */
static inline int64_t bt_range(bt_rng *r, int64_t lo, int64_t hi)
{
    return lo + (int64_t)bt_below(r, (uint64_t)(hi - lo) + 1u);
}

/* Uniform double in [0, 1). */
static inline double bt_unit(bt_rng *r)
{
    return (double)(bt_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

/* Optimizer-step inputs (parameter, gradient, moments) with the special
 * values every optimizer test needs, one of them each `period` elements:
 * zeros, -0, infinities, NaN in g, v and p, huge and subnormal gradients,
 * negative and FLT_MAX maxima for AP2, a -0 parameter that must stay -0, a
 * step across zero and fmax(-0, +0). */
static inline void bt_opt_inputs(bt_rng *r, int64_t n, int period, float *p0, float *g,
                                 float *m0, float *v0)
{
    int64_t i;
    for (i = 0; i < n; i++) {
        p0[i] = (float)(bt_unit(r) * 2.4 - 1.2);
        g[i] = (float)((bt_unit(r) * 2.0 - 1.0) * exp2(bt_unit(r) * 40 - 30));
        m0[i] = (float)((bt_unit(r) * 2.0 - 1.0) * 1e-3);
        v0[i] = (float)(bt_unit(r) * 1e-4);
        switch (i % period) {
        case 0: g[i] = 0.0f; m0[i] = 0.0f; v0[i] = 0.0f; break;
        case 1: g[i] = -0.0f; break;
        case 2: g[i] = INFINITY; break;
        case 3: g[i] = -INFINITY; break;
        case 4: g[i] = NAN; break;
        case 5: v0[i] = NAN; break;
        case 6: g[i] = 1e30f; break;
        case 7: g[i] = 1e-40f; break;                      /* subnormal */
        case 8: p0[i] = NAN; break;
        case 9: v0[i] = -3e-3f; g[i] = NAN; break;         /* AP2 of a negative max */
        case 10: v0[i] = FLT_MAX; break;
        case 11: v0[i] = -FLT_MAX; g[i] = NAN; break;
        case 12: p0[i] = -0.0f; g[i] = 0.0f; m0[i] = 0.0f; break;   /* stays -0: bit 0 */
        case 13: p0[i] = 1e-7f; break;                     /* crosses zero */
        case 14: v0[i] = -0.0f; g[i] = 0.0f; break;        /* fmax(-0, +0) is -0 */
        case 15: v0[i] = NAN; g[i] = NAN; break;
        default: break;
        }
    }
}

/* Parse the seed: argv[1], else $BNN_TEST_SEED, else the default. */
static inline void bt_init(int argc, char **argv, const char *name)
{
    const char *s = NULL;
    if (argc > 1 && argv[1] && argv[1][0]) s = argv[1];
    else s = getenv("BNN_TEST_SEED");
    if (s && s[0]) {
        char *end = NULL;
        unsigned long long v = strtoull(s, &end, 0);
        if (end && *end == '\0') bt_seed = (uint64_t)v;
        else fprintf(stderr, "%s: ignoring unparsable seed '%s'\n", name, s);
    }
    bt_g.s = bt_seed;
    printf("%s: seed %" PRIu64 " (rerun with: %s %" PRIu64
           " or BNN_TEST_SEED=%" PRIu64 "), library %s, default isa %s\n",
           name, bt_seed, name, bt_seed, bt_seed, bnn_version_string(),
           bnn_isa_name());
    fflush(stdout);
}

/* Free-form context printed with a failure (shape, ISA, case name...). */
static inline void bt_ctx(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(bt_context, sizeof bt_context, fmt, ap);
    va_end(ap);
}

static inline void bt_fail_head(const char *file, int line, const char *expr)
{
    fflush(stdout);
    fprintf(stderr,
            "%s:%d: CHECK FAILED: %s\n  seed=%" PRIu64 " isa=%s threads=%d\n"
            "  context: %s\n",
            file, line, expr, bt_seed, bnn_isa_name(), bnn_get_num_threads(),
            bt_context[0] ? bt_context : "(none)");
}

#define CHECK(cond)                                                      \
    do {                                                                 \
        if (!(cond)) {                                                   \
            bt_fail_head(__FILE__, __LINE__, #cond);                     \
            return 1;                                                    \
        }                                                                \
    } while (0)

/* CHECK with an extra printf-style message. */
#define CHECK_MSG(cond, ...)                                             \
    do {                                                                 \
        if (!(cond)) {                                                   \
            bt_fail_head(__FILE__, __LINE__, #cond);                     \
            fprintf(stderr, "  detail: ");                               \
            fprintf(stderr, __VA_ARGS__);                                \
            fprintf(stderr, "\n");                                       \
            return 1;                                                    \
        }                                                                \
    } while (0)

/* Integer equality, printing both values. */
#define CHECK_EQ(a, b)                                                   \
    do {                                                                 \
        long long bt_a_ = (long long)(a), bt_b_ = (long long)(b);        \
        if (bt_a_ != bt_b_) {                                            \
            bt_fail_head(__FILE__, __LINE__, #a " == " #b);              \
            fprintf(stderr, "  values: %lld != %lld\n", bt_a_, bt_b_);   \
            return 1;                                                    \
        }                                                                \
    } while (0)

/* A call returning bnn_status must give `want`. */
#define CHECK_ST(call, want)                                             \
    do {                                                                 \
        bnn_status bt_s_ = (call), bt_w_ = (want);                       \
        if (bt_s_ != bt_w_) {                                            \
            bt_fail_head(__FILE__, __LINE__, #call " == " #want);        \
            fprintf(stderr, "  got %d (%s), want %d (%s)\n", (int)bt_s_, \
                    bnn_status_string(bt_s_), (int)bt_w_,                \
                    bnn_status_string(bt_w_));                           \
            return 1;                                                    \
        }                                                                \
    } while (0)

/* Propagate a sub-test failure. */
#define RUN(call)                                                        \
    do {                                                                 \
        if ((call) != 0) return 1;                                       \
    } while (0)

/* ------------------------------------------------------------------ */
/* Memory                                                              */
/* ------------------------------------------------------------------ */

/* malloc that never returns NULL for n == 0 and aborts on failure.  Sizes
 * are exact so that AddressSanitizer catches any over-read or write. */
static inline void *bt_alloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "test: out of memory (%zu bytes)\n", n);
        exit(1);
    }
    return p;
}

/* Elements spanned by `rows` rows of `row` used elements at stride `ld`. */
static inline size_t bt_extent(int64_t rows, int64_t ld, int64_t row)
{
    if (rows <= 0 || row <= 0) return 0;
    return (size_t)((rows - 1) * ld + row);
}

static inline void bt_fill_u64(uint64_t *p, size_t n, uint64_t v)
{
    size_t i;
    for (i = 0; i < n; i++) p[i] = v;
}

static inline void bt_fill_u32(uint32_t *p, size_t n, uint32_t v)
{
    size_t i;
    for (i = 0; i < n; i++) p[i] = v;
}

static inline void bt_fill_fbits(float *p, size_t n, uint32_t bits)
{
    size_t i;
    float v;
    memcpy(&v, &bits, sizeof v);
    for (i = 0; i < n; i++) p[i] = v;
}

static inline uint32_t bt_f2u(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float bt_u2f(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* ------------------------------------------------------------------ */
/* Random rows                                                          */
/* ------------------------------------------------------------------ */

/* One float in [-2, 2], with exact +0, -0, NaN of both signs (quiet and
 * signalling), denormals and the smallest normals mixed in. */
static inline float bt_rand_float(bt_rng *r)
{
    static const uint32_t special[] = {
        0x00000000u, /* +0                    */
        0x80000000u, /* -0                    */
        0x7fc00000u, /* +qNaN                 */
        0xffc00000u, /* -qNaN (sign bit set!) */
        0x7f800001u, /* +sNaN                 */
        0xff800001u, /* -sNaN                 */
        0x00000001u, /* +smallest denormal    */
        0x80000001u, /* -smallest denormal    */
        0x00800000u, /* +FLT_MIN              */
        0x80800000u, /* -FLT_MIN              */
        0x3f800000u, /* +1                    */
        0xbf800000u, /* -1                    */
        0x40000000u, /* +2                    */
        0xc0000000u, /* -2                    */
    };
    uint64_t u = bt_below(r, 100);
    if (u < 6) return 0.0f;
    if (u < 12) return -0.0f;
    if (u < 16) return bt_u2f(special[2 + bt_below(r, 4)]);
    if (u < 20) return bt_u2f(special[bt_below(r, sizeof special / sizeof special[0])]);
    return (float)(bt_unit(r) * 4.0 - 2.0);
}

static inline void bt_rand_floats(bt_rng *r, float *dst, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) dst[i] = bt_rand_float(r);
}

static inline int8_t bt_rand_i8(bt_rng *r)
{
    static const int8_t special[] = {-128, -127, -1, 0, 0, 1, 127};
    if (bt_below(r, 4) == 0)
        return special[bt_below(r, sizeof special / sizeof special[0])];
    return (int8_t)(int)bt_range(r, -128, 127);
}

/* Fill n words with random garbage (for stride gaps: kernels must not read
 * or write them). */
static inline void bt_rand_words(bt_rng *r, uint64_t *p, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) p[i] = bt_next(r);
}

/* ------------------------------------------------------------------ */
/* Packed words (the oracles themselves live in oracle.h)              */
/* ------------------------------------------------------------------ */

static inline int64_t bt_words(int64_t k)
{
    return k <= 0 ? 0 : k / 64 + (k % 64 != 0);
}

/* The bit of the row j of a packed buffer. */
static inline int bt_getbit(const uint64_t *row, int64_t j)
{
    return (int)((row[j / 64] >> (j % 64)) & 1u);
}

/* ------------------------------------------------------------------ */
/* ISA loop                                                             */
/* ------------------------------------------------------------------ */

/* Every kernel table of the library (bnn_isa), each run alone. */
#define BT_N_ISAS 6
static const bnn_isa bt_all_isas[BT_N_ISAS] = {BNN_ISA_REF, BNN_ISA_AVX2, BNN_ISA_AVX512,
                                               BNN_ISA_AVX512_VNNI, BNN_ISA_NEON,
                                               BNN_ISA_NEON_DOT};

static inline const char *bt_isa_str(bnn_isa isa)
{
    switch (isa) {
    case BNN_ISA_REF: return "ref";
    case BNN_ISA_AVX2: return "avx2";
    case BNN_ISA_AVX512: return "avx512";
    case BNN_ISA_AVX512_VNNI: return "avx512vnni";
    case BNN_ISA_NEON: return "neon";
    case BNN_ISA_NEON_DOT: return "neondot";
    }
    return "?";
}

/* Run fn(isa, ctx) for every ISA this CPU supports, with that ISA forced.
 * Prints which ran and which were skipped; restores the previous ISA.
 * Returns the first non-zero result of fn (or 1 if an ISA cannot be set). */
static inline int for_each_isa_ctx(const char *label,
                                   int (*fn)(bnn_isa isa, void *ctx), void *ctx)
{
    bnn_isa before = bnn_isa_current();
    char ran[96] = "", skipped[96] = "";
    int i, rc = 0;
    for (i = 0; i < BT_N_ISAS; i++) {
        bnn_isa isa = bt_all_isas[i];
        if (!bnn_isa_supported(isa)) {
            strcat(skipped, " ");
            strcat(skipped, bt_isa_str(isa));
            continue;
        }
        if (bnn_set_isa(isa) != BNN_OK || bnn_isa_current() != isa) {
            bt_ctx("%s: bnn_set_isa(%s) failed although supported", label,
                   bt_isa_str(isa));
            bt_fail_head(__FILE__, __LINE__, "bnn_set_isa(supported isa)");
            rc = 1;
            break;
        }
        strcat(ran, " ");
        strcat(ran, bt_isa_str(isa));
        rc = fn(isa, ctx);
        if (rc != 0) {
            fprintf(stderr, "  (in %s, isa %s)\n", label, bt_isa_str(isa));
            break;
        }
    }
    (void)bnn_set_isa(before);
    printf("  %-34s isa ran:%s%s%s%s\n", label, ran[0] ? ran : " (none)",
           skipped[0] ? " | skipped (CPU lacks):" : "", skipped,
           rc ? "  -> FAILED" : "");
    fflush(stdout);
    return rc;
}

/* The same without the summary line, for many small cases: fn(isa, ctx)
 * for every supported ISA, the failing one named on stderr. */
static inline int for_each_isa_quiet(const char *label,
                                     int (*fn)(bnn_isa isa, void *ctx), void *ctx)
{
    bnn_isa before = bnn_isa_current();
    int i, rc = 0;
    for (i = 0; i < BT_N_ISAS && rc == 0; i++) {
        bnn_isa isa = bt_all_isas[i];
        if (!bnn_isa_supported(isa)) continue;
        if (bnn_set_isa(isa) != BNN_OK) rc = 1;
        else rc = fn(isa, ctx);
        if (rc != 0) fprintf(stderr, "  (in %s, isa %s)\n", label, bt_isa_str(isa));
    }
    (void)bnn_set_isa(before);
    return rc;
}

/* Adapter for bodies that need no context: fn(isa). */
typedef int (*bt_isa_fn)(bnn_isa isa);

static inline int bt_call_plain(bnn_isa isa, void *ctx)
{
    bt_isa_fn f;
    memcpy(&f, ctx, sizeof f);
    return f(isa);
}

#define for_each_isa(fn) bt_for_each_isa_plain(#fn, (fn))

static inline int bt_for_each_isa_plain(const char *label, bt_isa_fn fn)
{
    unsigned char box[sizeof(bt_isa_fn)];
    memcpy(box, &fn, sizeof fn);
    return for_each_isa_ctx(label, bt_call_plain, box);
}

#endif /* BNN_TEST_UTIL_H */
