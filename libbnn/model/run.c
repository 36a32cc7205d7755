/*
 * run.c -- running a loaded model on a caller-provided workspace: two
 * ping-pong activation buffers, the scores, and the kernels' scratch.
 * Each layer runs the kernels of the rest of the library; nothing here
 * allocates.
 */
#include "model/model_internal.h"

#include <math.h>
#include <string.h>

/* ---- running -------------------------------------------------------------- */

/* Scratch bytes of the kernels of layer L for a batch of n on t threads. */
static bnn_status layer_scratch(const bnn_layer_rt *L, int64_t n, int t, size_t *bytes)
{
    *bytes = 0;
    if (L->type == BNN_RECORD_DENSE && (L->flags & BNN_RECORD_INPUT_U8)) {
        *bytes = bnn_u8_part_scratch(L->k, t);
        return BNN_OK;
    }
    if (L->type == BNN_RECORD_CONV) {
        bnn_conv2d_params p = L->cp;
        p.n = n;
        if (L->flags & BNN_RECORD_INPUT_U8) {
            *bytes = bnn_u8_part_scratch(L->cp.kh * L->cp.kw * L->cp.c, t);
            return BNN_OK;
        }
        p.pad_value = 1;    /* the correction is precomputed */
        return bnn_conv2d_workspace_size(&p, t, bytes);
    }
    return BNN_OK;
}

typedef struct ws_plan {
    int64_t act_bytes, score_bytes, scratch_bytes;
} ws_plan;

static bnn_status plan(const bnn_model *m, int64_t n, int threads, ws_plan *wp)
{
    int64_t li, act;
    size_t s, mx = 0;
    bnn_status st;
    if (!bnn_mul_ok(m->act_words, 8, &act) || !bnn_mul_ok(act, n, &act)) return BNN_ERR_OVERFLOW;
    wp->act_bytes = bnn_align64(act);
    if (!bnn_mul_ok(m->info.classes * 4, n, &wp->score_bytes)) return BNN_ERR_OVERFLOW;
    wp->score_bytes = bnn_align64(wp->score_bytes);
    for (li = 0; li < m->n_layers; li++) {
        if ((st = layer_scratch(&m->layers[li], n, threads, &s)) != BNN_OK) return st;
        if (s > mx) mx = s;
    }
    if ((uint64_t)mx > (uint64_t)INT64_MAX / 4) return BNN_ERR_OVERFLOW;
    wp->scratch_bytes = bnn_align64((int64_t)mx);
    if (wp->act_bytes > INT64_MAX / 4 || wp->score_bytes > INT64_MAX / 4) return BNN_ERR_OVERFLOW;
    return BNN_OK;
}

/* Bytes of a plan: 64 for alignment, two activation buffers, the scores
 * and the kernels' scratch. */
static bnn_status plan_total(const ws_plan *wp, size_t *bytes)
{
    int64_t total;
    if (wp->act_bytes > INT64_MAX / 8 || wp->score_bytes > INT64_MAX / 8
        || wp->scratch_bytes > INT64_MAX / 8)
        return BNN_ERR_OVERFLOW;
    total = 64 + 2 * wp->act_bytes + wp->score_bytes + wp->scratch_bytes;
    if ((uint64_t)total > (uint64_t)SIZE_MAX) return BNN_ERR_OVERFLOW;
    *bytes = (size_t)total;
    return BNN_OK;
}

bnn_status bnn_model_workspace_size(const bnn_model *model, int64_t batch, int threads,
                                    size_t *bytes)
{
    ws_plan wp;
    bnn_status st;
    if (model == NULL || bytes == NULL) return BNN_ERR_NULL;
    if (model->magic != BNN_MODEL_OBJ_MAGIC) return BNN_ERR_INVALID;
    if (batch < 0) return BNN_ERR_SHAPE;
    if (threads < 0) return BNN_ERR_INVALID;
    if (threads == 0) threads = bnn_get_num_threads();
    if ((st = plan(model, batch, threads, &wp)) != BNN_OK) return st;
    return plan_total(&wp, bytes);
}

/* Copy nbits (<= 64) low bits of v into dst at bit offset pos (dst zeroed). */
static void put_bits(uint64_t *dst, int64_t pos, uint64_t v, int nbits)
{
    int64_t q = pos / 64;
    int r = (int)(pos % 64);
    if (nbits < 64) v &= ((uint64_t)1 << nbits) - 1;
    dst[q] |= v << r;
    if (r && r + nbits > 64) dst[q + 1] |= v >> (64 - r);
}

/* [n][h][w][words(c)] sign bits -> [n][words(h*w*c)] in NHWC order. */
static void flatten_bits(int64_t n, int64_t hw, int64_t c, const uint64_t *src, uint64_t *dst)
{
    int64_t cw = bnn_words(c), fw = bnn_words(hw * c), i, p, q;
    for (i = 0; i < n; i++) {
        const uint64_t *s = src + i * hw * cw;
        uint64_t *d = dst + i * fw;
        memset(d, 0, (size_t)fw * 8);
        for (p = 0; p < hw; p++)
            for (q = 0; q < cw; q++) {
                int nb = (int)BNN_MIN((int64_t)64, c - 64 * q);
                put_bits(d, p * c + 64 * q, s[p * cw + q], nb);
            }
    }
}

