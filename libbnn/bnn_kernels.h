/*
 * bnn_kernels.h -- the micro-kernel contracts and the dispatch table.
 *
 * The portable drivers (core/pack.c, core/gemm.c, ops/, train/) validate
 * arguments, block the problem and handle edges; they call the
 * micro-kernels below through the table returned by bnn_kernels_get().  Every ISA provides every entry;
 * ref/ entries are the oracle and the fallback.
 *
 * Contracts (all pointers valid, all sizes >= 1 unless noted):
 *
 *  pack_f32(k, src, dst): pack one row of k floats into bnn_words(k)
 *      words; bit = (x < 0) (ordered compare: NaN, -0 -> 0); pad bits 0.
 *  pack_i8(k, src, dst): the same for int8 (bit = x < 0).
 *  unpack_f32(k, src, dst): bit 1 -> -1.0f, bit 0 -> +1.0f, k floats.
 *
 *  popc_strip(mr, ncols, kw, a, lda, w, ldw, pc, ldpc):
 *      for i < mr (1 <= mr <= BNN_MR), j < ncols, kw >= 0:
 *        pc[i*ldpc + j] = sum_{q < kw} popcount(a[i*lda+q] ^ w[j*ldw+q])
 *      Reads exactly words [0, kw) of each of the mr + ncols rows.
 *
 *  epi_f32(n, dot, scale, offset, out):  for j < n,
 *        out[j] = fmaf((float)dot[j], scale ? scale[j] : 1,
 *                      offset ? offset[j] : 0)
 *      -- a single rounding, so every ISA gives identical floats.
 *
 *  dot_u8_strip(mr, j0, ncols, kp, x, ldx, wt, opad, bias, out, ldo):
 *      for i < mr (<= BNN_MR), j < ncols, kp a multiple of 4 (the
 *      driver's rows are multiples of 32 bytes):
 *        out[i*ldo + j] = bias[j0+j]
 *                       + sum_{q < kp} x[i*ldx+q] * W(j0+j, q),
 *        W(j, q) = wt[(j/64)*kp*64 + (q/2)*128 + (j%64)*2 + q%2]
 *      with x uint8 and the weights int8 in {-1, 0, +1}, stored as byte
 *      pairs (two consecutive taps) per output, in blocks of 64 outputs:
 *      [opad/64][kp/2][64][2], so one block's weights are contiguous (a
 *      power-of-two stride between pairs would alias in the caches).
 *      j0 is a multiple of 64; opad is a multiple of 64 >= j0+ncols,
 *      padded outputs and taps hold 0; bias has opad entries.  The
 *      opad*kp/8 bytes after wt[opad*kp] hold the same weights as sign
 *      bits (1 = -1; padded taps and outputs 0) in quad order, for kernels
 *      that expand them instead of reading bytes: per block of 64 outputs,
 *      per group of 4 taps, 4 words, word z holding outputs 16z..16z+15 at
 *      bit (output % 16) * 4 + tap % 4.  The bits read a padded tap as +1,
 *      so x is 0 at every padded tap (the driver zeroes them): both
 *      layouts then give the same sums.
 *
 *  epi_bits(n, dot, thresh, flip, out): for j < n, bit j of out =
 *      (flip && flip[j]) ? dot[j] > thresh[j] : dot[j] < thresh[j];
 *      bnn_words(n) words written, pad bits 0.
 *
 *  pm1_tile(mr, nc, jn, a, lda_i, lda_j, panel, c, ldc, zero): for r < mr
 *      (1 <= mr <= BNN_PM1_MR), q < nc (1 <= nc <= BNN_PM1_NR), starting
 *      from 0 (zero) or from c[r*ldc + q], and j = 0, 1, ..., jn-1 in order,
 *        c[r*ldc + q] = c[r*ldc + q] + a[r*lda_i + j*lda_j] * panel[j*BNN_PM1_NR + q]
 *      with panel entries +-1.0f, so each product is exact and each step a
 *      single rounding of acc +- a (an FMA or a plain add: the same float):
 *      every ISA gives identical results.  Nothing outside the mr x nc
 *      elements of c is read or written; jn may be 0.
 *
 *  i8pm1_chunk(rows, nc, jn, q, ldq, s, lds, k0, c, ldc, first): for
 *      r < rows, col < nc (<= 32), k = k0 + col (k0 a multiple of 32, so the
 *      32 columns lie in one word of each row of s), 1 <= jn <= BNN_I8_CHUNK:
 *        c[r*ldc + col] = (first ? 0 : c[r*ldc + col])
 *                         + sum_{j < jn} q[r*ldq + j] * B(j, k),
 *      B(j, k) = bit k of row j of s (1 where the +-1 value is -1), in
 *      exact int32.  Reads q[r*ldq + j] for j < jn only.  (The driver turns
 *      the sums into sum q * S = sum q - 2 sum q * B.)
 *
 *  absmax_f32(k, a): max over j < k of |a[j]| (0 for k = 0); NaN never
 *      wins, so a row of NaN gives 0.  Exact: the same on every ISA.
 *
 *  round_i8(k, a, inv, inv_step, seed, e0, q, q_step): for j < k,
 *      q[j*q_step] = clamp(floor(a[j] * inv[j*inv_step] + u(e0 + j)),
 *      -127, 127), NaN -> 0, u(e) = (bits 16*(e % 4) .. of
 *      bnn_mix64(seed, e / 4) & 0xffff) / 65536; the product and the sum
 *      each rounded once (no FMA): the same on every ISA.
 *
 *  opt_range(p, step, i0, i1, param, grad, m, v): one optimizer step of
 *      elements [i0, i1) (p validated, step = the bias-corrected rate times
 *      lr_scale), clipping param to [-p->clip, p->clip] when clip > 0.
 *      Element-wise, so any split of the range gives the same result;
 *      bitwise equal to the reference on every ISA.
 *
 *  The shift-based batch norm passes over nj <= BNN_BN_CHUNK features of
 *  n rows (row i of x, dy and dx at i * ld); d = x - mean[j] in double and
 *  AP2 is bnn_ap2_inline, exactly; each sum adds rows 0, 1, ... in order,
 *  so every ISA gives the same doubles:
 *  bn_shift_var(n, ld, nj, x, mean, var): var[j] = sum AP2(d) * d.
 *  bn_shift_sums(n, ld, nj, x, dy, mean, sg, sgx): sg[j] = sum dy,
 *      sgx[j] = sum AP2(d) * dy; returns nonzero when some dy is inf or
 *      NaN, or (the reference) some d is not a normal number or zero: the
 *      caller then redoes the chunk on its exact scalar loop.
 *  bn_shift_dx(n, ld, nj, x, dy, mean, gsc, sg, k2, dx):
 *      dx = (float)(gsc[j] * (dy - sg[j] - AP2(d) * k2[j])); dx may be dy.
 */
