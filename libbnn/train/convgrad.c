/*
 * convgrad.c -- the backward products of a binary convolution on the bits:
 * the weight gradient g^T . x+-1 from the packed input the forward kept,
 * and the input gradient g . W+-1 from the packed filters, with no float
 * im2col of anything.  Each comes as an exact float product (the pm1_tile
 * kernel, one ordered float sum per element) and as an 8-bit one (the
 * i8pm1_chunk kernel, exact integer sums of a stochastically rounded
 * gradient, rescaled).
 *
 * Weight gradient: output positions are taken BNN_CG_MT at a time; their
 * kh*kw input pixels' words are gathered into a bit tile (the rows of a
 * patch matrix of the tile only: 1/32 of a float one, and bounded by the
 * tile, not the batch).  Padded taps are gathered as zero words (+1): for
 * pad_value 1 that is their value; for zeros the float path expands them
 * to 0.0 and the integer path subtracts their sum of q per tap.
 *
 * Input gradient: no patch matrix at all.  For each image and tap the
 * products g[m] . W_t land directly in the input pixel tap t of output m
 * reads (float path, accumulating in gx), or in a tile of int32 sums of
 * the image that is then rescaled into gx (8-bit path).  Images (float:
 * images x channel words) are split between threads: their pixels are
 * disjoint, so results do not depend on the thread count.
 */
#include "bnn_kernels.h"
#include "core/bnn_engine.h"

#include <math.h>
#include <string.h>

#define BNN_CG_MT (4 * BNN_I8_CHUNK)   /* output positions per weight tile */

/* ---- geometry ------------------------------------------------------------ */

/* Input pixel index that tap (r, s) of output (n, y, x) reads, or -1 when
 * it falls in the padding. */
static int64_t tap_pixel(const bnn_conv_geom *g, int64_t n, int64_t y, int64_t x, int64_t r,
                         int64_t s)
{
    const int64_t ih = y * g->sh - g->pt + r * g->dh, iw = x * g->sw - g->pl + s * g->dw;
    if (ih < 0 || ih >= g->h || iw < 0 || iw >= g->w) return -1;
    return (n * g->h + ih) * g->w + iw;
}

/* [lo, hi) of the outputs along one axis whose tap at offset `off` (tap
 * index times dilation, minus the leading padding) lands inside [0, len). */
static void valid_range(int64_t outs, int64_t stride, int64_t off, int64_t len, int64_t *lo,
                        int64_t *hi)
{
    int64_t a = 0, b = outs;
    while (a < outs && a * stride + off < 0) a++;
    while (b > a && (b - 1) * stride + off >= len) b--;
    *lo = a;
    *hi = b;
}

/* ---- workspace ------------------------------------------------------------ */

typedef struct cg_sizes {
    size_t tile_bits, tile_valid, raw, padsum, rowsum, qtile;   /* weight gradient */
    size_t per_thread;                                    /* 8-bit input gradient */
} cg_sizes;

static size_t al8(size_t b) { return (b + 7) / 8 * 8; }

static void cg_sizes_of(const bnn_conv_geom *g, cg_sizes *z)
{
    const int64_t cw = bnn_words(g->c), mt = BNN_CG_MT;
    z->tile_bits = (size_t)(mt * g->taps * cw) * 8;
    z->tile_valid = al8((size_t)(mt * g->taps));
    z->raw = al8((size_t)(g->o * g->taps * g->c) * 4);
    z->padsum = al8((size_t)(g->o * g->taps) * 4);
    z->rowsum = al8((size_t)g->o * 4);
    z->qtile = al8((size_t)(g->o * mt));
    z->per_thread = al8((size_t)(g->oh * g->ow) * (32 + 1) * 4);
}

