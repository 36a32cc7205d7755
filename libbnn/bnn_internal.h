/* bnn_internal.h -- private macros shared by every libbnn source file. */
#ifndef BNN_INTERNAL_H
#define BNN_INTERNAL_H

#include "bnn.h"

#include <string.h>
#include <stdint.h>
#include <stddef.h>
#include <inttypes.h>
#include <stdarg.h>

/* newlib (the bare-metal C library) leaves out its 64-bit PRI macros when
 * <stdint.h> came before <inttypes.h>; int64_t is long long there. */
#if defined(__NEWLIB__) && !defined(PRId64)
#  define PRId64 "lld"
#  define PRIu64 "llu"
#  define PRIx64 "llx"
#endif

/* The bare-metal profile (CMake BNN_BAREMETAL, e.g. a Cortex-M): no
 * threads, no file system, no heap, no environment.  The functions that
 * need them return BNN_ERR_UNSUPPORTED; the arena API runs the models. */
#if defined(BNN_BAREMETAL) && !defined(BNN_NO_THREADS)
#  define BNN_NO_THREADS
#endif

#if defined(__x86_64__) || defined(_M_X64)
#  define BNN_X86 1
#else
#  define BNN_X86 0
#endif
#if defined(__aarch64__)
#  define BNN_ARM64 1
#else
#  define BNN_ARM64 0
#endif

#if defined(__GNUC__)
#  define BNN_TARGET_AVX2 __attribute__((target("avx2,fma,popcnt,bmi2")))
#  define BNN_TARGET_AVX512 \
    __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vpopcntdq,avx2,fma,popcnt,bmi2")))
#  define BNN_TARGET_POPCNT __attribute__((target("popcnt")))
#  define BNN_LIKELY(x) __builtin_expect(!!(x), 1)
#  define BNN_UNLIKELY(x) __builtin_expect(!!(x), 0)
#  define BNN_RESTRICT __restrict__
#  define BNN_INTERNAL __attribute__((visibility("hidden")))
#else
#  define BNN_TARGET_AVX2
#  define BNN_TARGET_AVX512
#  define BNN_TARGET_POPCNT
#  define BNN_LIKELY(x) (x)
#  define BNN_UNLIKELY(x) (x)
#  define BNN_RESTRICT
#  define BNN_INTERNAL
#endif

#ifdef NDEBUG
#  define BNN_ASSERT(x) ((void)0)
#else
#  include <assert.h>
#  define BNN_ASSERT(x) assert(x)
#endif

/* snprintf's subset for libbnn's messages, with no heap and no stdio
 * (core/format.c): %d %i %u %x %X %c %s %p %% with the length modifiers
 * of the PRI macros, no flags or widths. */
