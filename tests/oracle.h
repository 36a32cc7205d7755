/*
 * oracle.h -- the reference implementations the libbnn C tests compare
 * against (header only, C99; include it instead of test_util.h).
 *
 * Every oracle here is written as plain loops on plain values and calls
 * nothing from libbnn, so that it stays obviously correct and independent
 * of the kernels it checks:
 *
 *  - packing: bit = x < 0 (an ordered compare: +0, -0, NaN give 0), LSB
 *    first, pad bits 0; the +-1 signs of float data;
 *  - the +-1 dot product and GEMMs: s[i][j] = sum_t a[i][t] * w[j][t] on
 *    +-1 rows, and the 8-bit first layer s = sum (x - 128) * w;
 *  - a direct NHWC convolution (strides, dilations, asymmetric padding,
 *    padded taps take a given value) in integers;
 *  - max pooling of packed bits (AND / OR of the window per flip) and of
 *    int32 values (padding ignored);
 *  - the epilogues: FLOAT = fmaf((float)s, scale, offset), BITS = flip ?
 *    s > t : s < t, and the double "affine then sign" predicate that
 *    bnn_fold_threshold must reproduce;
 *  - checkers built on them: bt_check_epi (one output buffer against s for
 *    any epilogue, pad bits and canaried stride gaps included) and
 *    bt_check_fold_bits (BITS from folded thresholds against the double
 *    predicate), with the canaried output buffers and the epilogue
 *    parameters the GEMM / convolution tests share;
 *  - the training products: the float x (+-1) and int8 x (+-1) GEMMs,
 *    the bit transpose, stochastic rounding to int8 (bt_quantize_i8, its
 *    counter-based generator bt_mix64), and the backward products of the
 *    binary convolution (bt_conv2d_grad_weights_f32/_i8,
 *    bt_conv2d_grad_input_f32/_i8): ordered float32 sums or exact integer
 *    sums then one float rescale, as include/bnn.h defines them.  The
 *    float ones rely on the tests being built with -ffp-contract=off
 *    (tests/CMakeLists.txt), so that a*b + c is never fused.
 *
 * test_util.h keeps the seed / PRNG, CHECK macros, memory and ISA helpers.
 */
#ifndef BNN_TEST_ORACLE_H
#define BNN_TEST_ORACLE_H

#include "test_util.h"

#include <limits.h>

/* ------------------------------------------------------------------ */
/* Packing and signs                                                    */
/* ------------------------------------------------------------------ */

/* The bit of one float: an ordered compare, so NaN, +0, -0 give 0. */
static inline int bt_fbit(float x)
{
    return x < 0.0f;
}

/* Pack one row of k floats into bt_words(k) words, pad bits 0. */
static inline void bt_pack_row_f32(const float *src, int64_t k, uint64_t *dst)
{
    int64_t j, kw = bt_words(k);
    for (j = 0; j < kw; j++) dst[j] = 0;
    for (j = 0; j < k; j++)
        if (bt_fbit(src[j])) dst[j / 64] |= (uint64_t)1 << (j % 64);
}

static inline void bt_pack_row_i8(const int8_t *src, int64_t k, uint64_t *dst)
{
    int64_t j, kw = bt_words(k);
    for (j = 0; j < kw; j++) dst[j] = 0;
    for (j = 0; j < k; j++)
        if (src[j] < 0) dst[j / 64] |= (uint64_t)1 << (j % 64);
}

/* Pack `rows` rows with strides (elements / words). */
static inline void bt_pack_f32(int64_t rows, int64_t k, const float *src,
                               int64_t src_stride, uint64_t *dst,
                               int64_t dst_stride)
{
    int64_t i;
    for (i = 0; i < rows; i++)
        bt_pack_row_f32(src + i * src_stride, k, dst + i * dst_stride);
}

/* sign(x) as +-1 with sign(0) = sign(NaN) = +1. */
static inline int bt_sign_i(float x)
{
    return bt_fbit(x) ? -1 : 1;
}

static inline float bt_sign_f(float x)
{
    return bt_fbit(x) ? -1.0f : 1.0f;
}

/* Integer +-1 signs of a float row (for fast repeated dots). */
static inline void bt_signs(const float *src, int64_t k, int8_t *dst)
{
    int64_t j;
    for (j = 0; j < k; j++) dst[j] = (int8_t)bt_sign_i(src[j]);
}

/* ------------------------------------------------------------------ */
/* Dot products and GEMMs                                               */
/* ------------------------------------------------------------------ */

/* Integer +-1 dot product of two float rows: sum sign(a_j) * sign(b_j). */
static inline int64_t bt_dot_f32(const float *a, const float *b, int64_t k)
{
    int64_t j, s = 0;
    for (j = 0; j < k; j++) s += bt_sign_i(a[j]) * bt_sign_i(b[j]);
    return s;
}