#ifndef BNN_KERNELS_H
#define BNN_KERNELS_H

#include "bnn_internal.h"

#include <string.h>

/* Features a shift batch norm pass (bn_shift_*) takes at most. */
#define BNN_BN_CHUNK 256
/* Rows of A a popc_strip call handles at most. */
#define BNN_MR 4
/* The tile of pm1_tile: rows of A, columns of the +-1 panel (two AVX2 vectors). */
#define BNN_PM1_MR 6
#define BNN_PM1_NR 16
/* Rows of S the float product expands per panel (4 x 16 KB of +-1.0f). */
#define BNN_PM1_JB 256

typedef void (*bnn_pack_f32_fn)(int64_t k, const float *src, uint64_t *dst);
typedef void (*bnn_pack_i8_fn)(int64_t k, const int8_t *src, uint64_t *dst);
typedef void (*bnn_unpack_f32_fn)(int64_t k, const uint64_t *src, float *dst);
typedef void (*bnn_popc_strip_fn)(int64_t mr, int64_t ncols, int64_t kw,
                                  const uint64_t *a, int64_t lda,
                                  const uint64_t *w, int64_t ldw,
                                  int32_t *pc, int64_t ldpc);
typedef void (*bnn_epi_f32_fn)(int64_t n, const int32_t *dot,
                               const float *scale, const float *offset,
                               float *out);