bnn_status bnn_conv2d_grad_workspace_size(const bnn_conv2d_params *p, int threads,
                                          size_t *bytes)
{
    bnn_conv_geom g;
    cg_sizes z;
    size_t wgrad, igrad;
    bnn_status st;
    if (bytes == NULL) return BNN_ERR_NULL;
    if ((st = bnn_conv_geom_init(p, 0, &g)) != BNN_OK) return st;
    {   /* the per-image scratch must be addressable whatever n is (n may be 0) */
        int64_t t;
        if (!bnn_mul_ok(g.oh, g.ow, &t) || !bnn_mul_ok(t, 33 * 4 * BNN_MAX_THREADS, &t))
            return BNN_ERR_OVERFLOW;
    }
    if (threads <= 0) threads = bnn_get_num_threads();
    if (threads > BNN_MAX_THREADS) threads = BNN_MAX_THREADS;
    cg_sizes_of(&g, &z);
    wgrad = z.tile_bits + z.tile_valid + z.raw + z.padsum + z.rowsum + z.qtile;
    igrad = z.per_thread * (size_t)threads;
    *bytes = BNN_MAX(wgrad, igrad);
    return BNN_OK;
}

/* ---- the shared job ------------------------------------------------------- */

typedef struct cg_job {
    const bnn_kernels *kt;
    bnn_conv_geom g;
    int64_t cw, tw, m;          /* words per pixel, taps * cw, outputs n*oh*ow */
    int pad_zero;               /* pad_value 0 */
    const uint64_t *bits;       /* x (weight gradient) or w (input gradient) */
    const float *grad;          /* float paths: g [m][o] */
    const int8_t *q;            /* 8-bit paths: q^T [o][m] or q [m][o] */
    const float *scale;
    float *out;
    uint64_t *tile;             /* weight gradient: the tile's gathered words */
    uint8_t *valid;             /* and whether each (position, tap) is inside */
    int32_t *raw, *padsum;
    int8_t *qtile;              /* 8-bit weight gradient: q^T of the tile, rows mt apart */
    int64_t m0, mt;             /* the tile */
    int zero;                   /* float weight gradient: start from 0 */
    unsigned char *thread_ws;
    size_t per_thread;
} cg_job;

static bnn_status cg_setup(cg_job *jb, const bnn_conv2d_params *p, const void *ws,
                           size_t ws_bytes)
{
    bnn_status st;
    size_t need;
    memset(jb, 0, sizeof *jb);
    if ((st = bnn_conv_geom_init(p, 0, &jb->g)) != BNN_OK) return st;
    if ((st = bnn_conv2d_grad_workspace_size(p, 1, &need)) != BNN_OK) return st;
    if (ws_bytes > 0 && ws == NULL) return BNN_ERR_NULL;
    if (ws_bytes < need || ((uintptr_t)ws % 8) != 0) return BNN_ERR_INVALID;
    jb->kt = bnn_kernels_get();
    jb->cw = bnn_words(jb->g.c);
    jb->tw = jb->g.taps * jb->cw;
    jb->m = jb->g.n * jb->g.oh * jb->g.ow;
    jb->pad_zero = p->pad_value == 0;
    return BNN_OK;
}

static void cg_operands(cg_job *jb, const uint64_t *bits, const float *grad, const int8_t *q,
                        const float *scale, float *out)
{
    jb->bits = bits;
    jb->grad = grad;
    jb->q = q;
    jb->scale = scale;
    jb->out = out;
}

/* a * b * c, saturating (a work estimate: only its size matters) */
static int64_t sat_mul3(int64_t a, int64_t b, int64_t c)
{
    int64_t t;
    if (!bnn_mul_ok(a, b, &t) || !bnn_mul_ok(t, c, &t)) return INT64_MAX;
    return t;
}

static int cg_parts(int64_t units, int64_t work)
{
    if (work < ((int64_t)1 << 20)) return 1;
    return (int)BNN_MAX((int64_t)1, BNN_MIN(BNN_MIN((int64_t)bnn_get_num_threads(), units),
                                            (int64_t)BNN_MAX_THREADS));
}

