/*
 * optim.c -- the optimizer step driver: validation, the bias-corrected
 * step size of Adam / AdaMax / shift-based AdaMax (AP2 of it for the
 * latter), and the element range split over threads; bnn_opt_step_pack
 * also packs the signs of the new values, a few rows at a time while they
 * are in cache, so no separate packing pass reads the weights again.  The per-element
 * update is the opt_range kernel (ref/opt_ref.c, x86/opt_avx2.c).  Moments
 * are caller-owned.
 */
#include "bnn_kernels.h"

#include <math.h>

/* Elements from which a step is split over threads. */
#define OPT_PARALLEL_MIN ((int64_t)1 << 18)
/* Elements updated before their signs are packed (16 KB of floats: the
 * rows just written are still in the first-level cache). */
#define OPT_PACK_CHUNK 4096

/* Validates p and returns the bias-corrected step size times lr_scale
 * (*step), or the error. */
static bnn_status opt_prepare(const bnn_opt_params *p, double *step)
{
    double b1, b2, eps;
    if (p == NULL) return BNN_ERR_NULL;
    if (p->reserved != 0 || p->t < 1 || p->kind < BNN_OPT_ADAM || p->kind > BNN_OPT_SHIFT_ADAMAX)
        return BNN_ERR_INVALID;
    b1 = p->beta1; b2 = p->beta2; eps = p->eps;
    if (!(b1 >= 0.0 && b1 < 1.0) || !(b2 >= 0.0 && b2 < 1.0) || !(eps >= 0.0) || !isfinite(eps)
        || !(p->lr >= 0.0) || !isfinite(p->lr) || !(p->lr_scale > 0.0) || !isfinite(p->lr_scale)
        || !(p->clip >= 0.0))
        return BNN_ERR_INVALID;
    switch (p->kind) {
    case BNN_OPT_ADAM:
        *step = p->lr * sqrt(1.0 - pow(b2, (double)p->t)) / (1.0 - pow(b1, (double)p->t));
        break;
    case BNN_OPT_ADAMAX:
        *step = p->lr / (1.0 - pow(b1, (double)p->t));
        break;
    default:
        *step = bnn_ap2_inline(p->lr / (1.0 - pow(b1, (double)p->t)));
        break;
    }
    *step *= p->lr_scale;
    return BNN_OK;
}

/* One driver for both entry points: rows of k elements; with signs, the
 * update of a few rows at a time (about OPT_PACK_CHUNK elements) and then
 * their signs packed while the new values are in cache.  bnn_opt_step is
 * rows of one element and no signs. */
typedef struct opt_ctx {
    const bnn_opt_params *p;
    double step;
    int64_t rows, k;
    float *param, *m, *v;
    const float *grad;
    uint64_t *signs;            /* NULL: no packing */
    int64_t lds;
} opt_ctx;

static void opt_rows(const opt_ctx *o, int64_t r0, int64_t r1)
{
    const bnn_kernels *kt = bnn_kernels_get();
    const int64_t k = o->k, chunk = BNN_MAX(1, OPT_PACK_CHUNK / k);
    int64_t r, i;
    if (o->signs == NULL) {
        kt->opt_range(o->p, o->step, r0 * k, r1 * k, o->param, o->grad, o->m, o->v);
        return;
    }
    for (r = r0; r < r1; r += chunk) {
        int64_t re = BNN_MIN(r1, r + chunk);
        kt->opt_range(o->p, o->step, r * k, re * k, o->param, o->grad, o->m, o->v);
        for (i = r; i < re; i++) kt->pack_f32(k, o->param + i * k, o->signs + i * o->lds);
    }
}

static void opt_part(void *ctx, int part, int parts)
{
    const opt_ctx *o = (const opt_ctx *)ctx;
    opt_rows(o, o->rows * part / parts, o->rows * (part + 1) / parts);
}

/* Elements are split over threads by whole rows, element-wise updates:
 * any split gives the same result. */
static void opt_run(opt_ctx *o)
{
    if (bnn_get_num_threads() > 1 && o->rows * o->k >= OPT_PARALLEL_MIN && o->rows > 1)
        bnn_run_parts(opt_part, o, (int)BNN_MIN(o->rows, BNN_MIN(bnn_get_num_threads(), 8)));
    else
        opt_rows(o, 0, o->rows);
}

bnn_status bnn_opt_check(const bnn_opt_params *p, int pack, int64_t rows, int64_t k,
                         const float *param, const float *grad, const float *m, const float *v,
                         const uint64_t *signs, int64_t signs_stride_words, double *step)
{
    int64_t n;
    bnn_status st = opt_prepare(p, step);
    if (st != BNN_OK) return st;
    if (rows < 0 || k < 0) return BNN_ERR_SHAPE;
    if (rows == 0 || k == 0) return BNN_OK;
    if (!param || !grad || !m || !v || (pack && !signs)) return BNN_ERR_NULL;
    if (!pack) return BNN_OK;
    if (signs_stride_words < bnn_words(k)) return BNN_ERR_STRIDE;
    if (!bnn_mul_ok(rows, k, &n) || (uint64_t)n > (uint64_t)(SIZE_MAX / sizeof(float))
        || !bnn_extent_ok(rows, signs_stride_words, bnn_words(k), sizeof(uint64_t)))
        return BNN_ERR_OVERFLOW;
    return BNN_OK;
}

bnn_status bnn_opt_step(const bnn_opt_params *p, int64_t n, float *param,
                        const float *grad, float *m, float *v)
{
    opt_ctx o;
    bnn_status st = bnn_opt_check(p, 0, n, 1, param, grad, m, v, NULL, 0, &o.step);
    if (st != BNN_OK || n == 0) return st;
    o.p = p; o.rows = n; o.k = 1;
    o.param = param; o.grad = grad; o.m = m; o.v = v;
    o.signs = NULL; o.lds = 0;
    opt_run(&o);
    return BNN_OK;
}

bnn_status bnn_opt_step_pack(const bnn_opt_params *p, int64_t rows, int64_t k, float *param,
                             const float *grad, float *m, float *v, uint64_t *signs,
                             int64_t signs_stride_words)
{
    opt_ctx o;
    bnn_status st = bnn_opt_check(p, 1, rows, k, param, grad, m, v, signs, signs_stride_words,
                                  &o.step);
    if (st != BNN_OK || rows == 0 || k == 0) return st;
    o.p = p; o.rows = rows; o.k = k;
    o.param = param; o.grad = grad; o.m = m; o.v = v;
    o.signs = signs; o.lds = signs_stride_words;
    opt_run(&o);
    return BNN_OK;
}
