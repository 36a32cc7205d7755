/*
 * test_train.c -- the training arithmetic of libbnn (include/bnn.h,
 * "Training arithmetic") against oracles written out here from the header:
 *
 *  - bnn_ap2: two independent oracles (frexp + the 1/sqrt(2) compare the
 *    header specifies, and a bit-level one on the IEEE fields), explicit
 *    expectations at and around sqrt(2)*2^n, powers of two, signs, zeros,
 *    subnormals, large values, NaN/inf unchanged, and sign*2^round(log2|z|)
 *    on random values away from ties.
 *  - batch norm (STANDARD and SHIFT): training forward, running statistics,
 *    saved mean/scale, eval forward, backward, in place (y == x, dx == dy),
 *    n = 1, constant columns, gamma < 0, = 0, > 0; the STANDARD backward is
 *    gradient-checked (double reference vs central differences, library vs
 *    reference, and library backward vs differences of the library's own
 *    float32 forward); error paths write nothing.
 *  - bnn_opt_step: ADAM, ADAMAX, SHIFT_ADAMAX over t = 1..5 with the Torch
 *    defaults and the paper's constants, lr_scale != 1, clipping, zero
 *    gradients, quantised v; bad parameters rejected with nothing written.
 *  - STE: the |x| <= 1 mask (inclusive, NaN blocks), packed mask layout and
 *    pad bits, packed backward == float backward on ragged k.
 *  - bnn_pack_stochastic_f32: determinism (every ISA, thread counts),
 *    seeds, counter advance == concatenation, saturation, NaN, frequencies
 *    within 5 sigma of (x+1)/2, pad bits and stride gaps.
 *
 * Numeric tolerance: float32 outputs are compared with double references
 * at rtol 1e-5 (plus a tiny absolute term proportional to the magnitude of
 * the terms that cancel); quantities that the header pins down exactly
 * (powers of two, saved AP2 scales, quantised optimizer state, masks,
 * bits) are compared exactly.
 */
#include "test_util.h"
#include "oracle.h"
#include "x86/avx2_internal.h"    /* bnn_ap2_pd, checked beside bnn_ap2 */

#include <float.h>

#define GARBAGE UINT64_C(0xa5a5a5a5a5a5a5a5)
#define CANARY_F 0x7fe5a5a5u /* a quiet NaN pattern no kernel would produce */
#define INV_SQRT2 0.70710678118654752
#define SQRT2_D 1.41421356237309504880 /* the double nearest sqrt(2) */
#define RTOL 1e-5

/* ------------------------------------------------------------------ */
/* Small helpers                                                        */
/* ------------------------------------------------------------------ */

