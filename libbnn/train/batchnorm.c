/*
 * batchnorm.c -- batch norm over [n][c] features, standard and shift-based
 * (AP2 powers of two, see shift.c); training forward with running
 * statistics, eval forward and backward.  All state is caller-owned; sums
 * are taken in double in a fixed order, features split over threads.
 */
#include "bnn_internal.h"

#include <math.h>
#include <string.h>

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
            var += kind == BNN_BN_SHIFT ? bnn_ap2_inline(d) * d : d * d;
        }
        var /= (double)n;
        inv = 1.0 / sqrt(var + (double)b->eps);
        if (b->running_mean)
            b->running_mean[j] = (float)((1.0 - momentum) * b->running_mean[j] + momentum * mean);
        if (b->running_invstd)
            b->running_invstd[j] = (float)((1.0 - momentum) * b->running_invstd[j] + momentum * inv);
        sc = kind == BNN_BN_SHIFT ? bnn_ap2_inline(inv) : inv;
        g = kind == BNN_BN_SHIFT ? bnn_ap2_inline(b->gamma[j]) : b->gamma[j];
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
        double sc = kind == BNN_BN_SHIFT
                        ? bnn_ap2_inline(running_invstd[j]) * bnn_ap2_inline(gamma[j])
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
                sgx += bnn_ap2_inline(d) * gi;           /* sum Ct * dy   */
                sdg += bnn_ap2_inline(d * sc) * gi;      /* dgamma        */
            } else {
                sgx += d * sc * gi;               /* sum xh * dy   */
            }
        }
        if (kind == BNN_BN_SHIFT) {
            g = bnn_ap2_inline(b->gamma[j]);
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
            double ct = kind == BNN_BN_SHIFT ? bnn_ap2_inline(d) : d;
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
