/*
 * u8.c -- the 8-bit first layer: uint8 inputs times +-1 weights, exactly.
 *
 * Both ops compute s = sum over taps of (x - 128) * w with w in {+1, -1}.
 * With P = popcount(w row) (the number of -1 weights) and k taps:
 *
 *  DIRECT:   s = sum x*w - 128 * sum w,  sum w = k - 2P; sum x*w comes
 *            from byte multiply-adds (uint8 x int8 +-1 weights unpacked
 *            once per call into the workspace).
 *  BITPLANE: the paper's method.  x = sum_b 2^b x_b with bit planes
 *            x_b in {0, 1}.  Packing plane b as bits gives popcounts
 *            pc_b = popcount(x_b XOR w) = popcount(x_b) + P - 2*|x_b & w|,
 *            and sum_i x_b,i w_i = popcount(x_b) - 2*|x_b & w| = pc_b - P,
 *            so sum x*w = sum_b 2^b pc_b - 255 P and
 *                 s = sum_b 2^b pc_b + P - 128 k,
 *            eight XNOR-popcount products on the binary kernels.
 * Padded conv taps are gathered as pad_byte, so they enter exactly (the
 * default 128 contributes 0).
 */
#include "core/bnn_engine.h"

#include <string.h>

typedef struct u8_op {
    int method;                 /* BNN_U8_BITPLANE, BNN_U8_DIRECT or BNN_U8_MASKED */
    int64_t k, kp, kwords;      /* taps, bytes per gathered row (multiple of 32), words */
    const uint64_t *w;          /* packed weights [m][kwords] (binary layout) */
    int64_t ldw;
    const int8_t *wt;           /* DIRECT: [kp/2][opad][2] unpacked +-1 (0 in padding) */
    int64_t opad;               /* outputs rounded up to 64 */
    const int32_t *bias;        /* DIRECT: [opad] -128 * sum w */
    const int32_t *P;           /* [m] popcount of each weight row */
    /* dense */
    const uint8_t *x; int64_t ldx;
    /* conv (NULL geometry for dense) */
    const bnn_conv_geom *g;
    int pad_byte;
} u8_op;

static int64_t round32(int64_t k) { return (k + 31) / 32 * 32; }

/* Per-part scratch: gathered byte rows, bit planes of one row, the
 * popcounts of four planes. */
static size_t u8_part_bytes(int64_t k)
{
    size_t rowsb = (size_t)BNN_MR * (size_t)round32(k);
    size_t planes = 8 * (size_t)bnn_words(k) * 8;
    size_t pcs = 4 * (size_t)BNN_ENGINE_MC_MAX * sizeof(int32_t);
    return (rowsb + planes + pcs + 63) & ~(size_t)63;
}

static size_t round64b(size_t b) { return (b + 63) & ~(size_t)63; }

/* Shared: P [m] int32, then (DIRECT) the bias [opad] int32 and the
 * unpacked weights [kp/2][opad][2]. */
static size_t u8_shared_bytes(int64_t m, int64_t k, int method)
{
    size_t b = round64b((size_t)m * sizeof(int32_t));
    size_t opad = (size_t)((m + 63) / 64 * 64);
    if (method == BNN_U8_DIRECT)   /* bias, int8 weights, then their sign bits */
        b += round64b(opad * sizeof(int32_t)) + round64b(opad * (size_t)round32(k))
             + round64b(opad * (size_t)round32(k) / 8);
    return b;
}

/* The method a model's prepared tables (bnn_u8_prepare) serve: DIRECT's
 * tables hold the others' too.  The bare-metal profile's RAM is too small
 * for unpacked int8 weights (a byte per weight where flash keeps a bit),
 * and its 32-bit cores have no popcount for the bit planes: its tables
 * serve MASKED (and BITPLANE), and prepared runs use MASKED for DIRECT. */
#ifdef BNN_BAREMETAL
#  define BNN_U8_PREP_METHOD BNN_U8_MASKED
#else
#  define BNN_U8_PREP_METHOD BNN_U8_DIRECT
#endif

static int resolve_method(bnn_u8_method method)
{
    if (method == BNN_U8_AUTO) {
#ifdef BNN_BAREMETAL
        /* a microcontroller: masked byte sums take about a third of the
         * bit planes' instructions on a Cortex-M4 (docs/EMBEDDED.md) */
        return BNN_U8_MASKED;
#else
        /* byte multiply-adds beat 8 bit planes wherever vectors exist;
         * the scalar reference is faster on planes (64 products a word). */
        return bnn_isa_current() == BNN_ISA_REF ? BNN_U8_BITPLANE : BNN_U8_DIRECT;
#endif
    }
    return (int)method;
}

