/*
 * bnn.h -- the public C API of libbnn, a library for Binarized Neural
 * Networks (weights and activations constrained to +1/-1).
 *
 * Overview
 * --------
 * libbnn stores +-1 tensors as packed bits and multiplies them with
 * XNOR/popcount kernels chosen at run time for the CPU (a portable scalar
 * reference, AVX2, AVX-512 VPOPCNTDQ).  Every call takes caller-owned
 * buffers with explicit row strides; nothing in a hot path allocates.
 *
 * The bit contract (the only place it is written down)
 * ----------------------------------------------------
 *  - A word is a uint64_t.  Element j of a row lives in word j/64, bit j%64
 *    (least significant bit first).
 *  - Bit 1 means -1, bit 0 means +1.  Packing maps x < 0 to 1 and every
 *    other value (+0, -0, NaN) to 0, so sign(0) = +1.
 *  - Rows are padded to whole words.  Pad bits are 0 in every operand and
 *    every output this library writes; kernels rely on it (a row whose pad
 *    bits are not zero gives unspecified results, never out-of-bounds
 *    access).  There is no over-read: kernels touch only the words of
 *    the rows they are given.
 *  - The dot product of two packed rows of true length K is
 *        dot = K - 2 * popcount(a XOR b).
 *  - Dense layers: activations [N, K] as packed rows, weights [M, K] as
 *    packed rows (one row per output unit), output [N, M].
 *  - A per-channel affine map followed by sign (batch norm, then
 *    binarization) folds into an integer threshold t and a direction flag:
 *    output bit = flip ? (dot > t) : (dot < t)   (bit 1 = -1).
 *    bnn_fold_threshold() is the one place this fold is computed.
 *
 * Usage in ten lines
 * ------------------
 * Ask bnn_words(K) for the words per packed row, allocate N*words and
 * M*words uint64_t, and fill them with bnn_pack_f32() from float rows.
 * Describe what should come out with a bnn_epilogue: BNN_EPI_INT32 for raw
 * dot products, BNN_EPI_FLOAT to apply scale[m]*dot + offset[m] (one fused
 * multiply-add, the same on every ISA), or BNN_EPI_BITS with thresholds
 * from bnn_fold_threshold() to get the packed +-1 input of the next binary
 * layer directly.  Call bnn_gemm().  Check the returned bnn_status against
 * BNN_OK and print bnn_status_string() otherwise; a failed call writes
 * nothing.  bnn_set_num_threads() and bnn_set_isa() are process-wide and
 * must be called before kernels run, never concurrently with them.
 *
 * Thread safety: every function may be called from several threads at
 * once on distinct output buffers, except the two setters above.
 */
#ifndef BNN_H
#define BNN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ */
/* Export and version                                                  */
/* ------------------------------------------------------------------ */

#if defined(_WIN32) && defined(BNN_SHARED)
#  ifdef BNN_BUILD
#    define BNN_API __declspec(dllexport)
#  else
#    define BNN_API __declspec(dllimport)
#  endif
#elif defined(__GNUC__)
#  define BNN_API __attribute__((visibility("default")))
#else
#  define BNN_API
#endif

#define BNN_VERSION_MAJOR 0
#define BNN_VERSION_MINOR 1
#define BNN_VERSION_PATCH 0
#define BNN_VERSION_NUMBER \
    (BNN_VERSION_MAJOR * 10000 + BNN_VERSION_MINOR * 100 + BNN_VERSION_PATCH)

/* Bumped whenever the bit contract above changes; model files record it. */
#define BNN_LAYOUT_VERSION 1

/* Bits per packed word, and words needed for a row of n elements. */
#define BNN_WORD_BITS 64
#define BNN_WORDS(n) (((n) + 63) / 64)

/** bnn_version_number() : BNN_VERSION_NUMBER of the compiled library. */
BNN_API int bnn_version_number(void);
/** bnn_version_string() : "MAJOR.MINOR.PATCH" of the compiled library. */
BNN_API const char *bnn_version_string(void);

/* ------------------------------------------------------------------ */
/* Status codes (append-only; values are ABI)                          */
/* ------------------------------------------------------------------ */

typedef enum bnn_status {
    BNN_OK              =  0,
    BNN_ERR_NULL        = -1,  /* a required pointer is NULL               */
    BNN_ERR_SHAPE       = -2,  /* negative or mismatched dimensions         */
    BNN_ERR_OVERFLOW    = -3,  /* a size computation overflows              */
    BNN_ERR_INVALID     = -4,  /* an argument value is out of its domain    */
    BNN_ERR_UNSUPPORTED = -5,  /* not available in this build or on this CPU*/
    BNN_ERR_NOMEM       = -6,  /* an allocation failed                      */
    BNN_ERR_STRIDE      = -7,  /* a row stride is smaller than the row      */
    BNN_ERR_FORMAT      = -8,  /* a model file is malformed, truncated or corrupt */
    BNN_ERR_IO          = -9,  /* a file cannot be opened or read            */
    BNN_ERR_DEVICE      = -10  /* a GPU call failed: no driver or device, a bad
                                  device pointer, a failed launch (bnn_cuda.h) */
    /* BNN_STATUS_COUNT-style sentinels are not part of the ABI. */
} bnn_status;

/** bnn_status_string() : a static, human-readable name for any value,
 *  including values not in the enum ("unknown status"). */
BNN_API const char *bnn_status_string(bnn_status s);

/* Which field of a parameter struct a call refuses, for a message that
 * names it: filled by bnn_conv2d_check() and bnn_pool2d_check().  It lives
 * in caller memory (no global state), so any thread may ask. */
typedef struct bnn_param_report {
    bnn_status status;   /* what the calls taking these parameters return */
    int32_t reserved;    /* 0 */
    int64_t found;       /* the field's value (0 when no field applies)   */
    char field[24];      /* the first field out of its domain: "stride_h",
                            "pad_left", "kh", "reserved[2]", ...; "" when
                            the parameters are valid or no one field is at
                            fault (NULL parameters, a size overflow)       */
    char message[128];   /* one sentence that starts with `field` when it
                            is set: "pad_left must be >= 0, got -1"; bindings
                            may put their own name for the field in its
                            place.  "valid" for valid parameters.          */
} bnn_param_report;

/* ------------------------------------------------------------------ */
/* Instruction-set dispatch and threads                                */
/* ------------------------------------------------------------------ */

typedef enum bnn_isa {
    BNN_ISA_REF         = 0,  /* portable scalar reference (always present) */
    BNN_ISA_AVX2        = 1,  /* x86 AVX2 + FMA, vectorised nibble popcount  */
    BNN_ISA_AVX512      = 2,  /* x86 AVX-512 F/DQ/BW/VL + VPOPCNTDQ          */
    BNN_ISA_AVX512_VNNI = 3,  /* the same + AVX512_VNNI for the 8-bit first
                                 layer (VPDPBUSD)                            */
    BNN_ISA_NEON        = 4,  /* aarch64 Advanced SIMD: vcnt popcount        */
    BNN_ISA_NEON_DOT    = 5   /* the same + the dot product instructions
                                 (ASIMDDP: UDOT) for the 8-bit first layer  */
} bnn_isa;