/* ---- weight gradient ---------------------------------------------------- */

/* Gather the tile's patches: row i (output m0 + i) holds, tap by tap, the
 * cw words of the pixel that tap reads (zero words where padded). */
static void gather_tile(cg_job *jb)
{
    const bnn_conv_geom *g = &jb->g;
    const int64_t per_img = g->oh * g->ow;
    int64_t i, r, s;
    for (i = 0; i < jb->mt; i++) {
        const int64_t m = jb->m0 + i, n = m / per_img, y = (m % per_img) / g->ow,
                      x = m % g->ow;
        for (r = 0; r < g->kh; r++)
            for (s = 0; s < g->kw; s++) {
                const int64_t t = r * g->kw + s, pix = tap_pixel(g, n, y, x, r, s);
                uint64_t *dst = jb->tile + i * jb->tw + t * jb->cw;
                jb->valid[i * g->taps + t] = pix >= 0;
                if (pix >= 0) memcpy(dst, jb->bits + pix * jb->cw, sizeof(uint64_t) * (size_t)jb->cw);
                else memset(dst, 0, sizeof(uint64_t) * (size_t)jb->cw);
            }
    }
}

/* Float path, columns (words of the tile rows) [w0, w1): for each word its
 * rows are expanded to +-1.0f (0.0f for a zero-padded tap) in panels of
 * BNN_PM1_JB rows, and pm1_tile adds g^T . panel into out in order. */
static void wgrad_f32_words(const cg_job *jb, int64_t w0, int64_t w1)
{
    float panel[4 * BNN_PM1_JB * BNN_PM1_NR];      /* see bnn_pm1_panel_row() */
    const bnn_conv_geom *g = &jb->g;
    const int64_t ldc = g->taps * g->c;
    int64_t wd, j0, j, i0;
    for (wd = w0; wd < w1; wd++) {
        const int64_t t = wd / jb->cw, wl = wd % jb->cw;
        const int64_t ncols = BNN_MIN((int64_t)64, g->c - 64 * wl);
        const int64_t nq = BNN_CEIL_DIV(ncols, BNN_PM1_NR);
        float *cbase = jb->out + t * g->c + 64 * wl;
        for (j0 = 0; j0 < jb->mt; j0 += BNN_PM1_JB) {
            const int64_t jn = BNN_MIN((int64_t)BNN_PM1_JB, jb->mt - j0);
            for (j = 0; j < jn; j++) {
                const int64_t i = j0 + j;
                const int padded = jb->pad_zero && !jb->valid[i * g->taps + t];
                bnn_pm1_panel_row(jb->kt, padded ? NULL : jb->tile + i * jb->tw + wd, panel, j,
                                  nq);
            }
            for (i0 = 0; i0 < g->o; i0 += BNN_PM1_MR)
                bnn_pm1_panel_tile(jb->kt, BNN_MIN((int64_t)BNN_PM1_MR, g->o - i0), ncols, jn,
                                   jb->grad + (jb->m0 + j0) * g->o + i0, 1, g->o, panel,
                                   cbase + i0 * ldc, ldc, jb->zero && j0 == 0);
        }
    }
}

static void wgrad_f32_part(void *ctx, int part, int parts)
{
    const cg_job *jb = (const cg_job *)ctx;
    wgrad_f32_words(jb, jb->tw * part / parts, jb->tw * (part + 1) / parts);
}

/* 8-bit path, 32-column blocks [b0, b1) of the tile rows (block b: word
 * b / 2, bits 32 * (b % 2) ...): raw[o][t][c] += sum_m q[o][m] * bit. */