static uint64_t d2u(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

static double u2d(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

static int same_bits_d(double a, double b)
{
    return d2u(a) == d2u(b);
}

static int same_bits_f(float a, float b)
{
    return bt_f2u(a) == bt_f2u(b);
}

/* |got - want| <= RTOL*|want| + 1e-7*scale (scale: magnitude of the terms
 * whose cancellation produced want; 0 when there is none). */
static int close_to(double got, double want, double scale)
{
    double tol = RTOL * fabs(want) + 1e-7 * scale + 1e-30;
    if (isnan(want)) return isnan(got);
    return fabs(got - want) <= tol;
}

static int is_pow2_or_zero(double v)
{
    int e;
    if (v == 0.0) return 1;
    if (!isfinite(v)) return 0;
    return frexp(fabs(v), &e) == 0.5;
}

/* ------------------------------------------------------------------ */
/* AP2 oracles                                                          */
/* ------------------------------------------------------------------ */

/* The header's definition, written out: frexp mantissa m in [0.5, 1)
 * compared (in double) with 0.70710678118654752. */
static double ap2_frexp(double z)
{
    int e;
    double m;
    if (isnan(z) || isinf(z)) return z;
    if (z == 0.0) return 0.0;
    m = frexp(fabs(z), &e);
    if (!(m >= INV_SQRT2)) e -= 1;
    return z < 0 ? -ldexp(1.0, e) : ldexp(1.0, e);
}

/* Independent of frexp: read the IEEE fields.  |z| = 1.f * 2^E rounds up
 * to 2^(E+1) exactly when 1.f >= the double nearest sqrt(2), i.e. when the
 * 52-bit fraction f >= 0x6a09e667f3bcd (0x3ff6a09e667f3bcd is sqrt(2)
 * rounded, and it lies above sqrt(2), so no true value is misrounded). */
static double ap2_bits(double z)
{
    uint64_t u, frac;
    int64_t ex;
    int shift = 0;
    double a, r;
    if (isnan(z) || isinf(z)) return z;
    if (z == 0.0) return 0.0;
    a = fabs(z);
    if (a < DBL_MIN) { /* subnormal: scale up exactly */
        a *= 18446744073709551616.0; /* 2^64 */
        shift = 64;
    }
    u = d2u(a);
    ex = (int64_t)(u >> 52) - 1023;
    frac = u & ((UINT64_C(1) << 52) - 1u);
    if (frac >= UINT64_C(0x6a09e667f3bcd)) ex += 1;
    ex -= shift;
    r = ldexp(1.0, (int)ex);
    return z < 0 ? -r : r;
}

#if BNN_X86
/* bnn_ap2_pd (the shift optimizer's and batch norm's AVX2 AP2) of z in
 * lane `lane`, beside three other values. */
BNN_TARGET_AVX2 static double ap2_avx2(double z, int lane)
{
    double in[4] = {1.5, -0.75, 3e-310, 0.0}, out[4];
    in[lane] = z;
    _mm256_storeu_pd(out, bnn_ap2_pd(_mm256_loadu_pd(in)));
    return out[lane];
}
#endif

/* AP2 must equal an oracle bit for bit, except that any zero is "0" (which
 * bnn_ap2 gives as +0); and the AVX2 AP2, where the CPU has it, in each
 * lane, bit for bit with bnn_ap2. */
static int check_ap2_one(double z, double want, const char *what)
{
    double got = bnn_ap2(z);
    if (want == 0.0) {
        CHECK_MSG(got == 0.0, "%s: bnn_ap2(%a) = %a, want 0", what, z, got);
    } else {
        CHECK_MSG(same_bits_d(got, want),
                  "%s: bnn_ap2(%a = %.17g) = %a (%.17g), want %a (%.17g)", what, z, z,
                  got, got, want, want);
    }
#if BNN_X86
    if (__builtin_cpu_supports("avx2")) {
        int lane;
        for (lane = 0; lane < 4; lane++) {
            double v = ap2_avx2(z, lane);
            CHECK_MSG(same_bits_d(v, got) || (isnan(v) && d2u(v) == d2u(z)),
                      "%s: bnn_ap2_pd(%a) lane %d = %a, bnn_ap2 %a", what, z, lane, v, got);
        }
    }
#endif
    return 0;
}

static int check_ap2_oracles(double z, const char *what)
{
    double a = ap2_frexp(z), b = ap2_bits(z);
    /* the two oracles must agree with each other first */
    CHECK_MSG((a == 0.0 && b == 0.0) || same_bits_d(a, b) || (isnan(a) && isnan(b)),
              "%s: oracles disagree at %a: frexp %a, bits %a", what, z, a, b);
    RUN(check_ap2_one(z, a, what));
    return 0;
}

static int test_ap2(void)
{
    int n, e, i;
    double z;
    bt_rng r = bt_stream(0xa92);
    static const uint64_t nans[] = {
        UINT64_C(0x7ff8000000000000), UINT64_C(0xfff8000000000000),
        UINT64_C(0x7ff0000000000001), UINT64_C(0xfff0000000000001),
        UINT64_C(0x7ff8dead0000beef), UINT64_C(0x7fffffffffffffff),
    };

    bt_ctx("ap2");
    CHECK(SQRT2_D == sqrt(2.0));
    CHECK(d2u(SQRT2_D) == UINT64_C(0x3ff6a09e667f3bcd));
    CHECK(d2u(INV_SQRT2) == UINT64_C(0x3fe6a09e667f3bcd));

    /* At and around sqrt(2) * 2^n: the double nearest rounds up (it lies
     * above sqrt(2)), its lower neighbours round down.  Explicit values,
     * then the oracles over the whole exponent range. */
    for (n = -30; n <= 30; n++) {
        double z0 = ldexp(SQRT2_D, n);
        double up = nextafter(z0, INFINITY), up2 = nextafter(up, INFINITY);
        double dn = nextafter(z0, 0.0), dn2 = nextafter(dn, 0.0);
        double hi = ldexp(1.0, n + 1), lo = ldexp(1.0, n);
        bt_ctx("ap2 around sqrt(2)*2^%d", n);
        RUN(check_ap2_one(z0, hi, "nearest sqrt2*2^n"));
        RUN(check_ap2_one(up, hi, "nextafter up"));
        RUN(check_ap2_one(up2, hi, "2 ulps up"));
        RUN(check_ap2_one(dn, lo, "nextafter down"));
        RUN(check_ap2_one(dn2, lo, "2 ulps down"));
        RUN(check_ap2_one(-z0, -hi, "-nearest"));
        RUN(check_ap2_one(-up, -hi, "-nextafter up"));
        RUN(check_ap2_one(-dn, -lo, "-nextafter down"));
        /* and the float neighbours (BN feeds floats) */
        {
            float f0 = (float)z0, fu = nextafterf(f0, INFINITY), fd = nextafterf(f0, 0.0f);
            RUN(check_ap2_oracles(f0, "float near sqrt2*2^n"));
            RUN(check_ap2_oracles(fu, "float above"));
            RUN(check_ap2_oracles(fd, "float below"));
            CHECK(bnn_ap2(fu) == hi);
            CHECK(bnn_ap2(fd) == lo);
        }
        RUN(check_ap2_oracles(z0, "oracle nearest"));
        RUN(check_ap2_oracles(dn, "oracle down"));
    }
    for (n = -1074; n <= 1023; n++) {
        double z0 = ldexp(SQRT2_D, n);
        bt_ctx("ap2 oracles around sqrt(2)*2^%d", n);
        if (z0 == 0.0) continue;
        RUN(check_ap2_oracles(z0, "z0"));
        RUN(check_ap2_oracles(nextafter(z0, INFINITY), "up"));
        RUN(check_ap2_oracles(nextafter(z0, 0.0), "down"));
        RUN(check_ap2_oracles(-nextafter(z0, 0.0), "-down"));
    }

    /* Exact powers of two (normal and subnormal) are fixed points. */
    for (e = -1074; e <= 1023; e++) {
        double p = ldexp(1.0, e);
        bt_ctx("ap2 power of two 2^%d", e);
        RUN(check_ap2_one(p, p, "2^e"));
        RUN(check_ap2_one(-p, -p, "-2^e"));
        if (e >= -1020) { /* normal: the neighbours are 1 +- ulp away */
            RUN(check_ap2_one(nextafter(p, INFINITY), p, "2^e up"));
            RUN(check_ap2_one(nextafter(p, 0.0), p, "2^e down"));
        } else { /* few significant bits: the oracles decide */
            RUN(check_ap2_oracles(nextafter(p, INFINITY), "2^e up"));
            if (e > -1074) RUN(check_ap2_oracles(nextafter(p, 0.0), "2^e down"));
        }
    }

    /* Zeros, subnormals, large values, NaN/inf. */
    bt_ctx("ap2 specials");
    CHECK(bnn_ap2(0.0) == 0.0);
    CHECK(bnn_ap2(-0.0) == 0.0);
    RUN(check_ap2_one(-0.0, 0.0, "-0"));
    RUN(check_ap2_one(u2d(1), u2d(1), "smallest subnormal"));
    RUN(check_ap2_one(-u2d(1), -u2d(1), "-smallest subnormal"));
    RUN(check_ap2_one(u2d(2), u2d(2), "2*2^-1074"));
    RUN(check_ap2_one(u2d(3), u2d(4), "3*2^-1074 (m = 0.75)"));
    RUN(check_ap2_one(u2d(5), u2d(4), "5*2^-1074 (m = 0.625)"));
    RUN(check_ap2_one(u2d(6), u2d(8), "6*2^-1074"));
    RUN(check_ap2_one(-u2d(11), -u2d(8), "-11*2^-1074 (m = 0.6875)"));
    RUN(check_ap2_one(-u2d(12), -u2d(16), "-12*2^-1074 (m = 0.75)"));
    RUN(check_ap2_oracles(u2d(UINT64_C(0x000fffffffffffff)), "largest subnormal"));
    RUN(check_ap2_one(u2d(UINT64_C(0x000fffffffffffff)), DBL_MIN, "largest subnormal"));
    RUN(check_ap2_oracles(DBL_MIN, "DBL_MIN"));
    RUN(check_ap2_oracles((double)FLT_MIN, "FLT_MIN"));
    RUN(check_ap2_oracles((double)bt_u2f(1), "float denormal"));
    RUN(check_ap2_one((double)bt_u2f(3), (double)bt_u2f(4), "3 float denormals"));
    RUN(check_ap2_one(1e300, ldexp(1.0, 997), "1e300"));
    RUN(check_ap2_one(-1e300, -ldexp(1.0, 997), "-1e300"));
    RUN(check_ap2_one((double)FLT_MAX, ldexp(1.0, 128), "FLT_MAX"));
    RUN(check_ap2_one(ldexp(1.4, 1023), ldexp(1.0, 1023), "1.4*2^1023"));
    RUN(check_ap2_oracles(DBL_MAX, "DBL_MAX")); /* 2^1024 rounds to inf */
    RUN(check_ap2_oracles(-DBL_MAX, "-DBL_MAX"));
    RUN(check_ap2_one(INFINITY, INFINITY, "+inf"));
    RUN(check_ap2_one(-INFINITY, -INFINITY, "-inf"));
    for (i = 0; i < (int)(sizeof nans / sizeof nans[0]); i++) {
        double q = u2d(nans[i]), g = bnn_ap2(q);
        CHECK_MSG(d2u(g) == nans[i], "NaN %016" PRIx64 " came back as %016" PRIx64,
                  nans[i], d2u(g));
        RUN(check_ap2_one(q, q, "NaN"));
    }

    /* Random bit patterns over every exponent: both oracles. */
    bt_ctx("ap2 random bit patterns");
    for (i = 0; i < 200000; i++) {
        z = u2d(bt_next(&r));
        RUN(check_ap2_oracles(z, "random bits"));
    }
    /* Random floats (as batch norm passes them). */
    for (i = 0; i < 50000; i++) {
        float f = bt_u2f((uint32_t)bt_next(&r));
        RUN(check_ap2_oracles((double)f, "random float bits"));
    }

    /* sign(z) * 2^round(log2|z|) away from ties (log2 may misround there). */
    bt_ctx("ap2 vs log2");
    for (i = 0; i < 100000; i++) {
        double l = bt_unit(&r) * 160.0 - 80.0, fr, want;
        z = exp2(l) * (bt_below(&r, 2) ? -1.0 : 1.0);
        l = log2(fabs(z));
        fr = l - floor(l);
        if (fabs(fr - 0.5) < 1e-9) continue;
        want = copysign(exp2(floor(l + 0.5)), z);
        CHECK_MSG(bnn_ap2(z) == want, "z=%.17g log2=%.17g got %a want %a", z, l, bnn_ap2(z),
                  want);
    }
    printf("  ap2: ok\n");
    return 0;
}

/* ------------------------------------------------------------------ */
/* Batch norm                                                           */
/* ------------------------------------------------------------------ */

typedef struct bn_case {
    int64_t n, c;
    float *x, *gamma, *beta, *dy;
    float *rm0, *ri0; /* running stats before the call */
} bn_case;

/* Column patterns: random spread around an offset, constant, small
 * integers, large offset with a small spread.  gamma cycles through
 * negative, zero, positive and random values. */
static void bn_gen(bt_rng *r, bn_case *bc)
{
    int64_t i, j, n = bc->n, c = bc->c;
    for (j = 0; j < c; j++) {
        int pat = (int)bt_below(r, 5);
        double off = bt_unit(r) * 6.0 - 3.0, sc = exp2(bt_unit(r) * 8.0 - 5.0);
        float cval = (float)(bt_unit(r) * 4.0 - 2.0);
        for (i = 0; i < n; i++) {
            float v;
            switch (pat) {
            case 0: v = cval; break;
            case 1: v = (float)bt_range(r, -3, 3); break;
            case 2: v = (float)(1000.0 + 0.01 * (bt_unit(r) - 0.5)); break;
            default: v = (float)(off + sc * (bt_unit(r) * 2.0 - 1.0)); break;
            }
            bc->x[i * c + j] = v;
            bc->dy[i * c + j] = (float)(bt_unit(r) * 2.0 - 1.0);
        }
        switch (j % 4) {
        case 0: bc->gamma[j] = -1.75f; break;
        case 1: bc->gamma[j] = 0.0f; break;
        case 2: bc->gamma[j] = 0.6f; break;
        default: bc->gamma[j] = (float)(bt_unit(r) * 4.0 - 2.0); break;
        }
        bc->beta[j] = (float)(bt_unit(r) * 2.0 - 1.0);
        bc->rm0[j] = (float)(bt_unit(r) * 2.0 - 1.0);
        bc->ri0[j] = (float)(bt_unit(r) * 3.0 + 0.1);
    }
}

/* Double-precision reference of the training forward, from bnn.h. */
static void ref_bn_train(bnn_bn_kind kind, const bn_case *bc, double eps, double mom,
                         double *y, double *mean_o, double *inv_o, double *sscale_o,
                         double *rm_o, double *ri_o, double *yscale_o)
{
    int64_t i, j, n = bc->n, c = bc->c;
    for (j = 0; j < c; j++) {
        double sum = 0.0, var = 0.0, mean, inv, s2, g2, ys = 0.0;
        for (i = 0; i < n; i++) sum += (double)bc->x[i * c + j];
        mean = sum / (double)n;
        for (i = 0; i < n; i++) {
            double C = (double)bc->x[i * c + j] - mean;
            var += kind == BNN_BN_SHIFT ? ap2_frexp(C) * C : C * C;
        }
        var /= (double)n;
        inv = 1.0 / sqrt(var + eps);
        s2 = ap2_frexp(inv);
        g2 = ap2_frexp((double)bc->gamma[j]);
        for (i = 0; i < n; i++) {
            double C = (double)bc->x[i * c + j] - mean, v;
            if (kind == BNN_BN_STANDARD) v = (double)bc->gamma[j] * C * inv;
            else v = C * s2 * g2;
            y[i * c + j] = v + (double)bc->beta[j];
            if (fabs(v) + fabs((double)bc->beta[j]) > ys) ys = fabs(v) + fabs((double)bc->beta[j]);
        }
        mean_o[j] = mean;
        inv_o[j] = inv;
        sscale_o[j] = kind == BNN_BN_SHIFT ? s2 : inv;
        rm_o[j] = (1.0 - mom) * (double)bc->rm0[j] + mom * mean;
        ri_o[j] = (1.0 - mom) * (double)bc->ri0[j] + mom * inv;
        yscale_o[j] = ys;
    }
}

/* Double reference of the backward from float inputs (saved mean/scale as
 * the library stored them).  *_s receive the cancellation scales. */
static void ref_bn_backward(bnn_bn_kind kind, int64_t n, int64_t c, const float *x,
                            const float *gamma, const float *smean, const float *sscale,
                            const float *dy, double *dx, double *dg, double *db,
                            double *dx_s, double *dg_s, double *db_s)
{
    int64_t i, j;
    for (j = 0; j < c; j++) {
        double mean = smean[j], sc = sscale[j], g, sdy = 0, sady = 0, sxd = 0, sxd_abs = 0,
               sgam = 0, sgam_abs = 0, mdy, k, cmax = 0, dymax = 0;
        g = kind == BNN_BN_SHIFT ? ap2_frexp(gamma[j]) : (double)gamma[j];
        for (i = 0; i < n; i++) {
            double C = (double)x[i * c + j] - mean, d = dy[i * c + j];
            double h = kind == BNN_BN_SHIFT ? ap2_frexp(C) : C * sc; /* Ct or xh */
            sdy += d;
            sady += fabs(d);
            sxd += h * d;
            sxd_abs += fabs(h * d);
            if (kind == BNN_BN_SHIFT) {
                sgam += ap2_frexp(C * sc) * d;
                sgam_abs += fabs(ap2_frexp(C * sc) * d);
            }
            if (fabs(h) > cmax) cmax = fabs(h);
            if (fabs(d) > dymax) dymax = fabs(d);
        }
        mdy = sdy / (double)n;
        /* STANDARD: dx = g sc (dy - mean(dy) - xh mean(dy xh))
         * SHIFT:    dx = AP2(g) sc (dy - mean(dy) - Ct sc^2 mean(Ct dy)) */
        k = kind == BNN_BN_SHIFT ? sc * sc * (sxd / (double)n) : sxd / (double)n;
        for (i = 0; i < n; i++) {
            double C = (double)x[i * c + j] - mean;
            double h = kind == BNN_BN_SHIFT ? ap2_frexp(C) : C * sc;
            dx[i * c + j] = g * sc * ((double)dy[i * c + j] - mdy - h * k);
        }
        dx_s[j] = fabs(g * sc) * (dymax + fabs(mdy) + cmax * fabs(k));
        dg[j] = kind == BNN_BN_SHIFT ? sgam : sxd;
        dg_s[j] = kind == BNN_BN_SHIFT ? sgam_abs : sxd_abs;
        db[j] = sdy;
        db_s[j] = sady;
    }
}

static const char *bn_kind_str(bnn_bn_kind k)
{
    return k == BNN_BN_SHIFT ? "shift" : "standard";
}

static int bn_one_case(bnn_bn_kind kind, int64_t n, int64_t c, float eps, float mom,
                       int with_running, uint64_t tag)
{
    bt_rng r = bt_stream(tag);
    size_t nc = (size_t)(n * c), i;
    int64_t j, ii;
    bn_case bc;
    float *y = bt_alloc(nc * 4), *y2 = bt_alloc(nc * 4), *sm = bt_alloc((size_t)c * 4),
          *ss = bt_alloc((size_t)c * 4), *rm = bt_alloc((size_t)c * 4),
          *ri = bt_alloc((size_t)c * 4), *sm2 = bt_alloc((size_t)c * 4),
          *ss2 = bt_alloc((size_t)c * 4), *rm2 = bt_alloc((size_t)c * 4),
          *ri2 = bt_alloc((size_t)c * 4), *dx = bt_alloc(nc * 4), *dx2 = bt_alloc(nc * 4),
          *dg = bt_alloc((size_t)c * 4), *db = bt_alloc((size_t)c * 4),
          *dg2 = bt_alloc((size_t)c * 4), *db2 = bt_alloc((size_t)c * 4),
          *ye = bt_alloc(nc * 4);
    double *ry = bt_alloc(nc * 8), *rmean = bt_alloc((size_t)c * 8),
           *rinv = bt_alloc((size_t)c * 8), *rss = bt_alloc((size_t)c * 8),
           *rrm = bt_alloc((size_t)c * 8), *rri = bt_alloc((size_t)c * 8),
           *rys = bt_alloc((size_t)c * 8), *rdx = bt_alloc(nc * 8),
           *rdg = bt_alloc((size_t)c * 8), *rdb = bt_alloc((size_t)c * 8),
           *sdx = bt_alloc((size_t)c * 8), *sdg = bt_alloc((size_t)c * 8),
           *sdb = bt_alloc((size_t)c * 8);

    bc.n = n;
    bc.c = c;
    bc.x = bt_alloc(nc * 4);
    bc.dy = bt_alloc(nc * 4);
    bc.gamma = bt_alloc((size_t)c * 4);
    bc.beta = bt_alloc((size_t)c * 4);
    bc.rm0 = bt_alloc((size_t)c * 4);
    bc.ri0 = bt_alloc((size_t)c * 4);
    bn_gen(&r, &bc);

    bt_ctx("bn %s train n=%" PRId64 " c=%" PRId64 " eps=%g momentum=%g running=%d",
           bn_kind_str(kind), n, c, (double)eps, (double)mom, with_running);
    memcpy(rm, bc.rm0, (size_t)c * 4);
    memcpy(ri, bc.ri0, (size_t)c * 4);
    bt_fill_fbits(y, nc, CANARY_F);
    /* with_running: 0 none, 1 both, 2 only the mean (either may be NULL) */
    CHECK_ST(bnn_bn_forward_train(kind, n, c, bc.x, bc.gamma, bc.beta, eps, mom,
                                  with_running ? rm : NULL, with_running == 1 ? ri : NULL, y, sm,
                                  ss),
             BNN_OK);
    ref_bn_train(kind, &bc, (double)eps, (double)mom, ry, rmean, rinv, rss, rrm, rri, rys);
    for (j = 0; j < c; j++) {
        CHECK_MSG(close_to(sm[j], rmean[j], 0), "save_mean[%" PRId64 "] %.9g want %.17g", j,
                  (double)sm[j], rmean[j]);
        if (kind == BNN_BN_SHIFT) {
            CHECK_MSG(same_bits_f(ss[j], (float)rss[j]),
                      "save_scale[%" PRId64 "] %a want AP2(s) = %a (s = %.17g)", j,
                      (double)ss[j], rss[j], rinv[j]);
            CHECK(is_pow2_or_zero(ss[j]));
        } else {
            CHECK_MSG(close_to(ss[j], rss[j], 0), "save_scale[%" PRId64 "] %.9g want %.17g",
                      j, (double)ss[j], rss[j]);
        }
        if (with_running) {
            CHECK_MSG(close_to(rm[j], rrm[j], fabs(bc.rm0[j]) + fabs(rmean[j])),
                      "running_mean[%" PRId64 "] %.9g want %.17g", j, (double)rm[j], rrm[j]);
            if (with_running == 1)
                CHECK_MSG(close_to(ri[j], rri[j], 0),
                          "running_invstd[%" PRId64 "] %.9g want %.17g", j, (double)ri[j], rri[j]);
            else
                CHECK(same_bits_f(ri[j], bc.ri0[j]));
        } else {
            CHECK(same_bits_f(rm[j], bc.rm0[j]) && same_bits_f(ri[j], bc.ri0[j]));
        }
    }
    for (i = 0; i < nc; i++) {
        j = (int64_t)i % c;
        CHECK_MSG(close_to(y[i], ry[i], rys[j]), "y[%zu] (row %" PRId64 " col %" PRId64
                  ") = %.9g want %.17g (gamma %g)", i, (int64_t)i / c, j, (double)y[i],
                  ry[i], (double)bc.gamma[j]);
    }
    /* n = 1 and constant columns: x - mean is exactly 0, so y == beta. */
    for (j = 0; j < c; j++) {
        int constant = 1;
        for (ii = 1; ii < n; ii++)
            if (bc.x[ii * c + j] != bc.x[j]) constant = 0;
        if (!constant) continue;
        for (ii = 0; ii < n; ii++)
            CHECK_MSG(y[ii * c + j] == bc.beta[j], "constant column %" PRId64
                      ": y = %.9g, want beta %.9g", j, (double)y[ii * c + j],
                      (double)bc.beta[j]);
        CHECK(close_to(ss[j], kind == BNN_BN_SHIFT ? ap2_frexp(1.0 / sqrt((double)eps))
                                                   : 1.0 / sqrt((double)eps), 0));
    }

    /* In place: y == x gives the same bits. */
    bt_ctx("bn %s train in place n=%" PRId64 " c=%" PRId64, bn_kind_str(kind), n, c);
    memcpy(y2, bc.x, nc * 4);
    memcpy(rm2, bc.rm0, (size_t)c * 4);
    memcpy(ri2, bc.ri0, (size_t)c * 4);
    CHECK_ST(bnn_bn_forward_train(kind, n, c, y2, bc.gamma, bc.beta, eps, mom,
                                  with_running ? rm2 : NULL, with_running == 1 ? ri2 : NULL, y2,
                                  sm2, ss2),
             BNN_OK);
    CHECK(memcmp(y2, y, nc * 4) == 0);
    CHECK(memcmp(sm2, sm, (size_t)c * 4) == 0 && memcmp(ss2, ss, (size_t)c * 4) == 0);
    CHECK(memcmp(rm2, rm, (size_t)c * 4) == 0 && memcmp(ri2, ri, (size_t)c * 4) == 0);

    /* Backward from the saved statistics. */
    bt_ctx("bn %s backward n=%" PRId64 " c=%" PRId64, bn_kind_str(kind), n, c);
    bt_fill_fbits(dx, nc, CANARY_F);
    CHECK_ST(bnn_bn_backward(kind, n, c, bc.x, bc.gamma, sm, ss, bc.dy, dx, dg, db), BNN_OK);
    ref_bn_backward(kind, n, c, bc.x, bc.gamma, sm, ss, bc.dy, rdx, rdg, rdb, sdx, sdg, sdb);
    for (j = 0; j < c; j++) {
        CHECK_MSG(close_to(dg[j], rdg[j], sdg[j]), "dgamma[%" PRId64 "] %.9g want %.17g", j,
                  (double)dg[j], rdg[j]);
        CHECK_MSG(close_to(db[j], rdb[j], sdb[j]), "dbeta[%" PRId64 "] %.9g want %.17g", j,
                  (double)db[j], rdb[j]);
    }
    for (i = 0; i < nc; i++) {
        j = (int64_t)i % c;
        CHECK_MSG(close_to(dx[i], rdx[i], sdx[j]), "dx[%zu] (row %" PRId64 " col %" PRId64
                  ") = %.9g want %.17g (gamma %g, scale %g)", i, (int64_t)i / c, j,
                  (double)dx[i], rdx[i], (double)bc.gamma[j], sdx[j]);
        if (bc.gamma[j] == 0.0f) CHECK(dx[i] == 0.0f);
        if (n == 1) CHECK_MSG(dx[i] == 0.0f, "n = 1: dx[%zu] = %g", i, (double)dx[i]);
    }
    /* In place: dx == dy. */
    memcpy(dx2, bc.dy, nc * 4);
    CHECK_ST(bnn_bn_backward(kind, n, c, bc.x, bc.gamma, sm, ss, dx2, dx2, dg2, db2), BNN_OK);
    CHECK(memcmp(dx2, dx, nc * 4) == 0);
    CHECK(memcmp(dg2, dg, (size_t)c * 4) == 0 && memcmp(db2, db, (size_t)c * 4) == 0);

    /* Eval forward with the running statistics before the call. */
    bt_ctx("bn %s eval n=%" PRId64 " c=%" PRId64, bn_kind_str(kind), n, c);
    CHECK_ST(bnn_bn_forward_eval(kind, n, c, bc.x, bc.gamma, bc.beta, bc.rm0, bc.ri0, ye),
             BNN_OK);
    for (i = 0; i < nc; i++) {
        double want, C, sc;
        j = (int64_t)i % c;
        C = (double)bc.x[i] - (double)bc.rm0[j];
        if (kind == BNN_BN_STANDARD)
            sc = (double)bc.gamma[j] * (double)bc.ri0[j];
        else
            sc = ap2_frexp(bc.ri0[j]) * ap2_frexp(bc.gamma[j]);
        want = C * sc + (double)bc.beta[j];
        CHECK_MSG(close_to(ye[i], want, fabs(C * sc) + fabs((double)bc.beta[j])),
                  "eval y[%zu] = %.9g want %.17g", i, (double)ye[i], want);
    }
    memcpy(y2, bc.x, nc * 4);
    CHECK_ST(bnn_bn_forward_eval(kind, n, c, y2, bc.gamma, bc.beta, bc.rm0, bc.ri0, y2),
             BNN_OK);
    CHECK(memcmp(y2, ye, nc * 4) == 0);

    free(y); free(y2); free(sm); free(ss); free(rm); free(ri); free(sm2); free(ss2);
    free(rm2); free(ri2); free(dx); free(dx2); free(dg); free(db); free(dg2); free(db2);
    free(ye); free(ry); free(rmean); free(rinv); free(rss); free(rrm); free(rri); free(rys);
    free(rdx); free(rdg); free(rdb); free(sdx); free(sdg); free(sdb);
    free(bc.x); free(bc.dy); free(bc.gamma); free(bc.beta); free(bc.rm0); free(bc.ri0);
    return 0;
}

static int test_bn_cases(void)
{
    static const int64_t ns[] = {1, 2, 3, 7, 64, 257};
    static const int64_t cs[] = {1, 4, 9};
    static const float moms[] = {0.0f, 0.1f, 1.0f};
    int kind, a, b, m;
    uint64_t tag = 1000;
    for (kind = 0; kind < 2; kind++)
        for (a = 0; a < 6; a++)
            for (b = 0; b < 3; b++)
                for (m = 0; m < 3; m++) {
                    float eps = (m == 1) ? 1e-3f : 1e-5f;
                    RUN(bn_one_case((bnn_bn_kind)kind, ns[a], cs[b], eps, moms[m],
                                    m == 2 ? 0 : m + 1, tag++));
                }
    printf("  batch norm (standard, shift): ok\n");
    return 0;
}

/* An explicit small SHIFT case with numbers worked out by hand: x column
 * {1, 2, 3, 6}: mean 3, C = {-2,-1,0,3}, AP2(C) = {-2,-1,0,4},
 * var = (4 + 1 + 0 + 12)/4 = 4.25, s = 1/sqrt(4.25 + eps) ~ 0.4851 -> 0.5,
 * gamma 3 -> AP2 4, beta 0.25: y = C * 0.5 * 4 + 0.25 = 2C + 0.25. */
static int test_bn_shift_by_hand(void)
{
    const float x[4] = {1, 2, 3, 6}, g = 3.0f, bt = 0.25f;
    float y[4], sm, ss, rm = 1.0f, ri = 2.0f, dy[4] = {1, 0, 0, 0}, dx[4], dg, db;
    int i;
    bt_ctx("bn shift by hand");
    CHECK_ST(bnn_bn_forward_train(BNN_BN_SHIFT, 4, 1, x, &g, &bt, 1e-5f, 0.5f, &rm, &ri, y,
                                  &sm, &ss),
             BNN_OK);
    CHECK(sm == 3.0f);
    CHECK(ss == 0.5f);
    CHECK(close_to(rm, 0.5 * 1.0 + 0.5 * 3.0, 0));
    CHECK(close_to(ri, 0.5 * 2.0 + 0.5 / sqrt(4.25 + (double)1e-5f), 0));
    for (i = 0; i < 4; i++) CHECK_MSG(y[i] == 2.0f * (x[i] - 3.0f) + 0.25f, "y[%d]=%g", i,
                                      (double)y[i]);
    /* backward with dy = e0: mean(dy) = 1/4, mean(Ct dy) = -2/4,
     * dx_i = 4 * 0.5 * (dy_i - 0.25 - Ct_i * 0.25 * (-0.5)),
     * dgamma = AP2(C0 * 0.5) * 1 = AP2(-1) = -1, dbeta = 1. */
    CHECK_ST(bnn_bn_backward(BNN_BN_SHIFT, 4, 1, x, &g, &sm, &ss, dy, dx, &dg, &db), BNN_OK);
    {
        const double ct[4] = {-2, -1, 0, 4};
        for (i = 0; i < 4; i++) {
            double want = 2.0 * ((double)dy[i] - 0.25 + ct[i] * 0.125);
            CHECK_MSG(dx[i] == (float)want, "dx[%d]=%g want %g", i, (double)dx[i], want);
        }
    }
    CHECK(dg == -1.0f);
    CHECK(db == 1.0f);
    printf("  batch norm shift, worked example: ok\n");
    return 0;
}

/* ---- gradient check of the STANDARD backward ------------------------ */

/* L(x, gamma, beta) = sum y * R with y from the double reference. */
static double ref_loss(int64_t n, int64_t c, const double *x, const double *gamma,
                       const double *beta, double eps, const double *R)
{
    int64_t i, j;
    double L = 0.0;
    for (j = 0; j < c; j++) {
        double s = 0, v = 0, mean, inv;
        for (i = 0; i < n; i++) s += x[i * c + j];
        mean = s / (double)n;
        for (i = 0; i < n; i++) v += (x[i * c + j] - mean) * (x[i * c + j] - mean);
        inv = 1.0 / sqrt(v / (double)n + eps);
        for (i = 0; i < n; i++)
            L += R[i * c + j] * (gamma[j] * (x[i * c + j] - mean) * inv + beta[j]);
    }
    return L;
}

/* L with y from the library's float32 forward (sum in double). */
static double lib_loss(int64_t n, int64_t c, const float *x, const float *gamma,
                       const float *beta, float eps, const float *R, float *ybuf,
                       float *sm, float *ss)
{
    int64_t i;
    double L = 0.0;
    if (bnn_bn_forward_train(BNN_BN_STANDARD, n, c, x, gamma, beta, eps, 0.0f, NULL, NULL,
                             ybuf, sm, ss) != BNN_OK)
        return NAN;
    for (i = 0; i < n * c; i++) L += (double)R[i] * (double)ybuf[i];
    return L;
}

static int test_bn_gradcheck(void)
{
    int trial;
    for (trial = 0; trial < 6; trial++) {
        bt_rng r = bt_stream(0x96ad + (uint64_t)trial);
        int64_t n = 2 + (int64_t)bt_below(&r, 14), c = 1 + (int64_t)bt_below(&r, 4), i, j;
        size_t nc = (size_t)(n * c);
        float eps = trial % 2 ? 1e-5f : 0.01f;
        double *xd = bt_alloc(nc * 8), *gd = bt_alloc((size_t)c * 8),
               *bd = bt_alloc((size_t)c * 8), *R = bt_alloc(nc * 8), *rdx = bt_alloc(nc * 8),
               *rdg = bt_alloc((size_t)c * 8), *rdb = bt_alloc((size_t)c * 8),
               *s1 = bt_alloc((size_t)c * 8), *s2 = bt_alloc((size_t)c * 8),
               *s3 = bt_alloc((size_t)c * 8);
        float *x = bt_alloc(nc * 4), *g = bt_alloc((size_t)c * 4), *b = bt_alloc((size_t)c * 4),
              *Rf = bt_alloc(nc * 4), *y = bt_alloc(nc * 4), *sm = bt_alloc((size_t)c * 4),
              *ss = bt_alloc((size_t)c * 4), *dx = bt_alloc(nc * 4),
              *dg = bt_alloc((size_t)c * 4), *db = bt_alloc((size_t)c * 4),
              *tsm = bt_alloc((size_t)c * 4), *tss = bt_alloc((size_t)c * 4);
        double gnorm = 0.0;

        /* well spread columns (stratified in [-1, 3]) so that differences
         * with a fixed step stay in the linear regime */
        for (i = 0; i < (int64_t)nc; i++) {
            x[i] = (float)(-1.0 + 4.0 * ((double)(i / c) + 0.1 + 0.8 * bt_unit(&r)) / (double)n);
            Rf[i] = (float)(bt_unit(&r) * 2.0 - 1.0);
            xd[i] = x[i];
            R[i] = Rf[i];
        }
        for (j = 0; j < c; j++) {
            g[j] = (float)(j % 2 ? -(0.5 + bt_unit(&r)) : 0.5 + bt_unit(&r));
            b[j] = (float)(bt_unit(&r) - 0.5);
            gd[j] = g[j];
            bd[j] = b[j];
        }
        bt_ctx("bn gradcheck trial %d n=%" PRId64 " c=%" PRId64 " eps=%g", trial, n, c,
               (double)eps);

        /* (1) the double reference backward vs central differences of the
         * double reference forward (dy = R). */
        {
            double *smd = bt_alloc((size_t)c * 8), *ssd = bt_alloc((size_t)c * 8);
            double *ddx = bt_alloc(nc * 8);
            /* reference backward in double straight from xd (not via floats) */
            for (j = 0; j < c; j++) {
                double s = 0, v = 0, mean, inv, sdy = 0, sxd = 0;
                for (i = 0; i < n; i++) s += xd[i * c + j];
                mean = s / (double)n;
                for (i = 0; i < n; i++) v += (xd[i * c + j] - mean) * (xd[i * c + j] - mean);
                inv = 1.0 / sqrt(v / (double)n + (double)eps);
                for (i = 0; i < n; i++) {
                    sdy += R[i * c + j];
                    sxd += R[i * c + j] * (xd[i * c + j] - mean) * inv;
                }
                for (i = 0; i < n; i++)
                    ddx[i * c + j] = gd[j] * inv *
                                     (R[i * c + j] - sdy / (double)n -
                                      (xd[i * c + j] - mean) * inv * sxd / (double)n);
                smd[j] = mean;
                ssd[j] = inv;
                s1[j] = sxd; /* dgamma */
                s2[j] = sdy; /* dbeta */
            }
            for (i = 0; i < (int64_t)nc; i++) {
                double h = 1e-6, save = xd[i], Lp, Lm, num;
                xd[i] = save + h;
                Lp = ref_loss(n, c, xd, gd, bd, (double)eps, R);
                xd[i] = save - h;
                Lm = ref_loss(n, c, xd, gd, bd, (double)eps, R);
                xd[i] = save;
                num = (Lp - Lm) / (2 * h);
                CHECK_MSG(fabs(num - ddx[i]) <= 1e-6 * (1.0 + fabs(ddx[i])),
                          "reference dx[%" PRId64 "] %.12g vs numerical %.12g", i, ddx[i], num);
            }
            for (j = 0; j < c; j++) {
                double h = 1e-6, save = gd[j], Lp, Lm;
                gd[j] = save + h;
                Lp = ref_loss(n, c, xd, gd, bd, (double)eps, R);
                gd[j] = save - h;
                Lm = ref_loss(n, c, xd, gd, bd, (double)eps, R);
                gd[j] = save;
                CHECK(fabs((Lp - Lm) / (2 * h) - s1[j]) <= 1e-6 * (1.0 + fabs(s1[j])));
                save = bd[j];
                bd[j] = save + h;
                Lp = ref_loss(n, c, xd, gd, bd, (double)eps, R);
                bd[j] = save - h;
                Lm = ref_loss(n, c, xd, gd, bd, (double)eps, R);
                bd[j] = save;
                CHECK(fabs((Lp - Lm) / (2 * h) - s2[j]) <= 1e-6 * (1.0 + fabs(s2[j])));
            }
            free(smd); free(ssd);

            /* (2) the library backward vs this reference, with the library's
             * saved statistics (float) as inputs. */
            CHECK_ST(bnn_bn_forward_train(BNN_BN_STANDARD, n, c, x, g, b, eps, 0.0f, NULL, NULL,
                                          y, sm, ss),
                     BNN_OK);
            CHECK_ST(bnn_bn_backward(BNN_BN_STANDARD, n, c, x, g, sm, ss, Rf, dx, dg, db),
                     BNN_OK);
            ref_bn_backward(BNN_BN_STANDARD, n, c, x, g, sm, ss, Rf, rdx, rdg, rdb, s1, s2, s3);
            for (i = 0; i < (int64_t)nc; i++) {
                CHECK_MSG(close_to(dx[i], rdx[i], s1[i % c]), "dx[%" PRId64 "] %.9g ref %.17g",
                          i, (double)dx[i], rdx[i]);
                /* the float-stats reference vs the pure double one */
                CHECK_MSG(fabs(rdx[i] - ddx[i]) <= 1e-5 * (1.0 + fabs(ddx[i])),
                          "dx ref from float stats %.12g vs double %.12g", rdx[i], ddx[i]);
                if (fabs(dx[i]) > gnorm) gnorm = fabs(dx[i]);
            }
            for (j = 0; j < c; j++) {
                CHECK(close_to(dg[j], rdg[j], s2[j]));
                CHECK(close_to(db[j], rdb[j], s3[j]));
            }
            free(ddx);
        }

        /* (3) the library backward vs central differences of the library's
         * own float32 forward (loose: float32 noise / h). */
        for (i = 0; i < (int64_t)nc; i++) {
            float save = x[i], xp = (float)(save + 0x1p-7), xm = (float)(save - 0x1p-7);
            double Lp, Lm, num;
            x[i] = xp;
            Lp = lib_loss(n, c, x, g, b, eps, Rf, y, tsm, tss);
            x[i] = xm;
            Lm = lib_loss(n, c, x, g, b, eps, Rf, y, tsm, tss);
            x[i] = save;
            num = (Lp - Lm) / ((double)xp - (double)xm);
            CHECK_MSG(fabs(num - dx[i]) <= 2e-3 * (gnorm + 1.0),
                      "library dx[%" PRId64 "] %.9g vs numerical (float forward) %.9g", i,
                      (double)dx[i], num);
        }
        for (j = 0; j < c; j++) {
            float save = g[j];
            double Lp, Lm, num;
            g[j] = save + 0x1p-7f;
            Lp = lib_loss(n, c, x, g, b, eps, Rf, y, tsm, tss);
            g[j] = save - 0x1p-7f;
            Lm = lib_loss(n, c, x, g, b, eps, Rf, y, tsm, tss);
            g[j] = save;
            num = (Lp - Lm) / (2 * 0x1p-7);
            CHECK_MSG(fabs(num - dg[j]) <= 1e-3 * (1.0 + fabs(dg[j])),
                      "dgamma[%" PRId64 "] %.9g vs numerical %.9g", j, (double)dg[j], num);
            save = b[j];
            b[j] = save + 0x1p-7f;
            Lp = lib_loss(n, c, x, g, b, eps, Rf, y, tsm, tss);
            b[j] = save - 0x1p-7f;
            Lm = lib_loss(n, c, x, g, b, eps, Rf, y, tsm, tss);
            b[j] = save;
            num = (Lp - Lm) / (2 * 0x1p-7);
            CHECK_MSG(fabs(num - db[j]) <= 1e-3 * (1.0 + fabs(db[j])),
                      "dbeta[%" PRId64 "] %.9g vs numerical %.9g", j, (double)db[j], num);
        }
        free(xd); free(gd); free(bd); free(R); free(rdx); free(rdg); free(rdb); free(s1);
        free(s2); free(s3); free(x); free(g); free(b); free(Rf); free(y); free(sm); free(ss);
        free(dx); free(dg); free(db); free(tsm); free(tss);
    }
    printf("  batch norm standard backward gradient check: ok\n");
    return 0;
}

static int test_bn_errors(void)
{
    float x[6] = {1, 2, 3, 4, 5, 6}, g[2] = {1, -1}, b[2] = {0, 0.5f}, rm[2] = {0, 0},
          ri[2] = {1, 1}, y[6], sm[2], ss[2], dy[6] = {1, 1, 1, 1, 1, 1}, dx[6], dg[2], db[2];
    int i, kind;
    static const float bad_eps[] = {0.0f, -1e-5f, NAN, INFINITY};
    static const float bad_mom[] = {-0.1f, 1.1f, NAN};
#define BN_UNTOUCHED()                                                                  \
    do {                                                                                \
        int q_;                                                                         \
        for (q_ = 0; q_ < 6; q_++) {                                                    \
            CHECK_MSG(bt_f2u(y[q_]) == CANARY_F, "y[%d] written", q_);                  \
            CHECK_MSG(bt_f2u(dx[q_]) == CANARY_F, "dx[%d] written", q_);                \
        }                                                                               \
        for (q_ = 0; q_ < 2; q_++) {                                                    \
            CHECK(bt_f2u(sm[q_]) == CANARY_F && bt_f2u(ss[q_]) == CANARY_F);            \
            CHECK(bt_f2u(dg[q_]) == CANARY_F && bt_f2u(db[q_]) == CANARY_F);            \
            CHECK(rm[q_] == 0.0f && ri[q_] == 1.0f);                                    \
        }                                                                               \
    } while (0)
    bt_fill_fbits(y, 6, CANARY_F);
    bt_fill_fbits(dx, 6, CANARY_F);
    bt_fill_fbits(sm, 2, CANARY_F);
    bt_fill_fbits(ss, 2, CANARY_F);
    bt_fill_fbits(dg, 2, CANARY_F);
    bt_fill_fbits(db, 2, CANARY_F);
    for (kind = 0; kind < 2; kind++) {
        bnn_bn_kind k = (bnn_bn_kind)kind;
        bt_ctx("bn errors kind %s", bn_kind_str(k));
        CHECK_ST(bnn_bn_forward_train(k, 3, 2, NULL, g, b, 1e-5f, 0.1f, rm, ri, y, sm, ss),
                 BNN_ERR_NULL);
        CHECK_ST(bnn_bn_forward_train(k, 3, 2, x, NULL, b, 1e-5f, 0.1f, rm, ri, y, sm, ss),
                 BNN_ERR_NULL);
        CHECK_ST(bnn_bn_forward_train(k, 3, 2, x, g, NULL, 1e-5f, 0.1f, rm, ri, y, sm, ss),
                 BNN_ERR_NULL);
        CHECK_ST(bnn_bn_forward_train(k, 3, 2, x, g, b, 1e-5f, 0.1f, rm, ri, NULL, sm, ss),
                 BNN_ERR_NULL);
        CHECK_ST(bnn_bn_forward_train(k, 3, 2, x, g, b, 1e-5f, 0.1f, rm, ri, y, NULL, ss),
                 BNN_ERR_NULL);
        CHECK_ST(bnn_bn_forward_train(k, 3, 2, x, g, b, 1e-5f, 0.1f, rm, ri, y, sm, NULL),
                 BNN_ERR_NULL);
        CHECK_ST(bnn_bn_forward_train(k, 0, 2, x, g, b, 1e-5f, 0.1f, rm, ri, y, sm, ss),
                 BNN_ERR_SHAPE);
        CHECK_ST(bnn_bn_forward_train(k, -1, 2, x, g, b, 1e-5f, 0.1f, rm, ri, y, sm, ss),
                 BNN_ERR_SHAPE);
        CHECK_ST(bnn_bn_forward_train(k, 3, -1, x, g, b, 1e-5f, 0.1f, rm, ri, y, sm, ss),
                 BNN_ERR_SHAPE);
        for (i = 0; i < 4; i++)
            CHECK_ST(bnn_bn_forward_train(k, 3, 2, x, g, b, bad_eps[i], 0.1f, rm, ri, y, sm, ss),
                     BNN_ERR_INVALID);
        for (i = 0; i < 3; i++)
            CHECK_ST(bnn_bn_forward_train(k, 3, 2, x, g, b, 1e-5f, bad_mom[i], rm, ri, y, sm, ss),
                     BNN_ERR_INVALID);
        CHECK_ST(bnn_bn_forward_eval(k, 3, 2, NULL, g, b, rm, ri, y), BNN_ERR_NULL);
        CHECK_ST(bnn_bn_forward_eval(k, 3, 2, x, g, b, NULL, ri, y), BNN_ERR_NULL);
        CHECK_ST(bnn_bn_forward_eval(k, 3, 2, x, g, b, rm, NULL, y), BNN_ERR_NULL);
        CHECK_ST(bnn_bn_forward_eval(k, 3, 2, x, g, b, rm, ri, NULL), BNN_ERR_NULL);
        CHECK_ST(bnn_bn_forward_eval(k, 3, -2, x, g, b, rm, ri, y), BNN_ERR_SHAPE);
        CHECK_ST(bnn_bn_forward_eval(k, -3, 2, x, g, b, rm, ri, y), BNN_ERR_SHAPE);
        CHECK_ST(bnn_bn_backward(k, 3, 2, NULL, g, sm, ss, dy, dx, dg, db), BNN_ERR_NULL);
        CHECK_ST(bnn_bn_backward(k, 3, 2, x, g, NULL, ss, dy, dx, dg, db), BNN_ERR_NULL);
        CHECK_ST(bnn_bn_backward(k, 3, 2, x, g, sm, ss, NULL, dx, dg, db), BNN_ERR_NULL);
        CHECK_ST(bnn_bn_backward(k, 3, 2, x, g, sm, ss, dy, NULL, dg, db), BNN_ERR_NULL);
        CHECK_ST(bnn_bn_backward(k, 3, 2, x, g, sm, ss, dy, dx, NULL, db), BNN_ERR_NULL);
        CHECK_ST(bnn_bn_backward(k, 3, 2, x, g, sm, ss, dy, dx, dg, NULL), BNN_ERR_NULL);
        CHECK_ST(bnn_bn_backward(k, 3, -2, x, g, sm, ss, dy, dx, dg, db), BNN_ERR_SHAPE);
        CHECK_ST(bnn_bn_backward(k, -1, 2, x, g, sm, ss, dy, dx, dg, db), BNN_ERR_SHAPE);
        BN_UNTOUCHED();
    }
    bt_ctx("bn errors: unknown kind");
    CHECK_ST(bnn_bn_forward_train((bnn_bn_kind)2, 3, 2, x, g, b, 1e-5f, 0.1f, rm, ri, y, sm, ss),
             BNN_ERR_INVALID);
    CHECK_ST(bnn_bn_forward_train((bnn_bn_kind)-1, 3, 2, x, g, b, 1e-5f, 0.1f, rm, ri, y, sm,
                                  ss),
             BNN_ERR_INVALID);
    CHECK_ST(bnn_bn_forward_eval((bnn_bn_kind)2, 3, 2, x, g, b, rm, ri, y), BNN_ERR_INVALID);
    CHECK_ST(bnn_bn_backward((bnn_bn_kind)7, 3, 2, x, g, sm, ss, dy, dx, dg, db),
             BNN_ERR_INVALID);
    BN_UNTOUCHED();
    /* momentum exactly 0 and 1 and c == 0 are valid */
    CHECK_ST(bnn_bn_forward_train(BNN_BN_STANDARD, 3, 0, x, g, b, 1e-5f, 1.0f, rm, ri, y, sm,
                                  ss),
             BNN_OK);
    CHECK_ST(bnn_bn_forward_eval(BNN_BN_STANDARD, 0, 2, x, g, b, rm, ri, y), BNN_OK);
    BN_UNTOUCHED();
#undef BN_UNTOUCHED
    printf("  batch norm errors: ok\n");
    return 0;
}

/* ------------------------------------------------------------------ */
/* Optimizers                                                           */
/* ------------------------------------------------------------------ */

typedef struct opt_cfg {
    const char *name;
    int kind;
    double lr, b1, b2, eps, lr_scale, clip;
} opt_cfg;

/* One step of the reference, written from the header; state stored as
 * float between steps, arithmetic in double. */
static void ref_opt(const opt_cfg *o, int64_t t, int64_t n, float *p, const float *g, float *m,
                    float *v)
{
    int64_t i;
    for (i = 0; i < n; i++) {
        double gi = g[i], mi, vi, w;
        mi = o->b1 * (double)m[i] + (1.0 - o->b1) * gi;
        if (o->kind == BNN_OPT_ADAM) {
            vi = o->b2 * (double)v[i] + (1.0 - o->b2) * gi * gi;
            w = (double)p[i] - o->lr_scale * o->lr * sqrt(1.0 - pow(o->b2, (double)t)) /
                                   (1.0 - pow(o->b1, (double)t)) * mi / (sqrt(vi) + o->eps);
        } else if (o->kind == BNN_OPT_ADAMAX) {
            vi = o->b2 * (double)v[i] > fabs(gi) ? o->b2 * (double)v[i] : fabs(gi);
            w = (double)p[i] - o->lr_scale * o->lr / (1.0 - pow(o->b1, (double)t)) * mi /
                                   (vi + o->eps);
        } else {
            vi = o->b2 * (double)v[i] > fabs(gi) ? o->b2 * (double)v[i] : fabs(gi);
            vi = ap2_frexp(vi) + o->eps;
            w = (double)p[i] -
                o->lr_scale * ap2_frexp(o->lr / (1.0 - pow(o->b1, (double)t))) *
                    (vi > 0 ? mi / vi : 0.0);
        }
        if (o->clip > 0) {
            if (w > o->clip) w = o->clip;
            if (w < -o->clip) w = -o->clip;
        }
        m[i] = (float)mi;
        v[i] = (float)vi;
        p[i] = (float)w;
    }
}

static bnn_opt_params opt_params(const opt_cfg *o, int64_t t)
{
    bnn_opt_params p;
    memset(&p, 0, sizeof p);
    p.kind = o->kind;
    p.t = t;
    p.lr = o->lr;
    p.beta1 = o->b1;
    p.beta2 = o->b2;
    p.eps = o->eps;
    p.lr_scale = o->lr_scale;
    p.clip = o->clip;
    return p;
}

static int opt_run(const opt_cfg *o, int gradmode, uint64_t tag)
{
    enum { N = 257, T = 5 };
    bt_rng r = bt_stream(tag);
    float p[N], m[N], v[N], g[N], rp[N], rmm[N], rv[N], pm[N], pv[N];
    int64_t t, i;
    double ustep = o->lr * o->lr_scale * 20.0; /* > any single update here */

    for (i = 0; i < N; i++) {
        p[i] = rp[i] = (float)(bt_unit(&r) * 2.0 - 1.0);
        if (i % 17 == 0) p[i] = rp[i] = (i % 34) ? 0.999f : -0.999f; /* near the clip */
        m[i] = v[i] = rmm[i] = rv[i] = 0.0f;
    }
    for (t = 1; t <= T; t++) {
        bnn_opt_params pp = opt_params(o, t);
        for (i = 0; i < N; i++) {
            switch (gradmode) {
            case 0: g[i] = (float)((bt_unit(&r) * 2.0 - 1.0) * exp2(bt_unit(&r) * 12 - 8)); break;
            case 1: g[i] = 0.0f; break;
            default: /* push the near-clip entries outwards, hard */
                g[i] = (i % 17 == 0) ? ((i % 34) ? -5.0f : 5.0f)
                                     : (float)(bt_unit(&r) * 2.0 - 1.0);
                break;
            }
        }
        memcpy(pm, m, sizeof m);
        memcpy(pv, v, sizeof v);
        bt_ctx("opt %s kind=%d gradmode=%d t=%" PRId64 " lr=%g b1=%g b2=%g eps=%g lr_scale=%g "
               "clip=%g",
               o->name, o->kind, gradmode, t, o->lr, o->b1, o->b2, o->eps, o->lr_scale, o->clip);
        CHECK_ST(bnn_opt_step(&pp, N, p, g, m, v), BNN_OK);
        ref_opt(o, t, N, rp, g, rmm, rv);
        for (i = 0; i < N; i++) {
            double qm = o->b1 * (double)pm[i] + (1.0 - o->b1) * (double)g[i];
            CHECK_MSG(close_to(p[i], rp[i], ustep),
                      "param[%" PRId64 "] %.9g want %.9g (g %g)", i, (double)p[i],
                      (double)rp[i], (double)g[i]);
            CHECK_MSG(close_to(m[i], rmm[i], fabs(qm)), "m[%" PRId64 "] %.9g want %.9g", i,
                      (double)m[i], (double)rmm[i]);
            CHECK_MSG(close_to(v[i], rv[i], 0), "v[%" PRId64 "] %.9g want %.9g", i,
                      (double)v[i], (double)rv[i]);
            /* m from the library's own previous state: exactly one rounding */
            CHECK_MSG(m[i] == (float)qm, "m[%" PRId64 "] %a want %a", i, (double)m[i], qm);
            if (o->kind != BNN_OPT_ADAM) {
                double mx = o->b2 * (double)pv[i] > fabs((double)g[i]) ? o->b2 * (double)pv[i]
                                                                     : fabs((double)g[i]);
                double want = o->kind == BNN_OPT_SHIFT_ADAMAX ? ap2_frexp(mx) + o->eps : mx;
                /* the state itself: AdaMax max, shift AdaMax AP2(max) + eps */
                CHECK_MSG(same_bits_f(v[i], (float)want),
                          "v[%" PRId64 "] = %a, want %a (prev v %a, g %a)", i, (double)v[i],
                          want, (double)pv[i], (double)g[i]);
                if (o->kind == BNN_OPT_SHIFT_ADAMAX && o->eps == 0.0)
                    CHECK_MSG(is_pow2_or_zero(v[i]), "v[%" PRId64 "] = %a not a power of 2",
                              i, (double)v[i]);
            }
            if (o->clip > 0)
                CHECK_MSG(fabs(p[i]) <= o->clip, "param[%" PRId64 "] %g beyond clip %g", i,
                          (double)p[i], o->clip);
            if (gradmode == 1) {
                CHECK(m[i] == 0.0f);
                if (o->kind != BNN_OPT_SHIFT_ADAMAX) CHECK(v[i] == 0.0f);
            }
        }
        if (gradmode == 2 && o->clip > 0) {
            for (i = 0; i < N; i += 17)
                CHECK_MSG(p[i] == (float)((i % 34) ? o->clip : -o->clip),
                          "param[%" PRId64 "] = %.9g, want clipped to %g", i, (double)p[i],
                          (i % 34) ? o->clip : -o->clip);
        }
        if (gradmode == 2 && o->clip == 0 && t == T) {
            for (i = 0; i < N; i += 17)
                CHECK_MSG(fabs(p[i]) > 0.999f, "unclipped param[%" PRId64 "] = %g", i,
                          (double)p[i]);
        }
    }
    if (gradmode == 1) {
        /* zero gradients never move the parameters */
        bt_rng r2 = bt_stream(tag);
        for (i = 0; i < N; i++) {
            float p0 = (float)(bt_unit(&r2) * 2.0 - 1.0);
            if (i % 17 == 0) p0 = (i % 34) ? 0.999f : -0.999f;
            if (o->clip > 0 && fabs(p0) > o->clip) p0 = (float)(p0 > 0 ? o->clip : -o->clip);
            CHECK_MSG(p[i] == p0, "zero grad moved param[%" PRId64 "]: %g -> %g", i,
                      (double)p0, (double)p[i]);
        }
    }
    return 0;
}

static int test_opt(void)
{
    static const opt_cfg cfgs[] = {
        /* Torch defaults of the authors' code */
        {"adam torch", BNN_OPT_ADAM, 0.003, 0.9, 0.999, 1e-8, 1.0, 0.0},
        {"adamax torch", BNN_OPT_ADAMAX, 0.002, 0.9, 0.999, 1e-8, 1.0, 0.0},
        {"shift_adamax torch", BNN_OPT_SHIFT_ADAMAX, 0x1p-6, 0.9, 0.999, 0x1p-27, 1.0, 0.0},
        /* the paper's constants */
        {"adam paper", BNN_OPT_ADAM, 0x1p-10, 0.875, 1.0 - 0x1p-10, 1e-8, 1.0, 0.0},
        {"adamax paper", BNN_OPT_ADAMAX, 0x1p-10, 0.875, 1.0 - 0x1p-10, 1e-8, 1.0, 0.0},
        {"shift_adamax paper", BNN_OPT_SHIFT_ADAMAX, 0x1p-10, 0.875, 1.0 - 0x1p-10, 0x1p-27, 1.0,
         0.0},
        {"shift_adamax paper eps0", BNN_OPT_SHIFT_ADAMAX, 0x1p-10, 0.875, 1.0 - 0x1p-10, 0.0,
         1.0, 0.0},
        /* Glorot lr_scale and clipping */
        {"adam scaled clip", BNN_OPT_ADAM, 0.003, 0.9, 0.999, 1e-8, 0.37, 1.0},
        {"adamax scaled clip", BNN_OPT_ADAMAX, 0.002, 0.9, 0.999, 1e-8, 3.0, 1.0},
        {"shift_adamax scaled clip", BNN_OPT_SHIFT_ADAMAX, 0x1p-6, 0.9, 0.999, 0x1p-27, 0.37,
         1.0},
        {"shift_adamax paper scaled clip", BNN_OPT_SHIFT_ADAMAX, 0x1p-10, 0.875, 1.0 - 0x1p-10,
         0x1p-27, 6.5, 1.0},
        {"adam big lr clip 0.5", BNN_OPT_ADAM, 0.1, 0.9, 0.999, 1e-8, 2.0, 0.5},
        {"shift_adamax big lr clip", BNN_OPT_SHIFT_ADAMAX, 0.1, 0.9, 0.999, 0x1p-27, 2.0, 1.0},
        {"adamax big lr no clip", BNN_OPT_ADAMAX, 0.1, 0.9, 0.999, 1e-8, 2.0, 0.0},
    };
    int i, mode;
    for (i = 0; i < (int)(sizeof cfgs / sizeof cfgs[0]); i++)
        for (mode = 0; mode < 3; mode++) {
            /* zero gradients with eps = 0 would be 0/0 for Adam/AdaMax */
            if (mode == 1 && cfgs[i].eps == 0.0 && cfgs[i].kind != BNN_OPT_SHIFT_ADAMAX) continue;
            RUN(opt_run(&cfgs[i], mode, 0x0b7 + (uint64_t)i * 8 + (uint64_t)mode));
        }
    printf("  optimizers (adam, adamax, shift adamax; t = 1..5): ok\n");
    return 0;
}

/* Large batch norms split features over threads: every thread count gives
 * the one-thread outputs, running statistics and gradients, bit for bit. */
/* The shift backward by its definition, in its order: per feature, sums
 * over rows in order in double of dy, AP2(d) dy and AP2(d sc) dy with
 * d = x - mean; dgamma, dbeta those sums; dx = AP2(gamma) sc (dy - mean(dy)
 * - AP2(d) sc^2 mean(AP2(d) dy)).  The kernel must give these bits (its
 * vectorized sums use dgamma = sc * sum AP2(d) dy where that is exact). */
static void exact_bn_shift_backward(int64_t n, int64_t c, const float *x, const float *gamma,
                                    const float *sm, const float *ss, const float *dy,
                                    float *dx, float *dg, float *db)
{
    int64_t i, j;
    for (j = 0; j < c; j++) {
        double mean = sm[j], sc = ss[j], sg = 0.0, sgx = 0.0, sdg = 0.0, k2, gsc;
        for (i = 0; i < n; i++) {
            double d = x[i * c + j] - mean, gi = dy[i * c + j];
            sg += gi;
            sgx += ap2_frexp(d) * gi;
            sdg += ap2_frexp(d * sc) * gi;
        }
        dg[j] = (float)sdg;
        db[j] = (float)sg;
        k2 = sc * sc * (sgx / (double)n);
        gsc = ap2_frexp(gamma[j]) * sc;
        sg /= (double)n;
        for (i = 0; i < n; i++) {
            double d = x[i * c + j] - mean;
            dx[i * c + j] = (float)(gsc * (dy[i * c + j] - sg - ap2_frexp(d) * k2));
        }
    }
}

static int same_or_nan(float a, float b)
{
    return same_bits_f(a, b) || (isnan(a) && isnan(b));
}

/* Bitwise against the definition: two chunks of features, clean data, a NaN
 * and an infinity in x and in dy (the exact loop of their chunk), and a
 * saved scale that is not a power of two (a caller's own statistics); on
 * every ISA table, whose shift passes (bn_shift_*) must also give the
 * reference table's forward bit for bit.  C = 300 and 301: chunks of 256
 * and a ragged 44 or 45 features (the kernels' 16-, 8-, 4-wide and scalar
 * parts). */
static int bn_shift_exact_body(bnn_isa isa, void *ctx)
{
    enum { N = 37, CMAX = 301 };
    float *buf = (float *)malloc(sizeof(float) * ((size_t)N * CMAX * 6 + (size_t)CMAX * 16));
    float *x, *dy, *dx, *dxr, *y, *yr, *g, *be, *sm, *ss, *smr, *ssr, *dg, *db, *dgr, *dbr;
    float *rm, *ri, *rmr, *rir;          /* running statistics: the unrounded 1/std */
    bt_rng r = bt_stream(0x5b1f);
    int64_t i, j, C;
    int v;
    (void)ctx;
    CHECK(buf != NULL);
    x = buf; dy = x + N * CMAX; dx = dy + N * CMAX; dxr = dx + N * CMAX; y = dxr + N * CMAX;
    yr = y + N * CMAX; g = yr + N * CMAX; be = g + CMAX; sm = be + CMAX; ss = sm + CMAX;
    smr = ss + CMAX; ssr = smr + CMAX; dg = ssr + CMAX; db = dg + CMAX; dgr = db + CMAX;
    dbr = dgr + CMAX; rm = dbr + CMAX; ri = rm + CMAX; rmr = ri + CMAX; rir = rmr + CMAX;
    for (C = 300; C <= CMAX; C++)
    for (v = 0; v < 4; v++) {
        for (i = 0; i < (int64_t)N * C; i++) {
            x[i] = (float)(bt_unit(&r) * 8.0 - 4.0);
            dy[i] = (float)((bt_unit(&r) * 2.0 - 1.0) * exp2(bt_unit(&r) * 20 - 10));
        }
        for (j = 0; j < C; j++) {
            g[j] = (float)(bt_unit(&r) * 3.0 - 1.0);
            be[j] = 0.0f;
            rm[j] = rmr[j] = 0.0f;
            ri[j] = rir[j] = 1.0f;
        }
        bt_ctx("bn shift forward, isa %s, C %" PRId64 ", variant %d", bt_isa_str(isa), C, v);
        CHECK_ST(bnn_bn_forward_train(BNN_BN_SHIFT, N, C, x, g, be, 1e-4f, 0.5f, rm, ri, y,
                                      sm, ss), BNN_OK);
        CHECK_ST(bnn_set_isa(BNN_ISA_REF), BNN_OK);
        CHECK_ST(bnn_bn_forward_train(BNN_BN_SHIFT, N, C, x, g, be, 1e-4f, 0.5f, rmr, rir, yr,
                                      smr, ssr), BNN_OK);
        CHECK_ST(bnn_set_isa(isa), BNN_OK);
        CHECK(memcmp(sm, smr, (size_t)C * sizeof(float)) == 0);
        CHECK(memcmp(ss, ssr, (size_t)C * sizeof(float)) == 0);
        CHECK(memcmp(y, yr, (size_t)(N * C) * sizeof(float)) == 0);
        CHECK(memcmp(ri, rir, (size_t)C * sizeof(float)) == 0);
        if (v == 1) { x[5 * C + 3] = NAN; dy[7 * C + 290] = INFINITY; }
        if (v == 2) { dy[2 * C + 10] = NAN; x[30 * C + 299] = -INFINITY; }
        if (v == 3) ss[17] = 0.3f;
        bt_ctx("bn shift backward bitwise, isa %s, C %" PRId64 ", variant %d", bt_isa_str(isa),
               C, v);
        CHECK_ST(bnn_bn_backward(BNN_BN_SHIFT, N, C, x, g, sm, ss, dy, dx, dg, db), BNN_OK);
        exact_bn_shift_backward(N, C, x, g, sm, ss, dy, dxr, dgr, dbr);
        for (j = 0; j < C; j++)
            CHECK_MSG(same_or_nan(dg[j], dgr[j]) && same_or_nan(db[j], dbr[j]),
                      "feature %" PRId64 ": dgamma %a want %a, dbeta %a want %a", j,
                      (double)dg[j], (double)dgr[j], (double)db[j], (double)dbr[j]);
        for (i = 0; i < (int64_t)N * C; i++)
            CHECK_MSG(same_or_nan(dx[i], dxr[i]), "dx[%" PRId64 "] %a want %a", i,
                      (double)dx[i], (double)dxr[i]);
    }
    free(buf);
    return 0;
}

static int test_bn_shift_exact(void)
{
    return for_each_isa_ctx("bn shift == its definition (bitwise)", bn_shift_exact_body, NULL);
}

static int test_bn_threads(void)
{
    enum { N = 300, C = 1001 };
    static const int threads[] = {2, 3, 8};
    float *buf = (float *)malloc(sizeof(float) * ((size_t)N * C * 6 + (size_t)C * 16));
    float *x, *dy, *y1, *y2, *dx1, *dx2, *p;
    bt_rng r = bt_stream(0xb17);
    int64_t i;
    int kind, t;
    CHECK(buf != NULL);
    x = buf; dy = x + N * C; y1 = dy + N * C; y2 = y1 + N * C; dx1 = y2 + N * C;
    dx2 = dx1 + N * C; p = dx2 + N * C;
    for (i = 0; i < (int64_t)N * C; i++) {
        x[i] = (float)(bt_unit(&r) * 40.0 - 20.0);
        dy[i] = (float)(bt_unit(&r) * 2.0 - 1.0);
    }
    for (kind = 0; kind < 2; kind++) {
        bnn_bn_kind k = kind ? BNN_BN_SHIFT : BNN_BN_STANDARD;
        float *g = p, *be = p + C, *rm1 = p + 2 * C, *ri1 = p + 3 * C, *rm2 = p + 4 * C,
              *ri2 = p + 5 * C, *m1 = p + 6 * C, *s1 = p + 7 * C, *m2 = p + 8 * C,
              *s2 = p + 9 * C, *dg1 = p + 10 * C, *db1 = p + 11 * C, *dg2 = p + 12 * C,
              *db2 = p + 13 * C;
        for (i = 0; i < C; i++) {
            g[i] = (float)(bt_unit(&r) * 2.0 - 0.5);
            be[i] = (float)(bt_unit(&r) - 0.5);
            rm1[i] = rm2[i] = 0.0f;
            ri1[i] = ri2[i] = 1.0f;
        }
        CHECK_ST(bnn_set_num_threads(1), BNN_OK);
        CHECK_ST(bnn_bn_forward_train(k, N, C, x, g, be, 1e-4f, 0.1f, rm1, ri1, y1, m1, s1),
                 BNN_OK);
        CHECK_ST(bnn_bn_backward(k, N, C, x, g, m1, s1, dy, dx1, dg1, db1), BNN_OK);
        for (t = 0; t < 3; t++) {
            bt_ctx("bn kind %d on %d threads", kind, threads[t]);
            for (i = 0; i < C; i++) { rm2[i] = 0.0f; ri2[i] = 1.0f; }
            CHECK_ST(bnn_set_num_threads(threads[t]), BNN_OK);
            CHECK_ST(bnn_bn_forward_train(k, N, C, x, g, be, 1e-4f, 0.1f, rm2, ri2, y2, m2, s2),
                     BNN_OK);
            CHECK_ST(bnn_bn_backward(k, N, C, x, g, m2, s2, dy, dx2, dg2, db2), BNN_OK);
            CHECK(memcmp(y1, y2, sizeof(float) * N * C) == 0);
            CHECK(memcmp(dx1, dx2, sizeof(float) * N * C) == 0);
            CHECK(memcmp(rm1, rm2, sizeof(float) * C) == 0 && memcmp(ri1, ri2, sizeof(float) * C) == 0);
            CHECK(memcmp(m1, m2, sizeof(float) * C) == 0 && memcmp(s1, s2, sizeof(float) * C) == 0);
            CHECK(memcmp(dg1, dg2, sizeof(float) * C) == 0 && memcmp(db1, db2, sizeof(float) * C) == 0);
        }
    }
    CHECK_ST(bnn_set_num_threads(1), BNN_OK);
    free(buf);
    printf("  batch norm on 1/2/3/8 threads: identical\n");
    return 0;
}

/* Every ISA's optimizer kernel is bitwise the reference's: odd lengths
 * (vector body and scalar tail), clipping on and off, zero, huge, tiny,
 * infinite and NaN gradients, NaN state, and a split over threads. */
typedef struct opt_isa_ctx {
    const float *p0, *g, *m0, *v0;
    float *p, *m, *v, *rp, *rm, *rv;
    float *fp, *fm, *fv;               /* bnn_opt_step_pack's */
    uint64_t *signs, *rsigns;          /* room for rows of >= 64 elements */
    int64_t n;
} opt_isa_ctx;

static int opt_isa_body(bnn_isa isa, void *vctx)
{
    const opt_isa_ctx *c = (const opt_isa_ctx *)vctx;
    static const bnn_opt_kind kinds[] = {BNN_OPT_ADAM, BNN_OPT_ADAMAX, BNN_OPT_SHIFT_ADAMAX};
    static const double clips[] = {0.0, 1.0};
    static const int threads[] = {1, 3};
    int k, ci, ti, t;
    int64_t i;
    (void)isa;
    for (k = 0; k < 3; k++)
        for (ci = 0; ci < 2; ci++)
            for (ti = 0; ti < 2; ti++) {
                /* rows of 131 (2 words, ragged) or 2003 elements */
                const int fk = (k + ci + ti) % 2 ? 131 : 2003;
                const int64_t lds = bnn_words(fk) + (ti ? 1 : 0);
                bnn_opt_params pp;
                memset(&pp, 0, sizeof pp);
                pp.kind = kinds[k];
                pp.lr = 0.01; pp.beta1 = 0.9; pp.beta2 = 0.999;
                pp.eps = kinds[k] == BNN_OPT_SHIFT_ADAMAX ? 0x1p-27 : 1e-8;
                pp.lr_scale = 2.5; pp.clip = clips[ci];
                memcpy(c->p, c->p0, (size_t)c->n * sizeof(float));
                memcpy(c->m, c->m0, (size_t)c->n * sizeof(float));
                memcpy(c->v, c->v0, (size_t)c->n * sizeof(float));
                memcpy(c->rp, c->p0, (size_t)c->n * sizeof(float));
                memcpy(c->rm, c->m0, (size_t)c->n * sizeof(float));
                memcpy(c->rv, c->v0, (size_t)c->n * sizeof(float));
                for (t = 1; t <= 3; t++) {
                    pp.t = t;
                    bt_ctx("opt isa kind %d clip %g threads %d t %d", (int)kinds[k], pp.clip,
                           threads[ti], t);
                    CHECK_ST(bnn_set_num_threads(threads[ti]), BNN_OK);
                    CHECK_ST(bnn_opt_step(&pp, c->n, c->p, c->g, c->m, c->v), BNN_OK);
                    /* the fused step (rows of k, ragged) with its signs */
                    if (t == 1) {
                        memcpy(c->fp, c->p0, (size_t)c->n * sizeof(float));
                        memcpy(c->fm, c->m0, (size_t)c->n * sizeof(float));
                        memcpy(c->fv, c->v0, (size_t)c->n * sizeof(float));
                    }
                    /* the stride's spare words are never written: equal zeros */
                    memset(c->signs, 0, (size_t)(c->n / fk * lds) * 8);
                    memset(c->rsigns, 0, (size_t)(c->n / fk * lds) * 8);
                    CHECK_ST(bnn_opt_step_pack(&pp, c->n / fk, fk, c->fp, c->g, c->fm, c->fv,
                                               c->signs, lds), BNN_OK);
                    CHECK_ST(bnn_set_isa(BNN_ISA_REF), BNN_OK);
                    CHECK_ST(bnn_set_num_threads(1), BNN_OK);
                    CHECK_ST(bnn_opt_step(&pp, c->n, c->rp, c->g, c->rm, c->rv), BNN_OK);
                    CHECK_ST(bnn_pack_f32(c->n / fk, fk, c->rp, fk, c->rsigns, lds), BNN_OK);
                    CHECK_ST(bnn_set_isa(isa), BNN_OK);
                    CHECK_MSG(memcmp(c->fp, c->rp, (size_t)c->n * sizeof(float)) == 0
                                  && memcmp(c->fm, c->rm, (size_t)c->n * sizeof(float)) == 0
                                  && memcmp(c->fv, c->rv, (size_t)c->n * sizeof(float)) == 0,
                              "bnn_opt_step_pack (rows of %d) differs from bnn_opt_step", fk);
                    CHECK_MSG(memcmp(c->signs, c->rsigns, (size_t)(c->n / fk * lds) * 8) == 0,
                              "bnn_opt_step_pack's signs (rows of %d) differ from bnn_pack_f32",
                              fk);
                    for (i = 0; i < c->n; i++) {
                        CHECK_MSG(same_bits_f(c->p[i], c->rp[i]) && same_bits_f(c->m[i], c->rm[i])
                                      && same_bits_f(c->v[i], c->rv[i]),
                                  "element %" PRId64 ": p %a/%a m %a/%a v %a/%a (g %a)", i,
                                  (double)c->p[i], (double)c->rp[i], (double)c->m[i],
                                  (double)c->rm[i], (double)c->v[i], (double)c->rv[i],
                                  (double)c->g[i]);
                    }
                }
            }
    CHECK_ST(bnn_set_num_threads(1), BNN_OK);
    return 0;
}

static int test_opt_isa(void)
{
    /* long enough to go multi-threaded (>= 2^18), odd so a tail remains,
     * and 131 x 2003 for the rows of bnn_opt_step_pack */
    const int64_t n = (int64_t)131 * 2003;
    float *buf = (float *)malloc((size_t)n * 13 * sizeof(float));
    uint64_t *sbuf = (uint64_t *)malloc((size_t)n / 64 * 2 * 2 * sizeof(uint64_t));
    float *p0, *g, *m0, *v0;
    opt_isa_ctx c;
    bt_rng r = bt_stream(0x0a15);
    int rc;
    CHECK(buf != NULL && sbuf != NULL);
    p0 = buf; g = buf + n; m0 = buf + 2 * n; v0 = buf + 3 * n;
    bt_opt_inputs(&r, n, 97, p0, g, m0, v0);
    c.p0 = p0; c.g = g; c.m0 = m0; c.v0 = v0;
    c.p = buf + 4 * n; c.m = buf + 5 * n; c.v = buf + 6 * n;
    c.rp = buf + 7 * n; c.rm = buf + 8 * n; c.rv = buf + 9 * n;
    c.fp = buf + 10 * n; c.fm = buf + 11 * n; c.fv = buf + 12 * n;
    c.signs = sbuf; c.rsigns = sbuf + n / 64 * 2;
    c.n = n;
    rc = for_each_isa_ctx("optimizer kernels == ref (bitwise)", opt_isa_body, &c);
    free(buf);
    free(sbuf);
    return rc;
}

/* A single hand-computed shift AdaMax step: g = 0.3, m = v = 0, b1 = 0.875,
 * b2 = 1 - 2^-10, eps = 2^-27, lr 2^-10, t = 1:
 * m = 0.125 * 0.3 = 0.0375; v = AP2(0.3) + 2^-27 = 0.25 + 2^-27 (0.3 =
 * 0.6 * 2^-1, m 0.6 < 0.7071 -> 2^-2); step = AP2(2^-10 / 0.125) = 2^-7. */
static int test_opt_by_hand(void)
{
    bnn_opt_params p;
    float w = 0.5f, g = 0.3f, m = 0.0f, v = 0.0f;
    double vv = 0.25 + 0x1p-27, mm = 0.125 * (double)0.3f;
    memset(&p, 0, sizeof p);
    p.kind = BNN_OPT_SHIFT_ADAMAX;
    p.t = 1;
    p.lr = 0x1p-10;
    p.beta1 = 0.875;
    p.beta2 = 1.0 - 0x1p-10;
    p.eps = 0x1p-27;
    p.lr_scale = 1.0;
    bt_ctx("shift adamax by hand");
    CHECK_ST(bnn_opt_step(&p, 1, &w, &g, &m, &v), BNN_OK);
    CHECK(m == (float)mm);
    CHECK(v == (float)vv);
    /* the update uses the double m and v, before they are stored as float */
    CHECK_MSG(w == (float)(0.5 - 0x1p-7 * mm / vv), "w = %.9g", (double)w);
    printf("  shift adamax, worked example: ok\n");
    return 0;
}

static int test_opt_errors(void)
{
    enum { N = 5 };
    float p[N], g[N], m[N], v[N];
    bnn_opt_params base, q;
    int i, j;
    opt_cfg o = {"base", BNN_OPT_ADAM, 0.003, 0.9, 0.999, 1e-8, 1.0, 0.0};
    for (i = 0; i < N; i++) {
        p[i] = 0.25f * (float)i;
        g[i] = 1.0f;
        m[i] = 0.5f;
        v[i] = 0.75f;
    }
#define OPT_UNTOUCHED()                                                                    \
    do {                                                                                   \
        int q_;                                                                            \
        for (q_ = 0; q_ < N; q_++)                                                         \
            CHECK_MSG(p[q_] == 0.25f * (float)q_ && m[q_] == 0.5f && v[q_] == 0.75f &&     \
                          g[q_] == 1.0f,                                                   \
                      "state %d modified on error", q_);                                   \
    } while (0)
    base = opt_params(&o, 1);
    for (j = 0; j < 3; j++) {
        base.kind = j;
        bt_ctx("opt errors kind %d", j);
        q = base; q.t = 0; CHECK_ST(bnn_opt_step(&q, N, p, g, m, v), BNN_ERR_INVALID);
        q = base; q.t = -3; CHECK_ST(bnn_opt_step(&q, N, p, g, m, v), BNN_ERR_INVALID);
        q = base; q.beta1 = 1.0; CHECK_ST(bnn_opt_step(&q, N, p, g, m, v), BNN_ERR_INVALID);
        q = base; q.beta1 = -0.1; CHECK_ST(bnn_opt_step(&q, N, p, g, m, v), BNN_ERR_INVALID);
        q = base; q.beta1 = NAN; CHECK_ST(bnn_opt_step(&q, N, p, g, m, v), BNN_ERR_INVALID);
        q = base; q.beta2 = 1.0; CHECK_ST(bnn_opt_step(&q, N, p, g, m, v), BNN_ERR_INVALID);
        q = base; q.beta2 = 1.5; CHECK_ST(bnn_opt_step(&q, N, p, g, m, v), BNN_ERR_INVALID);
        q = base; q.eps = -1e-8; CHECK_ST(bnn_opt_step(&q, N, p, g, m, v), BNN_ERR_INVALID);
        q = base; q.eps = NAN; CHECK_ST(bnn_opt_step(&q, N, p, g, m, v), BNN_ERR_INVALID);
        q = base; q.eps = INFINITY; CHECK_ST(bnn_opt_step(&q, N, p, g, m, v), BNN_ERR_INVALID);
        q = base; q.lr = -0.001; CHECK_ST(bnn_opt_step(&q, N, p, g, m, v), BNN_ERR_INVALID);
        q = base; q.lr = INFINITY; CHECK_ST(bnn_opt_step(&q, N, p, g, m, v), BNN_ERR_INVALID);
        q = base; q.lr = NAN; CHECK_ST(bnn_opt_step(&q, N, p, g, m, v), BNN_ERR_INVALID);
        q = base; q.lr_scale = 0.0; CHECK_ST(bnn_opt_step(&q, N, p, g, m, v), BNN_ERR_INVALID);
        q = base; q.lr_scale = -1.0; CHECK_ST(bnn_opt_step(&q, N, p, g, m, v), BNN_ERR_INVALID);
        q = base; q.lr_scale = NAN; CHECK_ST(bnn_opt_step(&q, N, p, g, m, v), BNN_ERR_INVALID);
        q = base; q.clip = -1.0; CHECK_ST(bnn_opt_step(&q, N, p, g, m, v), BNN_ERR_INVALID);
        q = base; q.clip = NAN; CHECK_ST(bnn_opt_step(&q, N, p, g, m, v), BNN_ERR_INVALID);
        q = base; q.reserved = 1; CHECK_ST(bnn_opt_step(&q, N, p, g, m, v), BNN_ERR_INVALID);
        q = base; q.reserved = -1; CHECK_ST(bnn_opt_step(&q, N, p, g, m, v), BNN_ERR_INVALID);
        q = base; CHECK_ST(bnn_opt_step(&q, -1, p, g, m, v), BNN_ERR_SHAPE);
        CHECK_ST(bnn_opt_step(NULL, N, p, g, m, v), BNN_ERR_NULL);
        CHECK_ST(bnn_opt_step(&q, N, NULL, g, m, v), BNN_ERR_NULL);
        CHECK_ST(bnn_opt_step(&q, N, p, NULL, m, v), BNN_ERR_NULL);
        CHECK_ST(bnn_opt_step(&q, N, p, g, NULL, v), BNN_ERR_NULL);
        CHECK_ST(bnn_opt_step(&q, N, p, g, m, NULL), BNN_ERR_NULL);
        /* n == 0 is a valid no-op, NULL arrays included */
        CHECK_ST(bnn_opt_step(&q, 0, NULL, NULL, NULL, NULL), BNN_OK);
        /* the fused step and its signs: the same checks first, then its own */
        {
            uint64_t sg[2] = {7, 7};
            q = base; q.t = 0;
            CHECK_ST(bnn_opt_step_pack(&q, 1, N, p, g, m, v, sg, 1), BNN_ERR_INVALID);
            q = base;
            CHECK_ST(bnn_opt_step_pack(NULL, 1, N, p, g, m, v, sg, 1), BNN_ERR_NULL);
            CHECK_ST(bnn_opt_step_pack(&q, 1, N, p, g, m, v, NULL, 1), BNN_ERR_NULL);
            CHECK_ST(bnn_opt_step_pack(&q, 1, N, NULL, g, m, v, sg, 1), BNN_ERR_NULL);
            CHECK_ST(bnn_opt_step_pack(&q, -1, N, p, g, m, v, sg, 1), BNN_ERR_SHAPE);
            CHECK_ST(bnn_opt_step_pack(&q, 1, -N, p, g, m, v, sg, 1), BNN_ERR_SHAPE);
            CHECK_ST(bnn_opt_step_pack(&q, 1, N, p, g, m, v, sg, 0), BNN_ERR_STRIDE);
            CHECK_ST(bnn_opt_step_pack(&q, INT64_MAX / 2, 4, p, g, m, v, sg, 1),
                     BNN_ERR_OVERFLOW);
            CHECK_ST(bnn_opt_step_pack(&q, 0, N, NULL, NULL, NULL, NULL, NULL, 0), BNN_OK);
            CHECK(sg[0] == 7 && sg[1] == 7);
        }
        OPT_UNTOUCHED();
    }
    bt_ctx("opt errors unknown kind");
    q = base; q.kind = 3; CHECK_ST(bnn_opt_step(&q, N, p, g, m, v), BNN_ERR_INVALID);
    q = base; q.kind = -1; CHECK_ST(bnn_opt_step(&q, N, p, g, m, v), BNN_ERR_INVALID);
    q = base; q.kind = 1000; CHECK_ST(bnn_opt_step(&q, N, p, g, m, v), BNN_ERR_INVALID);
    OPT_UNTOUCHED();
#undef OPT_UNTOUCHED
    printf("  optimizer errors: ok\n");
    return 0;
}

/* ------------------------------------------------------------------ */
/* Straight-through estimator                                           */
/* ------------------------------------------------------------------ */

static int ste_pass(float x)
{
    return fabs((double)x) <= 1.0; /* NaN: false */
}

static int test_ste_float(void)
{
    const float one_up = nextafterf(1.0f, 2.0f), one_dn = nextafterf(1.0f, 0.0f);
    float x[] = {1.0f, -1.0f, one_up, -one_up, one_dn, -one_dn, 0.0f, -0.0f,
                 bt_u2f(0x7fc00000u), bt_u2f(0xffc00000u), bt_u2f(0x7f800001u),
                 INFINITY, -INFINITY, bt_u2f(1), 0.5f, -0.5f, 2.0f, -3.0f, FLT_MAX, 1e-30f};
    int want[] = {1, 1, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 1};
    enum { NX = sizeof x / sizeof x[0] };
    float g[NX], out[NX], io[NX];
    int i;
    bt_ctx("ste_backward specials");
    for (i = 0; i < NX; i++) g[i] = 0.5f + (float)i;
    bt_fill_fbits(out, NX, CANARY_F);
    CHECK_ST(bnn_ste_backward(NX, x, g, out), BNN_OK);
    for (i = 0; i < NX; i++) {
        CHECK_MSG(ste_pass(x[i]) == want[i], "oracle table at %d", i);
        CHECK_MSG(same_bits_f(out[i], want[i] ? g[i] : 0.0f), "x=%a: out %a want %s", (double)x[i],
                  (double)out[i], want[i] ? "grad" : "0");
    }
    /* in place: out == grad */
    memcpy(io, g, sizeof g);
    CHECK_ST(bnn_ste_backward(NX, x, io, io), BNN_OK);
    CHECK(memcmp(io, out, sizeof out) == 0);

    /* random data against the oracle */
    {
        bt_rng r = bt_stream(0x57e);
        enum { M = 4099 };
        float *xr = bt_alloc(M * 4), *gr = bt_alloc(M * 4), *o = bt_alloc(M * 4);
        for (i = 0; i < M; i++) {
            xr[i] = bt_rand_float(&r) * (bt_below(&r, 2) ? 1.0f : 0.75f);
            gr[i] = (float)(bt_unit(&r) * 2 - 1);
        }
        CHECK_ST(bnn_ste_backward(M, xr, gr, o), BNN_OK);
        for (i = 0; i < M; i++)
            CHECK_MSG(same_bits_f(o[i], ste_pass(xr[i]) ? gr[i] : 0.0f), "x=%a", (double)xr[i]);
        free(xr); free(gr); free(o);
    }
    bt_ctx("ste_backward errors");
    CHECK_ST(bnn_ste_backward(-1, x, g, out), BNN_ERR_SHAPE);
    CHECK_ST(bnn_ste_backward(3, NULL, g, out), BNN_ERR_NULL);
    CHECK_ST(bnn_ste_backward(3, x, NULL, out), BNN_ERR_NULL);
    CHECK_ST(bnn_ste_backward(3, x, g, NULL), BNN_ERR_NULL);
    CHECK_ST(bnn_ste_backward(0, NULL, NULL, NULL), BNN_OK);
    printf("  ste_backward: ok\n");
    return 0;
}

static int ste_packed_case(int64_t rows, int64_t k, int padded, uint64_t tag)
{
    bt_rng r = bt_stream(tag);
    int64_t kw = bt_words(k), xs = k + (padded ? 3 : 0), ms = kw + (padded ? 2 : 0),
            gs = k + (padded ? 5 : 0), os = k + (padded ? 1 : 0), i, j, q;
    size_t nx = bt_extent(rows, xs, k), nm = bt_extent(rows, ms, kw),
           ng = bt_extent(rows, gs, k), no = bt_extent(rows, os, k);
    float *x = bt_alloc(nx * 4), *g = bt_alloc(ng * 4), *o = bt_alloc(no * 4),
          *io = bt_alloc(ng * 4), *ref = bt_alloc((size_t)k * 4);
    uint64_t *mask = bt_alloc(nm * 8);
    static const float edge[] = {1.0f, -1.0f, 1.00000012f, -1.00000012f, 0.99999994f};

    for (i = 0; i < (int64_t)nx; i++) {
        uint64_t u = bt_below(&r, 8);
        if (u == 0) x[i] = edge[bt_below(&r, 5)];
        else x[i] = bt_rand_float(&r) * 0.8f;
    }
    for (i = 0; i < (int64_t)ng; i++) g[i] = (float)(bt_unit(&r) * 2 - 1) + 0.001f;
    bt_ctx("ste packed rows=%" PRId64 " k=%" PRId64 " padded=%d", rows, k, padded);
    bt_fill_u64(mask, nm, GARBAGE);
    CHECK_ST(bnn_ste_mask_pack(rows, k, x, xs, mask, ms), BNN_OK);
    for (i = 0; i < rows; i++) {
        const uint64_t *mr = mask + i * ms;
        for (j = 0; j < k; j++)
            CHECK_MSG(bt_getbit(mr, j) == ste_pass(x[i * xs + j]),
                      "row %" PRId64 " bit %" PRId64 ": x=%a mask bit %d", i, j,
                      (double)x[i * xs + j], bt_getbit(mr, j));
        if (k % 64)
            CHECK_MSG((mr[kw - 1] >> (k % 64)) == 0, "row %" PRId64 " pad bits %016" PRIx64, i,
                      mr[kw - 1]);
        if (i + 1 < rows)
            for (q = kw; q < ms; q++)
                CHECK_MSG(mr[q] == GARBAGE, "mask stride gap word %" PRId64 " written", q);
    }
    bt_fill_fbits(o, no, CANARY_F);
    CHECK_ST(bnn_ste_backward_packed(rows, k, mask, ms, g, gs, o, os), BNN_OK);
    for (i = 0; i < rows; i++) {
        CHECK_ST(bnn_ste_backward(k, x + i * xs, g + i * gs, ref), BNN_OK);
        CHECK_MSG(memcmp(o + i * os, ref, (size_t)k * 4) == 0,
                  "row %" PRId64 ": packed backward != float backward", i);
        if (i + 1 < rows)
            for (q = k; q < os; q++)
                CHECK_MSG(bt_f2u(o[i * os + q]) == CANARY_F, "out gap written");
    }
    /* in place (out == grad, same stride) */
    memcpy(io, g, ng * 4);
    CHECK_ST(bnn_ste_backward_packed(rows, k, mask, ms, io, gs, io, gs), BNN_OK);
    for (i = 0; i < rows; i++) {
        CHECK(memcmp(io + i * gs, o + i * os, (size_t)k * 4) == 0);
        if (i + 1 < rows)
            for (q = k; q < gs; q++) CHECK(same_bits_f(io[i * gs + q], g[i * gs + q]));
    }
    free(x); free(g); free(o); free(io); free(ref); free(mask);
    return 0;
}

static int test_ste_packed(void)
{
    static const int64_t ks[] = {1, 63, 64, 65, 130};
    int a, padded;
    uint64_t mask[4] = {0, 0, 0, 0};
    float x[4] = {0, 0, 0, 0}, g[4] = {1, 1, 1, 1}, o[4];
    for (a = 0; a < 5; a++)
        for (padded = 0; padded < 2; padded++) {
            RUN(ste_packed_case(1, ks[a], padded, 0x5e7 + (uint64_t)a * 2 + (uint64_t)padded));
            RUN(ste_packed_case(5, ks[a], padded, 0x9e7 + (uint64_t)a * 2 + (uint64_t)padded));
        }
    bt_ctx("ste packed errors");
    CHECK_ST(bnn_ste_mask_pack(-1, 4, x, 4, mask, 1), BNN_ERR_SHAPE);
    CHECK_ST(bnn_ste_mask_pack(1, -4, x, 4, mask, 1), BNN_ERR_SHAPE);
    CHECK_ST(bnn_ste_mask_pack(1, 4, NULL, 4, mask, 1), BNN_ERR_NULL);
    CHECK_ST(bnn_ste_mask_pack(1, 4, x, 4, NULL, 1), BNN_ERR_NULL);
    CHECK_ST(bnn_ste_mask_pack(2, 4, x, 3, mask, 1), BNN_ERR_STRIDE);
    CHECK_ST(bnn_ste_mask_pack(2, 4, x, 4, mask, 0), BNN_ERR_STRIDE);
    CHECK(mask[0] == 0 && mask[1] == 0);
    CHECK_ST(bnn_ste_backward_packed(-1, 4, mask, 1, g, 4, o, 4), BNN_ERR_SHAPE);
    CHECK_ST(bnn_ste_backward_packed(1, 4, NULL, 1, g, 4, o, 4), BNN_ERR_NULL);
    CHECK_ST(bnn_ste_backward_packed(1, 4, mask, 1, NULL, 4, o, 4), BNN_ERR_NULL);
    CHECK_ST(bnn_ste_backward_packed(1, 4, mask, 1, g, 4, NULL, 4), BNN_ERR_NULL);
    CHECK_ST(bnn_ste_backward_packed(2, 4, mask, 1, g, 3, o, 4), BNN_ERR_STRIDE);
    CHECK_ST(bnn_ste_backward_packed(2, 4, mask, 1, g, 4, o, 3), BNN_ERR_STRIDE);
    CHECK_ST(bnn_ste_backward_packed(2, 4, mask, 0, g, 4, o, 4), BNN_ERR_STRIDE);
    CHECK_ST(bnn_ste_mask_pack(0, 4, NULL, 4, NULL, 1), BNN_OK);
    CHECK_ST(bnn_ste_backward_packed(3, 0, NULL, 0, NULL, 0, NULL, 0), BNN_OK);
    printf("  ste mask pack / packed backward: ok\n");
    return 0;
}

/* ------------------------------------------------------------------ */
/* Stochastic binarization                                              */
/* ------------------------------------------------------------------ */

static int check_pad_zero(const uint64_t *dst, int64_t rows, int64_t k, int64_t ds)
{
    int64_t i, kw = bt_words(k);
    if (k % 64 == 0) return 0;
    for (i = 0; i < rows; i++)
        CHECK_MSG((dst[i * ds + kw - 1] >> (k % 64)) == 0,
                  "row %" PRId64 " pad bits set: %016" PRIx64, i, dst[i * ds + kw - 1]);
    return 0;
}

typedef struct stoch_ref {
    int have;
    uint64_t *bits; /* bits of the first ISA's run */
} stoch_ref;

static int stoch_isa_body(bnn_isa isa, void *vctx)
{
    stoch_ref *sr = (stoch_ref *)vctx;
    enum { ROWS = 7, K = 130, XS = 133, DS = 4 };
    float x[ROWS * XS];
    uint64_t d1[ROWS * DS], d2[ROWS * DS];
    bt_rng r = bt_stream(0x5707);
    int i, th;
    for (i = 0; i < ROWS * XS; i++) x[i] = bt_rand_float(&r) * 0.6f;
    bt_ctx("stochastic determinism isa=%s", bt_isa_str(isa));
    for (th = 1; th <= 4; th += 3) {
        CHECK_ST(bnn_set_num_threads(th), BNN_OK);
        bt_fill_u64(d1, ROWS * DS, GARBAGE);
        bt_fill_u64(d2, ROWS * DS, 0);
        CHECK_ST(bnn_pack_stochastic_f32(ROWS, K, x, XS, 42, 1000, d1, DS), BNN_OK);
        CHECK_ST(bnn_pack_stochastic_f32(ROWS, K, x, XS, 42, 1000, d2, DS), BNN_OK);
        for (i = 0; i < ROWS; i++) {
            CHECK(d1[i * DS + 0] == d2[i * DS + 0] && d1[i * DS + 1] == d2[i * DS + 1] &&
                  d1[i * DS + 2] == d2[i * DS + 2]);
            if (i + 1 < ROWS) CHECK_MSG(d1[i * DS + 3] == GARBAGE, "stride gap word written");
        }
        RUN(check_pad_zero(d1, ROWS, K, DS));
        if (!sr->have) {
            memcpy(sr->bits, d1, sizeof d1);
            sr->have = 1;
        } else {
            for (i = 0; i < ROWS; i++)
                CHECK_MSG(memcmp(sr->bits + i * DS, d1 + i * DS, 3 * 8) == 0,
                          "row %d differs from the first ISA/thread run (threads %d)", i, th);
        }
    }
    CHECK_ST(bnn_set_num_threads(1), BNN_OK);
    return 0;
}

static int popcount_row(const uint64_t *row, int64_t k)
{
    int64_t j;
    int c = 0;
    for (j = 0; j < k; j++) c += bt_getbit(row, j);
    return c;
}

static int test_stochastic(void)
{
    int threads0 = bnn_get_num_threads();
    uint64_t refbits[7 * 4];
    stoch_ref sr;
    sr.have = 0;
    sr.bits = refbits;
    RUN(for_each_isa_ctx("stochastic determinism", stoch_isa_body, &sr));
    CHECK_ST(bnn_set_num_threads(threads0), BNN_OK);

    /* Seeds and counters give different streams; concatenation. */
    {
        enum { K = 1000 };
        static const int64_t ks[] = {1, 63, 64, 65, 130};
        float *x = bt_alloc(K * 4);
        uint64_t a[16], b[16], c[16];
        int i, same;
        for (i = 0; i < K; i++) x[i] = 0.0f;
        bt_ctx("stochastic seeds");
        CHECK_ST(bnn_pack_stochastic_f32(1, K, x, K, 1, 0, a, 16), BNN_OK);
        CHECK_ST(bnn_pack_stochastic_f32(1, K, x, K, 2, 0, b, 16), BNN_OK);
        CHECK_ST(bnn_pack_stochastic_f32(1, K, x, K, 1, 1, c, 16), BNN_OK);
        same = 0;
        for (i = 0; i < 16; i++) same += a[i] == b[i];
        CHECK_MSG(same < 2, "seeds 1 and 2 give %d equal words of 16", same);
        same = 0;
        for (i = 0; i < 16; i++) same += a[i] == c[i];
        CHECK_MSG(same < 2, "counters 0 and 1 give %d equal words of 16", same);
        /* agreement between streams ~ 1/2 (5 sigma over K bits) */
        {
            int agree = 0, agree_shift = 0;
            for (i = 0; i < K; i++) {
                agree += bt_getbit(a, i) == bt_getbit(b, i);
                if (i + 1 < K) agree_shift += bt_getbit(a, i + 1) == bt_getbit(c, i);
            }
            CHECK_MSG(fabs(agree - K / 2.0) <= 5 * sqrt(K / 4.0), "seed agreement %d/%d", agree,
                      K);
            /* counter 1, element i is index i+1: equal to counter 0 element i+1 */
            CHECK_MSG(agree_shift == K - 1, "counter shift: %d/%d agree", agree_shift, K - 1);
        }
        free(x);

        for (i = 0; i < 5; i++) {
            int64_t k = ks[i], kw = bt_words(k), r1 = 3, r2 = 4, q, rr;
            uint64_t ctr;
            int ci;
            float *xx = bt_alloc((size_t)((r1 + r2) * (k + 2)) * 4);
            uint64_t *whole = bt_alloc((size_t)((r1 + r2) * (kw + 1)) * 8),
                     *part = bt_alloc((size_t)((r1 + r2) * (kw + 1)) * 8);
            bt_rng r = bt_stream(0xc0 + (uint64_t)i);
            for (q = 0; q < (r1 + r2) * (k + 2); q++) xx[q] = (float)(bt_unit(&r) * 2.4 - 1.2);
            for (ci = 0; ci < 3; ci++) {
                ctr = ci == 0 ? 0 : ci == 1 ? UINT64_C(123456789) : UINT64_MAX - 5;
                bt_ctx("stochastic concat k=%" PRId64 " counter=%" PRIu64, k, ctr);
                bt_fill_u64(whole, (size_t)((r1 + r2) * (kw + 1)), GARBAGE);
                bt_fill_u64(part, (size_t)((r1 + r2) * (kw + 1)), GARBAGE);
                CHECK_ST(bnn_pack_stochastic_f32(r1 + r2, k, xx, k + 2, 77, ctr, whole, kw + 1),
                         BNN_OK);
                CHECK_ST(bnn_pack_stochastic_f32(r1, k, xx, k + 2, 77, ctr, part, kw + 1),
                         BNN_OK);
                CHECK_ST(bnn_pack_stochastic_f32(r2, k, xx + r1 * (k + 2), k + 2, 77,
                                                 ctr + (uint64_t)(r1 * k),
                                                 part + r1 * (kw + 1), kw + 1),
                         BNN_OK);
                for (rr = 0; rr < r1 + r2; rr++) {
                    CHECK_MSG(memcmp(whole + rr * (kw + 1), part + rr * (kw + 1),
                                     (size_t)kw * 8) == 0,
                              "row %" PRId64 ": split call != one call", rr);
                    /* row by row too */
                    {
                        uint64_t one[3];
                        CHECK_ST(bnn_pack_stochastic_f32(1, k, xx + rr * (k + 2), k, 77,
                                                         ctr + (uint64_t)(rr * k), one, 3),
                                 BNN_OK);
                        CHECK(memcmp(one, whole + rr * (kw + 1), (size_t)kw * 8) == 0);
                    }
                }
                RUN(check_pad_zero(whole, r1 + r2, k, kw + 1));
            }
            free(xx); free(whole); free(part);
        }
    }

    /* Saturation and NaN. */
    {
        static const uint32_t neg[] = {0xbf800000u /* -1 */, 0xbf800001u /* below -1 */,
                                       0xc0000000u, 0xff7fffffu, 0xff800000u /* -inf */};
        static const uint32_t pos[] = {0x3f800000u /* 1 */, 0x3f800001u, 0x40000000u,
                                       0x7f7fffffu, 0x7f800000u /* +inf */,
                                       0x7fc00000u /* NaN */, 0xffc00000u /* -NaN */,
                                       0x7f800001u /* sNaN */};
        enum { K = 4096 };
        float *x = bt_alloc(K * 4);
        uint64_t d[K / 64];
        int i, q;
        for (i = 0; i < 5; i++) {
            bt_ctx("stochastic x = %a (<= -1)", (double)bt_u2f(neg[i]));
            for (q = 0; q < K; q++) x[q] = bt_u2f(neg[i]);
            CHECK_ST(bnn_pack_stochastic_f32(1, K, x, K, 0x1234 + (uint64_t)i, 99, d, K / 64),
                     BNN_OK);
            for (q = 0; q < K / 64; q++) CHECK_MSG(d[q] == ~UINT64_C(0), "word %d: %016" PRIx64,
                                                   q, d[q]);
        }
        for (i = 0; i < 8; i++) {
            bt_ctx("stochastic x = %08x (>= 1 or NaN)", pos[i]);
            for (q = 0; q < K; q++) x[q] = bt_u2f(pos[i]);
            CHECK_ST(bnn_pack_stochastic_f32(1, K, x, K, 0x9876 + (uint64_t)i, 5, d, K / 64),
                     BNN_OK);
            for (q = 0; q < K / 64; q++) CHECK_MSG(d[q] == 0, "word %d: %016" PRIx64, q, d[q]);
        }
        free(x);
    }

    /* Frequencies: P(+1) = (x+1)/2 within 5 sigma (binomial). */
    {
        static const float xs[] = {-0.5f, 0.0f, 0.5f, -0.9f, 0.75f};
        enum { ROWS = 50, K = 4001, KW = (K + 63) / 64 };
        float *x = bt_alloc((size_t)ROWS * K * 4);
        uint64_t *d = bt_alloc((size_t)ROWS * KW * 8);
        int i, q;
        for (i = 0; i < 5; i++) {
            double p = ((double)xs[i] + 1.0) / 2.0, N = (double)ROWS * K, plus, sigma;
            int64_t ones = 0;
            bt_ctx("stochastic frequency x = %g", (double)xs[i]);
            for (q = 0; q < ROWS * K; q++) x[q] = xs[i];
            CHECK_ST(bnn_pack_stochastic_f32(ROWS, K, x, K, 0xfeed + (uint64_t)i, 0, d, KW),
                     BNN_OK);
            for (q = 0; q < ROWS; q++) ones += popcount_row(d + q * KW, K);
            RUN(check_pad_zero(d, ROWS, K, KW));
            plus = (N - (double)ones) / N;
            sigma = sqrt(p * (1 - p) / N);
            CHECK_MSG(fabs(plus - p) <= 5 * sigma, "freq(+1) = %.6f want %.6f (5 sigma %.6f)",
                      plus, p, 5 * sigma);
        }
        free(x);
        free(d);
    }

    /* Errors as bnn_pack_f32. */
    {
        float x[8] = {0};
        uint64_t d[2] = {GARBAGE, GARBAGE};
        bt_ctx("stochastic errors");
        CHECK_ST(bnn_pack_stochastic_f32(-1, 4, x, 4, 0, 0, d, 1), BNN_ERR_SHAPE);
        CHECK_ST(bnn_pack_stochastic_f32(1, -4, x, 4, 0, 0, d, 1), BNN_ERR_SHAPE);
        CHECK_ST(bnn_pack_stochastic_f32(1, 4, NULL, 4, 0, 0, d, 1), BNN_ERR_NULL);
        CHECK_ST(bnn_pack_stochastic_f32(1, 4, x, 4, 0, 0, NULL, 1), BNN_ERR_NULL);
        CHECK_ST(bnn_pack_stochastic_f32(2, 4, x, 3, 0, 0, d, 1), BNN_ERR_STRIDE);
        CHECK_ST(bnn_pack_stochastic_f32(2, 4, x, 4, 0, 0, d, 0), BNN_ERR_STRIDE);
        CHECK_ST(bnn_pack_stochastic_f32(0, 4, NULL, 4, 0, 0, NULL, 1), BNN_OK);
        CHECK(d[0] == GARBAGE && d[1] == GARBAGE);
    }
    /* "Errors as bnn_pack_f32()": the same status on a grid of bad calls
     * (and on the empty valid ones); nothing written. */
    {
        static const int64_t rws[] = {-1, 0, 1, 2, (int64_t)1 << 40};
        static const int64_t kks[] = {-5, 0, 4, 65};
        static const int64_t sss[] = {-1, 0, 3, 4, 65, (int64_t)1 << 40};
        static const int64_t dss[] = {-1, 0, 1, 2, (int64_t)1 << 62};
        float x[2] = {0.5f, -0.5f};
        uint64_t d[2] = {GARBAGE, GARBAGE};
        int a, b, c2, e, nul;
        for (a = 0; a < 5; a++)
            for (b = 0; b < 4; b++)
                for (c2 = 0; c2 < 6; c2++)
                    for (e = 0; e < 5; e++)
                        for (nul = 0; nul < 3; nul++) {
                            const float *sp = nul == 1 ? NULL : x;
                            uint64_t *dp = nul == 2 ? NULL : d;
                            bnn_status want, got;
                            /* skip calls that could succeed (they would write): only
                             * those whose extent overflows are kept */
                            if (rws[a] > 0 && kks[b] > 0 && sp && dp && sss[c2] >= kks[b] &&
                                dss[e] >= bt_words(kks[b]) &&
                                ((double)rws[a] - 1) * (double)sss[c2] * 4.0 < 1e19 &&
                                ((double)rws[a] - 1) * (double)dss[e] * 8.0 < 1e19)
                                continue;
                            want = bnn_pack_f32(rws[a], kks[b], sp, sss[c2], dp, dss[e]);
                            got = bnn_pack_stochastic_f32(rws[a], kks[b], sp, sss[c2], 1, 2, dp,
                                                          dss[e]);
                            bt_ctx("stochastic errors vs pack_f32: rows=%" PRId64 " k=%" PRId64
                                   " src_stride=%" PRId64 " dst_stride=%" PRId64 " null=%d",
                                   rws[a], kks[b], sss[c2], dss[e], nul);
                            CHECK_ST(got, want);
                        }
        CHECK(d[0] == GARBAGE && d[1] == GARBAGE);
    }
    printf("  stochastic binarization: ok\n");
    return 0;
}

/* ------------------------------------------------------------------ */
/* bnn_gemm_f32_pm1: the backward products on packed +-1 operands          */
/* ------------------------------------------------------------------ */

typedef struct pm1_ctx {
    int64_t I, K, J, lda_i, lda_j, lds, ldc;
    const float *a;
    const uint64_t *s;
    const float *c0, *want;
    float *c;
    int accumulate;
} pm1_ctx;

static int same_float(float x, float y)
{
    uint32_t u, v;
    if (x != x && y != y) return 1;              /* NaN payloads may differ */
    memcpy(&u, &x, 4);
    memcpy(&v, &y, 4);
    return u == v;
}

static int pm1_body(bnn_isa isa, void *ctx)
{
    const pm1_ctx *p = (const pm1_ctx *)ctx;
    static const int threads[] = {1, 3};
    int t;
    int64_t i, k;
    (void)isa;
    for (t = 0; t < 2; t++) {
        CHECK_ST(bnn_set_num_threads(threads[t]), BNN_OK);
        memcpy(p->c, p->c0, sizeof(float) * (size_t)(p->I * p->ldc));
        CHECK_ST(bnn_gemm_f32_pm1(p->I, p->K, p->J, p->a, p->lda_i, p->lda_j, p->s, p->lds,
                                  p->c, p->ldc, p->accumulate), BNN_OK);
        for (i = 0; i < p->I; i++)
            for (k = 0; k < p->ldc; k++)
                CHECK_MSG(same_float(p->c[i * p->ldc + k], p->want[i * p->ldc + k]),
                          "I %d K %d J %d acc %d threads %d: c[%d][%d] = %a, oracle %a",
                          (int)p->I, (int)p->K, (int)p->J, p->accumulate, threads[t], (int)i,
                          (int)k, (double)p->c[i * p->ldc + k],
                          (double)p->want[i * p->ldc + k]);
    }
    CHECK_ST(bnn_set_num_threads(1), BNN_OK);
    return 0;
}

/* Every kernel and thread count gives the oracle's floats bit for bit, on
 * ragged shapes, both layouts of A, with and without accumulation; the
 * stride gaps of C are left alone. */
static int test_pm1_gemm(void)
{
    /* the last shapes are large enough (I*K*J >= 2^20) to run on threads */
    static const int64_t Is[] = {1, 5, 6, 7, 13, 37};
    static const int64_t Ks[] = {1, 15, 16, 17, 63, 64, 65, 130, 200, 1000};
    static const int64_t Js[] = {0, 1, 3, 127, 128, 129, 300};
    bt_rng r = bt_stream(0x9a11);
    int cases = 0;
    size_t ii, ik, ij;
    int trans, acc;
    for (ii = 0; ii < sizeof Is / sizeof Is[0]; ii++)
        for (ik = 0; ik < sizeof Ks / sizeof Ks[0]; ik++)
            for (ij = 0; ij < sizeof Js / sizeof Js[0]; ij++) {
                const int64_t I = Is[ii], K = Ks[ik], J = Js[ij];
                const int64_t lds = bt_words(K) + 1, ldc = K + 3;
                float *a = (float *)malloc(sizeof(float) * (size_t)(I * J + 1));
                uint64_t *sw = (uint64_t *)malloc(sizeof(uint64_t) * (size_t)(J * lds + 1));
                float *c0 = (float *)malloc(sizeof(float) * (size_t)(I * ldc));
                float *c = (float *)malloc(sizeof(float) * (size_t)(I * ldc));
                float *want = (float *)malloc(sizeof(float) * (size_t)(I * ldc));
                int64_t j;
                CHECK(a && sw && c0 && c && want);
                bt_rand_floats(&r, a, (size_t)(I * J));
                bt_rand_words(&r, sw, (size_t)(J * lds));
                /* pad bits past K are 0 per the bit contract; with odd J
                 * they are left random: they must not matter either */
                for (j = 0; j < J && J % 2 == 0; j++)
                    if (K % 64) sw[j * lds + bt_words(K) - 1] &= (~(uint64_t)0) >> (64 - K % 64);
                bt_rand_floats(&r, c0, (size_t)(I * ldc));
                for (trans = 0; trans < 2; trans++)
                    for (acc = 0; acc < 2; acc++) {
                        pm1_ctx p;
                        char label[80];
                        p.I = I; p.K = K; p.J = J;
                        p.lda_i = trans ? 1 : J; p.lda_j = trans ? I : 1;
                        if (J == 0) { p.lda_i = 1; p.lda_j = 1; }
                        p.lds = lds; p.ldc = ldc;
                        p.a = a; p.s = sw; p.c0 = c0; p.c = c; p.want = want;
                        p.accumulate = acc;
                        memcpy(want, c0, sizeof(float) * (size_t)(I * ldc));
                        bt_gemm_f32_pm1(I, K, J, a, p.lda_i, p.lda_j, sw, lds, want, ldc, acc);
                        snprintf(label, sizeof label, "pm1 gemm %dx%dx%d%s%s", (int)I, (int)K,
                                 (int)J, trans ? " A^T" : "", acc ? " +=" : "");
                        if (I == 13 && K == 130 && J == 129 && trans && acc) {
                            RUN(for_each_isa_ctx(label, pm1_body, &p));   /* one printed line */
                        } else {
                            RUN(for_each_isa_quiet(label, pm1_body, &p));
                        }
                        cases++;
                    }
                free(a); free(sw); free(c0); free(c); free(want);
            }
    printf("  %-34s %d cases ok\n", "pm1 gemm == oracle (bitwise)", cases);
    return 0;
}

/* A by hand: A = [[1, 2], [3, 4]], S rows j=0: +1 -1 (bit 1 set), j=1: -1 -1. */
static int test_pm1_by_hand_and_errors(void)
{
    const float a[4] = {1, 2, 3, 4};
    const uint64_t s[2] = {2u, 3u};
    float c[4] = {9, 9, 9, 9};
    CHECK_ST(bnn_gemm_f32_pm1(2, 2, 2, a, 2, 1, s, 1, c, 2, 0), BNN_OK);
    CHECK(c[0] == 1 - 2 && c[1] == -1 - 2 && c[2] == 3 - 4 && c[3] == -3 - 4);
    CHECK_ST(bnn_gemm_f32_pm1(2, 2, 2, a, 1, 2, s, 1, c, 2, 1), BNN_OK);   /* += A^T . S */
    CHECK(c[0] == -1 + 1 - 3 && c[1] == -3 - 1 - 3 && c[2] == -1 + 2 - 4 && c[3] == -7 - 2 - 4);
    CHECK_ST(bnn_gemm_f32_pm1(2, 2, 0, NULL, 0, 0, NULL, 0, c, 2, 0), BNN_OK);
    CHECK(c[0] == 0 && c[3] == 0);
    CHECK_ST(bnn_gemm_f32_pm1(-1, 2, 2, a, 2, 1, s, 1, c, 2, 0), BNN_ERR_SHAPE);
    CHECK_ST(bnn_gemm_f32_pm1(2, 2, 2, NULL, 2, 1, s, 1, c, 2, 0), BNN_ERR_NULL);
    CHECK_ST(bnn_gemm_f32_pm1(2, 2, 2, a, 2, 1, NULL, 1, c, 2, 0), BNN_ERR_NULL);
    CHECK_ST(bnn_gemm_f32_pm1(2, 2, 2, a, 2, 1, s, 1, NULL, 2, 0), BNN_ERR_NULL);
    CHECK_ST(bnn_gemm_f32_pm1(2, 2, 2, a, 2, 1, s, 0, c, 2, 0), BNN_ERR_STRIDE);
    CHECK_ST(bnn_gemm_f32_pm1(2, 2, 2, a, 2, 1, s, 1, c, 1, 0), BNN_ERR_STRIDE);
    CHECK_ST(bnn_gemm_f32_pm1(2, 2, 2, a, 0, 1, s, 1, c, 2, 0), BNN_ERR_STRIDE);
    CHECK_ST(bnn_gemm_f32_pm1(2, 2, 2, a, 2, INT64_MAX, s, 1, c, 2, 0), BNN_ERR_OVERFLOW);
    CHECK_ST(bnn_gemm_f32_pm1(INT64_MAX / 2, 2, 2, a, 2, 1, s, 1, c, INT64_MAX / 2, 0),
             BNN_ERR_OVERFLOW);                                      /* C's extent */
    CHECK(c[0] == 0 && c[3] == 0);                                       /* untouched */
    return 0;
}

/* bnn_gemm_i8_pm1 against the exact oracle: every ISA and 1 or 3 threads,
 * ragged shapes around the 32-column tiles and the int16 flush (126 pairs
 * = 252 rows), odd J, q at -128 and 127, strides with gaps (untouched),
 * random pad bits; and its errors. */
typedef struct i8_ctx {
    int64_t I, K, J, ldq, lds, ldc;
    const int8_t *q;
    const uint64_t *s;
    const int32_t *want;
    int32_t *c;
} i8_ctx;

static int i8_body(bnn_isa isa, void *ctx)
{
    const i8_ctx *p = (const i8_ctx *)ctx;
    static const int threads[] = {1, 3};
    int t;
    int64_t i, k;
    (void)isa;
    for (t = 0; t < 2; t++) {
        CHECK_ST(bnn_set_num_threads(threads[t]), BNN_OK);
        for (i = 0; i < p->I * p->ldc; i++) p->c[i] = 0x5a5a5a5a;
        CHECK_ST(bnn_gemm_i8_pm1(p->I, p->K, p->J, p->q, p->ldq, p->s, p->lds, p->c, p->ldc),
                 BNN_OK);
        for (i = 0; i < p->I; i++)
            for (k = 0; k < p->ldc; k++)
                CHECK_MSG(p->c[i * p->ldc + k] == (k < p->K ? p->want[i * p->ldc + k] : 0x5a5a5a5a),
                          "I %d K %d J %d threads %d: c[%d][%d] = %d, oracle %d", (int)p->I,
                          (int)p->K, (int)p->J, threads[t], (int)i, (int)k,
                          (int)p->c[i * p->ldc + k], (int)p->want[i * p->ldc + k]);
    }
    CHECK_ST(bnn_set_num_threads(1), BNN_OK);
    return 0;
}

static int test_i8_pm1(void)
{
    static const int64_t Is[] = {1, 3, 4, 5, 9, 37};
    static const int64_t Ks[] = {1, 31, 32, 33, 64, 65, 130, 1000};
    static const int64_t Js[] = {0, 1, 2, 3, 252, 253, 254, 255, 300};
    bt_rng r = bt_stream(0x18a);
    int cases = 0;
    size_t ii, ik, ij;
    for (ii = 0; ii < sizeof Is / sizeof Is[0]; ii++)
        for (ik = 0; ik < sizeof Ks / sizeof Ks[0]; ik++)
            for (ij = 0; ij < sizeof Js / sizeof Js[0]; ij++) {
                const int64_t I = Is[ii], K = Ks[ik], J = Js[ij];
                const int64_t ldq = J + 3, lds = bt_words(K) + 1, ldc = K + 2;
                int8_t *q = (int8_t *)malloc((size_t)(I * ldq + 1));
                uint64_t *sw = (uint64_t *)malloc(sizeof(uint64_t) * (size_t)(J * lds + 1));
                int32_t *c = (int32_t *)malloc(sizeof(int32_t) * (size_t)(I * ldc));
                int32_t *want = (int32_t *)malloc(sizeof(int32_t) * (size_t)(I * ldc));
                i8_ctx p;
                int64_t x;
                char label[64];
                CHECK(q && sw && c && want);
                for (x = 0; x < I * ldq; x++)
                    q[x] = (x % 17 == 0) ? -128 : (x % 13 == 0) ? 127 : bt_rand_i8(&r);
                bt_rand_words(&r, sw, (size_t)(J * lds));          /* pad bits: garbage */
                bt_gemm_i8_pm1(I, K, J, q, ldq, sw, lds, want, ldc);
                p.I = I; p.K = K; p.J = J; p.ldq = ldq; p.lds = lds; p.ldc = ldc;
                p.q = q; p.s = sw; p.want = want; p.c = c;
                snprintf(label, sizeof label, "i8 pm1 %dx%dx%d", (int)I, (int)K, (int)J);
                if (I == 37 && K == 1000 && J == 300) {
                    RUN(for_each_isa_ctx(label, i8_body, &p));          /* one printed line */
                } else {
                    RUN(for_each_isa_quiet(label, i8_body, &p));
                }
                free(q); free(sw); free(c); free(want);
                cases++;
            }
    {
        const int8_t q1[4] = {1, -2, 3, 4};
        const uint64_t s1[2] = {2u, 3u};       /* rows: (+1, -1), (-1, -1) */
        int32_t c1[4] = {9, 9, 9, 9};
        CHECK_ST(bnn_gemm_i8_pm1(2, 2, 2, q1, 2, s1, 1, c1, 2), BNN_OK);
        CHECK(c1[0] == 1 + 2 && c1[1] == -1 + 2 && c1[2] == 3 - 4 && c1[3] == -3 - 4);
        CHECK_ST(bnn_gemm_i8_pm1(-1, 2, 2, q1, 2, s1, 1, c1, 2), BNN_ERR_SHAPE);
        CHECK_ST(bnn_gemm_i8_pm1(2, 2, (int64_t)1 << 24, q1, 2, s1, 1, c1, 2), BNN_ERR_SHAPE);
        CHECK_ST(bnn_gemm_i8_pm1(2, 2, 2, NULL, 2, s1, 1, c1, 2), BNN_ERR_NULL);
        CHECK_ST(bnn_gemm_i8_pm1(2, 2, 2, q1, 1, s1, 1, c1, 2), BNN_ERR_STRIDE);
        CHECK_ST(bnn_gemm_i8_pm1(2, 2, 2, q1, 2, s1, 0, c1, 2), BNN_ERR_STRIDE);
        CHECK_ST(bnn_gemm_i8_pm1(2, 2, 2, q1, 2, s1, 1, c1, 1), BNN_ERR_STRIDE);
        CHECK_ST(bnn_gemm_i8_pm1(2, 2, 2, q1, INT64_MAX, s1, 1, c1, 2), BNN_ERR_OVERFLOW);
        CHECK(c1[0] == 3 && c1[3] == -7);                      /* untouched */
        CHECK_ST(bnn_gemm_i8_pm1(2, 2, 0, NULL, 0, NULL, 0, c1, 2), BNN_OK);
        CHECK(c1[0] == 0 && c1[3] == 0);
    }
    printf("  %-34s %d shapes ok\n", "i8 pm1 gemm == oracle (exact)", cases);
    return 0;
}

int main(int argc, char **argv)
{
    bt_init(argc, argv, "test_train");
    RUN(test_ap2());
    RUN(test_bn_shift_by_hand());
    RUN(test_bn_cases());
    RUN(test_bn_gradcheck());
    RUN(test_bn_errors());
    RUN(test_bn_shift_exact());
    RUN(test_bn_threads());
    RUN(test_opt_by_hand());
    RUN(test_opt());
    RUN(test_opt_isa());
    RUN(test_opt_errors());
    RUN(test_ste_float());
    RUN(test_ste_packed());
    RUN(test_stochastic());
    RUN(test_pm1_by_hand_and_errors());
    RUN(test_pm1_gemm());
    RUN(test_i8_pm1());
    printf("test_train: all passed\n");
    return 0;
}