typedef void (*bnn_dot_u8_strip_fn)(int64_t mr, int64_t j0, int64_t ncols, int64_t kp,
                                    const uint8_t *x, int64_t ldx,
                                    const int8_t *wt, int64_t opad, const int32_t *bias,
                                    int32_t *out, int64_t ldo);
typedef void (*bnn_opt_range_fn)(const bnn_opt_params *p, double step, int64_t i0,
                                 int64_t i1, float *param, const float *grad, float *m,
                                 float *v);
typedef void (*bnn_epi_bits_fn)(int64_t n, const int32_t *dot, const int32_t *thresh,
                                const uint8_t *flip, uint64_t *out);
typedef uint64_t (*bnn_probe_fn)(int64_t iters, uint64_t *sink);
/* Rows of S an i8pm1_chunk call takes at most (126 pairs: int16 sums of
 * +-(2 * 128) per pair stay below 2^15). */
#define BNN_I8_CHUNK 252

/* The end of a group of mr <= 4 rows in the SIMD i8pm1 chunks: the
 * chunk's odd last row of s (its 32 bits from k0 on: last_bits) added
 * alone to the tile t, then t written into the group's rows of c (added
 * to them unless `first`). */
static inline void bnn_i8pm1_finish(int64_t mr, int64_t jn, uint64_t last_bits,
                                    const int8_t *qi, int64_t ldq, int32_t t[4][32],
                                    int64_t nc, int32_t *c, int64_t ldc, int first)
{
    int64_t r, col;
    if (jn % 2)
        for (r = 0; r < mr; r++)
            for (col = 0; col < 32; col++)
                t[r][col] += ((last_bits >> col) & 1u) ? qi[r * ldq + jn - 1] : 0;
    for (r = 0; r < mr; r++)
        for (col = 0; col < nc; col++)
            c[r * ldc + col] = (first ? 0 : c[r * ldc + col]) + t[r][col];
}
typedef void (*bnn_i8pm1_chunk_fn)(int64_t rows, int64_t nc, int64_t jn, const int8_t *q,
                                   int64_t ldq, const uint64_t *s, int64_t lds, int64_t k0,
                                   int32_t *c, int64_t ldc, int first);
typedef float (*bnn_absmax_f32_fn)(int64_t k, const float *a);
typedef void (*bnn_round_i8_fn)(int64_t k, const float *a, const float *inv, int64_t inv_step,
                                uint64_t seed, uint64_t e0, int8_t *q, int64_t q_step);
typedef void (*bnn_bn_shift_var_fn)(int64_t n, int64_t ld, int64_t nj, const float *x,
                                    const double *mean, double *var);
typedef int (*bnn_bn_shift_sums_fn)(int64_t n, int64_t ld, int64_t nj, const float *x,
                                    const float *dy, const double *mean, double *sg,
                                    double *sgx);
typedef void (*bnn_bn_shift_dx_fn)(int64_t n, int64_t ld, int64_t nj, const float *x,
                                   const float *dy, const double *mean, const double *gsc,
                                   const double *sg, const double *k2, float *dx);
typedef void (*bnn_pm1_tile_fn)(int64_t mr, int64_t nc, int64_t jn, const float *a,
                                int64_t lda_i, int64_t lda_j, const float *panel, float *c,
                                int64_t ldc, int zero);

typedef struct bnn_kernels {
    bnn_isa            isa;
    bnn_pack_f32_fn    pack_f32;
    bnn_pack_i8_fn     pack_i8;
    bnn_unpack_f32_fn  unpack_f32;
    bnn_popc_strip_fn  popc_strip;
    bnn_epi_f32_fn     epi_f32;
    bnn_dot_u8_strip_fn dot_u8_strip;
    bnn_opt_range_fn   opt_range;
    bnn_epi_bits_fn    epi_bits;
    bnn_pm1_tile_fn    pm1_tile;
    bnn_i8pm1_chunk_fn i8pm1_chunk;
    bnn_absmax_f32_fn  absmax_f32;
    bnn_round_i8_fn    round_i8;
    bnn_bn_shift_var_fn  bn_shift_var;
    bnn_bn_shift_sums_fn bn_shift_sums;
    bnn_bn_shift_dx_fn   bn_shift_dx;
} bnn_kernels;