static void wgrad_i8_blocks(const cg_job *jb, int64_t b0, int64_t b1)
{
    const bnn_conv_geom *g = &jb->g;
    const int64_t ldc = g->taps * g->c;
    int64_t b, j0;
    for (b = b0; b < b1; b++) {
        const int64_t wd = b / 2, t = wd / jb->cw, wl = wd % jb->cw;
        const int64_t c0 = 64 * wl + 32 * (b % 2);
        if (c0 >= g->c) continue;                     /* a block of pad bits */
        for (j0 = 0; j0 < jb->mt; j0 += BNN_I8_CHUNK)
            jb->kt->i8pm1_chunk(g->o, BNN_MIN((int64_t)32, g->c - c0),
                                BNN_MIN((int64_t)BNN_I8_CHUNK, jb->mt - j0),
                                jb->qtile + j0, jb->mt, jb->tile + j0 * jb->tw, jb->tw,
                                32 * b, jb->raw + t * g->c + c0, ldc, 0);
    }
}

static void wgrad_i8_part(void *ctx, int part, int parts)
{
    const cg_job *jb = (const cg_job *)ctx;
    const int64_t blocks = 2 * jb->tw;
    wgrad_i8_blocks(jb, blocks * part / parts, blocks * (part + 1) / parts);
}

static bnn_status wgrad(const bnn_conv2d_params *p, const uint64_t *x, const float *grad,
                        const int8_t *qt, const float *scale, float *gw, int accumulate,
                        void *ws, size_t ws_bytes)
{
    cg_job jb;
    cg_sizes z;
    unsigned char *base = (unsigned char *)ws;
    int32_t *rowsum;
    int64_t o, t, c, i, ldc, units, work;
    int parts;
    bnn_status st = cg_setup(&jb, p, ws, ws_bytes);
    if (st != BNN_OK) return st;
    if (gw == NULL) return BNN_ERR_NULL;
    if (grad == NULL && jb.m >= ((int64_t)1 << 24)) return BNN_ERR_SHAPE; /* int32 sums */
    ldc = jb.g.taps * jb.g.c;
    if (jb.g.o == 0) return BNN_OK;
    if (jb.m == 0) {                                        /* an empty sum */
        if (!accumulate) memset(gw, 0, sizeof(float) * (size_t)(jb.g.o * ldc));
        return BNN_OK;
    }
    if (x == NULL || (grad == NULL && (qt == NULL || scale == NULL))) return BNN_ERR_NULL;
    cg_sizes_of(&jb.g, &z);
    cg_operands(&jb, x, grad, qt, scale, gw);
    jb.tile = (uint64_t *)base;
    jb.valid = base + z.tile_bits;
    jb.raw = (int32_t *)(base + z.tile_bits + z.tile_valid);
    jb.padsum = (int32_t *)((unsigned char *)jb.raw + z.raw);
    rowsum = (int32_t *)((unsigned char *)jb.padsum + z.padsum);
    jb.qtile = (int8_t *)((unsigned char *)rowsum + z.rowsum);
    if (grad == NULL) {
        memset(jb.raw, 0, z.raw);
        memset(jb.padsum, 0, z.padsum);
        for (o = 0; o < jb.g.o; o++) {
            int32_t sum = 0;
            for (i = 0; i < jb.m; i++) sum += qt[o * jb.m + i];
            rowsum[o] = sum;
        }
    }
    for (jb.m0 = 0; jb.m0 < jb.m; jb.m0 += BNN_CG_MT) {
        jb.mt = BNN_MIN((int64_t)BNN_CG_MT, jb.m - jb.m0);
        jb.zero = jb.m0 == 0 && !accumulate;
        gather_tile(&jb);
        units = grad != NULL ? jb.tw : 2 * jb.tw;
        work = sat_mul3(jb.mt, jb.g.o, ldc);
        parts = cg_parts(units, work);
        if (grad != NULL) {
            if (parts > 1) bnn_run_parts(wgrad_f32_part, &jb, parts);
            else wgrad_f32_words(&jb, 0, jb.tw);
        } else {
            /* the tile's columns of q^T, rows mt apart: rows m apart would
             * map the kernel's loads onto a few cache sets for many m */
            for (o = 0; o < jb.g.o; o++)
                memcpy(jb.qtile + o * jb.mt, qt + o * jb.m + jb.m0, (size_t)jb.mt);
            if (jb.pad_zero)                  /* sum of q over each tap's padded rows */
                for (i = 0; i < jb.mt; i++)
                    for (t = 0; t < jb.g.taps; t++)
                        if (!jb.valid[i * jb.g.taps + t])
                            for (o = 0; o < jb.g.o; o++)
                                jb.padsum[o * jb.g.taps + t] += qt[o * jb.m + jb.m0 + i];
            if (parts > 1) bnn_run_parts(wgrad_i8_part, &jb, parts);
            else wgrad_i8_blocks(&jb, 0, 2 * jb.tw);
        }
    }
    if (grad == NULL)                 /* sum q*x = sum q - (padded q) - 2 sum q*bit */
        for (o = 0; o < jb.g.o; o++)
            for (t = 0; t < jb.g.taps; t++) {
                const int64_t base_sum = (int64_t)rowsum[o] - jb.padsum[o * jb.g.taps + t];
                const int32_t *rr = jb.raw + o * ldc + t * jb.g.c;
                float *dst = gw + o * ldc + t * jb.g.c;
                for (c = 0; c < jb.g.c; c++) {
                    const float v = scale[o] * (float)(base_sum - 2 * (int64_t)rr[c]);
                    dst[c] = accumulate ? dst[c] + v : v;
                }
            }
    return BNN_OK;
}