/** bnn_isa_name() : "ref", "avx2", "avx512", "avx512vnni", "neon" or
 *  "neondot", the kernels in use.  The first call of any kernel (or of
 *  this) selects the best ISA that the CPU and OS support (x86: CPUID +
 *  XGETBV, avx512vnni where the CPU has VNNI; aarch64: AT_HWCAP's ASIMD,
 *  neondot where it also has ASIMDDP), unless the environment variable
 *  BNN_ISA=ref|avx2|avx512|avx512vnni|neon|neondot asks for one ("avx512"
 *  is then the AVX-512 kernels without VNNI and "neon" the NEON ones
 *  without the dot products, so every table can be tested alone); an
 *  unavailable or unknown request falls back to the best available ISA. */
BNN_API const char *bnn_isa_name(void);
/** bnn_isa_current() : the same choice as an enum value. */
BNN_API bnn_isa bnn_isa_current(void);
/** bnn_isa_supported() : 1 if this CPU, OS and build can run `isa`. */
BNN_API int bnn_isa_supported(bnn_isa isa);
/** bnn_set_isa() : force the kernels of `isa`.  Returns
 *  BNN_ERR_UNSUPPORTED (and changes nothing) if it cannot run here.
 *  Not thread-safe: never call it while kernels run on other threads. */
BNN_API bnn_status bnn_set_isa(bnn_isa isa);
/** bnn_isa_from_name() : parse "ref"/"avx2"/"avx512"/"avx512vnni"/"neon"/
 *  "neondot" into *out (BNN_ERR_INVALID for any other name). */
BNN_API bnn_status bnn_isa_from_name(const char *name, bnn_isa *out);

/** bnn_set_num_threads() : threads used by large kernels (n >= 1; default
 *  1).  Results are bit-identical for every thread count; calls below an
 *  internal work threshold stay on the calling thread.  Not thread-safe:
 *  set it before kernels run.  BNN_ERR_INVALID for n < 1 or n > 256. */
BNN_API bnn_status bnn_set_num_threads(int n);
/** bnn_get_num_threads() : the value last set (1 by default). */
BNN_API int bnn_get_num_threads(void);

/* ------------------------------------------------------------------ */
/* Sizes                                                               */
/* ------------------------------------------------------------------ */

/** bnn_words() : words in one packed row of k elements (0 for k <= 0). */
BNN_API int64_t bnn_words(int64_t k);
/** bnn_packed_size() : bytes of a [rows, k] packed matrix with rows
 *  padded to whole words.  BNN_ERR_SHAPE for negative sizes,
 *  BNN_ERR_OVERFLOW if the size does not fit in size_t; *bytes is then
 *  left unchanged. */
BNN_API bnn_status bnn_packed_size(int64_t rows, int64_t k, size_t *bytes);

/* ------------------------------------------------------------------ */
/* Packing                                                             */
/* ------------------------------------------------------------------ */

/** bnn_pack_f32() : pack `rows` rows of `k` floats (row i starts at
 *  src + i*src_stride, strides in elements) into words (row i at
 *  dst + i*dst_stride_words).  x < 0 -> bit 1; +0, -0, NaN -> bit 0.
 *  Pad bits are written as 0.  src and dst must not overlap.
 *  Errors: BNN_ERR_NULL (NULL with rows, k > 0), BNN_ERR_SHAPE (negative
 *  sizes), BNN_ERR_STRIDE (src_stride < k or dst_stride_words <
 *  bnn_words(k)), BNN_ERR_OVERFLOW (the extent rows x stride does not fit
 *  in memory).  Nothing is written on error. */
BNN_API bnn_status bnn_pack_f32(int64_t rows, int64_t k,
                                const float *src, int64_t src_stride,
                                uint64_t *dst, int64_t dst_stride_words);
/** bnn_pack_i8() : the same for int8 rows (x < 0 -> bit 1). */
BNN_API bnn_status bnn_pack_i8(int64_t rows, int64_t k,
                               const int8_t *src, int64_t src_stride,
                               uint64_t *dst, int64_t dst_stride_words);
/** bnn_unpack_f32() : the inverse: bit 1 -> -1.0f, bit 0 -> +1.0f, k
 *  floats per row.  Same errors as packing. */
BNN_API bnn_status bnn_unpack_f32(int64_t rows, int64_t k,
                                  const uint64_t *src, int64_t src_stride_words,
                                  float *dst, int64_t dst_stride);

/* ------------------------------------------------------------------ */
/* XNOR-popcount GEMM and its epilogues                                */
/* ------------------------------------------------------------------ */

typedef enum bnn_epilogue_kind {
    BNN_EPI_INT32 = 0,  /* C is int32_t[n][ldc]:  C = dot                 */
    BNN_EPI_FLOAT = 1,  /* C is float[n][ldc]:    C = fmaf(dot, s, o)     */
    BNN_EPI_BITS  = 2   /* C is uint64_t[n][ldc] words: packed sign bits  */
} bnn_epilogue_kind;

/* What a binary product writes.  Zero-initialise and set what applies.
 *  INT32: nothing else is read.
 *  FLOAT: out = fmaf((float)dot, scale[m], offset[m]) (one rounding, on
 *         every ISA); scale == NULL means 1.0f, offset == NULL means 0.0f.
 *  BITS:  bit m of the output row = flip[m] ? (dot > thresh[m])
 *                                           : (dot < thresh[m]);
 *         thresh is required; flip == NULL means all 0.  One output word
 *         per 64 columns; pad bits of the last word are written as 0. */
typedef struct bnn_epilogue {
    int32_t        kind;      /* a bnn_epilogue_kind                */
    int32_t        reserved;  /* must be 0                          */
    const float   *scale;     /* FLOAT: [m] or NULL                 */
    const float   *offset;    /* FLOAT: [m] or NULL                 */
    const int32_t *thresh;    /* BITS:  [m]                         */
    const uint8_t *flip;      /* BITS:  [m] (0 or 1) or NULL        */
    void          *pad_[3];   /* reserved for growth; must be NULL  */
} bnn_epilogue;

/** bnn_gemm() : C[i][j] = epilogue(dot(A row i, W row j)) for i < n,
 *  j < m, where rows hold k elements packed as above.
 *  a: n rows, stride lda_words; w: m rows, stride ldw_words (both >=
 *  bnn_words(k)); c: n rows with stride ldc, counted in int32/float
 *  elements for INT32/FLOAT and in words for BITS (ldc >= bnn_words(m)).
 *  epi == NULL means INT32.  k must be <= INT32_MAX.
 *  Zero-size n, m or k are valid (with k == 0 every dot is 0).
 *  Errors (nothing written): BNN_ERR_NULL, BNN_ERR_SHAPE, BNN_ERR_STRIDE,
 *  BNN_ERR_OVERFLOW (k > INT32_MAX or a buffer extent that overflows),
 *  BNN_ERR_INVALID (unknown kind, non-zero reserved fields).  A non-zero
 *  flip value counts as 1.
 *  Thread safety: reentrant; uses bnn_get_num_threads() threads for large
 *  products; the result is the same for any thread count. */