/* The table in use (selected once, thread-safely, on first use). */
BNN_INTERNAL const bnn_kernels *bnn_kernels_get(void);
/* The table of one ISA, or NULL if it cannot run here. */
BNN_INTERNAL const bnn_kernels *bnn_kernels_for(bnn_isa isa);

/* The panel of the float x (+-1) products (pm1gemm.c, convgrad.c): for one
 * 64-column word of S, up to BNN_PM1_JB rows, each stored as four
 * sub-panels of BNN_PM1_NR columns (sub-panel q at panel + q*BNN_PM1_JB*NR).
 * bnn_pm1_panel_row() writes row j from one word of bits (+-1.0f), or 0.0f
 * everywhere for word == NULL (a zero-padded tap); nq sub-panels.
 * bnn_pm1_panel_tile() runs pm1_tile over the word's ncols columns. */
static inline void bnn_pm1_panel_row(const bnn_kernels *kt, const uint64_t *word, float *panel,
                                     int64_t j, int64_t nq)
{
    float expand[64];
    int64_t q;
    if (word != NULL) kt->unpack_f32(64, word, expand);
    else memset(expand, 0, sizeof expand);
    for (q = 0; q < nq; q++)
        memcpy(panel + (q * BNN_PM1_JB + j) * BNN_PM1_NR, expand + q * BNN_PM1_NR,
               sizeof(float) * BNN_PM1_NR);
}

static inline void bnn_pm1_panel_tile(const bnn_kernels *kt, int64_t mr, int64_t ncols,
                                      int64_t jn, const float *a, int64_t lda_i,
                                      int64_t lda_j, const float *panel, float *c, int64_t ldc,
                                      int zero)
{
    int64_t q;
    for (q = 0; q * BNN_PM1_NR < ncols; q++)
        kt->pm1_tile(mr, BNN_MIN((int64_t)BNN_PM1_NR, ncols - q * BNN_PM1_NR), jn, a, lda_i,
                     lda_j, panel + q * BNN_PM1_JB * BNN_PM1_NR, c + q * BNN_PM1_NR, ldc, zero);
}

/* Per-ISA entry points. */
BNN_INTERNAL void bnn_pack_f32_ref(int64_t k, const float *src, uint64_t *dst);
BNN_INTERNAL void bnn_pack_i8_ref(int64_t k, const int8_t *src, uint64_t *dst);
BNN_INTERNAL void bnn_unpack_f32_ref(int64_t k, const uint64_t *src, float *dst);
BNN_INTERNAL void bnn_popc_strip_ref(int64_t mr, int64_t ncols, int64_t kw,
                                     const uint64_t *a, int64_t lda,
                                     const uint64_t *w, int64_t ldw,
                                     int32_t *pc, int64_t ldpc);
BNN_INTERNAL void bnn_epi_f32_ref(int64_t n, const int32_t *dot,
                                  const float *scale, const float *offset,
                                  float *out);
/* The masked method of the 8-bit first layer (BNN_U8_MASKED, called by
 * ops/u8.c on every ISA): the sum of the bytes x[q], q < kp (a multiple
 * of 32), whose bit q of the packed row w is set.  ref/u8_ref.c. */
BNN_INTERNAL uint32_t bnn_u8_masked_sum(int64_t kp, const uint8_t *x, const uint64_t *w);
BNN_INTERNAL void bnn_dot_u8_strip_ref(int64_t mr, int64_t j0, int64_t ncols, int64_t kp,
                                       const uint8_t *x, int64_t ldx,
                                       const int8_t *wt, int64_t opad, const int32_t *bias,
                                       int32_t *out, int64_t ldo);
BNN_INTERNAL void bnn_opt_range_ref(const bnn_opt_params *p, double step, int64_t i0,
                                    int64_t i1, float *param, const float *grad, float *m,
                                    float *v);
BNN_INTERNAL void bnn_epi_bits_ref(int64_t n, const int32_t *dot, const int32_t *thresh,
                                   const uint8_t *flip, uint64_t *out);
BNN_INTERNAL void bnn_i8pm1_chunk_ref(int64_t rows, int64_t nc, int64_t jn, const int8_t *q,
                                      int64_t ldq, const uint64_t *s, int64_t lds, int64_t k0,
                                      int32_t *c, int64_t ldc, int first);