bnn_status bnn_conv2d_grad_weights_f32(const bnn_conv2d_params *p, const uint64_t *x,
                                       const float *grad, float *gw, int accumulate,
                                       void *workspace, size_t workspace_bytes)
{
    if (p != NULL && grad == NULL && p->n > 0 && p->o > 0) return BNN_ERR_NULL;
    return wgrad(p, x, grad, NULL, NULL, gw, accumulate, workspace, workspace_bytes);
}

bnn_status bnn_conv2d_grad_weights_i8(const bnn_conv2d_params *p, const uint64_t *x,
                                      const int8_t *qt, const float *scale, float *gw,
                                      int accumulate, void *workspace, size_t workspace_bytes)
{
    if (p != NULL && (qt == NULL || scale == NULL) && p->n > 0 && p->o > 0) return BNN_ERR_NULL;
    return wgrad(p, x, NULL, qt, scale, gw, accumulate, workspace, workspace_bytes);
}

/* ---- input gradient ----------------------------------------------------- */

/* Zero the channels [c0, c0 + nc) of every pixel of image n. */
static void zero_image(const cg_job *jb, int64_t n, int64_t c0, int64_t nc)
{
    const bnn_conv_geom *g = &jb->g;
    int64_t px;
    for (px = 0; px < g->h * g->w; px++)
        memset(jb->out + (n * g->h * g->w + px) * g->c + c0, 0, sizeof(float) * (size_t)nc);
}

