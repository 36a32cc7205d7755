/*
 * batchnorm.c -- batch norm over [n][c] features, standard and shift-based
 * (AP2 powers of two, see shift.c); training forward with running
 * statistics, eval forward and backward.  All state is caller-owned; sums
 * are taken in double in a fixed order, features split over threads.
 */
#include "bnn_kernels.h"

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
    const bnn_kernels *kt;       /* the shift passes */
} bn_ctx;

static void bn_run(void (*fn)(void *, int, int), bn_ctx *ctx)
{
    int t = bnn_get_num_threads();
    if (t > 1 && ctx->c >= 64 && ctx->n * ctx->c >= ((int64_t)1 << 17))
        bnn_run_parts(fn, ctx, (int)BNN_MIN((int64_t)BNN_MIN(t, 8), ctx->c / 32));
    else
        fn(ctx, 0, 1);
}

/* Features are walked in chunks of BN_CHUNK, rows in order inside a chunk:
 * each feature's sums still add its rows i = 0, 1, ... in order (the
 * arithmetic of a per-feature loop, bit for bit), but the data is read
 * row by row, contiguously. */
#define BN_CHUNK BNN_BN_CHUNK

static void bn_fwd_part(void *vctx, int part, int parts)
{
    const bn_ctx *b = (const bn_ctx *)vctx;
    const int64_t n = b->n, c = b->c;
    const float *x = b->x;
    const int shift = b->kind == BNN_BN_SHIFT;
    const double momentum = b->momentum;
    const int64_t jend = c * (part + 1) / parts;
    double mean[BN_CHUNK], var[BN_CHUNK], sc[BN_CHUNK], g[BN_CHUNK];
    int64_t i, j, j0, nj;
    for (j0 = c * part / parts; j0 < jend; j0 += nj) {
        nj = BNN_MIN((int64_t)BN_CHUNK, jend - j0);
        for (j = 0; j < nj; j++) mean[j] = var[j] = 0.0;
        for (i = 0; i < n; i++) {
            const float *xr = x + i * c + j0;
            for (j = 0; j < nj; j++) mean[j] += xr[j];
        }
        for (j = 0; j < nj; j++) mean[j] /= (double)n;
        if (!shift) {
            for (i = 0; i < n; i++) {
                const float *xr = x + i * c + j0;
                for (j = 0; j < nj; j++) {
                    double d = xr[j] - mean[j];
                    var[j] += d * d;
                }
            }
        } else {
            b->kt->bn_shift_var(n, c, nj, x + j0, mean, var);
        }
        for (j = 0; j < nj; j++) {
            const int64_t f = j0 + j;
            double inv = 1.0 / sqrt(var[j] / (double)n + (double)b->eps);
            if (b->running_mean)
                b->running_mean[f] = (float)((1.0 - momentum) * b->running_mean[f]
                                             + momentum * mean[j]);
            if (b->running_invstd)
                b->running_invstd[f] = (float)((1.0 - momentum) * b->running_invstd[f]
                                               + momentum * inv);
            sc[j] = shift ? bnn_ap2_inline(inv) : inv;
            g[j] = shift ? bnn_ap2_inline(b->gamma[f]) : b->gamma[f];
            b->out_mean[f] = (float)mean[j];
            b->out_scale[f] = (float)sc[j];
        }
        for (i = 0; i < n; i++) {
            const float *xr = x + i * c + j0;
            float *yr = b->y + i * c + j0;
            for (j = 0; j < nj; j++)
                yr[j] = (float)(g[j] * ((xr[j] - mean[j]) * sc[j]) + b->beta[j0 + j]);
        }
    }
}

bnn_status bnn_bn_forward_train_check(bnn_bn_kind kind, int64_t n, int64_t c, const float *x,
                                      const float *gamma, const float *beta, float eps,
                                      float momentum, const float *y, const float *save_mean,
                                      const float *save_scale)
{
    bnn_status st = bn_check(kind, n, c);
    if (st != BNN_OK) return st;
    if (n < 1) return BNN_ERR_SHAPE;
    if (!(eps > 0.0f) || !isfinite(eps) || !(momentum >= 0.0f && momentum <= 1.0f))
        return BNN_ERR_INVALID;
    if (c == 0) return BNN_OK;
    if (!x || !gamma || !beta || !y || !save_mean || !save_scale) return BNN_ERR_NULL;
    return BNN_OK;
}

