/*
 * train.c -- the arithmetic of training: AP2, batch norm (standard and
 * shift-based), Adam / AdaMax / shift-based AdaMax, the straight-through
 * estimator and stochastic binarization.  All state is caller-owned.
 *
 * Shift-based variants follow the Torch code of the paper's authors
 * (Hubara et al. 2016): AP2(z) = sign(z) * 2^round(log2|z|) replaces
 * multiplications by shifts.  round(log2|z|) = e exactly when |z| >=
 * 2^e / sqrt(2), i.e. when frexp's mantissa m >= 1/sqrt(2); the code
 * compares m with the double nearest 1/sqrt(2), so no logarithm (and no
 * libm rounding difference) is involved.
 */
#include "bnn_internal.h"
#include "bnn_kernels.h"

#include <math.h>
#include <string.h>

#define BNN_INV_SQRT2 0.70710678118654752

double bnn_ap2(double z)
{
    int e;
    double m;
    if (z == 0.0 || !isfinite(z)) return z == 0.0 ? 0.0 : z;
    m = frexp(fabs(z), &e);
    return copysign(ldexp(1.0, m >= BNN_INV_SQRT2 ? e : e - 1), z);
}

/* ---- batch norm ------------------------------------------------------ */

static bnn_status bn_check(bnn_bn_kind kind, int64_t n, int64_t c)
{
    int64_t t;
    if (kind != BNN_BN_STANDARD && kind != BNN_BN_SHIFT) return BNN_ERR_INVALID;
    if (n < 0 || c < 0) return BNN_ERR_SHAPE;
    if (!bnn_mul_ok(n, c, &t) || (uint64_t)t > (uint64_t)(SIZE_MAX / sizeof(float)))
        return BNN_ERR_OVERFLOW;
    return BNN_OK;
}

/* Features are independent: large batch norms split them over threads
 * (the same result for any split). */
typedef struct bn_ctx {
    bnn_bn_kind kind;
    int64_t n, c;
    const float *x, *gamma, *beta, *dy, *save_mean, *save_scale;
    float eps, momentum;
    float *running_mean, *running_invstd, *y, *out_mean, *out_scale, *dx, *dgamma, *dbeta;
} bn_ctx;

static void bn_run(void (*fn)(void *, int, int), bn_ctx *ctx)
{
    int t = bnn_get_num_threads();
    if (t > 1 && ctx->c >= 64 && ctx->n * ctx->c >= ((int64_t)1 << 17))
        bnn_run_parts(fn, ctx, (int)BNN_MIN((int64_t)BNN_MIN(t, 8), ctx->c / 32));
    else
        fn(ctx, 0, 1);
}

static void bn_fwd_part(void *vctx, int part, int parts)
{
    const bn_ctx *b = (const bn_ctx *)vctx;
    const int64_t n = b->n, c = b->c;
    const float *x = b->x;
    const bnn_bn_kind kind = b->kind;
    const double momentum = b->momentum;
    int64_t i, j;
    for (j = c * part / parts; j < c * (part + 1) / parts; j++) {
        double sum = 0.0, var = 0.0, mean, inv, sc, g;
        for (i = 0; i < n; i++) sum += x[i * c + j];
        mean = sum / (double)n;
        for (i = 0; i < n; i++) {
            double d = x[i * c + j] - mean;
            var += kind == BNN_BN_SHIFT ? bnn_ap2(d) * d : d * d;
        }
        var /= (double)n;
        inv = 1.0 / sqrt(var + (double)b->eps);
        if (b->running_mean)
            b->running_mean[j] = (float)((1.0 - momentum) * b->running_mean[j] + momentum * mean);
        if (b->running_invstd)
            b->running_invstd[j] = (float)((1.0 - momentum) * b->running_invstd[j] + momentum * inv);
        sc = kind == BNN_BN_SHIFT ? bnn_ap2(inv) : inv;
        g = kind == BNN_BN_SHIFT ? bnn_ap2(b->gamma[j]) : b->gamma[j];
        b->out_mean[j] = (float)mean;
        b->out_scale[j] = (float)sc;
        for (i = 0; i < n; i++)
            b->y[i * c + j] = (float)(g * ((x[i * c + j] - mean) * sc) + b->beta[j]);
    }
}

bnn_status bnn_bn_forward_train(bnn_bn_kind kind, int64_t n, int64_t c, const float *x,
                                const float *gamma, const float *beta, float eps,
                                float momentum, float *running_mean, float *running_invstd,
                                float *y, float *save_mean, float *save_scale)
{
    bn_ctx b;
    bnn_status st = bn_check(kind, n, c);
    if (st != BNN_OK) return st;
    if (n < 1) return BNN_ERR_SHAPE;
    if (!(eps > 0.0f) || !isfinite(eps) || !(momentum >= 0.0f && momentum <= 1.0f))
        return BNN_ERR_INVALID;
    if (c == 0) return BNN_OK;
    if (!x || !gamma || !beta || !y || !save_mean || !save_scale) return BNN_ERR_NULL;
    memset(&b, 0, sizeof b);
    b.kind = kind; b.n = n; b.c = c; b.x = x; b.gamma = gamma; b.beta = beta;
    b.eps = eps; b.momentum = momentum;
    b.running_mean = running_mean; b.running_invstd = running_invstd;
    b.y = y; b.out_mean = save_mean; b.out_scale = save_scale;
    bn_run(bn_fwd_part, &b);
    return BNN_OK;
}