BNN_API bnn_status bnn_gemm(int64_t n, int64_t m, int64_t k,
                            const uint64_t *a, int64_t lda_words,
                            const uint64_t *w, int64_t ldw_words,
                            const bnn_epilogue *epi,
                            void *c, int64_t ldc);

/** bnn_fold_threshold() : fold per-channel affine maps followed by sign
 *  into the BITS epilogue, exactly.  For every channel j and every
 *  integer s in [-k, k]:
 *      (flip[j] ? s > thresh[j] : s < thresh[j])
 *          ==  (scale[j] * s + offset[j] < 0)   evaluated in double,
 *  i.e. the output bit is 1 (-1) exactly where the double-precision map
 *  is negative (sign(0) = +1).  scale[j] < 0 gives flip 1; scale[j] == 0
 *  gives a constant output.  For batch norm, scale = gamma/sqrt(var+eps)
 *  and offset = beta - mean*scale.
 *  Errors: BNN_ERR_NULL, BNN_ERR_SHAPE (channels < 0, k < 0),
 *  BNN_ERR_OVERFLOW (k > INT32_MAX - 1), BNN_ERR_INVALID (a non-finite
 *  scale or offset); nothing is written on error. */
BNN_API bnn_status bnn_fold_threshold(int64_t channels, int64_t k,
                                      const double *scale,
                                      const double *offset,
                                      int32_t *thresh, uint8_t *flip);

/* ------------------------------------------------------------------ */
/* Binary convolution                                                  */
/* ------------------------------------------------------------------ */

/* Geometry of a 2-D convolution on NHWC tensors.
 *  Input  x: [n][h][w][bnn_words(c)] words, contiguous (channels packed).
 *  Filter w: [o][kh][kw][bnn_words(c)] words, contiguous.
 *  Output:   [n][oh][ow][o] int32/float, or [n][oh][ow][bnn_words(o)] words
 *            for BNN_EPI_BITS, contiguous, where
 *            oh = (h + pad_top + pad_bottom - dilation_h*(kh-1) - 1)/stride_h + 1
 *            (ow likewise).
 *  Padding may exceed the kernel's reach (outputs that see only padding
 *  are valid).  pad_value is the value of padded positions in the +-1
 *  domain: 0 = zeros, exactly what a float convolution of +-1 data with
 *  zero padding gives (done with a per-tap correction term); 1 = +1
 *  (bit 0), slightly cheaper.  The u8 first layer uses pad_byte instead.
 *  Zero-initialise and set every field; reserved fields must be 0. */
typedef struct bnn_conv2d_params {
    int64_t n, h, w, c;           /* input batch, height, width, channels */
    int64_t o, kh, kw;            /* filters, kernel height and width     */
    int32_t stride_h, stride_w;   /* >= 1                                  */
    int32_t dilation_h, dilation_w; /* >= 1                                */
    int32_t pad_top, pad_bottom, pad_left, pad_right; /* >= 0            */
    int32_t pad_value;            /* binary conv: 0 (zeros) or 1 (+1)      */
    int32_t pad_byte;             /* u8 conv: value of padded pixels (0..255) */
    int32_t reserved[4];
} bnn_conv2d_params;

/** bnn_conv2d_output_shape() : oh, ow of a geometry (either may be NULL).
 *  Errors: BNN_ERR_NULL, BNN_ERR_SHAPE (negative sizes, c < 1, a
 *  zero-size kernel, kernel larger than the padded input), BNN_ERR_INVALID (stride or
 *  dilation < 1, negative padding, pad_value not 0/1, pad_byte outside
 *  0..255, reserved fields not 0), BNN_ERR_OVERFLOW. */
BNN_API bnn_status bnn_conv2d_output_shape(const bnn_conv2d_params *p,
                                           int64_t *oh, int64_t *ow);

/** bnn_conv2d_check() : the checks of bnn_conv2d_output_shape(), in the
 *  same order and with the same status, with the first failure named in
 *  *report (which may be NULL): e.g. status BNN_ERR_INVALID, field
 *  "pad_top", found -1, "pad_top must be >= 0, got -1". */
BNN_API bnn_status bnn_conv2d_check(const bnn_conv2d_params *p, bnn_param_report *report);

/** bnn_conv2d_workspace_size() : bytes of scratch memory bnn_conv2d()
 *  needs for `threads` threads (0 means bnn_get_num_threads()).  A call
 *  given less runs on as many threads as its workspace allows. */
BNN_API bnn_status bnn_conv2d_workspace_size(const bnn_conv2d_params *p,
                                             int threads, size_t *bytes);

/** bnn_conv2d() : out = epilogue(conv(x, w)) for +-1 data packed as
 *  above; every dot counts kh*kw*c products (padded taps as pad_value).
 *  The epilogue is that of bnn_gemm() with one column per filter.
 *  workspace: at least bnn_conv2d_workspace_size(p, 1) bytes, 8-byte
 *  aligned, not shared with another running call.  Nothing else is
 *  allocated.  Errors as for the shape query, plus BNN_ERR_NULL and
 *  BNN_ERR_INVALID (too small or misaligned workspace); nothing is
 *  written to `out` on error.  Thread safety: as bnn_gemm(). */
BNN_API bnn_status bnn_conv2d(const bnn_conv2d_params *p,
                              const uint64_t *x, const uint64_t *w,
                              const bnn_epilogue *epi, void *out,
                              void *workspace, size_t workspace_bytes);

/** bnn_conv2d_correction() : the zero-padding correction of a layer,
 *  computed once (at load time) instead of in every bnn_conv2d() call:
 *  corr[t*o + j] = c - 2*popcount(w[j][t]) for each tap t < kh*kw and
 *  filter j < o, the dot of an all-+1 pixel with that tap's weights.
 *  corr holds kh*kw*o int32.  Errors as bnn_conv2d_output_shape(), plus
 *  BNN_ERR_NULL. */
BNN_API bnn_status bnn_conv2d_correction(const bnn_conv2d_params *p,
                                         const uint64_t *w, int32_t *corr);

/** bnn_conv2d_ex() : bnn_conv2d() with a precomputed correction (from
 *  bnn_conv2d_correction() for the same p and w; ignored when pad_value
 *  is 1; NULL computes it in the workspace as bnn_conv2d() does).  With
 *  a correction given, bnn_conv2d_workspace_size(p with pad_value 1, ...)
 *  bytes suffice. */
BNN_API bnn_status bnn_conv2d_ex(const bnn_conv2d_params *p,
                                 const uint64_t *x, const uint64_t *w,
                                 const int32_t *corr,
                                 const bnn_epilogue *epi, void *out,
                                 void *workspace, size_t workspace_bytes);

/* ------------------------------------------------------------------ */
/* 8-bit first layer: uint8 inputs times +-1 weights                   */
/* ------------------------------------------------------------------ */

typedef enum bnn_u8_method {
    BNN_U8_AUTO     = 0,  /* the fastest exact method for this CPU       */
    BNN_U8_BITPLANE = 1,  /* the paper's bit planes on the XNOR kernels   */
    BNN_U8_DIRECT   = 2,  /* byte x +-1 multiply-add (vpmaddubsw on AVX2) */
    BNN_U8_MASKED   = 3   /* sum x - 2 * (sum of the x whose weight is -1),
                             the bytes masked by the sign bits: for 32-bit
                             cores without popcount (the bare-metal AUTO) */
} bnn_u8_method;

