/*
 * shift.c -- AP2, the power-of-two approximation of the shift-based
 * variants (batch norm and AdaMax).
 *
 * Shift-based variants follow the Torch code of the paper's authors
 * (Hubara et al. 2016): AP2(z) = sign(z) * 2^round(log2|z|) replaces
 * multiplications by shifts.  round(log2|z|) = e exactly when |z| >=
 * 2^e / sqrt(2), i.e. when frexp's mantissa m >= 1/sqrt(2); the code
 * compares m with the double nearest 1/sqrt(2), so no logarithm (and no
 * libm rounding difference) is involved.
 */
#include "bnn_internal.h"

#include <math.h>

#define BNN_INV_SQRT2 0.70710678118654752

/* The definition, through frexp/ldexp (libm): the hot paths use its
 * exponent-bit form, bnn_ap2_inline (bnn_internal.h), which takes this one
 * for subnormals; the tests hold the two equal on every class of double. */
double bnn_ap2_frexp(double z)
{
    int e;
    double m;
    if (z == 0.0 || !isfinite(z)) return z == 0.0 ? 0.0 : z;
    m = frexp(fabs(z), &e);
    return copysign(ldexp(1.0, m >= BNN_INV_SQRT2 ? e : e - 1), z);
}

double bnn_ap2(double z) { return bnn_ap2_inline(z); }
