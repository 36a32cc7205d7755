/*
 * gemm.c -- the portable XNOR-popcount GEMM driver.
 *
 * C[i][j] = epilogue(k - 2 * popcount(A_i XOR W_j)).
 *
 * Blocking: W is walked in blocks of `mc` rows (a multiple of 64, sized so
 * the block stays in L2); for each block, A is walked BNN_MR rows at a
 * time and the micro-kernel fills a strip of popcounts [mr][mc] that the
 * epilogue turns into int32, float or packed-bit output.  Because column
 * blocks are multiples of 64, the BITS epilogue writes whole words.
 *
 * Threads: the output is cut into fixed parts (row ranges when there are
 * enough rows, column blocks otherwise); each output element is computed
 * by exactly one part with the same kernels, so the result never depends
 * on the thread count.
 */
#include "bnn_kernels.h"

#include <string.h>

#define BNN_GEMM_L2_BYTES (256 * 1024)
#define BNN_GEMM_MC_MAX 1024
/* Below this many word pairs (n * m * kw), stay on one thread. */
#define BNN_GEMM_PAR_WORDS ((int64_t)1 << 20)

typedef struct gemm_ctx {
    const bnn_kernels *kt;
    int64_t n, m, k, kw;
    const uint64_t *a; int64_t lda;
    const uint64_t *w; int64_t ldw;
    const bnn_epilogue *epi;
    void *c; int64_t ldc;
    int64_t mc;
    int split_rows;  /* parts split rows (1) or column blocks (0) */
} gemm_ctx;

static void epilogue_row(const gemm_ctx *g, const int32_t *pc, int64_t i,
                         int64_t j0, int64_t nc)
{
    const bnn_epilogue *e = g->epi;
    int64_t j;
    switch (e->kind) {
    case BNN_EPI_INT32: {
        int32_t *out = (int32_t *)g->c + i * g->ldc + j0;
        for (j = 0; j < nc; j++)
            out[j] = (int32_t)(g->k - 2 * (int64_t)pc[j]);
        break;
    }
    case BNN_EPI_FLOAT: {
        float *out = (float *)g->c + i * g->ldc + j0;
        g->kt->epi_f32(nc, g->k, pc,
                       e->scale ? e->scale + j0 : NULL,
                       e->offset ? e->offset + j0 : NULL, out);
        break;
    }
    default: { /* BNN_EPI_BITS; j0 is a multiple of 64 */
        uint64_t *out = (uint64_t *)g->c + i * g->ldc + j0 / 64;
        const int32_t *t = e->thresh + j0;
        const uint8_t *f = e->flip ? e->flip + j0 : NULL;
        int64_t q, nw = bnn_words(nc);
        for (q = 0; q < nw; q++) {
            uint64_t word = 0;
            int64_t b, nb = BNN_MIN(64, nc - q * 64);
            for (b = 0; b < nb; b++) {
                int64_t jj = q * 64 + b;
                int64_t dot = g->k - 2 * (int64_t)pc[jj];
                int neg = (f && f[jj]) ? dot > t[jj] : dot < t[jj];
                word |= (uint64_t)neg << b;
            }
            out[q] = word;
        }
        break;
    }
    }
}

/* Rows [i0, i1) x column blocks [b0, b1). */
static void gemm_range(const gemm_ctx *g, int64_t i0, int64_t i1,
                       int64_t b0, int64_t b1)
{
    int32_t pc[BNN_MR * BNN_GEMM_MC_MAX];
    int64_t b, i, r;
    for (b = b0; b < b1; b++) {
        int64_t j0 = b * g->mc;
        int64_t nc = BNN_MIN(g->mc, g->m - j0);
        const uint64_t *wb = g->w + j0 * g->ldw;
        for (i = i0; i < i1; i += BNN_MR) {
            int64_t mr = BNN_MIN(BNN_MR, i1 - i);
            g->kt->popc_strip(mr, nc, g->kw, g->a + i * g->lda, g->lda, wb,
                              g->ldw, pc, g->mc);
            for (r = 0; r < mr; r++)
                epilogue_row(g, pc + r * g->mc, i + r, j0, nc);
        }
    }
}