/* Both first-layer ops compute, exactly in integers, the centred sum
 *     s = sum over taps of (x - 128) * w,    w in {+1, -1},
 * which is 128 times the float layer on inputs scaled as x/128 - 1 (so
 * s/128 is what training computes).  Padded conv taps take x = pad_byte;
 * the default 128 contributes 0, like zero padding in float.  s then goes
 * through the epilogue like a binary dot. */

/** bnn_gemm_u8_workspace_size() : scratch bytes for bnn_gemm_u8(). */
BNN_API bnn_status bnn_gemm_u8_workspace_size(int64_t m, int64_t k, int threads,
                                              size_t *bytes);
/** bnn_gemm_u8() : dense first layer: x uint8 [n][ldx] rows of k bytes,
 *  w packed [m][ldw_words]; C as for bnn_gemm().  Errors as bnn_gemm(),
 *  plus BNN_ERR_INVALID for an unknown method or short workspace. */
BNN_API bnn_status bnn_gemm_u8(int64_t n, int64_t m, int64_t k,
                               const uint8_t *x, int64_t ldx,
                               const uint64_t *w, int64_t ldw_words,
                               const bnn_epilogue *epi, void *c, int64_t ldc,
                               bnn_u8_method method,
                               void *workspace, size_t workspace_bytes);

/** bnn_conv2d_u8_workspace_size() / bnn_conv2d_u8() : convolution first
 *  layer on uint8 NHWC input x [n][h][w][c] (bytes, contiguous) with
 *  packed filters w [o][kh][kw][bnn_words(c)]; output as bnn_conv2d().
 *  pad_byte gives the padded pixels; pad_value is not used (but must
 *  still be 0 or 1). */
BNN_API bnn_status bnn_conv2d_u8_workspace_size(const bnn_conv2d_params *p,
                                                int threads, size_t *bytes);
BNN_API bnn_status bnn_conv2d_u8(const bnn_conv2d_params *p,
                                 const uint8_t *x, const uint64_t *w,
                                 const bnn_epilogue *epi, void *out,
                                 bnn_u8_method method,
                                 void *workspace, size_t workspace_bytes);

/* ------------------------------------------------------------------ */
/* Max-pooling                                                         */
/* ------------------------------------------------------------------ */

/* Pooling windows on NHWC tensors; padded positions are ignored (each
 * side's padding must be smaller than the window, so every window sees
 * at least one input).  oh = (h + pad_top + pad_bottom - kh)/stride_h + 1. */
typedef struct bnn_pool2d_params {
    int64_t n, h, w, c;
    int32_t kh, kw, stride_h, stride_w;
    int32_t pad_top, pad_bottom, pad_left, pad_right;
    int32_t reserved[4];
} bnn_pool2d_params;

/** bnn_pool2d_output_shape() : oh, ow (either may be NULL).  Errors:
 *  BNN_ERR_NULL, BNN_ERR_INVALID (window, stride < 1, negative padding or
 *  padding >= the window on any side, reserved fields not 0),
 *  BNN_ERR_SHAPE (n, h, w < 0, c < 1, window larger than the padded
 *  input), BNN_ERR_OVERFLOW.  The pooling calls return the same errors
 *  and BNN_ERR_NULL for NULL data with n > 0; nothing is written. */
BNN_API bnn_status bnn_pool2d_output_shape(const bnn_pool2d_params *p,
                                           int64_t *oh, int64_t *ow);

/** bnn_pool2d_check() : the checks of bnn_pool2d_output_shape() with the
 *  first failure named in *report (may be NULL), as bnn_conv2d_check(). */
BNN_API bnn_status bnn_pool2d_check(const bnn_pool2d_params *p, bnn_param_report *report);

/** bnn_maxpool2d_bits() : max-pool packed sign bits x [n][h][w][words(c)]
 *  into [n][oh][ow][words(c)].  For a channel whose folded map is
 *  increasing (flip 0) the pooled value is the max of the +-1 outputs,
 *  an AND of bits; where it is decreasing (flip 1, as written by
 *  bnn_fold_threshold) it is the min, an OR.  So pooling after the
 *  threshold equals pooling the integer pre-activations before batch
 *  norm and sign.  flip == NULL means all 0.  Pad bits stay 0. */
BNN_API bnn_status bnn_maxpool2d_bits(const bnn_pool2d_params *p,
                                      const uint64_t *x, const uint8_t *flip,
                                      uint64_t *out);

/** bnn_maxpool2d_i32() : max-pool int32 NHWC x [n][h][w][c] -> [n][oh][ow][c]. */
BNN_API bnn_status bnn_maxpool2d_i32(const bnn_pool2d_params *p,
                                     const int32_t *x, int32_t *out);

/** bnn_maxpool2d_f32_train() : max-pool float NHWC x [n][h][w][c] into
 *  out [n][oh][ow][c] for training, with the tap of each maximum: taps
 *  visited in window order (t = row * kw + column of the window), the
 *  first in-bounds one starts, a later one replaces it only when strictly
 *  greater (so the first maximum wins and a NaN never replaces);
 *  tap[n][oh][ow][c] = its t.  kh * kw <= 255 (else BNN_ERR_INVALID).
 *  bnn_maxpool2d_f32_backward() : gx [n][h][w][c] = 0, then for each output
 *  in row-major order (channels innermost) grad is added at the input its
 *  tap names (taps outside the window or the input are skipped).  Errors
 *  as bnn_pool2d_output_shape(), plus BNN_ERR_NULL. */
BNN_API bnn_status bnn_maxpool2d_f32_train(const bnn_pool2d_params *p, const float *x,
                                           float *out, uint8_t *tap);
BNN_API bnn_status bnn_maxpool2d_f32_backward(const bnn_pool2d_params *p, const float *grad,
                                              const uint8_t *tap, float *gx);

/* ------------------------------------------------------------------ */
/* Training arithmetic: AP2, batch norm, optimizers, STE, binarization */
/* ------------------------------------------------------------------ */

/** bnn_ap2() : the power-of-two approximation AP2(z) = sign(z) *
 *  2^round(log2|z|), defined without logarithms: with frexp giving
 *  |z| = m * 2^e, m in [0.5, 1), AP2(z) = sign(z) * 2^e if m >=
 *  0.70710678118654752 (the double nearest 1/sqrt(2), compared in double),
 *  else sign(z) * 2^(e-1); AP2(+-0) = 0; NaN and infinities are returned
 *  unchanged; |z| >= sqrt(2) * 2^1023 rounds to infinity (2^1024 does not
 *  exist in double). */
BNN_API double bnn_ap2(double z);

typedef enum bnn_bn_kind {
    BNN_BN_STANDARD = 0,  /* y = gamma * (x - mean) * invstd + beta        */
    BNN_BN_SHIFT    = 1   /* the shift-based BN: powers of two (AP2)        */
} bnn_bn_kind;