/* The same on precomputed +-1 int8 signs. */
static inline int64_t bt_dot_s8(const int8_t *a, const int8_t *b, int64_t k)
{
    int64_t j;
    int32_t s = 0;
    for (j = 0; j < k; j++) s += a[j] * b[j];
    return s;
}

/* s[n][m] = a [n][k] . w [m][k] on +-1 int8 rows (contiguous). */
static inline void bt_gemm_s8(int64_t n, int64_t m, int64_t k, const int8_t *a,
                              const int8_t *w, int32_t *s)
{
    int64_t i, j;
    for (i = 0; i < n; i++)
        for (j = 0; j < m; j++)
            s[i * m + j] = (int32_t)bt_dot_s8(a + i * k, w + j * k, k);
}

/* The 8-bit first layer: s[n][m] = sum_t (x[i][t] - 128) * w[j][t] for
 * bytes x (row stride ldx) and +-1 int8 rows w [m][k], in int64. */
static inline void bt_gemm_u8(int64_t n, int64_t m, int64_t k, const uint8_t *x,
                              int64_t ldx, const int8_t *w, int32_t *s)
{
    int64_t i, j, t;
    for (i = 0; i < n; i++)
        for (j = 0; j < m; j++) {
            int64_t acc = 0;
            for (t = 0; t < k; t++)
                acc += ((int64_t)x[i * ldx + t] - 128) * w[j * k + t];
            s[i * m + j] = (int32_t)acc;
        }
}

/* ------------------------------------------------------------------ */
/* Convolution                                                          */
/* ------------------------------------------------------------------ */

/* Output size along one axis by the formula of bnn.h (pooling: dil 1). */
static inline int64_t bt_out_dim(int64_t in, int pa, int pb, int64_t k, int dil,
                                 int st)
{
    return (in + pa + pb - (int64_t)dil * (k - 1) - 1) / st + 1;
}

/* Direct convolution in integers: x [n][h][w][c] values, w [o][kh][kw][c]
 * +-1, a tap outside the input takes the value `pad`; every input value
 * (padded ones too) has `centre` subtracted:
 *     s[b][oy][ox][f] = sum_{ky,kx,ch} (v - centre) * w[f][ky][kx][ch].
 * The binary convolution is centre 0 with x, pad in {-1, +1} / {0, 1};
 * the 8-bit one is bytes with centre 128 and pad = pad_byte.
 * s is [n][oh][ow][o] with oh, ow from bt_out_dim. */
static inline void bt_conv2d(const bnn_conv2d_params *p, const int32_t *x,
                             int32_t pad, int32_t centre, const int8_t *w,
                             int32_t *s)
{
    int64_t oh = bt_out_dim(p->h, p->pad_top, p->pad_bottom, p->kh, p->dilation_h,
                            p->stride_h);
    int64_t ow = bt_out_dim(p->w, p->pad_left, p->pad_right, p->kw, p->dilation_w,
                            p->stride_w);
    int64_t c = p->c, b, oy, ox, f, ky, kx, ch;
    for (b = 0; b < p->n; b++)
        for (oy = 0; oy < oh; oy++)
            for (ox = 0; ox < ow; ox++)
                for (f = 0; f < p->o; f++) {
                    int64_t acc = 0;
                    for (ky = 0; ky < p->kh; ky++)
                        for (kx = 0; kx < p->kw; kx++) {
                            int64_t iy = oy * p->stride_h - p->pad_top + ky * p->dilation_h;
                            int64_t ix = ox * p->stride_w - p->pad_left + kx * p->dilation_w;
                            int in = iy >= 0 && iy < p->h && ix >= 0 && ix < p->w;
                            const int8_t *wrow = w + ((f * p->kh + ky) * p->kw + kx) * c;
                            for (ch = 0; ch < c; ch++) {
                                int64_t v = in ? x[((b * p->h + iy) * p->w + ix) * c + ch]
                                               : pad;
                                acc += (v - centre) * wrow[ch];
                            }
                        }
                    s[((b * oh + oy) * ow + ox) * p->o + f] = (int32_t)acc;
                }
}

/* ------------------------------------------------------------------ */
/* Pooling                                                              */
/* ------------------------------------------------------------------ */

/* Bits: x [n][h][w][words(c)] -> [n][oh][ow][words(c)]: per channel the
 * AND of the window's bits where flip is 0 (max of +-1), the OR where flip
 * is 1 (min); padded positions ignored; pad bits 0.  A window that sees no
 * input (impossible for valid parameters) writes `misuse` over its word. */
