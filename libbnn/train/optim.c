/*
 * optim.c -- the optimizer step driver: validation, the bias-corrected
 * step size of Adam / AdaMax / shift-based AdaMax (AP2 of it for the
 * latter), and the element range split over threads.  The per-element
 * update is the opt_range kernel (ref/opt_ref.c, x86/opt_avx2.c).  Moments
 * are caller-owned.
 */
#include "bnn_kernels.h"

#include <math.h>

typedef struct opt_ctx {
    const bnn_opt_params *p;
    double step;
    int64_t n;
    float *param, *m, *v;
    const float *grad;
} opt_ctx;

static void opt_part(void *ctx, int part, int parts)
{
    const opt_ctx *o = (const opt_ctx *)ctx;
    bnn_kernels_get()->opt_range(o->p, o->step, o->n * part / parts,
                                 o->n * (part + 1) / parts, o->param, o->grad, o->m, o->v);
}

bnn_status bnn_opt_step(const bnn_opt_params *p, int64_t n, float *param,
                        const float *grad, float *m, float *v)
{
    double b1, b2, eps, step;
    if (p == NULL) return BNN_ERR_NULL;
    if (p->reserved != 0 || p->t < 1 || p->kind < BNN_OPT_ADAM || p->kind > BNN_OPT_SHIFT_ADAMAX)
        return BNN_ERR_INVALID;
    b1 = p->beta1; b2 = p->beta2; eps = p->eps;
    if (!(b1 >= 0.0 && b1 < 1.0) || !(b2 >= 0.0 && b2 < 1.0) || !(eps >= 0.0) || !isfinite(eps)
        || !(p->lr >= 0.0) || !isfinite(p->lr) || !(p->lr_scale > 0.0) || !isfinite(p->lr_scale)
        || !(p->clip >= 0.0))
        return BNN_ERR_INVALID;
    if (n < 0) return BNN_ERR_SHAPE;
    if (n == 0) return BNN_OK;
    if (!param || !grad || !m || !v) return BNN_ERR_NULL;
    switch (p->kind) {
    case BNN_OPT_ADAM:
        step = p->lr * sqrt(1.0 - pow(b2, (double)p->t)) / (1.0 - pow(b1, (double)p->t));
        break;
    case BNN_OPT_ADAMAX:
        step = p->lr / (1.0 - pow(b1, (double)p->t));
        break;
    default:
        step = bnn_ap2_inline(p->lr / (1.0 - pow(b1, (double)p->t)));
        break;
    }
    step *= p->lr_scale;
    if (bnn_get_num_threads() > 1 && n >= ((int64_t)1 << 18)) {
        opt_ctx o;
        o.p = p; o.step = step; o.n = n;
        o.param = param; o.grad = grad; o.m = m; o.v = v;
        bnn_run_parts(opt_part, &o, BNN_MIN(bnn_get_num_threads(), 8));
    } else {
        bnn_kernels_get()->opt_range(p, step, 0, n, param, grad, m, v);
    }
    return BNN_OK;
}