/* Batch norm over x [n][c] (channels contiguous; for NHWC data n is
 * N*H*W), per channel.  Sums are taken in double, in a fixed order.
 *
 * Training forward (bnn_bn_forward_train):
 *   STANDARD: mean, var = mean((x-mean)^2), invstd = 1/sqrt(var + eps),
 *             y = gamma * (x - mean) * invstd + beta; saves invstd.
 *   SHIFT:    C = x - mean, var = mean(AP2(C) * C), s = 1/sqrt(var + eps),
 *             y = C * AP2(s) * AP2(gamma) + beta; saves AP2(s).
 *   Running statistics (either may be NULL to skip):
 *     running_mean   <- (1 - momentum) * running_mean   + momentum * mean
 *     running_invstd <- (1 - momentum) * running_invstd + momentum * invstd
 *   where invstd is 1/sqrt(var + eps) (s, before AP2, for SHIFT).
 * Eval forward (bnn_bn_forward_eval):
 *   STANDARD: y = gamma * (x - running_mean) * running_invstd + beta
 *   SHIFT:    y = (x - running_mean) * AP2(running_invstd) * AP2(gamma) + beta
 * Backward (bnn_bn_backward), from the saved mean and scale sc:
 *   STANDARD: xh = (x - mean) * sc,
 *             dx = gamma * sc * (dy - mean(dy) - xh * mean(dy * xh)),
 *             dgamma = sum(dy * xh), dbeta = sum(dy)
 *   SHIFT:    C = x - mean, Ct = AP2(C),
 *             dx = AP2(gamma) * sc * (dy - mean(dy) - Ct * sc^2 * mean(Ct * dy)),
 *             dgamma = sum(AP2(C * sc) * dy), dbeta = sum(dy)
 * y may be x and dx may be dy (in place).  Errors: BNN_ERR_NULL,
 * BNN_ERR_SHAPE (n < 1 for training, c < 0), BNN_ERR_INVALID (unknown
 * kind, eps <= 0 or not finite, momentum outside [0, 1]). */
BNN_API bnn_status bnn_bn_forward_train(bnn_bn_kind kind, int64_t n, int64_t c,
                                        const float *x, const float *gamma,
                                        const float *beta, float eps, float momentum,
                                        float *running_mean, float *running_invstd,
                                        float *y, float *save_mean, float *save_scale);
BNN_API bnn_status bnn_bn_forward_eval(bnn_bn_kind kind, int64_t n, int64_t c,
                                       const float *x, const float *gamma,
                                       const float *beta, const float *running_mean,
                                       const float *running_invstd, float *y);
BNN_API bnn_status bnn_bn_backward(bnn_bn_kind kind, int64_t n, int64_t c,
                                   const float *x, const float *gamma,
                                   const float *save_mean, const float *save_scale,
                                   const float *dy, float *dx, float *dgamma,
                                   float *dbeta);

typedef enum bnn_opt_kind {
    BNN_OPT_ADAM         = 0,  /* Adam with bias correction (Kingma & Ba)   */
    BNN_OPT_ADAMAX       = 1,  /* AdaMax                                     */
    BNN_OPT_SHIFT_ADAMAX = 2   /* shift-based AdaMax (powers of two)         */
} bnn_opt_kind;

/* One optimizer step over n parameters; m and v are the caller's moment
 * arrays (zero before the first step), t the 1-based step number.
 *   ADAM:   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
 *           p -= lr_scale * lr * sqrt(1-b2^t)/(1-b1^t) * m / (sqrt(v) + eps)
 *   ADAMAX: m = b1 m + (1-b1) g;  v = max(b2 v, |g|);
 *           p -= lr_scale * lr/(1-b1^t) * m / (v + eps)
 *   SHIFT_ADAMAX: m = b1 m + (1-b1) g;  v = max(b2 v, |g|);
 *           v = AP2(v) + eps (the state itself is quantised);
 *           p -= lr_scale * AP2(lr/(1-b1^t)) * m / v
 * A zero denominator (possible with eps = 0 and zero gradients) gives a
 * zero update.  Then, if clip > 0, p = min(max(p, -clip), clip).  lr_scale is the
 * per-layer Glorot scale of binary weights (1 for other parameters).
 * Arithmetic is in double per element, stored as float. */
typedef struct bnn_opt_params {
    int32_t kind;       /* bnn_opt_kind */
    int32_t reserved;   /* must be 0 */
    int64_t t;          /* step number, >= 1 */
    double lr, beta1, beta2, eps;
    double lr_scale;    /* > 0 */
    double clip;        /* >= 0; 0 = no clipping */
} bnn_opt_params;

/** bnn_opt_step() : errors BNN_ERR_NULL, BNN_ERR_SHAPE (n < 0),
 *  BNN_ERR_INVALID (unknown kind, t < 1, betas outside [0, 1), eps or lr
 *  negative or not finite, lr_scale <= 0, clip < 0). */
BNN_API bnn_status bnn_opt_step(const bnn_opt_params *p, int64_t n, float *param,
                                const float *grad, float *m, float *v);
/** bnn_opt_step_pack() : bnn_opt_step() on the `rows` x `k` floats of param
 *  (grad, m, v alike, contiguous), which also writes the signs of the new
 *  values as packed rows, exactly as bnn_pack_f32(rows, k, param, k, signs,
 *  signs_stride_words) would after the step: the bits the next forward of a
 *  binary layer multiplies with, with no packing pass over the weights.
 *  Errors: those of bnn_opt_step(), BNN_ERR_NULL (signs), BNN_ERR_SHAPE
 *  (negative sizes), BNN_ERR_STRIDE (signs_stride_words < bnn_words(k)),
 *  BNN_ERR_OVERFLOW (the extents do not fit in memory).  Nothing is
 *  written on error. */
BNN_API bnn_status bnn_opt_step_pack(const bnn_opt_params *p, int64_t rows, int64_t k,
                                     float *param, const float *grad, float *m, float *v,
                                     uint64_t *signs, int64_t signs_stride_words);

/** bnn_ste_backward() : the straight-through estimator with cancellation:
 *  out[i] = grad[i] if |x[i]| <= 1 (inclusive) else 0.  out may be grad. */
BNN_API bnn_status bnn_ste_backward(int64_t n, const float *x, const float *grad,
                                    float *out);
/** bnn_ste_mask_pack() : pack the STE mask |x| <= 1 of rows of k floats as
 *  bits (bit 1 = pass), in the row layout of bnn_pack_f32 (pad bits 0), so
 *  that training keeps 1 bit per activation for backward. */
BNN_API bnn_status bnn_ste_mask_pack(int64_t rows, int64_t k, const float *x,
                                     int64_t x_stride, uint64_t *mask,
                                     int64_t mask_stride_words);
/** bnn_ste_backward_packed() : out = grad where the packed mask bit is 1,
 *  else 0 ([rows][k] floats with the given strides; out may be grad). */
BNN_API bnn_status bnn_ste_backward_packed(int64_t rows, int64_t k,
                                           const uint64_t *mask,
                                           int64_t mask_stride_words,
                                           const float *grad, int64_t grad_stride,
                                           float *out, int64_t out_stride);