bnn_status bnn_bn_forward_eval(bnn_bn_kind kind, int64_t n, int64_t c, const float *x,
                               const float *gamma, const float *beta,
                               const float *running_mean, const float *running_invstd,
                               float *y)
{
    int64_t i, j;
    bnn_status st = bn_check(kind, n, c);
    if (st != BNN_OK) return st;
    if (n == 0 || c == 0) return BNN_OK;
    if (!x || !gamma || !beta || !running_mean || !running_invstd || !y) return BNN_ERR_NULL;
    for (j = 0; j < c; j++) {
        double sc = kind == BNN_BN_SHIFT ? bnn_ap2(running_invstd[j]) * bnn_ap2(gamma[j])
                                         : (double)gamma[j] * running_invstd[j];
        for (i = 0; i < n; i++)
            y[i * c + j] = (float)((x[i * c + j] - (double)running_mean[j]) * sc + beta[j]);
    }
    return BNN_OK;
}

static void bn_bwd_part(void *vctx, int part, int parts)
{
    const bn_ctx *b = (const bn_ctx *)vctx;
    const int64_t n = b->n, c = b->c;
    const float *x = b->x, *dy = b->dy;
    const bnn_bn_kind kind = b->kind;
    int64_t i, j;
    for (j = c * part / parts; j < c * (part + 1) / parts; j++) {
        double mean = b->save_mean[j], sc = b->save_scale[j];
        double sg = 0.0, sgx = 0.0, sdg = 0.0, g, k2;
        for (i = 0; i < n; i++) {
            double d = x[i * c + j] - mean, gi = dy[i * c + j];
            sg += gi;
            if (kind == BNN_BN_SHIFT) {
                sgx += bnn_ap2(d) * gi;           /* sum Ct * dy   */
                sdg += bnn_ap2(d * sc) * gi;      /* dgamma        */
            } else {
                sgx += d * sc * gi;               /* sum xh * dy   */
            }
        }
        if (kind == BNN_BN_SHIFT) {
            g = bnn_ap2(b->gamma[j]);
            b->dgamma[j] = (float)sdg;
            k2 = sc * sc * (sgx / (double)n);
        } else {
            g = b->gamma[j];
            b->dgamma[j] = (float)sgx;
            k2 = sc * (sgx / (double)n);         /* xh = d*sc: sc * mean(dy*xh) */
        }
        b->dbeta[j] = (float)sg;
        for (i = 0; i < n; i++) {
            double d = x[i * c + j] - mean;
            double ct = kind == BNN_BN_SHIFT ? bnn_ap2(d) : d;
            b->dx[i * c + j] = (float)(g * sc * (dy[i * c + j] - sg / (double)n - ct * k2));
        }
    }
}

bnn_status bnn_bn_backward(bnn_bn_kind kind, int64_t n, int64_t c, const float *x,
                           const float *gamma, const float *save_mean,
                           const float *save_scale, const float *dy, float *dx,
                           float *dgamma, float *dbeta)
{
    bn_ctx b;
    bnn_status st = bn_check(kind, n, c);
    if (st != BNN_OK) return st;
    if (n < 1) return BNN_ERR_SHAPE;
    if (c == 0) return BNN_OK;
    if (!x || !gamma || !save_mean || !save_scale || !dy || !dx || !dgamma || !dbeta)
        return BNN_ERR_NULL;
    memset(&b, 0, sizeof b);
    b.kind = kind; b.n = n; b.c = c; b.x = x; b.gamma = gamma;
    b.save_mean = save_mean; b.save_scale = save_scale; b.dy = dy;
    b.dx = dx; b.dgamma = dgamma; b.dbeta = dbeta;
    bn_run(bn_bwd_part, &b);
    return BNN_OK;
}