/* The gathered row of one output (sample or pixel), k bytes then zeros. */
static void gather_u8(const u8_op *op, int64_t row, uint8_t *dst)
{
    if (op->k == 0) return;
    if (op->g == NULL) {
        memcpy(dst, op->x + row * op->ldx, (size_t)op->k);
    } else {
        const bnn_conv_geom *g = op->g;
        int64_t nb, ih0, iw0, r, s;
        uint8_t *d = dst;
        bnn_conv_origin(g, row, &nb, &ih0, &iw0);
        for (r = 0; r < g->kh; r++) {
            int64_t ih = ih0 + r * g->dh;
            for (s = 0; s < g->kw; s++, d += g->c) {
                int64_t iw = iw0 + s * g->dw;
                int64_t q;
                if (ih < 0 || ih >= g->h || iw < 0 || iw >= g->w) {
                    for (q = 0; q < g->c; q++) d[q] = (uint8_t)op->pad_byte;
                } else {
                    const uint8_t *src = op->x + ((nb * g->h + ih) * g->w + iw) * g->c;
                    for (q = 0; q < g->c; q++) d[q] = src[q];  /* c is small here */
                }
            }
        }
    }
    memset(dst + op->k, 0, (size_t)(op->kp - op->k));
}

static void u8_strip(const bnn_engine *e, int64_t i0, int64_t mr, int64_t j0,
                     int64_t nc, int32_t *dot, int64_t ldd, void *scratch)
{
    const u8_op *op = (const u8_op *)e->op;
    uint8_t *rows = (uint8_t *)scratch;
    uint64_t *planes = (uint64_t *)(rows + (size_t)BNN_MR * op->kp);
    int32_t *pcs = (int32_t *)(planes + 8 * op->kwords);
    int64_t r, j;
    int b;
    for (r = 0; r < mr; r++) gather_u8(op, i0 + r, rows + r * op->kp);
    if (op->method == BNN_U8_DIRECT) {
        e->kt->dot_u8_strip(mr, j0, nc, op->kp, rows, op->kp, op->wt, op->opad,
                            op->bias, dot, ldd);
        return;
    }
    if (op->method == BNN_U8_MASKED) {
        /* s = sum x*w - 128 sum w, with sum x*w = sum x - 2 * (the x whose
         * weight is -1) and sum w = k - 2P; |s| <= 255 k fits (k checked) */
        for (r = 0; r < mr; r++) {
            const uint8_t *xr = rows + r * op->kp;
            int32_t *d = dot + r * ldd;
            int32_t xsum = 0;
            int64_t q;
            for (q = 0; q < op->k; q++) xsum += xr[q];
            for (j = 0; j < nc; j++)
                d[j] = xsum - 2 * (int32_t)bnn_u8_masked_sum(op->kp, xr, op->w + (j0 + j) * op->ldw)
                       - (int32_t)(128 * (op->k - 2 * (int64_t)op->P[j0 + j]));
        }
        return;
    }
    for (r = 0; r < mr; r++) {
        const uint8_t *xr = rows + r * op->kp;
        int32_t *d = dot + r * ldd;
        /* plane b: bit i = bit b of x_i = sign bit of (int8)(x_i << (7-b)) */
        for (b = 0; b < 8; b++) {
            int8_t tmp[256];
            int64_t q0;
            for (q0 = 0; q0 < op->k; q0 += 256) {
                int64_t nq = BNN_MIN(256, op->k - q0), q;
                for (q = 0; q < nq; q++) tmp[q] = (int8_t)(uint8_t)(xr[q0 + q] << (7 - b));
                e->kt->pack_i8(nq, tmp, planes + b * op->kwords + q0 / 64);
            }
        }
        /* s = sum_b 2^b pc_b + P - 128 k, four planes a strip; every
         * partial sum lies in [-128 k, 256 k], inside int32 (k is checked) */
        for (j = 0; j < nc; j++) d[j] = (int32_t)(op->P[j0 + j] - 128 * op->k);
        for (b = 0; b < 8; b += 4) {
            e->kt->popc_strip(4, nc, op->kwords, planes + b * op->kwords, op->kwords,
                              op->w + j0 * op->ldw, op->ldw, pcs, nc);
            for (j = 0; j < nc; j++)
                d[j] += (pcs[j] << b) + (pcs[nc + j] << (b + 1)) + (pcs[2 * nc + j] << (b + 2))
                      + (pcs[3 * nc + j] << (b + 3));
        }
    }
}