/** bnn_gemm_f32_pm1() : C = A . S (accumulate: C += A . S) where S is a +-1
 *  matrix held as packed bits -- the backward products of a binary layer
 *  (input gradient g . W, weight gradient g^T . x) without a float copy of
 *  the +-1 operand.
 *    C[i][k] (+)= sum_{j < J} A(i, j) * S(j, k),   i < I, k < K,
 *  A(i, j) = a[i*lda_i + j*lda_j] (lda_j = 1: rows of a; lda_i = 1: a
 *  transposed), S(j, k) = -1 where bit k of row j is set (the bit
 *  contract), +1 otherwise; rows of s are lds >= bnn_words(K) words apart;
 *  c rows ldc >= K floats apart.  Each C[i][k] is one float32 accumulator
 *  that adds A(i, j) * S(j, k) (exact) for j = 0, 1, ..., J-1 in order,
 *  starting from 0 or, with accumulate, from C[i][k]: the same floats on
 *  every ISA and for any thread count (NaN payloads aside).  J = 0 gives
 *  C = 0 (or leaves C).  c must not overlap a or s.
 *  Errors (nothing written): BNN_ERR_NULL, BNN_ERR_SHAPE (negative sizes),
 *  BNN_ERR_STRIDE (a stride below 1 or below its row), BNN_ERR_OVERFLOW. */
BNN_API bnn_status bnn_gemm_f32_pm1(int64_t I, int64_t K, int64_t J, const float *a,
                                    int64_t lda_i, int64_t lda_j, const uint64_t *s,
                                    int64_t lds, float *c, int64_t ldc, int accumulate);

/** bnn_gemm_i8_pm1() : C = Q . S in exact integers, S a +-1 matrix held as
 *  bits: C[i][k] = sum_{j < J} q[i*ldq + j] * S(j, k) (int32; J < 2^24 so
 *  no sum can overflow), S as for bnn_gemm_f32_pm1.  The integer core of
 *  the 8-bit backward products (a float operand quantized per row to int8
 *  times the +-1 one); the same results on every ISA and thread count.
 *  Errors (nothing written): BNN_ERR_NULL, BNN_ERR_SHAPE (negative sizes,
 *  J >= 2^24), BNN_ERR_STRIDE (ldq < J, lds < bnn_words(K), ldc < K),
 *  BNN_ERR_OVERFLOW.  c must not overlap q or s. */
BNN_API bnn_status bnn_gemm_i8_pm1(int64_t I, int64_t K, int64_t J, const int8_t *q,
                                   int64_t ldq, const uint64_t *s, int64_t lds, int32_t *c,
                                   int64_t ldc);

/** bnn_quantize_i8() : stochastic rounding of a float matrix to int8 with
 *  one scale per row (by_column 0) or per column (by_column 1), the input
 *  of the 8-bit backward products:
 *    scale = max |a| over the row (column) / 127,
 *    q = clamp(floor(a / scale + u), -127, 127),  E[q * scale] = a,
 *  with u in [0, 1) the 16 bits (u16 / 65536) of element e = counter +
 *  i*k + j (i < rows, j < k, a[i*lda + j]) from a counter-based generator
 *  (the one of bnn_pack_stochastic_f32: splitmix64's finaliser of seed
 *  and e / 4, bits 16*(e % 4) ...): the same q for any thread count or
 *  ISA.  1/scale is computed once per row (column); a zero row (column)
 *  gives scale 0 and q 0; NaN entries give q 0.  by_column 0: q rows x k
 *  (ldq >= k), scale[rows]; by_column 1: q is written transposed, k rows
 *  of rows (ldq >= rows), scale[k] -- the layout of the weight gradient's
 *  left operand.  Advance counter by rows*k per call for fresh bits.
 *  Errors (nothing written): BNN_ERR_NULL, BNN_ERR_SHAPE, BNN_ERR_STRIDE,
 *  BNN_ERR_OVERFLOW. */
BNN_API bnn_status bnn_quantize_i8(int64_t rows, int64_t k, const float *a, int64_t lda,
                                   int by_column, uint64_t seed, uint64_t counter, int8_t *q,
                                   int64_t ldq, float *scale);

/** Backward products of a binary convolution (geometry p as for
 *  bnn_conv2d(), binary pad_value semantics) on the bits, without an
 *  im2col: m = n*oh*ow output positions, T = kh*kw taps.
 *
 *  bnn_conv2d_grad_weights_f32() : gw[o][t][c] (+)= sum over m ascending
 *    of grad[m][o] * X(m, t, c), X the +-1 input pixel tap t of output m
 *    reads (x packed NHWC as for bnn_conv2d(), the bits the forward
 *    used), 0 for a zero-padded tap and +1 for pad_value 1; one float32
 *    accumulator per element, starting from 0 or (accumulate) from gw:
 *    the same floats on every ISA and thread count.  gw: o rows of T*c
 *    floats ([o][kh][kw][c], the layout of the unpacked filters).
 *  bnn_conv2d_grad_weights_i8() : the same with grad quantized per column
 *    (bnn_quantize_i8 by_column: qt [o][m], scale[o]): the exact integer
 *    sum s = sum_m qt[o][m] * X(m, t, c), then gw (+)= scale[o] * (float)s.
 *    m < 2^24.  For both, m = 0 is an empty sum: gw = 0, or left as it is
 *    with accumulate.
 *  bnn_conv2d_grad_input_f32() : gx [n][h][w][c] (overwritten) = the
 *    input gradient: for each input element, tap by tap (t ascending), the
 *    output m whose tap t reads it adds grad[m][o] * W(o, t, c) for o
 *    ascending into one float32 accumulator starting from 0 (elements no
 *    tap reads get 0).  w: the packed filters [o][kh][kw][words(c)].
 *  bnn_conv2d_grad_input_i8() : the same with grad quantized per row (q
 *    [m][o], scale[m]): per tap, gx += scale[m] * (float)(sum_o q[m][o] *
 *    W(o, t, c)) with the integer sum exact.  o < 2^24.
 *
 *  workspace: at least bnn_conv2d_grad_workspace_size(p, 1) bytes, 8-byte
 *  aligned (the input gradients' 8-bit path runs on as many threads as
 *  it allows); its size depends on the geometry per image and the
 *  parameters, not on n.  Outputs must not overlap the inputs.
 *  Errors (nothing written): those of bnn_conv2d_output_shape(),
 *  BNN_ERR_NULL, BNN_ERR_INVALID (workspace too small or misaligned),
 *  BNN_ERR_SHAPE (the 2^24 limits). */
BNN_API bnn_status bnn_conv2d_grad_workspace_size(const bnn_conv2d_params *p, int threads,
                                                  size_t *bytes);
BNN_API bnn_status bnn_conv2d_grad_weights_f32(const bnn_conv2d_params *p, const uint64_t *x,
                                               const float *grad, float *gw, int accumulate,
                                               void *workspace, size_t workspace_bytes);
BNN_API bnn_status bnn_conv2d_grad_weights_i8(const bnn_conv2d_params *p, const uint64_t *x,
                                              const int8_t *qt, const float *scale, float *gw,
                                              int accumulate, void *workspace,
                                              size_t workspace_bytes);
BNN_API bnn_status bnn_conv2d_grad_input_f32(const bnn_conv2d_params *p, const uint64_t *w,
                                             const float *grad, float *gx, void *workspace,
                                             size_t workspace_bytes);