BNN_INTERNAL int bnn_format(char *buf, size_t size, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
BNN_INTERNAL int bnn_vformat(char *buf, size_t size, const char *fmt, va_list ap);

/* Fill *r (if not NULL) for a refused parameter and return st: message is
 * "<field> <fmt...>" ("<fmt...>" when field is "").  core/params.c. */
BNN_INTERNAL bnn_status bnn_param_reject(bnn_param_report *r, bnn_status st,
                                         const char *field, int64_t found,
                                         const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;
/* BNN_ERR_INVALID naming the first non-zero of four reserved fields, else
 * BNN_OK (the convolution and pooling parameter checks). */
BNN_INTERNAL bnn_status bnn_param_reserved(bnn_param_report *r, const int32_t reserved[4]);
/* In a check of parameters p with report r: reject field p->field below
 * `min` with status st, naming it. */
#define BNN_PARAM_MIN(st, field, min)                                         \
    if (p->field < (min))                                                     \
    return bnn_param_reject(r, (st), #field, p->field, "must be >= %d, got %" PRId64, \
                            (int)(min), (int64_t)p->field)

#define BNN_CEIL_DIV(a, b) (((a) + (b) - 1) / (b))
#define BNN_MIN(a, b) ((a) < (b) ? (a) : (b))
#define BNN_MAX(a, b) ((a) > (b) ? (a) : (b))

/* Portable 64-bit popcount (the reference kernels use only this).  The
 * build picks how (CMake BNN_POPCOUNT): the compiler's builtin by default
 * (one instruction where the CPU has one); on a core without one (a
 * Cortex-M), SWAR on the two 32-bit halves (BNN_POPCOUNT_swar32) or a
 * 256-entry byte table (BNN_POPCOUNT_table8, core/popcount.c).
 * docs/EMBEDDED.md has the instruction counts of each on a Cortex-M4. */
#if defined(BNN_POPCOUNT_table8)
BNN_INTERNAL extern const uint8_t bnn_popcount_table8[256];
#endif
static inline int bnn_popcount64(uint64_t x)
{
#if defined(BNN_POPCOUNT_table8)
    uint32_t lo = (uint32_t)x, hi = (uint32_t)(x >> 32);
    return bnn_popcount_table8[lo & 0xff] + bnn_popcount_table8[(lo >> 8) & 0xff]
         + bnn_popcount_table8[(lo >> 16) & 0xff] + bnn_popcount_table8[lo >> 24]
         + bnn_popcount_table8[hi & 0xff] + bnn_popcount_table8[(hi >> 8) & 0xff]
         + bnn_popcount_table8[(hi >> 16) & 0xff] + bnn_popcount_table8[hi >> 24];
#elif defined(BNN_POPCOUNT_swar32)
    /* bit pairs, nibbles, then bytes of each half (at most 8 per byte);
     * the halves' byte counts add without carry (at most 16), and one
     * multiply sums the four bytes into the top one */
    uint32_t lo = (uint32_t)x, hi = (uint32_t)(x >> 32);
    lo = lo - ((lo >> 1) & 0x55555555u);
    hi = hi - ((hi >> 1) & 0x55555555u);
    lo = (lo & 0x33333333u) + ((lo >> 2) & 0x33333333u);
    hi = (hi & 0x33333333u) + ((hi >> 2) & 0x33333333u);
    lo = ((lo + (lo >> 4)) & 0x0f0f0f0fu) + ((hi + (hi >> 4)) & 0x0f0f0f0fu);
    return (int)((lo * 0x01010101u) >> 24);
#elif defined(__GNUC__)
    return __builtin_popcountll(x);
#else
    x = x - ((x >> 1) & 0x5555555555555555ULL);
    x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
    x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0fULL;
    return (int)((x * 0x0101010101010101ULL) >> 56);
#endif
}

/* The optimizers' maximum max(bv, ag), written out so that every target
 * and the CUDA kernels agree: C leaves fmax's choice between -0 and +0
 * open (glibc returns its first argument on x86-64, aarch64's FMAXNM
 * returns +0).  ag where it is larger, or where bv is NaN and ag is not;
 * else bv (so max(-0, +0) is -0, and both NaN gives bv). */
#define BNN_OPT_MAX(bv, ag) ((((ag) > (bv)) || ((bv) != (bv) && (ag) == (ag))) ? (ag) : (bv))

/* AP2(z) = sign(z) * 2^round(log2|z|) of the shift-based variants, on the
 * exponent bits (shift.c derives it; bnn_ap2() is this function): a normal
 * |z| = 1.f * 2^E gives 2^(E+1) exactly when 1.f >= the double nearest
 * sqrt(2), i.e. when the 52 fraction bits are at least 0x6A09E667F3BCD (the
 * tie rule of the frexp formulation, whose mantissa 1.f/2 is compared with
 * the double nearest 1/sqrt(2)), else 2^E, with z's sign; 2^1024 is inf, as
 * ldexp gives.  0 and -0 give +0; inf and NaN are returned as they are;
 * subnormals take the frexp formulation (bnn_ap2_frexp). */
#define BNN_AP2_SQRT2_FRACTION 0x6A09E667F3BCDULL
BNN_INTERNAL double bnn_ap2_frexp(double z);
static inline double bnn_ap2_inline(double z)
{
    uint64_t u, e;
    memcpy(&u, &z, sizeof u);
    e = (u >> 52) & 0x7FF;
    if (e == 0x7FF) return z;                         /* inf, NaN */
    if (e == 0) return (u << 1) == 0 ? 0.0 : bnn_ap2_frexp(z);
    e += (u & 0xFFFFFFFFFFFFFULL) >= BNN_AP2_SQRT2_FRACTION;
    u = (u & 0x8000000000000000ULL) | (e << 52);
    memcpy(&z, &u, sizeof z);
    return z;
}

/* The argument checks of bnn_pack_f32/_i8 (src_elem: bytes per source
 * element) and of bnn_gemm (*epi: NULL becomes the INT32 epilogue), shared
 * with their CUDA twins: the same status for the same arguments. */
BNN_INTERNAL bnn_status bnn_pack_check(int64_t rows, int64_t k, const void *src,
                                       int64_t src_stride, size_t src_elem, const void *dst,
                                       int64_t dst_stride_words);
BNN_INTERNAL bnn_status bnn_gemm_check(int64_t n, int64_t m, int64_t k, const uint64_t *a,
                                       int64_t lda_words, const uint64_t *w,
                                       int64_t ldw_words, const struct bnn_epilogue **epi,
                                       const void *c, int64_t ldc);
/* The argument checks of bnn_quantize_i8 (BNN_OK with nothing else to do
 * but zero `scale` when rows or k is 0), shared with its CUDA twin. */
BNN_INTERNAL bnn_status bnn_quantize_i8_check(int64_t rows, int64_t k, const float *a,
                                              int64_t lda, int by_column, const int8_t *q,
                                              int64_t ldq, const float *scale);
/* The argument checks of bnn_gemm_f32_pm1 and bnn_gemm_i8_pm1 (BNN_OK for
 * J == 0, whose a/q and s are not read), shared with their CUDA twins. */
BNN_INTERNAL bnn_status bnn_gemm_f32_pm1_check(int64_t I, int64_t K, int64_t J, const float *a,
                                               int64_t lda_i, int64_t lda_j, const uint64_t *s,
                                               int64_t lds, const float *c, int64_t ldc);
BNN_INTERNAL bnn_status bnn_gemm_i8_pm1_check(int64_t I, int64_t K, int64_t J, const int8_t *q,
                                              int64_t ldq, const uint64_t *s, int64_t lds,
                                              const int32_t *c, int64_t ldc);
/* The argument checks of the training steps, shared with their CUDA twins
 * (BNN_OK with nothing else to do when a size is 0):
 * bnn_opt_check: bnn_opt_step (pack 0: rows of k = 1 element, signs not
 *   read) and bnn_opt_step_pack (pack 1); *step receives the bias-corrected
 *   step size times lr_scale;
 * bnn_bn_forward_train_check, bnn_bn_backward_check: the batch norms';
 * bnn_ste_backward_packed_check: bnn_ste_backward_packed's (the mask pack's
 *   are bnn_pack_check's). */
BNN_INTERNAL bnn_status bnn_opt_check(const bnn_opt_params *p, int pack, int64_t rows, int64_t k,
                                      const float *param, const float *grad, const float *m,
                                      const float *v, const uint64_t *signs,
                                      int64_t signs_stride_words, double *step);
BNN_INTERNAL bnn_status bnn_bn_forward_train_check(bnn_bn_kind kind, int64_t n, int64_t c,
                                                   const float *x, const float *gamma,
                                                   const float *beta, float eps, float momentum,
                                                   const float *y, const float *save_mean,
                                                   const float *save_scale);
BNN_INTERNAL bnn_status bnn_bn_backward_check(bnn_bn_kind kind, int64_t n, int64_t c,
                                              const float *x, const float *gamma,
                                              const float *save_mean, const float *save_scale,
                                              const float *dy, const float *dx,
                                              const float *dgamma, const float *dbeta);
BNN_INTERNAL bnn_status bnn_ste_backward_packed_check(int64_t rows, int64_t k,
                                                      const uint64_t *mask,
                                                      int64_t mask_stride_words,
                                                      const float *grad, int64_t grad_stride,
                                                      const float *out, int64_t out_stride);

/* Checked int64 multiply: 0 on overflow (or negative operands). */
/* Functions the CUDA kernels share with the CPU code (libbnn/cuda). */
#ifdef __CUDACC__
#  define BNN_HOST_DEVICE __host__ __device__
#else
#  define BNN_HOST_DEVICE
#endif

/* The counter-based generator of stochastic binarization and rounding:
 * splitmix64's finaliser over seed and index e. */
static inline BNN_HOST_DEVICE uint64_t bnn_mix64(uint64_t seed, uint64_t e)
{
    uint64_t z = seed ^ (e * 0x9e3779b97f4a7c15ULL);
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline int bnn_mul_ok(int64_t a, int64_t b, int64_t *out)
{
    if (a < 0 || b < 0) return 0;
    if (a != 0 && b > INT64_MAX / a) return 0;
    *out = a * b;
    return 1;
}

/* Elements addressable from a base pointer for `rows` rows of `row` used
 * elements at stride `ld`: (rows-1)*ld + row must fit in int64 and in
 * size_t bytes of `elem` each.  Returns 0 on overflow. */
static inline int bnn_extent_ok(int64_t rows, int64_t ld, int64_t row, size_t elem)
{
    int64_t span;
    if (rows <= 0 || row <= 0) return 1;
    if (!bnn_mul_ok(rows - 1, ld, &span)) return 0;
    if (span > INT64_MAX - row) return 0;
    span += row;
    if ((uint64_t)span > (uint64_t)(SIZE_MAX / elem)) return 0;
    return 1;
}

/* Thread helper: run fn(ctx, part, parts) for part in [0, parts), on up to
 * `parts` threads (part 0 on the caller).  Falls back to running parts on
 * the caller when threads cannot be created. */
typedef void (*bnn_part_fn)(void *ctx, int part, int parts);
/* The most parts bnn_run_parts() runs (the thread count is capped to it). */
#define BNN_MAX_THREADS 256
BNN_INTERNAL void bnn_run_parts(bnn_part_fn fn, void *ctx, int parts);

#endif /* BNN_INTERNAL_H */