static void gemm_part(void *p, int part, int parts)
{
    const gemm_ctx *g = (const gemm_ctx *)p;
    int64_t nblocks = BNN_CEIL_DIV(g->m, g->mc);
    if (g->split_rows) {
        /* Row ranges in whole micro-tiles. */
        int64_t tiles = BNN_CEIL_DIV(g->n, BNN_MR);
        int64_t t0 = tiles * part / parts, t1 = tiles * (part + 1) / parts;
        gemm_range(g, t0 * BNN_MR, BNN_MIN(g->n, t1 * BNN_MR), 0, nblocks);
    } else {
        int64_t b0 = nblocks * part / parts, b1 = nblocks * (part + 1) / parts;
        gemm_range(g, 0, g->n, b0, b1);
    }
}

bnn_status bnn_gemm(int64_t n, int64_t m, int64_t k,
                    const uint64_t *a, int64_t lda_words,
                    const uint64_t *w, int64_t ldw_words,
                    const bnn_epilogue *epi, void *c, int64_t ldc)
{
    static const bnn_epilogue int32_epi = {BNN_EPI_INT32, 0, NULL, NULL,
                                           NULL, NULL, {NULL, NULL, NULL}};
    gemm_ctx g;
    int64_t kw, row_out, work, mc;
    size_t elem;
    int threads;

    if (n < 0 || m < 0 || k < 0) return BNN_ERR_SHAPE;
    if (k > INT32_MAX) return BNN_ERR_OVERFLOW;
    if (epi == NULL) epi = &int32_epi;
    if (epi->reserved != 0 || epi->pad_[0] || epi->pad_[1] || epi->pad_[2])
        return BNN_ERR_INVALID;
    switch (epi->kind) {
    case BNN_EPI_INT32: elem = sizeof(int32_t); row_out = m; break;
    case BNN_EPI_FLOAT: elem = sizeof(float); row_out = m; break;
    case BNN_EPI_BITS:  elem = sizeof(uint64_t); row_out = bnn_words(m); break;
    default: return BNN_ERR_INVALID;
    }
    if (n == 0 || m == 0) return BNN_OK;
    kw = bnn_words(k);
    if (c == NULL || (kw > 0 && (a == NULL || w == NULL))) return BNN_ERR_NULL;
    if (epi->kind == BNN_EPI_BITS && epi->thresh == NULL) return BNN_ERR_NULL;
    if (lda_words < kw || ldw_words < kw || ldc < row_out)
        return BNN_ERR_STRIDE;
    if (!bnn_extent_ok(n, lda_words, kw, sizeof(uint64_t))
        || !bnn_extent_ok(m, ldw_words, kw, sizeof(uint64_t))
        || !bnn_extent_ok(n, ldc, row_out, elem))
        return BNN_ERR_OVERFLOW;

    /* Column block: a multiple of 64 whose W rows fit the L2 budget. */
    mc = BNN_GEMM_L2_BYTES / (BNN_MAX(kw, 1) * 8);
    mc = BNN_MAX(64, BNN_MIN(BNN_GEMM_MC_MAX, mc)) & ~(int64_t)63;
    if (mc > m) mc = BNN_CEIL_DIV(m, 64) * 64;

    if (kw == 0) {
        /* k == 0: no word is read and every dot is 0; point the operands at
         * a dummy word so that no arithmetic is done on NULL pointers. */
        static const uint64_t no_words[1] = {0};
        a = w = no_words;
        lda_words = ldw_words = 0;
    }

    memset(&g, 0, sizeof g);
    g.kt = bnn_kernels_get();
    g.n = n; g.m = m; g.k = k; g.kw = kw;
    g.a = a; g.lda = lda_words; g.w = w; g.ldw = ldw_words;
    g.epi = epi; g.c = c; g.ldc = ldc; g.mc = mc;

    threads = bnn_get_num_threads();
    if (!bnn_mul_ok(n, m, &work) || !bnn_mul_ok(work, kw, &work))
        work = INT64_MAX;  /* only compared with the threshold below */
    if (threads <= 1 || work < BNN_GEMM_PAR_WORDS) {
        gemm_range(&g, 0, n, 0, BNN_CEIL_DIV(m, mc));
        return BNN_OK;
    }
    {
        int64_t tiles = BNN_CEIL_DIV(n, BNN_MR);
        int64_t blocks = BNN_CEIL_DIV(m, mc);
        int parts;
        g.split_rows = tiles >= 4 * (int64_t)threads || tiles >= blocks;
        parts = (int)BNN_MIN((int64_t)threads, g.split_rows ? tiles : blocks);
        if (parts <= 1) gemm_range(&g, 0, n, 0, blocks);
        else bnn_run_parts(gemm_part, &g, parts);
    }
    return BNN_OK;
}