BNN_INTERNAL void bnn_i8pm1_chunk_avx2(int64_t rows, int64_t nc, int64_t jn,
                                       const int8_t *q, int64_t ldq, const uint64_t *s,
                                       int64_t lds, int64_t k0, int32_t *c, int64_t ldc,
                                       int first);
BNN_INTERNAL float bnn_absmax_f32_ref(int64_t k, const float *a);
BNN_INTERNAL void bnn_round_i8_ref(int64_t k, const float *a, const float *inv,
                                   int64_t inv_step, uint64_t seed, uint64_t e0, int8_t *q,
                                   int64_t q_step);
BNN_INTERNAL float bnn_absmax_f32_avx2(int64_t k, const float *a);
BNN_INTERNAL void bnn_round_i8_avx2(int64_t k, const float *a, const float *inv,
                                    int64_t inv_step, uint64_t seed, uint64_t e0, int8_t *q,
                                    int64_t q_step);
BNN_INTERNAL void bnn_pm1_tile_ref(int64_t mr, int64_t nc, int64_t jn, const float *a,
                                   int64_t lda_i, int64_t lda_j, const float *panel, float *c,
                                   int64_t ldc, int zero);
BNN_INTERNAL void bnn_pm1_tile_avx2(int64_t mr, int64_t nc, int64_t jn, const float *a,
                                    int64_t lda_i, int64_t lda_j, const float *panel, float *c,
                                    int64_t ldc, int zero);
BNN_INTERNAL void bnn_epi_bits_avx2(int64_t n, const int32_t *dot, const int32_t *thresh,
                                    const uint8_t *flip, uint64_t *out);
BNN_INTERNAL void bnn_epi_bits_avx512(int64_t n, const int32_t *dot, const int32_t *thresh,
                                      const uint8_t *flip, uint64_t *out);
BNN_INTERNAL uint64_t bnn_probe_ref(int64_t iters, uint64_t *sink);
BNN_INTERNAL void bnn_bn_shift_var_ref(int64_t n, int64_t ld, int64_t nj, const float *x,
                                     const double *mean, double *var);
BNN_INTERNAL int bnn_bn_shift_sums_ref(int64_t n, int64_t ld, int64_t nj, const float *x,
                                     const float *dy, const double *mean, double *sg,
                                     double *sgx);
BNN_INTERNAL void bnn_bn_shift_dx_ref(int64_t n, int64_t ld, int64_t nj, const float *x,
                                    const float *dy, const double *mean, const double *gsc,
                                    const double *sg, const double *k2, float *dx);

#if BNN_X86
BNN_INTERNAL void bnn_pack_f32_avx2(int64_t k, const float *src, uint64_t *dst);
BNN_INTERNAL void bnn_pack_i8_avx2(int64_t k, const int8_t *src, uint64_t *dst);
BNN_INTERNAL void bnn_unpack_f32_avx2(int64_t k, const uint64_t *src, float *dst);
BNN_INTERNAL void bnn_popc_strip_avx2(int64_t mr, int64_t ncols, int64_t kw,
                                      const uint64_t *a, int64_t lda,
                                      const uint64_t *w, int64_t ldw,
                                      int32_t *pc, int64_t ldpc);
BNN_INTERNAL void bnn_epi_f32_avx2(int64_t n, const int32_t *dot,
                                   const float *scale, const float *offset,
                                   float *out);
BNN_INTERNAL void bnn_dot_u8_strip_avx2(int64_t mr, int64_t j0, int64_t ncols, int64_t kp,
                                        const uint8_t *x, int64_t ldx,
                                        const int8_t *wt, int64_t opad, const int32_t *bias,
                                        int32_t *out, int64_t ldo);
BNN_INTERNAL void bnn_opt_range_avx2(const bnn_opt_params *p, double step, int64_t i0,
                                     int64_t i1, float *param, const float *grad, float *m,
                                     float *v);
BNN_INTERNAL void bnn_dot_u8_strip_avx512vnni(int64_t mr, int64_t j0, int64_t ncols,
                                              int64_t kp, const uint8_t *x, int64_t ldx,
                                              const int8_t *wt, int64_t opad,
                                              const int32_t *bias, int32_t *out, int64_t ldo);