/* ---- optimizers -------------------------------------------------------- */

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
            double vi = fmax(b2 * v[i], fabs(g)), den = vi + eps;
            double w = param[i] - step * (den > 0.0 ? mi / den : 0.0);
            m[i] = (float)mi;
            v[i] = (float)vi;
            param[i] = (float)w;
        }
        break;
    default:
        for (i = i0; i < i1; i++) {
            double g = grad[i], mi = b1 * m[i] + (1.0 - b1) * g;
            double vi = bnn_ap2(fmax(b2 * v[i], fabs(g))) + eps;
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
        step = bnn_ap2(p->lr / (1.0 - pow(b1, (double)p->t)));
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

/* ---- straight-through estimator ----------------------------------------- */

bnn_status bnn_ste_backward(int64_t n, const float *x, const float *grad, float *out)
{
    int64_t i;
    if (n < 0) return BNN_ERR_SHAPE;
    if (n == 0) return BNN_OK;
    if (!x || !grad || !out) return BNN_ERR_NULL;
    for (i = 0; i < n; i++) out[i] = fabsf(x[i]) <= 1.0f ? grad[i] : 0.0f;
    return BNN_OK;
}

static bnn_status rows_check(int64_t rows, int64_t k, const void *a, int64_t sa, size_t ea,
                             const void *b, int64_t sb_words)
{
    int64_t kw;
    if (rows < 0 || k < 0) return BNN_ERR_SHAPE;
    if (rows == 0 || k == 0) return BNN_OK;
    if (a == NULL || b == NULL) return BNN_ERR_NULL;
    kw = bnn_words(k);
    if (sa < k || sb_words < kw) return BNN_ERR_STRIDE;
    if (!bnn_extent_ok(rows, sa, k, ea) || !bnn_extent_ok(rows, sb_words, kw, 8))
        return BNN_ERR_OVERFLOW;
    return BNN_OK;
}

bnn_status bnn_ste_mask_pack(int64_t rows, int64_t k, const float *x, int64_t x_stride,
                             uint64_t *mask, int64_t mask_stride_words)
{
    int64_t i, j;
    bnn_status st = rows_check(rows, k, x, x_stride, sizeof(float), mask, mask_stride_words);
    if (st != BNN_OK || rows == 0 || k == 0) return st;
    for (i = 0; i < rows; i++) {
        const float *xr = x + i * x_stride;
        uint64_t *mr = mask + i * mask_stride_words;
        for (j = 0; j < bnn_words(k); j++) mr[j] = 0;
        for (j = 0; j < k; j++)
            mr[j / 64] |= (uint64_t)(fabsf(xr[j]) <= 1.0f) << (j % 64);
    }
    return BNN_OK;
}

bnn_status bnn_ste_backward_packed(int64_t rows, int64_t k, const uint64_t *mask,
                                   int64_t mask_stride_words, const float *grad,
                                   int64_t grad_stride, float *out, int64_t out_stride)
{
    int64_t i, j;
    bnn_status st = rows_check(rows, k, grad, grad_stride, sizeof(float), mask,
                               mask_stride_words);
    if (st != BNN_OK || rows == 0 || k == 0) return st;
    if (out == NULL) return BNN_ERR_NULL;
    if (out_stride < k) return BNN_ERR_STRIDE;
    if (!bnn_extent_ok(rows, out_stride, k, sizeof(float))) return BNN_ERR_OVERFLOW;
    for (i = 0; i < rows; i++) {
        const uint64_t *mr = mask + i * mask_stride_words;
        const float *g = grad + i * grad_stride;
        float *o = out + i * out_stride;
        for (j = 0; j < k; j++) o[j] = ((mr[j / 64] >> (j % 64)) & 1) ? g[j] : 0.0f;
    }
    return BNN_OK;
}

/* ---- stochastic binarization -------------------------------------------- */

/* A counter-based generator: splitmix64's finaliser over seed and index. */
static uint64_t mix64(uint64_t seed, uint64_t e)
{
    uint64_t z = seed ^ (e * 0x9e3779b97f4a7c15ULL);
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

bnn_status bnn_pack_stochastic_f32(int64_t rows, int64_t k, const float *src,
                                   int64_t src_stride, uint64_t seed, uint64_t counter,
                                   uint64_t *dst, int64_t dst_stride_words)
{
    int64_t i, j;
    bnn_status st = rows_check(rows, k, src, src_stride, sizeof(float), dst, dst_stride_words);
    if (st != BNN_OK || rows == 0 || k == 0) return st;
    for (i = 0; i < rows; i++) {
        const float *xr = src + i * src_stride;
        uint64_t *dr = dst + i * dst_stride_words;
        uint64_t base = counter + (uint64_t)i * (uint64_t)k;
        for (j = 0; j < bnn_words(k); j++) dr[j] = 0;
        for (j = 0; j < k; j++) {
            float x = xr[j];
            /* p(+1) = clip((x + 1)/2, 0, 1); NaN counts as +1 */
            float pp = isnan(x) ? 1.0f : (x + 1.0f) * 0.5f;
            float u = (float)(mix64(seed, base + (uint64_t)j) >> 40) * (1.0f / 16777216.0f);
            pp = pp < 0.0f ? 0.0f : (pp > 1.0f ? 1.0f : pp);
            dr[j / 64] |= (uint64_t)(u >= pp) << (j % 64);
        }
    }
    return BNN_OK;
}