static inline void bt_maxpool_bits(const bnn_pool2d_params *p, const uint64_t *x,
                                   const uint8_t *flip, uint64_t misuse,
                                   uint64_t *out)
{
    int64_t oh = bt_out_dim(p->h, p->pad_top, p->pad_bottom, p->kh, 1, p->stride_h);
    int64_t ow = bt_out_dim(p->w, p->pad_left, p->pad_right, p->kw, 1, p->stride_w);
    int64_t cw = bt_words(p->c), b, oy, ox, ch, ky, kx;
    for (b = 0; b < p->n; b++)
        for (oy = 0; oy < oh; oy++)
            for (ox = 0; ox < ow; ox++) {
                uint64_t *o = out + ((b * oh + oy) * ow + ox) * cw;
                for (ch = 0; ch < cw; ch++) o[ch] = 0;
                for (ch = 0; ch < p->c; ch++) {
                    int f = flip ? flip[ch] != 0 : 0;
                    int acc = f ? 0 : 1, seen = 0;
                    for (ky = 0; ky < p->kh; ky++)
                        for (kx = 0; kx < p->kw; kx++) {
                            int64_t iy = oy * p->stride_h - p->pad_top + ky;
                            int64_t ix = ox * p->stride_w - p->pad_left + kx;
                            int bit;
                            if (iy < 0 || iy >= p->h || ix < 0 || ix >= p->w) continue;
                            seen = 1;
                            bit = bt_getbit(x + ((b * p->h + iy) * p->w + ix) * cw, ch);
                            acc = f ? (acc | bit) : (acc & bit);
                        }
                    if (!seen) acc = -1;
                    if (acc == 1) o[ch / 64] |= (uint64_t)1 << (ch % 64);
                    if (acc < 0) o[ch / 64] = misuse;
                }
            }
}

/* int32: x [n][h][w][c] -> [n][oh][ow][c], the plain max (in double) with
 * padding ignored (-inf). */
static inline void bt_maxpool_i32(const bnn_pool2d_params *p, const int32_t *x,
                                  int32_t *out)
{
    int64_t oh = bt_out_dim(p->h, p->pad_top, p->pad_bottom, p->kh, 1, p->stride_h);
    int64_t ow = bt_out_dim(p->w, p->pad_left, p->pad_right, p->kw, 1, p->stride_w);
    int64_t b, oy, ox, ch, ky, kx;
    for (b = 0; b < p->n; b++)
        for (oy = 0; oy < oh; oy++)
            for (ox = 0; ox < ow; ox++)
                for (ch = 0; ch < p->c; ch++) {
                    double m = -INFINITY;
                    for (ky = 0; ky < p->kh; ky++)
                        for (kx = 0; kx < p->kw; kx++) {
                            int64_t iy = oy * p->stride_h - p->pad_top + ky;
                            int64_t ix = ox * p->stride_w - p->pad_left + kx;
                            double v;
                            if (iy < 0 || iy >= p->h || ix < 0 || ix >= p->w) continue;
                            v = (double)x[((b * p->h + iy) * p->w + ix) * p->c + ch];
                            if (v > m) m = v;
                        }
                    out[((b * oh + oy) * ow + ox) * p->c + ch] = (int32_t)m;
                }
}

/* ------------------------------------------------------------------ */
/* Epilogues                                                            */
/* ------------------------------------------------------------------ */

/* FLOAT of output channel j: fmaf((float)s, scale, offset), a NULL scale
 * meaning 1 and a NULL offset 0. */
static inline float bt_epi_float(int32_t s, const bnn_epilogue *e, int64_t j)
{
    return fmaf((float)s, e->scale ? e->scale[j] : 1.0f,
                e->offset ? e->offset[j] : 0.0f);
}

/* BITS of output channel j: flip ? s > t : s < t (a NULL flip is 0). */
static inline int bt_epi_bit(int32_t s, const bnn_epilogue *e, int64_t j)
{
    int f = e->flip && e->flip[j];
    return f ? s > e->thresh[j] : s < e->thresh[j];
}

/* The double-precision "affine map then sign" predicate that
 * bnn_fold_threshold must reproduce: product rounded, then sum. */
static inline int bt_affine_neg(double scale, double offset, int64_t s)
{
    volatile double p = scale * (double)s;
    double q = p;
    return q + offset < 0.0;
}

/* ------------------------------------------------------------------ */
/* Output buffers and epilogue parameters shared by the product tests   */
/* ------------------------------------------------------------------ */

#define BT_CANARY_I32 INT32_C(0x5a5a5a5a)
#define BT_CANARY_F32 0x7fe5a5a5u /* quiet NaN */
#define BT_CANARY_W UINT64_C(0xa5a5a5a5a5a5a5a5)

/* Output buffer for rows x m outputs of `kind` at row stride ldc (words
 * for BITS), of exact extent, filled with the kind's canary. */
static inline void *bt_out_alloc(int64_t rows, int64_t m, int kind, int64_t ldc,
                                 size_t *bytes)
{
    int64_t row = kind == BNN_EPI_BITS ? bt_words(m) : m;
    size_t n = bt_extent(rows, ldc, row), i;
    void *c;
    if (kind == BNN_EPI_BITS) {
        c = bt_alloc(n * 8);
        bt_fill_u64((uint64_t *)c, n, BT_CANARY_W);
        *bytes = n * 8;
    } else if (kind == BNN_EPI_FLOAT) {
        c = bt_alloc(n * 4);
        bt_fill_fbits((float *)c, n, BT_CANARY_F32);
        *bytes = n * 4;
    } else {
        int32_t *ci = (int32_t *)bt_alloc(n * 4);
        for (i = 0; i < n; i++) ci[i] = BT_CANARY_I32;
        c = ci;
        *bytes = n * 4;
    }
    return c;
}

