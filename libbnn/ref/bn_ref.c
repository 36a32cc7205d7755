/*
 * bn_ref.c -- the reference passes of shift-based batch norm (bn_shift_*
 * of bnn_kernels.h): AP2 without branches in loops the compiler vectorizes
 * for the baseline ISA, and the exact scalar AP2 where a rare value (zero
 * exponent or inf/NaN) turns up.
 */
#include "bnn_kernels.h"

/* bnn_ap2_inline() without branches, for loops the compiler vectorizes:
 * equal to it for normal and zero z; for a subnormal, infinite or NaN z it
 * returns something else and sets *rare to a nonzero value (the caller
 * then redoes its loop with bnn_ap2_inline).  Integer adds and shifts only:
 * the fraction comparison is the carry out of f + (2^52 - S), and e = 0 and
 * e = 0x7FF are the carries of e + 0x7FF and e + 1 out of 11 bits. */
static inline double ap2_branchless(double z, uint64_t *rare)
{
    uint64_t u, e, f, nz;
    memcpy(&u, &z, sizeof u);
    e = (u >> 52) & 0x7FF;
    f = u & 0xFFFFFFFFFFFFFULL;
    nz = (e + 0x7FF) >> 11;                                   /* e != 0 */
    *rare |= ((e + 1) >> 11)                                  /* inf, NaN */
             | ((1 - nz) & ((f + 0xFFFFFFFFFFFFFULL) >> 52)); /* subnormal */
    e += (f + ((1ULL << 52) - BNN_AP2_SQRT2_FRACTION)) >> 52;
    u = ((u & 0x8000000000000000ULL) | (e << 52)) & (0 - nz); /* +-0 -> +0 */
    memcpy(&z, &u, sizeof z);
    return z;
}

void bnn_bn_shift_var_ref(int64_t n, int64_t ld, int64_t nj, const float *x,
                          const double *mean, double *var)
{
    uint64_t rare = 0;
    int64_t i, j;
    for (j = 0; j < nj; j++) var[j] = 0.0;
    for (i = 0; i < n; i++) {
        const float *xr = x + i * ld;
        for (j = 0; j < nj; j++) {
            double d = xr[j] - mean[j];
            var[j] += ap2_branchless(d, &rare) * d;
        }
    }
    if (!rare) return;
    for (j = 0; j < nj; j++) var[j] = 0.0;
    for (i = 0; i < n; i++) {
        const float *xr = x + i * ld;
        for (j = 0; j < nj; j++) {
            double d = xr[j] - mean[j];
            var[j] += bnn_ap2_inline(d) * d;
        }
    }
}

int bnn_bn_shift_sums_ref(int64_t n, int64_t ld, int64_t nj, const float *x, const float *dy,
                          const double *mean, double *sg, double *sgx)
{
    uint64_t rare = 0;
    int64_t i, j;
    for (j = 0; j < nj; j++) sg[j] = sgx[j] = 0.0;
    for (i = 0; i < n; i++) {
        const float *xr = x + i * ld, *gr = dy + i * ld;
        for (j = 0; j < nj; j++) {
            double d = xr[j] - mean[j], gi = gr[j];
            sg[j] += gi;
            sgx[j] += ap2_branchless(d, &rare) * gi;
        }
    }
    /* a sum of float dy is finite unless some dy is inf or NaN */
    for (j = 0; j < nj; j++) rare |= (uint64_t)(sg[j] - sg[j] != 0.0);
    return rare != 0;
}

void bnn_bn_shift_dx_ref(int64_t n, int64_t ld, int64_t nj, const float *x, const float *dy,
                         const double *mean, const double *gsc, const double *sg,
                         const double *k2, float *dx)
{
    float row[BNN_BN_CHUNK];
    int64_t i, j;
    for (i = 0; i < n; i++) {
        const float *xr = x + i * ld, *gr = dy + i * ld;
        uint64_t rare = 0;
        for (j = 0; j < nj; j++) {
            double d = xr[j] - mean[j], ct = ap2_branchless(d, &rare);
            row[j] = (float)(gsc[j] * (gr[j] - sg[j] - ct * k2[j]));
        }
        if (rare) {
            for (j = 0; j < nj; j++) {
                double d = xr[j] - mean[j];
                row[j] = (float)(gsc[j] * (gr[j] - sg[j] - bnn_ap2_inline(d) * k2[j]));
            }
        }
        memcpy(dx + i * ld, row, (size_t)nj * sizeof(float));
    }
}