/* Shared precomputation: P (and unpacked weights for DIRECT). */
static void u8_prepare(u8_op *op, int64_t m, void *workspace)
{
    int32_t *P = (int32_t *)workspace;
    int64_t j, q;
    for (j = 0; j < m; j++) {
        const uint64_t *wr = op->w + j * op->ldw;
        int64_t pc = 0;
        for (q = 0; q < op->kwords; q++) pc += bnn_popcount64(wr[q]);
        P[j] = (int32_t)pc;
    }
    op->P = P;
    op->wt = NULL;
    if (op->method == BNN_U8_DIRECT) {
        int64_t opad = (m + 63) / 64 * 64;
        int32_t *bias = (int32_t *)((char *)workspace + round64b((size_t)m * sizeof(int32_t)));
        int8_t *wt = (int8_t *)bias + round64b((size_t)opad * sizeof(int32_t));
        for (j = 0; j < opad; j++)   /* s = sum x*w - 128 * (k - 2P) */
            bias[j] = j < m ? (int32_t)(-128 * (op->k - 2 * (int64_t)P[j])) : 0;
        memset(wt, 0, (size_t)opad * (size_t)op->kp);
        {
            /* the sign bits in quad order after the int8 weights (see the
             * dot_u8_strip contract) */
            uint64_t *wq = (uint64_t *)(wt + opad * op->kp);
            memset(wq, 0, (size_t)opad * (size_t)op->kp / 8);
            for (j = 0; j < m; j++) {
                const uint64_t *wr = op->w + j * op->ldw;
                int64_t l = j % 64;
                for (q = 0; q < op->k; q++) {
                    int neg = (int)((wr[q / 64] >> (q % 64)) & 1);
                    wt[(j / 64) * op->kp * 64 + (q / 2) * 128 + l * 2 + q % 2] = neg ? -1 : 1;
                    if (neg)
                        wq[((j / 64) * (op->kp / 4) + q / 4) * 4 + l / 16] |=
                            (uint64_t)1 << ((l % 16) * 4 + q % 4);
                }
            }
        }
        op->wt = wt;
        op->opad = opad;
        op->bias = bias;
    }
}

/* Point op at a block prepared by u8_prepare() with the DIRECT layout. */
static void u8_attach(u8_op *op, int64_t m, const void *shared)
{
    int64_t opad = (m + 63) / 64 * 64;
    op->P = (const int32_t *)shared;
    op->bias = (const int32_t *)((const char *)shared + round64b((size_t)m * sizeof(int32_t)));
    op->wt = (const int8_t *)op->bias + round64b((size_t)opad * sizeof(int32_t));
    op->opad = opad;
}

static bnn_status u8_run(u8_op *op, int64_t n, int64_t m, const bnn_epilogue *epi,
                         void *c, int64_t ldc, void *workspace, size_t ws)
{
    bnn_engine e;
    /* prepared (op->P set): the workspace holds only the per-part scratch */
    size_t shared = op->P ? 0 : u8_shared_bytes(m, op->k, op->method), part = u8_part_bytes(op->k);
    if (((uintptr_t)workspace & 7) != 0 || ws < shared + part) return BNN_ERR_INVALID;
    if (!op->P) u8_prepare(op, m, workspace);
    e.kt = bnn_kernels_get();
    e.n = n; e.m = m;
    e.mc = bnn_engine_block(m, op->method == BNN_U8_DIRECT ? op->kp : 8 * op->kwords * 8);
    e.strip = u8_strip;
    e.op = op;
    e.epi = epi; e.c = c; e.ldc = ldc;
    e.scratch = (char *)workspace + shared;
    e.scratch_part = part;
    e.max_parts = (int)BNN_MIN((ws - shared) / part, 256);
    if (!bnn_mul_ok(n, m, &e.work) || !bnn_mul_ok(e.work, op->kp / 8, &e.work))
        e.work = INT64_MAX;
    bnn_engine_run(&e);
    return BNN_OK;
}

static int clamp_threads(int threads)
{
    if (threads <= 0) threads = bnn_get_num_threads();
    return BNN_MAX(1, BNN_MIN(threads, 256));
}

bnn_status bnn_gemm_u8_workspace_size(int64_t m, int64_t k, int threads, size_t *bytes)
{
    if (bytes == NULL) return BNN_ERR_NULL;
    if (m < 0 || k < 0) return BNN_ERR_SHAPE;
    if (k > INT32_MAX / 256 || m > INT32_MAX) return BNN_ERR_OVERFLOW;
    /* the larger (DIRECT) shared part, so any method fits */
    *bytes = u8_shared_bytes(m, k, BNN_U8_DIRECT) + (size_t)clamp_threads(threads) * u8_part_bytes(k);
    return BNN_OK;
}