typedef struct bt_epi_data {
    float *scale, *offset;
    int32_t *thresh;
    uint8_t *flip;
} bt_epi_data;

static inline void bt_epi_alloc(bt_epi_data *e, int64_t m)
{
    size_t mm = (size_t)(m > 0 ? m : 1);
    e->scale = (float *)bt_alloc(mm * sizeof(float));
    e->offset = (float *)bt_alloc(mm * sizeof(float));
    e->thresh = (int32_t *)bt_alloc(mm * sizeof(int32_t));
    e->flip = (uint8_t *)bt_alloc(mm);
}

static inline void bt_epi_free(bt_epi_data *e)
{
    free(e->scale);
    free(e->offset);
    free(e->thresh);
    free(e->flip);
}

/* A flip byte: mostly 0 / 1, sometimes another non-zero value. */
static inline uint8_t bt_rand_flip(bt_rng *r)
{
    static const uint8_t flips[] = {0, 0, 0, 1, 1, 2, 255};
    return flips[bt_below(r, sizeof flips)];
}

/* Parameters for dots in [-k, k] (the binary GEMM and convolution): scales
 * with zeros, tiny, huge (may overflow to inf) values; offsets on and off
 * the integers; thresholds at the int32 extremes, just past +-k and
 * random. */
static inline void bt_epi_make_pm1(bt_epi_data *e, int64_t m, int64_t k, uint64_t tag)
{
    bt_rng r = bt_stream(tag);
    int64_t j;
    bt_epi_alloc(e, m);
    for (j = 0; j < m; j++) {
        uint64_t u = bt_below(&r, 20);
        float sc, of;
        switch (bt_below(&r, 12)) {
        case 0: sc = 0.0f; break;
        case 1: sc = -0.0f; break;
        case 2: sc = 1e-30f * (float)(bt_unit(&r) - 0.5); break;
        case 3: sc = 1e35f * (float)(bt_unit(&r) - 0.5); break;
        case 4: sc = 0.1f; break;
        case 5: sc = 1.0f / 3.0f; break;
        default: sc = (float)(bt_unit(&r) * 4.0 - 2.0); break;
        }
        switch (bt_below(&r, 10)) {
        case 0: of = 0.0f; break;
        case 1: of = -0.0f; break;
        case 2: of = -0.3f; break;
        case 3: of = (float)bt_range(&r, -k, k); break;
        case 4: of = 1e20f * (float)(bt_unit(&r) - 0.5); break;
        default: of = (float)((bt_unit(&r) - 0.5) * 2.0 * (double)(k + 1)); break;
        }
        e->scale[j] = sc;
        e->offset[j] = of;
        e->thresh[j] = u == 0   ? INT32_MIN
                     : u == 1   ? INT32_MAX
                     : u == 2   ? (int32_t)k + 1
                     : u == 3   ? -(int32_t)k - 1
                                : (int32_t)bt_range(&r, -k - 2, k + 2);
        e->flip[j] = bt_rand_flip(&r);
    }
}

/* The epilogue struct for a kind and a parameter variant:
 * FLOAT: variant bit 0 drops scale, bit 1 drops offset;
 * BITS:  variant bit 0 drops flip. */
static inline bnn_epilogue bt_epi_for(int kind, int variant, const bt_epi_data *d)
{
    bnn_epilogue e;
    memset(&e, 0, sizeof e);
    e.kind = kind;
    if (kind == BNN_EPI_FLOAT) {
        e.scale = (variant & 1) ? NULL : d->scale;
        e.offset = (variant & 2) ? NULL : d->offset;
    } else if (kind == BNN_EPI_BITS) {
        e.thresh = d->thresh;
        e.flip = (variant & 1) ? NULL : d->flip;
    }
    return e;
}

/* Batch-norm-like (scale, offset) per channel for folded thresholds:
 * gamma in [0.05, 2.05) (mode 0), negated (mode 1) or mixed with some
 * zeros (mode 2); var in [0, var_span); mean in mean_span * [-0.5, 0.5);
 * half the boundaries put exactly on an s [rows][m] that occurs. */
static inline void bt_fold_params(bt_rng *r, int64_t m, double var_span,
                                  double mean_span, const int32_t *s, int64_t rows,
                                  int mode, double *sc, double *of)
{
    int64_t j;
    for (j = 0; j < m; j++) {
        double gamma = 0.05 + bt_unit(r) * 2.0, var = bt_unit(r) * var_span;
        double mean = (bt_unit(r) - 0.5) * mean_span;
        double beta = bt_unit(r) - 0.5;
        if (mode == 1 || (mode == 2 && bt_below(r, 2))) gamma = -gamma;
        if (mode == 2 && bt_below(r, 10) == 0) gamma = 0.0;
        sc[j] = gamma / sqrt(var + 1e-5);
        of[j] = beta - mean * sc[j];
        if (rows > 0 && bt_below(r, 2))
            of[j] = -(sc[j] * (double)s[(int64_t)bt_below(r, (uint64_t)rows) * m + j]);
    }
}