bnn_status bnn_bn_forward_train(bnn_bn_kind kind, int64_t n, int64_t c, const float *x,
                                const float *gamma, const float *beta, float eps,
                                float momentum, float *running_mean, float *running_invstd,
                                float *y, float *save_mean, float *save_scale)
{
    bn_ctx b;
    bnn_status st = bnn_bn_forward_train_check(kind, n, c, x, gamma, beta, eps, momentum, y,
                                               save_mean, save_scale);
    if (st != BNN_OK || c == 0) return st;
    memset(&b, 0, sizeof b);
    b.kind = kind; b.n = n; b.c = c; b.x = x; b.gamma = gamma; b.beta = beta;
    b.eps = eps; b.momentum = momentum;
    b.running_mean = running_mean; b.running_invstd = running_invstd;
    b.y = y; b.out_mean = save_mean; b.out_scale = save_scale;
    b.kt = bnn_kernels_get();
    bn_run(bn_fwd_part, &b);
    return BNN_OK;
}

/* Eval: each feature's affine map, y = (x - mean) * sc + beta in double;
 * chunks of features, rows in order inside a chunk (contiguous reads, as
 * the training forward). */
static void bn_eval_part(void *vctx, int part, int parts)
{
    const bn_ctx *b = (const bn_ctx *)vctx;
    const int64_t n = b->n, c = b->c;
    const int64_t jend = c * (part + 1) / parts;
    double mean[BN_CHUNK], sc[BN_CHUNK], beta[BN_CHUNK];
    int64_t i, j, j0, nj;
    for (j0 = c * part / parts; j0 < jend; j0 += nj) {
        nj = BNN_MIN((int64_t)BN_CHUNK, jend - j0);
        for (j = 0; j < nj; j++) {
            const int64_t f = j0 + j;
            sc[j] = b->kind == BNN_BN_SHIFT
                        ? bnn_ap2_inline(b->running_invstd[f]) * bnn_ap2_inline(b->gamma[f])
                        : (double)b->gamma[f] * b->running_invstd[f];
            mean[j] = b->running_mean[f];
            beta[j] = b->beta[f];
        }
        for (i = 0; i < n; i++) {
            const float *xr = b->x + i * c + j0;
            float *yr = b->y + i * c + j0;
            for (j = 0; j < nj; j++) yr[j] = (float)((xr[j] - mean[j]) * sc[j] + beta[j]);
        }
    }
}

bnn_status bnn_bn_forward_eval(bnn_bn_kind kind, int64_t n, int64_t c, const float *x,
                               const float *gamma, const float *beta,
                               const float *running_mean, const float *running_invstd,
                               float *y)
{
    bn_ctx b;
    bnn_status st = bn_check(kind, n, c);
    if (st != BNN_OK) return st;
    if (n == 0 || c == 0) return BNN_OK;
    if (!x || !gamma || !beta || !running_mean || !running_invstd || !y) return BNN_ERR_NULL;
    memset(&b, 0, sizeof b);
    b.kind = kind; b.n = n; b.c = c; b.x = x; b.gamma = gamma; b.beta = beta;
    /* read only: the context's running statistics are the training forward's outputs */
    b.running_mean = (float *)running_mean;
    b.running_invstd = (float *)running_invstd;
    b.y = y;
    bn_run(bn_eval_part, &b);
    return BNN_OK;
}

/* A positive or negative power of two (a normal double with no fraction
 * bits), as the shift forward's saved scale is. */
static int is_pow2(double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    return (u & 0xFFFFFFFFFFFFFULL) == 0 && ((u >> 52) & 0x7FF) != 0
           && ((u >> 52) & 0x7FF) != 0x7FF;
}

