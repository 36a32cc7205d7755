/*
 * gemm.c -- bnn_gemm: the XNOR-popcount product of packed rows.
 *
 * C[i][j] = epilogue(k - 2 * popcount(A_i XOR W_j)); the micro-kernel
 * (popc_strip) computes the popcounts for a strip of BNN_MR rows of A
 * against a block of W rows, the shared engine does blocking, epilogues
 * and threads.
 */
#include "bnn_engine.h"

typedef struct gemm_op {
    int64_t k, kw;
    const uint64_t *a; int64_t lda;
    const uint64_t *w; int64_t ldw;
} gemm_op;

static void gemm_strip(const bnn_engine *e, int64_t i0, int64_t mr, int64_t j0,
                       int64_t nc, int32_t *dot, int64_t ldd, void *scratch)
{
    const gemm_op *g = (const gemm_op *)e->op;
    int64_t r, j;
    (void)scratch;
    e->kt->popc_strip(mr, nc, g->kw, g->a + i0 * g->lda, g->lda,
                      g->w + j0 * g->ldw, g->ldw, dot, ldd);
    for (r = 0; r < mr; r++)
        for (j = 0; j < nc; j++)
            dot[r * ldd + j] = (int32_t)(g->k - 2 * (int64_t)dot[r * ldd + j]);
}

bnn_status bnn_gemm_check(int64_t n, int64_t m, int64_t k, const uint64_t *a,
                          int64_t lda_words, const uint64_t *w, int64_t ldw_words,
                          const bnn_epilogue **epi, const void *c, int64_t ldc)
{
    int64_t kw, row_out;
    size_t elem;
    bnn_status st;
    if (n < 0 || m < 0 || k < 0) return BNN_ERR_SHAPE;
    if (k > INT32_MAX) return BNN_ERR_OVERFLOW;
    if ((st = bnn_epilogue_check(epi, m, &elem, &row_out)) != BNN_OK) return st;
    if (n == 0 || m == 0) return BNN_OK;
    kw = bnn_words(k);
    if (c == NULL || (kw > 0 && (a == NULL || w == NULL))) return BNN_ERR_NULL;
    if (lda_words < kw || ldw_words < kw || ldc < row_out) return BNN_ERR_STRIDE;
    if (!bnn_extent_ok(n, lda_words, kw, sizeof(uint64_t))
        || !bnn_extent_ok(m, ldw_words, kw, sizeof(uint64_t))
        || !bnn_extent_ok(n, ldc, row_out, elem))
        return BNN_ERR_OVERFLOW;
    return BNN_OK;
}

bnn_status bnn_gemm(int64_t n, int64_t m, int64_t k,
                    const uint64_t *a, int64_t lda_words,
                    const uint64_t *w, int64_t ldw_words,
                    const bnn_epilogue *epi, void *c, int64_t ldc)
{
    static const uint64_t no_words[1] = {0};
    bnn_engine e;
    gemm_op g;
    int64_t kw;
    bnn_status st;

    st = bnn_gemm_check(n, m, k, a, lda_words, w, ldw_words, &epi, c, ldc);
    if (st != BNN_OK || n == 0 || m == 0) return st;
    kw = bnn_words(k);
    if (kw == 0) {
        /* k == 0: no word is read and every dot is 0; point the operands at
         * a dummy word so that no arithmetic is done on NULL pointers. */
        a = w = no_words;
        lda_words = ldw_words = 0;
    }

    g.k = k; g.kw = kw;
    g.a = a; g.lda = lda_words; g.w = w; g.ldw = ldw_words;
    e.kt = bnn_kernels_get();
    e.n = n; e.m = m;
    e.mc = bnn_engine_block(m, kw * 8);
    e.strip = gemm_strip;
    e.op = &g;
    e.epi = epi; e.c = c; e.ldc = ldc;
    e.scratch = NULL; e.scratch_part = 0;
    e.max_parts = 256;
    if (!bnn_mul_ok(n, m, &e.work) || !bnn_mul_ok(e.work, kw, &e.work))
        e.work = INT64_MAX;
    bnn_engine_run(&e);
    return BNN_OK;
}