/* ------------------------------------------------------------------ */
/* Checkers                                                             */
/* ------------------------------------------------------------------ */

/* Writes a readable position of output (row i, channel j) into buf; NULL
 * means "[i][j]". */
typedef void (*bt_pos_fn)(char *buf, size_t len, int64_t i, int64_t j,
                          const void *ctx);

static inline const char *bt_pos(char *buf, size_t len, bt_pos_fn pos,
                                 const void *ctx, int64_t i, int64_t j)
{
    if (pos) pos(buf, len, i, j, ctx);
    else snprintf(buf, len, "[%" PRId64 "][%" PRId64 "]", i, j);
    return buf;
}

/* Check rows x m outputs c (row stride ldc: elements, words for BITS)
 * against s [rows][m] for the epilogue e: INT32 exact, FLOAT bit-exact
 * bt_epi_float, BITS bt_epi_bit with pad bits 0; the stride gaps of every
 * row but the last keep their canary. */
static inline int bt_check_epi(int64_t rows, int64_t m, const int32_t *s,
                               const bnn_epilogue *e, const void *c, int64_t ldc,
                               bt_pos_fn pos, const void *pctx)
{
    int64_t i, j;
    char at[96];
    for (i = 0; i < rows; i++) {
        int last = i + 1 == rows;
        const int32_t *srow = s + i * m;
        if (e->kind == BNN_EPI_INT32) {
            const int32_t *row = (const int32_t *)c + i * ldc;
            for (j = 0; j < m; j++)
                CHECK_MSG(row[j] == srow[j], "%s = %d, oracle %d",
                          bt_pos(at, sizeof at, pos, pctx, i, j), (int)row[j],
                          (int)srow[j]);
            for (j = m; !last && j < ldc; j++)
                CHECK_MSG(row[j] == BT_CANARY_I32,
                          "ldc gap [%" PRId64 "][%" PRId64 "] written", i, j);
        } else if (e->kind == BNN_EPI_FLOAT) {
            const float *row = (const float *)c + i * ldc;
            for (j = 0; j < m; j++) {
                float want = bt_epi_float(srow[j], e, j);
                CHECK_MSG(bt_f2u(row[j]) == bt_f2u(want),
                          "%s = %.9g (0x%08x), want fmaf(%d, %.9g, %.9g) = %.9g "
                          "(0x%08x)", bt_pos(at, sizeof at, pos, pctx, i, j),
                          (double)row[j], (unsigned)bt_f2u(row[j]), (int)srow[j],
                          e->scale ? (double)e->scale[j] : 1.0,
                          e->offset ? (double)e->offset[j] : 0.0, (double)want,
                          (unsigned)bt_f2u(want));
            }
            for (j = m; !last && j < ldc; j++)
                CHECK_MSG(bt_f2u(row[j]) == BT_CANARY_F32,
                          "ldc gap [%" PRId64 "][%" PRId64 "] written", i, j);
        } else {
            const uint64_t *row = (const uint64_t *)c + i * ldc;
            int64_t mw = bt_words(m);
            for (j = 0; j < m; j++) {
                int want = bt_epi_bit(srow[j], e, j);
                CHECK_MSG(bt_getbit(row, j) == want,
                          "bit %s = %d, want %d (s %d, t %d, flip %d)",
                          bt_pos(at, sizeof at, pos, pctx, i, j), bt_getbit(row, j),
                          want, (int)srow[j], (int)e->thresh[j],
                          e->flip ? e->flip[j] : 0);
            }
            for (j = m; j < 64 * mw; j++)
                CHECK_MSG(bt_getbit(row, j) == 0,
                          "pad bit %" PRId64 " of row %" PRId64 " is set", j, i);
            for (j = mw; !last && j < ldc; j++)
                CHECK_MSG(row[j] == BT_CANARY_W,
                          "ldc gap word %" PRId64 " of row %" PRId64 " written", j, i);
        }
    }
    return 0;
}

/* BITS from thresholds folded from (sc, of) by bnn_fold_threshold: bit
 * (i, j) of c (row stride ldc words) must be bt_affine_neg(sc[j], of[j],
 * s[i][j]).  th / fl are the folded values, printed on a failure. */