bnn_status bnn_gemm_u8(int64_t n, int64_t m, int64_t k, const uint8_t *x, int64_t ldx,
                       const uint64_t *w, int64_t ldw_words, const bnn_epilogue *epi,
                       void *c, int64_t ldc, bnn_u8_method method,
                       void *workspace, size_t workspace_bytes)
{
    u8_op op;
    size_t elem;
    int64_t row_out, kw;
    bnn_status st;
    if (n < 0 || m < 0 || k < 0) return BNN_ERR_SHAPE;
    /* |s| <= 255 * k must fit in int32 */
    if (k > INT32_MAX / 256) return BNN_ERR_OVERFLOW;
    if (method < BNN_U8_AUTO || method > BNN_U8_MASKED) return BNN_ERR_INVALID;
    if ((st = bnn_epilogue_check(&epi, m, &elem, &row_out)) != BNN_OK) return st;
    if (n == 0 || m == 0) return BNN_OK;
    kw = bnn_words(k);   /* k == 0 is valid: every s is 0 */
    if ((k > 0 && (x == NULL || w == NULL)) || c == NULL || workspace == NULL)
        return BNN_ERR_NULL;
    if (ldx < k || ldw_words < kw || ldc < row_out) return BNN_ERR_STRIDE;
    if (!bnn_extent_ok(n, ldx, k, 1) || !bnn_extent_ok(m, ldw_words, kw, 8)
        || !bnn_extent_ok(n, ldc, row_out, elem))
        return BNN_ERR_OVERFLOW;
    if (kw == 0) {  /* no byte or word is read; keep pointer arithmetic off NULL */
        static const uint64_t no_words[1] = {0};
        static const uint8_t no_bytes[1] = {0};
        w = no_words; ldw_words = 0;
        x = no_bytes; ldx = 0;
    }
    memset(&op, 0, sizeof op);
    op.method = resolve_method(method);
    op.k = k; op.kp = round32(k); op.kwords = kw;
    op.w = w; op.ldw = ldw_words;
    op.x = x; op.ldx = ldx;
    return u8_run(&op, n, m, epi, c, ldc, workspace, workspace_bytes);
}

/* Conv filters are stored [o][taps][words(c)], with padding after each
 * tap; the u8 path gathers taps*c dense bytes, so the filters are repacked
 * once per call into dense rows of words(taps*c) (o*taps*c bits). */
static size_t repack_bytes(const bnn_conv_geom *g)
{
    return ((size_t)g->o * (size_t)bnn_words(g->taps * g->c) * 8 + 63) & ~(size_t)63;
}

static void repack_filters(const bnn_conv_geom *g, const uint64_t *w, uint64_t *dst)
{
    int64_t cw = bnn_words(g->c), kw = bnn_words(g->taps * g->c), j, t, q;
    for (j = 0; j < g->o; j++) {
        uint64_t *d = dst + j * kw;
        for (q = 0; q < kw; q++) d[q] = 0;
        for (t = 0; t < g->taps; t++) {
            const uint64_t *src = w + (j * g->taps + t) * cw;
            int64_t base = t * g->c;
            for (q = 0; q < g->c; q++)
                if ((src[q / 64] >> (q % 64)) & 1) {
                    int64_t bit = base + q;
                    d[bit / 64] |= (uint64_t)1 << (bit % 64);
                }
        }
    }
}

bnn_status bnn_conv2d_u8_workspace_size(const bnn_conv2d_params *p, int threads, size_t *bytes)
{
    bnn_conv_geom g;
    bnn_status st;
    size_t b;
    if (bytes == NULL) return BNN_ERR_NULL;
    if ((st = bnn_conv_geom_init(p, 1, &g)) != BNN_OK) return st;
    if (g.taps * g.c > INT32_MAX / 256) return BNN_ERR_OVERFLOW;
    if ((st = bnn_gemm_u8_workspace_size(g.o, g.taps * g.c, threads, &b)) != BNN_OK) return st;
    *bytes = b + repack_bytes(&g);
    return BNN_OK;
}

