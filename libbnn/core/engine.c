/* engine.c -- blocking, epilogues and threads shared by every product
 * (see bnn_engine.h). */
#include "bnn_engine.h"

#include <string.h>

#define BNN_ENGINE_L2_BYTES (256 * 1024)

bnn_status bnn_epilogue_check(const bnn_epilogue **epi, int64_t m,
                              size_t *elem, int64_t *row_out)
{
    static const bnn_epilogue int32_epi = {BNN_EPI_INT32, 0, NULL, NULL,
                                           NULL, NULL, {NULL, NULL, NULL}};
    const bnn_epilogue *e = *epi ? *epi : &int32_epi;
    if (e->reserved != 0 || e->pad_[0] || e->pad_[1] || e->pad_[2])
        return BNN_ERR_INVALID;
    switch (e->kind) {
    case BNN_EPI_INT32: *elem = sizeof(int32_t); *row_out = m; break;
    case BNN_EPI_FLOAT: *elem = sizeof(float); *row_out = m; break;
    case BNN_EPI_BITS:
        *elem = sizeof(uint64_t);
        *row_out = bnn_words(m);
        if (m > 0 && e->thresh == NULL) return BNN_ERR_NULL;
        break;
    default: return BNN_ERR_INVALID;
    }
    *epi = e;
    return BNN_OK;
}

int64_t bnn_engine_block(int64_t m, int64_t row_bytes)
{
    int64_t mc = BNN_ENGINE_L2_BYTES / BNN_MAX(row_bytes, 1);
    mc = BNN_MAX(64, BNN_MIN(BNN_ENGINE_MC_MAX, mc)) & ~(int64_t)63;
    if (mc > m) mc = BNN_CEIL_DIV(m, 64) * 64;
    return BNN_MAX(mc, 64);
}

static void epilogue_row(const bnn_engine *e, const int32_t *dot, int64_t i,
                         int64_t j0, int64_t nc)
{
    const bnn_epilogue *ep = e->epi;
    switch (ep->kind) {
    case BNN_EPI_INT32:
        memcpy((int32_t *)e->c + i * e->ldc + j0, dot, (size_t)nc * sizeof(int32_t));
        break;
    case BNN_EPI_FLOAT:
        e->kt->epi_f32(nc, dot, ep->scale ? ep->scale + j0 : NULL,
                       ep->offset ? ep->offset + j0 : NULL,
                       (float *)e->c + i * e->ldc + j0);
        break;
    default: /* BNN_EPI_BITS; j0 is a multiple of 64 */
        e->kt->epi_bits(nc, dot, ep->thresh + j0, ep->flip ? ep->flip + j0 : NULL,
                        (uint64_t *)e->c + i * e->ldc + j0 / 64);
        break;
    }
}

/* Rows [i0, i1) x column blocks [b0, b1). */
static void engine_range(const bnn_engine *e, int64_t i0, int64_t i1,
                         int64_t b0, int64_t b1, void *scratch)
{
    int32_t dot[BNN_MR * BNN_ENGINE_MC_MAX];
    int64_t b, i, r;
    for (b = b0; b < b1; b++) {
        int64_t j0 = b * e->mc;
        int64_t nc = BNN_MIN(e->mc, e->m - j0);
        for (i = i0; i < i1; i += BNN_MR) {
            int64_t mr = BNN_MIN(BNN_MR, i1 - i);
            e->strip(e, i, mr, j0, nc, dot, e->mc, scratch);
            for (r = 0; r < mr; r++)
                epilogue_row(e, dot + r * e->mc, i + r, j0, nc);
        }
    }
}

typedef struct part_ctx {
    const bnn_engine *e;
    int split_rows;
} part_ctx;

static void engine_part(void *p, int part, int parts)
{
    const part_ctx *pc = (const part_ctx *)p;
    const bnn_engine *e = pc->e;
    int64_t nblocks = BNN_CEIL_DIV(e->m, e->mc);
    void *scratch = e->scratch ? e->scratch + (size_t)part * e->scratch_part : NULL;
    if (pc->split_rows) {
        int64_t tiles = BNN_CEIL_DIV(e->n, BNN_MR);
        int64_t t0 = tiles * part / parts, t1 = tiles * (part + 1) / parts;
        engine_range(e, t0 * BNN_MR, BNN_MIN(e->n, t1 * BNN_MR), 0, nblocks, scratch);
    } else {
        int64_t b0 = nblocks * part / parts, b1 = nblocks * (part + 1) / parts;
        engine_range(e, 0, e->n, b0, b1, scratch);
    }
}

void bnn_engine_run(const bnn_engine *e)
{
    int64_t tiles = BNN_CEIL_DIV(e->n, BNN_MR);
    int64_t blocks = BNN_CEIL_DIV(e->m, e->mc);
    int threads = BNN_MIN(bnn_get_num_threads(), e->max_parts);
    part_ctx pc;
    int parts;
    if (e->n == 0 || e->m == 0) return;
    pc.e = e;
    if (threads <= 1 || e->work < BNN_ENGINE_PAR_WORK) {
        engine_range(e, 0, e->n, 0, blocks, e->scratch);
        return;
    }
    pc.split_rows = tiles >= 4 * (int64_t)threads || tiles >= blocks;
    parts = (int)BNN_MIN((int64_t)threads, pc.split_rows ? tiles : blocks);
    if (parts <= 1) engine_range(e, 0, e->n, 0, blocks, e->scratch);
    else bnn_run_parts(engine_part, &pc, parts);
}