static inline int bt_check_fold_bits(int64_t rows, int64_t m, const int32_t *s,
                                     const double *sc, const double *of,
                                     const int32_t *th, const uint8_t *fl,
                                     const uint64_t *c, int64_t ldc, bt_pos_fn pos,
                                     const void *pctx)
{
    int64_t i, j;
    char at[96];
    for (i = 0; i < rows; i++)
        for (j = 0; j < m; j++) {
            int64_t sv = s[i * m + j];
            int want = bt_affine_neg(sc[j], of[j], sv);
            CHECK_MSG(bt_getbit(c + i * ldc, j) == want,
                      "%s: s %d scale %.17g offset %.17g: bit %d, double predicate "
                      "%d (folded t=%d flip=%d)", bt_pos(at, sizeof at, pos, pctx, i, j),
                      (int)sv, sc[j], of[j], bt_getbit(c + i * ldc, j), want,
                      (int)th[j], fl[j]);
        }
    return 0;
}

/* The float x (+-1) product of bnn_gemm_f32_pm1: C[i][k] (+)= sum_j A(i, j) *
 * S(j, k), one float accumulator per element adding the exact products in j
 * order from 0 (or from C). */
static inline void bt_gemm_f32_pm1(int64_t I, int64_t K, int64_t J, const float *a,
                                   int64_t lda_i, int64_t lda_j, const uint64_t *s,
                                   int64_t lds, float *c, int64_t ldc, int accumulate)
{
    int64_t i, k, j;
    for (i = 0; i < I; i++)
        for (k = 0; k < K; k++) {
            float acc = accumulate ? c[i * ldc + k] : 0.0f;
            for (j = 0; j < J; j++) {
                const float sj = bt_getbit(s + j * lds, k) ? -1.0f : 1.0f;
                acc = acc + a[i * lda_i + j * lda_j] * sj;
            }
            c[i * ldc + k] = acc;
        }
}

/* The transpose of a packed bit matrix, bit by bit: dst row c bit r = src
 * row r bit c; dst's words are zeroed first (pad bits 0). */
static inline void bt_transpose_bits(int64_t rows, int64_t cols, const uint64_t *src,
                                     int64_t lds, uint64_t *dst, int64_t ldd)
{
    int64_t r, c;
    for (c = 0; c < cols; c++)
        memset(dst + c * ldd, 0, sizeof(uint64_t) * (size_t)bt_words(rows));
    for (r = 0; r < rows; r++)
        for (c = 0; c < cols; c++)
            if (bt_getbit(src + r * lds, c)) dst[c * ldd + r / 64] |= (uint64_t)1 << (r % 64);
}

/* The int8 x (+-1) product of bnn_gemm_i8_pm1 in exact integers. */
static inline void bt_gemm_i8_pm1(int64_t I, int64_t K, int64_t J, const int8_t *q,
                                  int64_t ldq, const uint64_t *s, int64_t lds, int32_t *c,
                                  int64_t ldc)
{
    int64_t i, k, j;
    for (i = 0; i < I; i++)
        for (k = 0; k < K; k++) {
            int64_t acc = 0;
            for (j = 0; j < J; j++)
                acc += bt_getbit(s + j * lds, k) ? -(int64_t)q[i * ldq + j] : q[i * ldq + j];
            c[i * ldc + k] = (int32_t)acc;
        }
}

/* ------------------------------------------------------------------ */
/* Stochastic rounding to int8 (bnn_quantize_i8)                        */
/* ------------------------------------------------------------------ */

/* The counter-based generator of the stochastic paths: splitmix64's
 * finaliser of seed ^ (index * golden) + golden. */