static void bn_bwd_part(void *vctx, int part, int parts)
{
    const bn_ctx *b = (const bn_ctx *)vctx;
    const int64_t n = b->n, c = b->c;
    const float *x = b->x, *dy = b->dy;
    const int shift = b->kind == BNN_BN_SHIFT;
    const int64_t jend = c * (part + 1) / parts;
    double mean[BN_CHUNK], sc[BN_CHUNK], sg[BN_CHUNK], sgx[BN_CHUNK], sdg[BN_CHUNK];
    double gsc[BN_CHUNK], k2[BN_CHUNK];
    int64_t i, j, j0, nj;
    for (j0 = c * part / parts; j0 < jend; j0 += nj) {
        uint64_t rare = 0;     /* shift: a rare AP2 input in this chunk */
        int pow2 = 1;
        nj = BNN_MIN((int64_t)BN_CHUNK, jend - j0);
        for (j = 0; j < nj; j++) {
            mean[j] = b->save_mean[j0 + j];
            sc[j] = b->save_scale[j0 + j];
            sg[j] = sgx[j] = sdg[j] = 0.0;
        }
        if (!shift) {
            for (i = 0; i < n; i++) {
                const float *xr = x + i * c + j0, *gr = dy + i * c + j0;
                for (j = 0; j < nj; j++) {
                    double d = xr[j] - mean[j], gi = gr[j];
                    sg[j] += gi;
                    sgx[j] += d * sc[j] * gi;                  /* sum xh * dy   */
                }
            }
        } else {
            /* the kernel table's pass (bn_shift_sums); the exact scalar
             * loop where it reports a rare value or sc is not a power of two.
             * sum AP2(d * sc) * dy is sc * sum AP2(d) * dy exactly when sc
             * is a power of two (as the forward saves it): scaling by 2^k
             * commutes with AP2, with the exact products AP2(d) * dy and
             * with each rounded add, and double cannot overflow or
             * underflow on float data. */
            for (j = 0; j < nj; j++) pow2 = pow2 && is_pow2(sc[j]);
            if (pow2) {
                rare = (uint64_t)b->kt->bn_shift_sums(n, c, nj, x + j0, dy + j0, mean, sg, sgx);
                for (j = 0; j < nj; j++) sdg[j] = sc[j] * sgx[j];        /* dgamma  */
            }
            if (!pow2 || rare) {
                rare = 1;                       /* and the exact loop for dx */
                for (j = 0; j < nj; j++) sg[j] = sgx[j] = sdg[j] = 0.0;
                for (i = 0; i < n; i++) {
                    const float *xr = x + i * c + j0, *gr = dy + i * c + j0;
                    for (j = 0; j < nj; j++) {
                        double d = xr[j] - mean[j], gi = gr[j];
                        sg[j] += gi;
                        sgx[j] += bnn_ap2_inline(d) * gi;
                        sdg[j] += bnn_ap2_inline(d * sc[j]) * gi;
                    }
                }
            }
        }
        for (j = 0; j < nj; j++) {
            const int64_t f = j0 + j;
            double gj;
            if (shift) {
                gj = bnn_ap2_inline(b->gamma[f]);
                b->dgamma[f] = (float)sdg[j];
                k2[j] = sc[j] * sc[j] * (sgx[j] / (double)n);
            } else {
                gj = b->gamma[f];
                b->dgamma[f] = (float)sgx[j];
                k2[j] = sc[j] * (sgx[j] / (double)n);     /* xh = d*sc: sc * mean(dy*xh) */
            }
            b->dbeta[f] = (float)sg[j];
            gsc[j] = gj * sc[j];
            sg[j] /= (double)n;
        }
        if (shift && !rare) {                   /* AP2 of the same d as the sums */
            b->kt->bn_shift_dx(n, c, nj, x + j0, dy + j0, mean, gsc, sg, k2, b->dx + j0);
            continue;
        }
        for (i = 0; i < n; i++) {
            const float *xr = x + i * c + j0, *gr = dy + i * c + j0;
            float *dr = b->dx + i * c + j0;
            if (!shift) {
                for (j = 0; j < nj; j++) {
                    double d = xr[j] - mean[j];
                    dr[j] = (float)(gsc[j] * (gr[j] - sg[j] - d * k2[j]));
                }
            } else {
                for (j = 0; j < nj; j++) {
                    double d = xr[j] - mean[j];
                    dr[j] = (float)(gsc[j] * (gr[j] - sg[j] - bnn_ap2_inline(d) * k2[j]));
                }
            }
        }
    }
}

bnn_status bnn_bn_backward_check(bnn_bn_kind kind, int64_t n, int64_t c, const float *x,
                                 const float *gamma, const float *save_mean,
                                 const float *save_scale, const float *dy, const float *dx,
                                 const float *dgamma, const float *dbeta)
{
    bnn_status st = bn_check(kind, n, c);
    if (st != BNN_OK) return st;
    if (n < 1) return BNN_ERR_SHAPE;
    if (c == 0) return BNN_OK;
    if (!x || !gamma || !save_mean || !save_scale || !dy || !dx || !dgamma || !dbeta)
        return BNN_ERR_NULL;
    return BNN_OK;
}

bnn_status bnn_bn_backward(bnn_bn_kind kind, int64_t n, int64_t c, const float *x,
                           const float *gamma, const float *save_mean,
                           const float *save_scale, const float *dy, float *dx,
                           float *dgamma, float *dbeta)
{
    bn_ctx b;
    bnn_status st = bnn_bn_backward_check(kind, n, c, x, gamma, save_mean, save_scale, dy, dx,
                                          dgamma, dbeta);
    if (st != BNN_OK || c == 0) return st;
    memset(&b, 0, sizeof b);
    b.kind = kind; b.n = n; b.c = c; b.x = x; b.gamma = gamma;
    b.save_mean = save_mean; b.save_scale = save_scale; b.dy = dy;
    b.dx = dx; b.dgamma = dgamma; b.dbeta = dbeta;
    b.kt = bnn_kernels_get();
    bn_run(bn_bwd_part, &b);
    return BNN_OK;
}