bnn_status bnn_model_run(const bnn_model *model, int64_t n, const uint8_t *x, float *scores,
                         int32_t *classes, void *workspace, size_t workspace_bytes)
{
    ws_plan wp;
    bnn_status st;
    size_t need;
    uint8_t *base;
    uint64_t *buf[2];
    float *sc;
    void *scratch;
    size_t scratch_bytes;
    const uint64_t *cur = NULL;
    int64_t li, i, j, cls;
    int which = 0;

    if (model == NULL) return BNN_ERR_NULL;
    if (model->magic != BNN_MODEL_OBJ_MAGIC) return BNN_ERR_INVALID;
    if (n < 0) return BNN_ERR_SHAPE;
    if (n == 0) return BNN_OK;
    if (x == NULL || workspace == NULL) return BNN_ERR_NULL;
    /* the one-thread plan gives the minimum size; kernels use whatever
     * scratch follows for more threads */
    if ((st = plan(model, n, 1, &wp)) != BNN_OK) return st;
    if ((st = plan_total(&wp, &need)) != BNN_OK) return st;
    if (workspace_bytes < need) return BNN_ERR_INVALID;
    base = (uint8_t *)workspace + ((64 - ((uintptr_t)workspace & 63)) & 63);
    buf[0] = (uint64_t *)base;
    buf[1] = (uint64_t *)(base + wp.act_bytes);
    sc = (float *)(base + 2 * wp.act_bytes);
    scratch = base + 2 * wp.act_bytes + wp.score_bytes;
    scratch_bytes = workspace_bytes - (size_t)((uint8_t *)scratch - (uint8_t *)workspace);

    for (li = 0; li < model->n_layers; li++) {
        const bnn_layer_rt *L = &model->layers[li];
        uint64_t *out = buf[which];
        bnn_epilogue epi;
        memset(&epi, 0, sizeof epi);
        if (L->flags & BNN_RECORD_SCORES) {
            epi.kind = BNN_EPI_FLOAT;
            epi.scale = L->scale;
            epi.offset = L->offset;
        } else {
            epi.kind = BNN_EPI_BITS;
            epi.thresh = L->thresh;
            epi.flip = L->flip;
        }
        switch (L->type) {
        case BNN_RECORD_DENSE: {
            void *o = (L->flags & BNN_RECORD_SCORES) ? (void *)sc : (void *)out;
            int64_t ldc = (L->flags & BNN_RECORD_SCORES) ? L->m : bnn_words(L->m);
            if (L->flags & BNN_RECORD_INPUT_U8)
                st = bnn_u8_run_prepared(NULL, n, L->m, L->k, x, L->w, L->ldw, L->prep, &epi, o,
                                         ldc, BNN_U8_AUTO, scratch, scratch_bytes);
            else
                st = bnn_gemm(n, L->m, L->k, cur, bnn_words(L->k), L->w, L->ldw, &epi, o, ldc);
            break;
        }
        case BNN_RECORD_CONV: {
            bnn_conv2d_params p = L->cp;
            p.n = n;
            if (L->flags & BNN_RECORD_INPUT_U8)
                st = bnn_u8_run_prepared(&p, n, L->m, p.kh * p.kw * p.c, x, NULL, 0, L->prep,
                                         &epi, out, bnn_words(L->m), BNN_U8_AUTO, scratch,
                                         scratch_bytes);
            else
                st = bnn_conv2d_ex(&p, cur, L->w, L->corr, &epi, out, scratch, scratch_bytes);
            break;
        }
        case BNN_RECORD_MAXPOOL: {
            bnn_pool2d_params p = L->pp;
            p.n = n;
            st = bnn_maxpool2d_bits(&p, cur, L->flip, out);
            break;
        }
        default: /* BNN_RECORD_FLATTEN */
            if (L->in_c % 64 == 0) {
                out = (uint64_t *)cur;   /* the same words in the same order */
                which ^= 1;              /* keep writing to the other buffer */
            } else {
                flatten_bits(n, L->in_h * L->in_w, L->in_c, cur, out);
            }
            st = BNN_OK;
            break;
        }
        if (st != BNN_OK) return st;
        cur = out;
        which ^= 1;
    }
    /* the last layer wrote float scores */
    for (i = 0; i < n; i++) {
        const float *s = sc + i * model->info.classes;
        cls = 0;
        for (j = 0; j < model->info.classes; j++) {
            if (isnan(s[j])) {          /* as numpy's argmax: the first NaN */
                cls = j;
                break;
            }
            if (s[j] > s[cls]) cls = j;
        }
        if (classes) classes[i] = (int32_t)cls;
    }
    if (scores) memcpy(scores, sc, (size_t)(n * model->info.classes) * sizeof(float));
    return BNN_OK;
}