static inline uint64_t bt_mix64(uint64_t seed, uint64_t index)
{
    uint64_t z = seed ^ (index * UINT64_C(0x9e3779b97f4a7c15));
    z = z + UINT64_C(0x9e3779b97f4a7c15);
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* u in [0, 1) of element e: bits 16*(e % 4) .. +15 of mix64(seed, e / 4),
 * over 65536. */
static inline float bt_quant_u(uint64_t seed, uint64_t e)
{
    uint64_t word = bt_mix64(seed, e / 4);
    uint64_t bits = (word >> (16 * (e % 4))) & 0xffffu;
    return (float)bits / 65536.0f;
}

/* q = clamp(floor(a * inv + u), -127, 127), NaN -> 0; each step rounded
 * to float on its own (tests are built with -ffp-contract=off). */
static inline int8_t bt_quant_one(float a, float inv, float u)
{
    float y = a * inv;
    float f;
    y = y + u;
    if (y != y) return 0;
    f = floorf(y);
    if (f < -127.0f) return -127;
    if (f > 127.0f) return 127;
    return (int8_t)(int)f;
}

/* bnn_quantize_i8: scale = max |a| over the row (by_column 0) or column
 * (1), NaN never the max, / 127; inv = 1 / scale, 0 when scale is 0;
 * element (i, j) uses e = counter + i*k + j (uint64 arithmetic).  q is
 * rows x k (ldq) or, by column, its transpose k x rows (ldq). */
static inline void bt_quantize_i8(int64_t rows, int64_t k, const float *a, int64_t lda,
                                  int by_column, uint64_t seed, uint64_t counter, int8_t *q,
                                  int64_t ldq, float *scale)
{
    int64_t i, j;
    int64_t ns = by_column ? k : rows;
    for (i = 0; i < ns; i++) {                  /* i: the row or column scaled */
        float mx = 0.0f, sc, inv;
        int64_t len = by_column ? rows : k;
        for (j = 0; j < len; j++) {
            float v = fabsf(by_column ? a[j * lda + i] : a[i * lda + j]);
            if (v > mx) mx = v;
        }
        sc = mx / 127.0f;
        scale[i] = sc;
        inv = sc == 0.0f ? 0.0f : 1.0f / sc;
        for (j = 0; j < len; j++) {
            int64_t r = by_column ? j : i, col = by_column ? i : j;
            uint64_t e = counter + (uint64_t)r * (uint64_t)k + (uint64_t)col;
            int8_t v = bt_quant_one(a[r * lda + col], inv, bt_quant_u(seed, e));
            if (by_column) q[col * ldq + r] = v;
            else q[r * ldq + col] = v;
        }
    }
}

/* ------------------------------------------------------------------ */
/* Backward products of the binary convolution                          */
/* ------------------------------------------------------------------ */

/* Output height and width of a (valid) geometry. */
static inline void bt_conv2d_out_hw(const bnn_conv2d_params *p, int64_t *oh, int64_t *ow)
{
    *oh = bt_out_dim(p->h, p->pad_top, p->pad_bottom, p->kh, p->dilation_h, p->stride_h);
    *ow = bt_out_dim(p->w, p->pad_left, p->pad_right, p->kw, p->dilation_w, p->stride_w);
}

/* The input pixel (n*h + iy)*w + ix that tap t = ky*kw + kx of output
 * position m = (n*oh + oy)*ow + ox reads, or -1 where it is padding. */
static inline int64_t bt_conv2d_tap_pixel(const bnn_conv2d_params *p, int64_t m, int64_t t)
{
    int64_t oh, ow, b, oy, ox, iy, ix;
    bt_conv2d_out_hw(p, &oh, &ow);
    b = m / (oh * ow);
    oy = (m / ow) % oh;
    ox = m % ow;
    iy = oy * p->stride_h - p->pad_top + (t / p->kw) * p->dilation_h;
    ix = ox * p->stride_w - p->pad_left + (t % p->kw) * p->dilation_w;
    if (iy < 0 || iy >= p->h || ix < 0 || ix >= p->w) return -1;
    return (b * p->h + iy) * p->w + ix;
}

/* The output position whose tap t reads input pixel px = (n*h + iy)*w + ix,
 * or -1 where none does. */
static inline int64_t bt_conv2d_tap_output(const bnn_conv2d_params *p, int64_t px, int64_t t)
{
    int64_t oh, ow, b, iy, ix, ny, nx, oy, ox;
    bt_conv2d_out_hw(p, &oh, &ow);
    b = px / (p->h * p->w);
    iy = (px / p->w) % p->h;
    ix = px % p->w;
    ny = iy + p->pad_top - (t / p->kw) * p->dilation_h;    /* = oy * stride_h */
    nx = ix + p->pad_left - (t % p->kw) * p->dilation_w;
    if (ny < 0 || nx < 0 || ny % p->stride_h != 0 || nx % p->stride_w != 0) return -1;
    oy = ny / p->stride_h;
    ox = nx / p->stride_w;
    if (oy >= oh || ox >= ow) return -1;
    return (b * oh + oy) * ow + ox;
}

/* The table of bt_conv2d_tap_pixel (dir 0: [m][t], m < n*oh*ow) or of
 * bt_conv2d_tap_output (dir 1: [px][t], px < n*h*w), computed once so
 * that the sums below need no divisions; free() it. */
static inline int64_t *bt_conv2d_tap_table(const bnn_conv2d_params *p, int dir)
{
    int64_t oh, ow, rows, i, t, taps = p->kh * p->kw;
    int64_t *tab;
    bt_conv2d_out_hw(p, &oh, &ow);
    rows = dir ? p->n * p->h * p->w : p->n * oh * ow;
    tab = (int64_t *)bt_alloc(sizeof(int64_t) * (size_t)(rows * taps));
    for (i = 0; i < rows; i++)
        for (t = 0; t < taps; t++)
            tab[i * taps + t] = dir ? bt_conv2d_tap_output(p, i, t) : bt_conv2d_tap_pixel(p, i, t);
    return tab;
}

/* X(m, t, ch) where tap t of output m reads pixel px (-1: padding): the
 * +-1 value of channel ch of x packed NHWC (bit 1 = -1; pad bits never
 * read), or pad_value (0 or +1) for a padded tap. */
static inline int bt_conv2d_x(const bnn_conv2d_params *p, const uint64_t *x, int64_t px,
                              int64_t ch)
{
    if (px < 0) return p->pad_value;
    return bt_getbit(x + px * bt_words(p->c), ch) ? -1 : 1;
}

/* W(o, t, ch): the +-1 filter value, w packed [o][kh][kw][words(c)]. */
static inline int bt_conv2d_w(const bnn_conv2d_params *p, const uint64_t *w, int64_t o,
                              int64_t t, int64_t ch)
{
    return bt_getbit(w + (o * p->kh * p->kw + t) * bt_words(p->c), ch) ? -1 : 1;
}

/* bnn_conv2d_grad_weights_f32: gw[o][t][ch] (+)= sum over m ascending of
 * grad[m][o] * X(m, t, ch), one float accumulator from 0 (or gw). */
static inline void bt_conv2d_grad_weights_f32(const bnn_conv2d_params *p, const uint64_t *x,
                                              const float *grad, float *gw, int accumulate)
{
    int64_t oh, ow, mm, m, o, t, ch, taps = p->kh * p->kw;
    int64_t *pix = bt_conv2d_tap_table(p, 0);
    bt_conv2d_out_hw(p, &oh, &ow);
    mm = p->n * oh * ow;
    for (o = 0; o < p->o; o++)
        for (t = 0; t < taps; t++)
            for (ch = 0; ch < p->c; ch++) {
                float *dst = gw + (o * taps + t) * p->c + ch;
                float acc = accumulate ? *dst : 0.0f;
                for (m = 0; m < mm; m++) {
                    int xv = bt_conv2d_x(p, x, pix[m * taps + t], ch);
                    float prod = grad[m * p->o + o] * (float)xv;
                    acc = acc + prod;
                }
                *dst = acc;
            }
    free(pix);
}

/* bnn_conv2d_grad_weights_i8: s = sum_m qt[o][m] * X(m, t, ch) exactly,
 * v = scale[o] * (float)s, gw = v (accumulate: gw + v). */
static inline void bt_conv2d_grad_weights_i8(const bnn_conv2d_params *p, const uint64_t *x,
                                             const int8_t *qt, const float *scale, float *gw,
                                             int accumulate)
{
    int64_t oh, ow, mm, m, o, t, ch, taps = p->kh * p->kw;
    int64_t *pix = bt_conv2d_tap_table(p, 0);
    bt_conv2d_out_hw(p, &oh, &ow);
    mm = p->n * oh * ow;
    for (o = 0; o < p->o; o++)
        for (t = 0; t < taps; t++)
            for (ch = 0; ch < p->c; ch++) {
                float *dst = gw + (o * taps + t) * p->c + ch;
                int64_t s = 0;
                float v;
                for (m = 0; m < mm; m++)
                    s += (int64_t)qt[o * mm + m] * bt_conv2d_x(p, x, pix[m * taps + t], ch);
                v = scale[o] * (float)s;
                *dst = accumulate ? *dst + v : v;
            }
    free(pix);
}

/* bnn_conv2d_grad_input_f32: gx[n][iy][ix][ch] = one float accumulator
 * from 0 that, for t ascending, for the output m whose tap t reads the
 * pixel (if any), adds grad[m][o] * W(o, t, ch) for o ascending. */
static inline void bt_conv2d_grad_input_f32(const bnn_conv2d_params *p, const uint64_t *w,
                                            const float *grad, float *gx)
{
    int64_t px, ch, t, o, m, taps = p->kh * p->kw;
    int64_t *out = bt_conv2d_tap_table(p, 1);
    for (px = 0; px < p->n * p->h * p->w; px++)
        for (ch = 0; ch < p->c; ch++) {
            float acc = 0.0f;
            for (t = 0; t < taps; t++) {
                m = out[px * taps + t];
                if (m < 0) continue;
                for (o = 0; o < p->o; o++) {
                    float prod = grad[m * p->o + o] * (float)bt_conv2d_w(p, w, o, t, ch);
                    acc = acc + prod;
                }
            }
            gx[px * p->c + ch] = acc;
        }
    free(out);
}

/* bnn_conv2d_grad_input_i8: the same with, per tap, acc = acc +
 * scale[m] * (float)(sum_o q[m][o] * W(o, t, ch)), the sum exact. */
static inline void bt_conv2d_grad_input_i8(const bnn_conv2d_params *p, const uint64_t *w,
                                           const int8_t *q, const float *scale, float *gx)
{
    int64_t px, ch, t, o, m, taps = p->kh * p->kw;
    int64_t *out = bt_conv2d_tap_table(p, 1);
    for (px = 0; px < p->n * p->h * p->w; px++)
        for (ch = 0; ch < p->c; ch++) {
            float acc = 0.0f;
            for (t = 0; t < taps; t++) {
                int64_t s = 0;
                float v;
                m = out[px * taps + t];
                if (m < 0) continue;
                for (o = 0; o < p->o; o++)
                    s += (int64_t)q[m * p->o + o] * bt_conv2d_w(p, w, o, t, ch);
                v = scale[m] * (float)s;
                acc = acc + v;
            }
            gx[px * p->c + ch] = acc;
        }
    free(out);
}

#endif /* BNN_TEST_ORACLE_H */