BNN_API bnn_status bnn_conv2d_grad_input_i8(const bnn_conv2d_params *p, const uint64_t *w,
                                            const int8_t *q, const float *scale, float *gx,
                                            void *workspace, size_t workspace_bytes);

/** bnn_transpose_bits() : the transpose of a packed bit matrix: bit r of
 *  dst row c = bit c of src row r, for r < rows, c < cols.  src: rows rows
 *  of bnn_words(cols) words (stride src_stride_words); dst: cols rows of
 *  bnn_words(rows) words (stride dst_stride_words), pad bits written 0,
 *  words past bnn_words(rows) untouched.  So the reduction axis of a +-1
 *  operand can be moved (the backward products reduce over the other one).
 *  src and dst must not overlap.  Errors (nothing written): BNN_ERR_NULL,
 *  BNN_ERR_SHAPE, BNN_ERR_STRIDE, BNN_ERR_OVERFLOW. */
BNN_API bnn_status bnn_transpose_bits(int64_t rows, int64_t cols, const uint64_t *src,
                                      int64_t src_stride_words, uint64_t *dst,
                                      int64_t dst_stride_words);

/** bnn_pack_stochastic_f32() : stochastic binarization into packed bits:
 *  element j of row i (index e = counter + i*k + j) is +1 with probability
 *  hardsigmoid(x) = clip((x + 1)/2, 0, 1), drawn from a counter-based
 *  generator: u = top 24 bits of mix64(seed, e) / 2^24, bit = (u >= p).
 *  The same (seed, counter) always gives the same bits, on every ISA and
 *  thread count; advance counter by rows*k between calls.  NaN packs as
 *  +1 (p is taken as 1).  Errors as bnn_pack_f32(). */
BNN_API bnn_status bnn_pack_stochastic_f32(int64_t rows, int64_t k, const float *src,
                                           int64_t src_stride, uint64_t seed,
                                           uint64_t counter, uint64_t *dst,
                                           int64_t dst_stride_words);

/* ------------------------------------------------------------------ */
/* Benchmark support                                                   */
/* ------------------------------------------------------------------ */

/** bnn_peak_probe() : run a register-only XOR + popcount + add loop of
 *  the given ISA for `iters` iterations (16 independent accumulators) and
 *  return the number of binary multiply-accumulates it performed in
 *  *bit_macs.  Time it yourself; *sink receives a value that depends on
 *  the work so that it cannot be optimised away.  AVX-512 uses VPOPCNTQ;
 *  AVX2 the nibble-lookup popcount of its GEMM kernel; ref scalar
 *  popcount.  BNN_ERR_UNSUPPORTED when the ISA cannot run here. */
BNN_API bnn_status bnn_peak_probe(bnn_isa isa, int64_t iters,
                                  uint64_t *bit_macs, uint64_t *sink);

/* ------------------------------------------------------------------ */
/* Model runtime: run a .bnn file (docs/model-format.md)                */
/* ------------------------------------------------------------------ */

/* A loaded network: the 8-bit first layer, binary layers with folded
 * thresholds, max-pooling and flattening of sign bits, and a last layer
 * with float scores -- what Sequential.export() writes.  Loading checks
 * the whole file (size, checksum, versions, every record and that the
 * layer shapes connect) before anything is used; a file that fails any
 * check gives BNN_ERR_FORMAT (BNN_ERR_UNSUPPORTED for a newer format or
 * layout version) and nothing is read outside the given bytes.
 * bnn_model_check() runs the same pass and says where and why a file is
 * refused.
 *
 * Memory: bnn_model_open_*() allocate the model with malloc.  For a
 * system without malloc (or a file system), bnn_model_arena_size() +
 * bnn_model_init() place it in caller memory; bnn_model_run() never
 * allocates: its scratch memory is the caller's workspace.  With more
 * than one thread (bnn_set_num_threads()) the kernels start POSIX
 * threads per call; with one thread nothing but the caller's buffers is
 * touched.  A loaded model is read-only: several threads may run it at
 * once, each with its own workspace. */
typedef struct bnn_model bnn_model;

typedef struct bnn_model_info {
    int64_t in_h, in_w, in_c;     /* input image: uint8 [n][in_h][in_w][in_c] */
    int64_t classes;              /* scores per image                         */
    int64_t layers;               /* records in the file                      */
    int64_t binary_weights;       /* weights stored as one bit each           */
    int64_t file_bytes;           /* size of the model file                   */
    int32_t format_version, layout_version;
    int32_t zero_copy;            /* 1: weights are read in place from the
                                     caller's bytes (which must outlive it)  */
    int32_t reserved[7];
} bnn_model_info;

/* The .bnn format's constants (docs/model-format.md), for writers. */
#define BNN_MODEL_FORMAT_VERSION      1     /* header bytes 8..11             */
#define BNN_MODEL_HEADER_BYTES        64    /* the file header                */
#define BNN_MODEL_RECORD_HEADER_BYTES 64    /* type, flags, size, params      */
#define BNN_MODEL_ALIGN               64    /* records and arrays start at
                                               multiples of this             */
#define BNN_MODEL_MAX_RECORDS         4096
#define BNN_MODEL_MAX_PARAMS          12    /* u32 parameters per record      */

/* Record types (append-only; values are the file's). */
enum bnn_model_record_type {
    BNN_RECORD_DENSE   = 1,
    BNN_RECORD_CONV    = 2,
    BNN_RECORD_MAXPOOL = 3,
    BNN_RECORD_FLATTEN = 4
};
/* Record flag bits. */
enum bnn_model_record_flag {
    BNN_RECORD_INPUT_U8 = 1,  /* reads the uint8 image (first record only)  */
    BNN_RECORD_SCORES   = 2,  /* float scale/offset, no threshold (last)    */
    BNN_RECORD_PAD_ONE  = 4   /* conv pads with +1 instead of 0             */
};

/* Where and why a model file is bad (bnn_model_check()).  Every string is
 * NUL-terminated. */
typedef struct bnn_model_report {
    bnn_status status;   /* BNN_OK, BNN_ERR_FORMAT, BNN_ERR_UNSUPPORTED, ... */
    int64_t offset;      /* byte offset in the file of the offending field
                            (or byte), -1 if none applies                   */
    int64_t record;      /* record index, -1 for the header / whole file     */
    char field[32];      /* the field: "magic", "format_version", "size",
                            "checksum", "records", "input_h", "k", "flags",
                            "record_size", "weights pad bits", "flip",
                            "padding after thresh", ...; "" if none         */
    int64_t expected;    /* the expected value or bound, where one applies
                            (else 0)                                         */
    int64_t found;       /* the value found (else 0)                         */
    char message[256];   /* one sentence naming all of it, e.g. "record 2
                            (conv) at byte 1360: c = 64, but its input has
                            65 channels"                                     */
} bnn_model_report;

/** bnn_model_check() : validate a model file without loading it.  This is
 *  the same strict pass the loaders (bnn_model_open_memory/open_file,
 *  bnn_model_arena_size, bnn_model_init) run, so check and open accept
 *  and refuse exactly the same bytes with the same status: BNN_OK,
 *  BNN_ERR_FORMAT, BNN_ERR_UNSUPPORTED (a newer format or layout version,
 *  or a big-endian host), BNN_ERR_NULL (data NULL).  `report` may be NULL;
 *  otherwise it is always filled (offset and record -1 for a valid file).
 *  Allocates nothing; reentrant; reads nothing outside the given bytes. */