/* Float path, units (image, channel word) [u0, u1). */
static void igrad_f32_units(const cg_job *jb, int64_t u0, int64_t u1)
{
    float panel[4 * BNN_PM1_JB * BNN_PM1_NR];      /* see bnn_pm1_panel_row() */
    const bnn_conv_geom *g = &jb->g;
    int64_t u, r, s, j0, j, y, i0;
    for (u = u0; u < u1; u++) {
        const int64_t n = u / jb->cw, wl = u % jb->cw;
        const int64_t ncols = BNN_MIN((int64_t)64, g->c - 64 * wl);
        const int64_t nq = BNN_CEIL_DIV(ncols, BNN_PM1_NR);
        zero_image(jb, n, 64 * wl, ncols);
        for (r = 0; r < g->kh; r++)
            for (s = 0; s < g->kw; s++) {
                const int64_t t = r * g->kw + s;
                int64_t ylo, yhi, xlo, xhi;
                valid_range(g->oh, g->sh, r * g->dh - g->pt, g->h, &ylo, &yhi);
                valid_range(g->ow, g->sw, s * g->dw - g->pl, g->w, &xlo, &xhi);
                if (ylo >= yhi || xlo >= xhi) continue;
                for (j0 = 0; j0 < g->o; j0 += BNN_PM1_JB) {
                    const int64_t jn = BNN_MIN((int64_t)BNN_PM1_JB, g->o - j0);
                    for (j = 0; j < jn; j++)         /* filter j0 + j, tap t, word wl */
                        bnn_pm1_panel_row(jb->kt, jb->bits + ((j0 + j) * g->taps + t) * jb->cw + wl,
                                          panel, j, nq);
                    for (y = ylo; y < yhi; y++) {
                        const int64_t pix0 = tap_pixel(g, n, y, xlo, r, s);
                        for (i0 = xlo; i0 < xhi; i0 += BNN_PM1_MR)
                            bnn_pm1_panel_tile(jb->kt, BNN_MIN((int64_t)BNN_PM1_MR, xhi - i0),
                                               ncols, jn,
                                               jb->grad + ((n * g->oh + y) * g->ow + i0) * g->o + j0,
                                               g->o, 1, panel,
                                               jb->out + (pix0 + (i0 - xlo) * g->sw) * g->c + 64 * wl,
                                               g->sw * g->c, 0);
                    }
                }
            }
    }
}

static void igrad_f32_part(void *ctx, int part, int parts)
{
    const cg_job *jb = (const cg_job *)ctx;
    const int64_t units = jb->g.n * jb->cw;
    igrad_f32_units(jb, units * part / parts, units * (part + 1) / parts);
}

/* 8-bit path, images [n0, n1), with this part's scratch: per tap and
 * 32-channel block, the int32 sums of q . W_t of the image's outputs whose
 * tap lands inside, then gx += scale[m] * sum, tap by tap. */
static void igrad_i8_images(const cg_job *jb, int64_t n0, int64_t n1, unsigned char *scratch)
{
    const bnn_conv_geom *g = &jb->g;
    const int64_t per_img = g->oh * g->ow, blocks = BNN_CEIL_DIV(g->c, (int64_t)32);
    int32_t *tsum = (int32_t *)scratch;                /* [per_img][32] */
    int32_t *rowsum = tsum + per_img * 32;             /* [per_img] */
    int64_t n, r, s, b, j0, i, col, o;
    for (n = n0; n < n1; n++) {
        const int64_t mimg = n * per_img;
        zero_image(jb, n, 0, g->c);
        for (i = 0; i < per_img; i++) {
            int32_t sum = 0;
            for (o = 0; o < g->o; o++) sum += jb->q[(mimg + i) * g->o + o];
            rowsum[i] = sum;
        }
        for (r = 0; r < g->kh; r++)
            for (s = 0; s < g->kw; s++) {
                const int64_t t = r * g->kw + s;
                int64_t ylo, yhi, xlo, xhi, rows, mrow0;
                valid_range(g->oh, g->sh, r * g->dh - g->pt, g->h, &ylo, &yhi);
                valid_range(g->ow, g->sw, s * g->dw - g->pl, g->w, &xlo, &xhi);
                if (ylo >= yhi || xlo >= xhi) continue;
                rows = (yhi - ylo) * g->ow;            /* whole output rows ylo .. yhi-1 */
                mrow0 = mimg + ylo * g->ow;
                for (b = 0; b < blocks; b++) {
                    const int64_t nc = BNN_MIN((int64_t)32, g->c - 32 * b);
                    for (j0 = 0; j0 < g->o; j0 += BNN_I8_CHUNK)
                        jb->kt->i8pm1_chunk(rows, nc, BNN_MIN((int64_t)BNN_I8_CHUNK, g->o - j0),
                                            jb->q + mrow0 * g->o + j0, g->o,
                                            jb->bits + (j0 * g->taps + t) * jb->cw,
                                            g->taps * jb->cw, 32 * b, tsum, 32, j0 == 0);
                    for (i = 0; i < rows; i++) {
                        const int64_t y = ylo + i / g->ow, x = i % g->ow;
                        const int64_t m = mrow0 + i;
                        float *dst;
                        float sc;
                        int32_t rs;
                        if (x < xlo || x >= xhi) continue;
                        dst = jb->out + tap_pixel(g, n, y, x, r, s) * g->c + 32 * b;
                        sc = jb->scale[m];
                        rs = rowsum[m - mimg];
                        for (col = 0; col < nc; col++) {
                            const float v = sc * (float)(rs - 2 * tsum[i * 32 + col]);
                            dst[col] = dst[col] + v;
                        }
                    }
                }
            }
    }
}