bnn_status bnn_conv2d_u8(const bnn_conv2d_params *p, const uint8_t *x, const uint64_t *w,
                         const bnn_epilogue *epi, void *out, bnn_u8_method method,
                         void *workspace, size_t workspace_bytes)
{
    bnn_conv_geom g;
    u8_op op;
    size_t elem, rb;
    int64_t row_out, rows;
    bnn_status st;
    if ((st = bnn_conv_geom_init(p, 1, &g)) != BNN_OK) return st;
    if (g.taps * g.c > INT32_MAX / 256) return BNN_ERR_OVERFLOW;
    if (method < BNN_U8_AUTO || method > BNN_U8_MASKED) return BNN_ERR_INVALID;
    if ((st = bnn_epilogue_check(&epi, g.o, &elem, &row_out)) != BNN_OK) return st;
    rows = g.n * g.oh * g.ow;
    if (rows == 0 || g.o == 0) return BNN_OK;
    if (x == NULL || w == NULL || out == NULL || workspace == NULL) return BNN_ERR_NULL;
    rb = repack_bytes(&g);
    if (((uintptr_t)workspace & 7) != 0 || workspace_bytes < rb) return BNN_ERR_INVALID;
    memset(&op, 0, sizeof op);
    op.method = resolve_method(method);
    op.k = g.taps * g.c; op.kp = round32(op.k); op.kwords = bnn_words(op.k);
    op.w = (const uint64_t *)workspace; op.ldw = op.kwords;
    op.g = &g;
    op.pad_byte = p->pad_byte;
    op.x = x;
    /* check the rest of the workspace before writing the repacked filters */
    if (workspace_bytes - rb < u8_shared_bytes(g.o, op.k, op.method) + u8_part_bytes(op.k))
        return BNN_ERR_INVALID;
    repack_filters(&g, w, (uint64_t *)workspace);
    return u8_run(&op, rows, g.o, epi, out, row_out, (char *)workspace + rb,
                  workspace_bytes - rb);
}

/* ---- prepared first layers (the model runtime: prepared once at load) -- */

size_t bnn_u8_prep_bytes(const bnn_conv2d_params *p, int64_t m, int64_t k)
{
    size_t b = u8_shared_bytes(m, k, BNN_U8_PREP_METHOD);
    if (p != NULL) {
        bnn_conv_geom g;
        if (bnn_conv_geom_init(p, 1, &g) != BNN_OK) return 0;
        b += repack_bytes(&g);
    }
    return b;
}

size_t bnn_u8_part_scratch(int64_t k, int threads)
{
    return (size_t)clamp_threads(threads) * u8_part_bytes(k);
}

void bnn_u8_prepare(const bnn_conv2d_params *p, int64_t m, int64_t k, const uint64_t *w,
                    int64_t ldw, void *prep)
{
    u8_op op;
    char *shared = (char *)prep;
    memset(&op, 0, sizeof op);
    op.method = BNN_U8_PREP_METHOD;
    op.k = k; op.kp = round32(k); op.kwords = bnn_words(k);
    op.w = w; op.ldw = ldw;
    if (p != NULL) {
        bnn_conv_geom g;
        (void)bnn_conv_geom_init(p, 1, &g);
        repack_filters(&g, w, (uint64_t *)prep);
        op.w = (const uint64_t *)prep;
        op.ldw = op.kwords;
        shared += repack_bytes(&g);
    }
    u8_prepare(&op, m, shared);
}

bnn_status bnn_u8_run_prepared(const bnn_conv2d_params *p, int64_t n, int64_t m, int64_t k,
                               const uint8_t *x, const uint64_t *w, int64_t ldw,
                               const void *prep, const bnn_epilogue *epi,
                               void *c, int64_t ldc, bnn_u8_method method, void *ws,
                               size_t wsb)
{
    u8_op op;
    bnn_conv_geom g;
    size_t elem;
    int64_t row_out;
    bnn_status st;
    const char *shared = (const char *)prep;
    memset(&op, 0, sizeof op);
    op.method = resolve_method(method);
    if (BNN_U8_PREP_METHOD != BNN_U8_DIRECT && op.method == BNN_U8_DIRECT)
        op.method = BNN_U8_PREP_METHOD;   /* no DIRECT tables were prepared */
    op.k = k; op.kp = round32(k); op.kwords = bnn_words(k);
    op.x = x; op.ldx = k;
    if ((st = bnn_epilogue_check(&epi, m, &elem, &row_out)) != BNN_OK) return st;
    if (p != NULL) {
        if ((st = bnn_conv_geom_init(p, 1, &g)) != BNN_OK) return st;
        op.g = &g;
        op.pad_byte = p->pad_byte;
        op.w = (const uint64_t *)prep;
        op.ldw = op.kwords;
        shared += repack_bytes(&g);
        n = g.n * g.oh * g.ow;
    } else {
        op.w = w;
        op.ldw = ldw;
    }
    u8_attach(&op, m, shared);
    return u8_run(&op, n, m, epi, c, ldc, ws, wsb);
}