BNN_API bnn_status bnn_model_check(const void *data, size_t bytes, bnn_model_report *report);

/** bnn_model_checksum() : FNV-1a 64 of a model file with its checksum
 *  field (bytes 24..31) read as zero: the value a writer stores there.
 *  Returns 0 for data == NULL. */
BNN_API uint64_t bnn_model_checksum(const void *data, size_t bytes);

/* The size of a record and the byte offsets (from the record start) of its
 * arrays, for a writer. */
typedef struct bnn_model_record_layout {
    int64_t record_bytes;     /* the record's size field                    */
    int32_t n_arrays;         /* 3 for dense and conv, 0 otherwise          */
    int32_t reserved;         /* 0                                          */
    int64_t array_offset[3];  /* from the record start, multiples of 64     */
    int64_t array_bytes[3];   /* bytes of data, before padding to
                                 BNN_MODEL_ALIGN                            */
} bnn_model_record_layout;

/** bnn_model_record_layout_of() : the layout of a record of `type` with
 *  `flags` and params[BNN_MODEL_MAX_PARAMS] (as in the file; unused ones
 *  are ignored).  Arrays: dense: weights, thresh, flip, or with
 *  BNN_RECORD_SCORES weights, scale, offset; conv: weights, thresh, flip;
 *  max-pool and flatten: none.  The loader accepts a record only with
 *  exactly this size.  Errors (*out unchanged): BNN_ERR_NULL,
 *  BNN_ERR_INVALID (unknown type or flag bits), BNN_ERR_SHAPE (a zero
 *  dense k or m, conv c, o, kh or kw), BNN_ERR_OVERFLOW. */
BNN_API bnn_status bnn_model_record_layout_of(int32_t type, int32_t flags,
                                              const uint32_t *params,
                                              bnn_model_record_layout *out);

/** bnn_model_write_header() : the BNN_MODEL_HEADER_BYTES bytes of a file
 *  header at `out`: magic, format and layout versions, `file_bytes`,
 *  checksum 0 (bnn_model_seal() sets it), `records`, the uint8 input
 *  in_h x in_w x in_c and `classes`, reserved bytes zero.  Values are not
 *  judged here: bnn_model_check() judges the finished file.
 *  Errors: BNN_ERR_NULL. */
BNN_API bnn_status bnn_model_write_header(void *out, uint64_t file_bytes, uint32_t records,
                                          uint32_t in_h, uint32_t in_w, uint32_t in_c,
                                          uint32_t classes);
/** bnn_model_write_record_header() : the BNN_MODEL_RECORD_HEADER_BYTES
 *  bytes of a record header at `out`: type, flags, the record size of
 *  bnn_model_record_layout_of() and params[BNN_MODEL_MAX_PARAMS].  Errors
 *  as bnn_model_record_layout_of() (nothing written). */
BNN_API bnn_status bnn_model_write_record_header(void *out, int32_t type, int32_t flags,
                                                 const uint32_t *params);
/** bnn_model_seal() : store bnn_model_checksum() of a complete file in its
 *  header.  Errors: BNN_ERR_NULL, BNN_ERR_SHAPE (shorter than a header). */
BNN_API bnn_status bnn_model_seal(void *data, size_t bytes);

/** bnn_model_open_memory() : load a model from `bytes` bytes at `data`.
 *  The model keeps pointers into `data` when it is 8-byte aligned
 *  (zero-copy; `data` must then outlive the model), else copies it.
 *  Both open functions allocate: a bare-metal build (BNN_BAREMETAL) has
 *  no heap and returns BNN_ERR_UNSUPPORTED; use the arena API below. */
BNN_API bnn_status bnn_model_open_memory(const void *data, size_t bytes, bnn_model **model);
/** bnn_model_open_file() : read a .bnn file and load it (BNN_ERR_IO when
 *  the file cannot be read). */
BNN_API bnn_status bnn_model_open_file(const char *path, bnn_model **model);
/** bnn_model_arena_size() : bytes of caller memory bnn_model_init() needs
 *  for this file (the file is fully checked here as well). */
BNN_API bnn_status bnn_model_arena_size(const void *data, size_t bytes, size_t *arena_bytes);
/** bnn_model_init() : load into `arena` (at least bnn_model_arena_size()
 *  bytes, any alignment) without calling malloc.  Zero-copy as
 *  bnn_model_open_memory(); *model points into the arena, and is released
 *  by dropping the arena (bnn_model_free() on it does nothing). */
BNN_API bnn_status bnn_model_init(void *arena, size_t arena_bytes, const void *data,
                                  size_t bytes, bnn_model **model);
/** bnn_model_free() : release a model from bnn_model_open_*(); NULL and
 *  arena models are accepted and ignored. */
BNN_API void bnn_model_free(bnn_model *model);
/** bnn_model_get_info() : what the model takes and gives. */
BNN_API bnn_status bnn_model_get_info(const bnn_model *model, bnn_model_info *info);
/* Per-layer description of a loaded model (for `pybnn info` and C tools). */
typedef struct bnn_model_layer_info {
    int32_t type, flags;                  /* bnn_model_record_type, flag bits */
    uint32_t params[BNN_MODEL_MAX_PARAMS]; /* as in the file                  */
    int64_t in_h, in_w, in_c;             /* shape of one input image/vector
                                             (flat: 1, 1, features)          */
    int64_t out_h, out_w, out_c;          /* shape of one output             */
    int64_t file_offset, record_bytes;    /* where the record is in the file */
} bnn_model_layer_info;

/** bnn_model_get_layer() : the record `index` (0-based) of a loaded model.
 *  Errors: BNN_ERR_NULL, BNN_ERR_INVALID (not a model), BNN_ERR_SHAPE
 *  (index < 0 or >= the number of records). */
BNN_API bnn_status bnn_model_get_layer(const bnn_model *model, int64_t index,
                                       bnn_model_layer_info *out);
/** bnn_model_workspace_size() : scratch bytes bnn_model_run() needs for
 *  batches of up to `batch` images on `threads` threads (0: the current
 *  bnn_get_num_threads()). */
BNN_API bnn_status bnn_model_workspace_size(const bnn_model *model, int64_t batch,
                                            int threads, size_t *bytes);
/** bnn_model_run() : classify n images x (uint8 [n][in_h][in_w][in_c],
 *  contiguous).  scores: float [n][classes] or NULL; classes: int32 [n]
 *  (index of the first maximal score) or NULL.  workspace: at least
 *  bnn_model_workspace_size(model, n, 1) bytes, any alignment; a larger
 *  one (sized for more threads) lets the kernels use them.  Errors:
 *  BNN_ERR_NULL, BNN_ERR_SHAPE (n < 0), BNN_ERR_INVALID (workspace too
 *  small); nothing is written on error. */
BNN_API bnn_status bnn_model_run(const bnn_model *model, int64_t n, const uint8_t *x,
                                 float *scores, int32_t *classes, void *workspace,
                                 size_t workspace_bytes);

#ifdef __cplusplus
}
#endif

#endif /* BNN_H */
