/*
 * opt_ref.c -- the reference optimizer step over elements [i0, i1)
 * (Adam, AdaMax, shift-based AdaMax; formulas in bnn.h): arithmetic in
 * double per element, stored as float.  Oracle and fallback of the
 * opt_range entry of bnn_kernels.h.
 */
#include "bnn_kernels.h"

#include <math.h>

/* The update of elements [i0, i1): one branch-free loop per kind, so the
 * compiler can vectorise it; element-wise, so any split gives the same
 * result. */
void bnn_opt_range_ref(const bnn_opt_params *p, double step, int64_t i0, int64_t i1,
                       float *param, const float *grad, float *m, float *v)
{
    const double b1 = p->beta1, b2 = p->beta2, eps = p->eps;
    int64_t i;
    switch (p->kind) {
    case BNN_OPT_ADAM:
        for (i = i0; i < i1; i++) {
            double g = grad[i], mi = b1 * m[i] + (1.0 - b1) * g;
            double vi = b2 * v[i] + (1.0 - b2) * g * g, den = sqrt(vi) + eps;
            double w = param[i] - step * (den > 0.0 ? mi / den : 0.0);  /* 0/0 with eps 0 */
            m[i] = (float)mi;
            v[i] = (float)vi;
            param[i] = (float)w;
        }
        break;
    case BNN_OPT_ADAMAX:
        for (i = i0; i < i1; i++) {
            double g = grad[i], mi = b1 * m[i] + (1.0 - b1) * g;
            double vi = BNN_OPT_MAX(b2 * v[i], fabs(g)), den = vi + eps;
            double w = param[i] - step * (den > 0.0 ? mi / den : 0.0);
            m[i] = (float)mi;
            v[i] = (float)vi;
            param[i] = (float)w;
        }
        break;
    default:
        for (i = i0; i < i1; i++) {
            double g = grad[i], mi = b1 * m[i] + (1.0 - b1) * g;
            double vi = bnn_ap2_inline(BNN_OPT_MAX(b2 * v[i], fabs(g))) + eps;
            double w = param[i] - step * (vi > 0.0 ? mi / vi : 0.0);
            m[i] = (float)mi;
            v[i] = (float)vi;
            param[i] = (float)w;
        }
        break;
    }
    if (p->clip > 0.0) {
        float c = (float)p->clip;
        for (i = i0; i < i1; i++)
            param[i] = param[i] < -c ? -c : (param[i] > c ? c : param[i]);
    }
}
