/*
 * bnn_engine.h -- the shared driver behind bnn_gemm, bnn_conv2d and the
 * 8-bit first layer.
 *
 * Every op computes an output matrix [n rows][m columns] of integer dots
 * (rows = output pixels or samples, columns = filters or units) and passes
 * it through one of the three epilogues.  The op supplies `strip`, which
 * fills dots for a block of at most BNN_MR rows and `nc` columns; the
 * engine walks column blocks of `mc` (a multiple of 64, so packed-bit
 * output is written in whole words), applies the epilogue and splits the
 * work into fixed parts for threads.  Each output element is computed by
 * one part with the same kernels, so results never depend on threads.
 */
#ifndef BNN_ENGINE_H
#define BNN_ENGINE_H

#include "bnn_kernels.h"

/* Widest column block: the dot buffer of a part is BNN_MR x this many
 * int32 on the stack (16 KB), too much for a microcontroller, where 256
 * columns take 4 KB.  (64 would take 1 KB, but the bit-plane first layer
 * rebuilds an input's planes for each block: 784-256x3-10 on the Cortex-M4
 * firmware under qemu -icount took 1,957,920 instructions per image with
 * 64 against 1,504,009 with 256.  The masked first layer, the bare-metal
 * default since, rebuilds nothing; 64 was not measured with it.) */
#ifdef BNN_BAREMETAL
#  define BNN_ENGINE_MC_MAX 256
#else
#  define BNN_ENGINE_MC_MAX 1024
#endif
/* Below this many word-pair operations, stay on one thread. */
#define BNN_ENGINE_PAR_WORK ((int64_t)1 << 20)

typedef struct bnn_engine bnn_engine;

/* Fill dot[r*ldd + j] for rows i0..i0+mr-1 and columns j0..j0+nc-1.
 * `scratch` is this part's private scratch (engine->scratch_part bytes). */
typedef void (*bnn_strip_fn)(const bnn_engine *e, int64_t i0, int64_t mr,
                             int64_t j0, int64_t nc, int32_t *dot, int64_t ldd,
                             void *scratch);

struct bnn_engine {
    const bnn_kernels *kt;
    int64_t n, m;            /* output rows and columns                     */
    int64_t mc;              /* column block (multiple of 64, <= MC_MAX)   */
    bnn_strip_fn strip;
    const void *op;          /* the op's own context                        */
    const bnn_epilogue *epi; /* validated                                   */
    void *c;                 /* output base and row stride (elements/words) */
    int64_t ldc;
    char *scratch;           /* parts * scratch_part bytes, or NULL         */
    size_t scratch_part;
    int max_parts;           /* limited by threads and scratch             */
    int64_t work;            /* for the threading threshold                 */
};

/* Validate an epilogue (NULL = INT32) for m columns; returns the output
 * element size and row length (elements, or words for BITS). */
BNN_INTERNAL bnn_status bnn_epilogue_check(const bnn_epilogue **epi, int64_t m,
                                           size_t *elem, int64_t *row_out);
/* Column block for operands of `row_bytes` bytes per column. */
BNN_INTERNAL int64_t bnn_engine_block(int64_t m, int64_t row_bytes);
/* Run the whole product (parts on threads when worthwhile). */
BNN_INTERNAL void bnn_engine_run(const bnn_engine *e);

/* ---- convolution geometry, shared by the binary and the u8 conv ---- */
typedef struct bnn_conv_geom {
    int64_t n, h, w, c, o, kh, kw, oh, ow;
    int64_t sh, sw, dh, dw, pt, pl;
    int64_t taps;                  /* kh * kw */
} bnn_conv_geom;

/* Validate p (binary: check pad_value; u8: check pad_byte) and fill g. */
BNN_INTERNAL bnn_status bnn_conv_geom_init(const bnn_conv2d_params *p, int u8,
                                           bnn_conv_geom *g);
/* Prepared 8-bit first layers (ops/u8.c), for the model runtime: the
 * per-call precomputation of bnn_gemm_u8()/bnn_conv2d_u8() (filter
 * repacking, row popcounts, bias, the unpacked weights of the direct
 * method) done once.  p == NULL: dense (w, ldw read at run time);
 * otherwise a conv of geometry p (n ignored) whose repacked filters live
 * in the block.  prep: 8-byte aligned, bnn_u8_prep_bytes() bytes; run
 * scratch: bnn_u8_part_scratch(k, threads). */
BNN_INTERNAL size_t bnn_u8_prep_bytes(const bnn_conv2d_params *p, int64_t m, int64_t k);
BNN_INTERNAL size_t bnn_u8_part_scratch(int64_t k, int threads);
BNN_INTERNAL void bnn_u8_prepare(const bnn_conv2d_params *p, int64_t m, int64_t k,
                                 const uint64_t *w, int64_t ldw, void *prep);
BNN_INTERNAL bnn_status bnn_u8_run_prepared(const bnn_conv2d_params *p, int64_t n, int64_t m,
                                            int64_t k, const uint8_t *x, const uint64_t *w,
                                            int64_t ldw, const void *prep,
                                            const bnn_epilogue *epi, void *c, int64_t ldc,
                                            bnn_u8_method method, void *ws, size_t wsb);

/* Output pixel index -> (batch, top-left input row, input col). */
static inline void bnn_conv_origin(const bnn_conv_geom *g, int64_t pix,
                                   int64_t *nb, int64_t *ih0, int64_t *iw0)
{
    int64_t plane = g->oh * g->ow, rem = pix % plane;
    *nb = pix / plane;
    *ih0 = (rem / g->ow) * g->sh - g->pt;
    *iw0 = (rem % g->ow) * g->sw - g->pl;
}

#endif /* BNN_ENGINE_H */