BNN_INTERNAL uint64_t bnn_probe_avx2(int64_t iters, uint64_t *sink);
BNN_INTERNAL void bnn_bn_shift_var_avx2(int64_t n, int64_t ld, int64_t nj, const float *x,
                                     const double *mean, double *var);
BNN_INTERNAL int bnn_bn_shift_sums_avx2(int64_t n, int64_t ld, int64_t nj, const float *x,
                                     const float *dy, const double *mean, double *sg,
                                     double *sgx);
BNN_INTERNAL void bnn_bn_shift_dx_avx2(int64_t n, int64_t ld, int64_t nj, const float *x,
                                    const float *dy, const double *mean, const double *gsc,
                                    const double *sg, const double *k2, float *dx);

BNN_INTERNAL void bnn_pack_f32_avx512(int64_t k, const float *src, uint64_t *dst);
BNN_INTERNAL void bnn_pack_i8_avx512(int64_t k, const int8_t *src, uint64_t *dst);
BNN_INTERNAL void bnn_popc_strip_avx512(int64_t mr, int64_t ncols, int64_t kw,
                                        const uint64_t *a, int64_t lda,
                                        const uint64_t *w, int64_t ldw,
                                        int32_t *pc, int64_t ldpc);
BNN_INTERNAL void bnn_epi_f32_avx512(int64_t n, const int32_t *dot,
                                     const float *scale, const float *offset,
                                     float *out);
BNN_INTERNAL uint64_t bnn_probe_avx512(int64_t iters, uint64_t *sink);
#endif

#if BNN_ARM64
BNN_INTERNAL void bnn_pack_f32_neon(int64_t k, const float *src, uint64_t *dst);
BNN_INTERNAL void bnn_pack_i8_neon(int64_t k, const int8_t *src, uint64_t *dst);
BNN_INTERNAL void bnn_popc_strip_neon(int64_t mr, int64_t ncols, int64_t kw,
                                      const uint64_t *a, int64_t lda,
                                      const uint64_t *w, int64_t ldw,
                                      int32_t *pc, int64_t ldpc);
BNN_INTERNAL void bnn_unpack_f32_neon(int64_t k, const uint64_t *src, float *dst);
BNN_INTERNAL void bnn_epi_f32_neon(int64_t n, const int32_t *dot, const float *scale,
                                   const float *offset, float *out);
BNN_INTERNAL void bnn_epi_bits_neon(int64_t n, const int32_t *dot, const int32_t *thresh,
                                    const uint8_t *flip, uint64_t *out);
BNN_INTERNAL void bnn_dot_u8_strip_neon(int64_t mr, int64_t j0, int64_t ncols, int64_t kp,
                                        const uint8_t *x, int64_t ldx, const int8_t *wt,
                                        int64_t opad, const int32_t *bias, int32_t *out,
                                        int64_t ldo);
BNN_INTERNAL void bnn_pm1_tile_neon(int64_t mr, int64_t nc, int64_t jn, const float *a,
                                    int64_t lda_i, int64_t lda_j, const float *panel, float *c,
                                    int64_t ldc, int zero);
BNN_INTERNAL void bnn_i8pm1_chunk_neon(int64_t rows, int64_t nc, int64_t jn,
                                       const int8_t *q, int64_t ldq, const uint64_t *s,
                                       int64_t lds, int64_t k0, int32_t *c, int64_t ldc,
                                       int first);
BNN_INTERNAL float bnn_absmax_f32_neon(int64_t k, const float *a);
BNN_INTERNAL void bnn_round_i8_neon(int64_t k, const float *a, const float *inv,
                                    int64_t inv_step, uint64_t seed, uint64_t e0, int8_t *q,
                                    int64_t q_step);
BNN_INTERNAL void bnn_dot_u8_strip_neondot(int64_t mr, int64_t j0, int64_t ncols, int64_t kp,
                                           const uint8_t *x, int64_t ldx, const int8_t *wt,
                                           int64_t opad, const int32_t *bias, int32_t *out,
                                           int64_t ldo);
#endif

#endif /* BNN_KERNELS_H */