static void igrad_i8_part(void *ctx, int part, int parts)
{
    const cg_job *jb = (const cg_job *)ctx;
    igrad_i8_images(jb, jb->g.n * part / parts, jb->g.n * (part + 1) / parts,
                    jb->thread_ws + jb->per_thread * (size_t)part);
}

static bnn_status igrad(const bnn_conv2d_params *p, const uint64_t *w, const float *grad,
                        const int8_t *q, const float *scale, float *gx, void *ws,
                        size_t ws_bytes)
{
    cg_job jb;
    cg_sizes z;
    int64_t work;
    int parts;
    bnn_status st = cg_setup(&jb, p, ws, ws_bytes);
    if (st != BNN_OK) return st;
    if (jb.g.n == 0) return BNN_OK;
    if (gx == NULL) return BNN_ERR_NULL;
    if (jb.g.o == 0) {
        memset(gx, 0, sizeof(float) * (size_t)(jb.g.n * jb.g.h * jb.g.w * jb.g.c));
        return BNN_OK;
    }
    if (w == NULL || (grad == NULL && (q == NULL || scale == NULL))) return BNN_ERR_NULL;
    if (grad == NULL && jb.g.o >= ((int64_t)1 << 24)) return BNN_ERR_SHAPE;
    cg_sizes_of(&jb.g, &z);
    cg_operands(&jb, w, grad, q, scale, gx);
    work = sat_mul3(jb.m, jb.g.o, sat_mul3(jb.g.taps, jb.g.c, 1));
    if (grad != NULL) {
        parts = cg_parts(jb.g.n * jb.cw, work);
        if (parts > 1) bnn_run_parts(igrad_f32_part, &jb, parts);
        else igrad_f32_units(&jb, 0, jb.g.n * jb.cw);
    } else {
        jb.thread_ws = (unsigned char *)ws;
        jb.per_thread = z.per_thread;
        parts = cg_parts(jb.g.n, work);
        parts = (int)BNN_MIN((int64_t)parts, (int64_t)(ws_bytes / z.per_thread));
        if (parts > 1) bnn_run_parts(igrad_i8_part, &jb, parts);
        else igrad_i8_images(&jb, 0, jb.g.n, jb.thread_ws);
    }
    return BNN_OK;
}

bnn_status bnn_conv2d_grad_input_f32(const bnn_conv2d_params *p, const uint64_t *w,
                                     const float *grad, float *gx, void *workspace,
                                     size_t workspace_bytes)
{
    if (p != NULL && grad == NULL && p->n > 0 && p->o > 0) return BNN_ERR_NULL;
    return igrad(p, w, grad, NULL, NULL, gx, workspace, workspace_bytes);
}

bnn_status bnn_conv2d_grad_input_i8(const bnn_conv2d_params *p, const uint64_t *w,
                                    const int8_t *q, const float *scale, float *gx,
                                    void *workspace, size_t workspace_bytes)
{
    if (p != NULL && (q == NULL || scale == NULL) && p->n > 0 && p->o > 0) return BNN_ERR_NULL;
    return igrad(p, w, NULL, q, scale, gx, workspace, workspace_bytes);
}
