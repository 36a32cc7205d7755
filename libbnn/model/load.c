/*
 * model.c -- the .bnn model runtime (docs/model-format.md).
 *
 * Loading is one strict pass over the file that checks everything the
 * runtime will rely on (sizes, checksum, versions, parameters, the shape
 * chain, flip values, zero pad bits) and, on a second pass with memory,
 * fills in the layer table.  Reads of the file go through rd32/rd64 after
 * an explicit bounds check, so a hostile file can make loading fail but
 * never read outside the bytes it was given.  Running uses the kernels of
 * the rest of the library on a caller-provided workspace: two ping-pong
 * activation buffers, the scores, and the kernels' scratch.
 */
#include "core/bnn_engine.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FMT_VERSION 1
#define HDR_BYTES 64
#define MAX_LAYERS 4096
#define MAX_DIM ((int64_t)1 << 24)     /* any single dimension          */
#define MAX_GEOM ((int64_t)1 << 16)    /* kernel, stride, dilation, pad */
#define MODEL_MAGIC 0x626e6e6d6f64656cULL

enum { T_DENSE = 1, T_CONV = 2, T_POOL = 3, T_FLATTEN = 4 };
enum { F_INPUT_U8 = 1, F_SCORES = 2, F_PAD_ONE = 4, F_ALL = 7 };
/* what an activation is between layers */
enum { S_IMAGE, S_SPATIAL, S_FLAT };

typedef struct layer_rt {
    int32_t type, flags;
    int64_t k, m;                    /* dense: inputs, outputs            */
    bnn_conv2d_params cp;            /* conv geometry (n set per run)     */
    bnn_pool2d_params pp;            /* pool geometry (n set per run)     */
    int64_t in_h, in_w, in_c;        /* input shape of one image          */
    int64_t out_h, out_w, out_c;     /* output shape (dense: 1, 1, m)     */
    const uint64_t *w;
    int64_t ldw;
    const int32_t *thresh;
    const uint8_t *flip;
    const float *scale, *offset;
    int32_t *corr;                   /* conv zero-padding correction      */
    void *prep;                      /* first layer: prepared u8 weights  */
} layer_rt;

struct bnn_model {
    uint64_t magic;
    void *block;                     /* malloc'd block holding the model  */
    void *file_copy;                 /* malloc'd file bytes it reads      */
    bnn_model_info info;
    int64_t n_layers;
    layer_rt *layers;
    int64_t act_words;               /* largest activation, words/image   */
};

/* ---- little-endian reads of checked ranges ---------------------------- */

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static uint64_t rd64(const uint8_t *p)
{
    return (uint64_t)rd32(p) | ((uint64_t)rd32(p + 4) << 32);
}

static int64_t a64(int64_t x) { return (x + 63) & ~(int64_t)63; }

static int host_little_endian(void)
{
    const uint16_t one = 1;
    uint8_t b;
    memcpy(&b, &one, 1);
    return b == 1;
}

static uint64_t fnv1a(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    size_t i;
    for (i = 0; i < n; i++) {
        /* the checksum field (bytes 24..31) reads as zero */
        h ^= (i >= 24 && i < 32) ? 0u : p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* ---- the checking pass ------------------------------------------------ */

typedef struct parse_out {
    bnn_model_info info;
    int64_t n_layers;
    int64_t corr_bytes;              /* int32 corrections of zero-padded convs,
                                        and the prepared first layer       */
    int64_t act_words;
} parse_out;

/* Check the file; with `layers` non-NULL also fill the table (corr
 * pointers are then assigned from corr_mem, which holds corr_bytes). */
static bnn_status parse(const uint8_t *d, size_t bytes, parse_out *po, layer_rt *layers,
                        uint8_t *corr_mem)
{
    int64_t size, off, li, state, h, w, c, corr_used = 0, binw = 0, act = 0;
    uint32_t nl, ver, lay;
    layer_rt prev;
    int has_prev = 0;

    memset(&prev, 0, sizeof prev);
    if (!host_little_endian()) return BNN_ERR_UNSUPPORTED;
    if (bytes < HDR_BYTES) return BNN_ERR_FORMAT;
    if (memcmp(d, "BNNMODEL", 8) != 0) return BNN_ERR_FORMAT;
    ver = rd32(d + 8);
    lay = rd32(d + 12);
    if (ver == 0) return BNN_ERR_FORMAT;
    if (ver != FMT_VERSION || lay != BNN_LAYOUT_VERSION) return BNN_ERR_UNSUPPORTED;
    if (rd64(d + 16) != (uint64_t)bytes) return BNN_ERR_FORMAT;
    if ((uint64_t)bytes > (uint64_t)INT64_MAX / 2) return BNN_ERR_FORMAT;
    size = (int64_t)bytes;
    if (fnv1a(d, bytes) != rd64(d + 24)) return BNN_ERR_FORMAT;
    nl = rd32(d + 32);
    h = rd32(d + 36); w = rd32(d + 40); c = rd32(d + 44);
    if (nl < 1 || nl > MAX_LAYERS) return BNN_ERR_FORMAT;
    if (h < 1 || w < 1 || c < 1 || h > MAX_DIM || w > MAX_DIM || c > MAX_DIM
        || h * w > MAX_DIM || h * w * c > (int64_t)INT32_MAX / 256)
        return BNN_ERR_FORMAT;
    if (rd32(d + 48) < 1 || rd32(d + 48) > MAX_DIM) return BNN_ERR_FORMAT;
    for (off = 52; off < HDR_BYTES; off++)
        if (d[off] != 0) return BNN_ERR_FORMAT;

    memset(po, 0, sizeof *po);
    po->info.in_h = h; po->info.in_w = w; po->info.in_c = c;
    po->info.classes = rd32(d + 48);
    po->info.layers = nl;
    po->info.file_bytes = size;
    po->info.format_version = (int32_t)ver;
    po->info.layout_version = (int32_t)lay;
    po->n_layers = nl;
    state = S_IMAGE;
    off = HDR_BYTES;

    for (li = 0; li < (int64_t)nl; li++) {
        layer_rt L;
        const uint8_t *r, *arr;
        uint32_t prm[12];
        int64_t rsize, need, q, np;
        int i;
        if (size - off < 64) return BNN_ERR_FORMAT;
        r = d + off;
        memset(&L, 0, sizeof L);
        L.type = (int32_t)rd32(r);
        L.flags = (int32_t)rd32(r + 4);
        if (rd32(r + 4) & ~(uint32_t)F_ALL) return BNN_ERR_FORMAT;
        if (rd64(r + 8) > (uint64_t)(size - off)) return BNN_ERR_FORMAT;
        rsize = (int64_t)rd64(r + 8);
        if (rsize < 64 || rsize % 64) return BNN_ERR_FORMAT;
        for (i = 0; i < 12; i++) prm[i] = rd32(r + 16 + 4 * i);
        /* INPUT_U8 exactly on the first record, SCORES exactly on the last */
        if (((L.flags & F_INPUT_U8) != 0) != (li == 0)) return BNN_ERR_FORMAT;
        if (((L.flags & F_SCORES) != 0) != (li == (int64_t)nl - 1)) return BNN_ERR_FORMAT;
        L.in_h = h; L.in_w = w; L.in_c = c;
        arr = r + 64;
        np = 0;
        switch (L.type) {
        case T_DENSE: {
            int64_t kw, wbytes, rows;
            np = 2;
            L.k = prm[0]; L.m = prm[1];
            if (L.k < 1 || L.m < 1 || L.m > MAX_DIM || L.k > (int64_t)INT32_MAX / 256)
                return BNN_ERR_FORMAT;
            if (L.flags & F_PAD_ONE) return BNN_ERR_FORMAT;
            if (state == S_IMAGE) {
                if (L.k != h * w * c) return BNN_ERR_FORMAT;
            } else if (state != S_FLAT || L.k != c) {
                return BNN_ERR_FORMAT;
            }
            if ((L.flags & F_SCORES) && L.m != po->info.classes) return BNN_ERR_FORMAT;
            kw = bnn_words(L.k);
            if (!bnn_mul_ok(L.m, kw, &rows) || !bnn_mul_ok(rows, 8, &wbytes)) return BNN_ERR_FORMAT;
            need = 64 + a64(wbytes) + ((L.flags & F_SCORES) ? 2 * a64(4 * L.m)
                                                             : a64(4 * L.m) + a64(L.m));
            if (need != rsize) return BNN_ERR_FORMAT;
            L.w = (const uint64_t *)arr;
            L.ldw = kw;
            if (L.flags & F_SCORES) {
                L.scale = (const float *)(arr + a64(wbytes));
                L.offset = (const float *)(arr + a64(wbytes) + a64(4 * L.m));
            } else {
                L.thresh = (const int32_t *)(arr + a64(wbytes));
                L.flip = arr + a64(wbytes) + a64(4 * L.m);
            }
            /* pad bits of every row must be 0 (the kernels rely on it) */
            if (L.k % 64) {
                uint64_t padmask = ~(uint64_t)0 << (L.k % 64);
                for (q = 0; q < L.m; q++)
                    if (rd64(arr + 8 * (q * kw + kw - 1)) & padmask) return BNN_ERR_FORMAT;
            }
            if (L.flags & F_INPUT_U8) {
                int64_t pb = a64((int64_t)bnn_u8_prep_bytes(NULL, L.m, L.k));
                if (layers) {
                    L.prep = corr_mem + corr_used;
                    bnn_u8_prepare(NULL, L.m, L.k, L.w, L.ldw, L.prep);
                }
                corr_used += pb;
            }
            binw += L.m * L.k;
            h = 1; w = 1; c = L.m;
            state = S_FLAT;
            break;
        }
        case T_CONV: {
            bnn_conv2d_params *p = &L.cp;
            int64_t cw, rows, wbytes, oh, ow, taps;
            np = 12;
            memset(p, 0, sizeof *p);
            p->n = 1; p->h = h; p->w = w; p->c = prm[0]; p->o = prm[1];
            p->kh = prm[2]; p->kw = prm[3];
            for (i = 0; i < 12; i++)
                if (i >= 2 && (int64_t)prm[i] > MAX_GEOM) return BNN_ERR_FORMAT;
            p->stride_h = (int32_t)prm[4]; p->stride_w = (int32_t)prm[5];
            p->dilation_h = (int32_t)prm[6]; p->dilation_w = (int32_t)prm[7];
            p->pad_top = (int32_t)prm[8]; p->pad_bottom = (int32_t)prm[9];
            p->pad_left = (int32_t)prm[10]; p->pad_right = (int32_t)prm[11];
            p->pad_value = (L.flags & F_PAD_ONE) ? 1 : 0;
            p->pad_byte = 128;
            if (state != S_IMAGE && state != S_SPATIAL) return BNN_ERR_FORMAT;
            if (L.flags & F_SCORES) return BNN_ERR_FORMAT;
            if ((L.flags & F_INPUT_U8) && (L.flags & F_PAD_ONE)) return BNN_ERR_FORMAT;
            if (p->c != c || p->o < 1 || p->o > MAX_DIM || p->kh < 1 || p->kw < 1)
                return BNN_ERR_FORMAT;
            if (bnn_conv2d_output_shape(p, &oh, &ow) != BNN_OK) return BNN_ERR_FORMAT;
            if (oh < 1 || ow < 1 || oh * ow > MAX_DIM) return BNN_ERR_FORMAT;
            taps = p->kh * p->kw;
            if (taps * c > (int64_t)INT32_MAX / 256) return BNN_ERR_FORMAT;
            cw = bnn_words(c);
            if (!bnn_mul_ok(p->o * taps, cw, &rows) || !bnn_mul_ok(rows, 8, &wbytes))
                return BNN_ERR_FORMAT;
            need = 64 + a64(wbytes) + a64(4 * p->o) + a64(p->o);
            if (need != rsize) return BNN_ERR_FORMAT;
            L.w = (const uint64_t *)arr;
            L.ldw = taps * cw;
            L.thresh = (const int32_t *)(arr + a64(wbytes));
            L.flip = arr + a64(wbytes) + a64(4 * p->o);
            if (c % 64) {
                uint64_t padmask = ~(uint64_t)0 << (c % 64);
                for (q = 0; q < p->o * taps; q++)
                    if (rd64(arr + 8 * (q * cw + cw - 1)) & padmask) return BNN_ERR_FORMAT;
            }
            if (L.flags & F_INPUT_U8) {
                int64_t pb = a64((int64_t)bnn_u8_prep_bytes(p, p->o, taps * c));
                if (layers) {
                    L.prep = corr_mem + corr_used;
                    bnn_u8_prepare(p, p->o, taps * c, L.w, L.ldw, L.prep);
                }
                corr_used += pb;
            }
            if (!(L.flags & F_INPUT_U8) && !(L.flags & F_PAD_ONE)) {
                int64_t cb = a64(4 * taps * p->o);
                if (layers) {
                    L.corr = (int32_t *)(corr_mem + corr_used);
                    if (bnn_conv2d_correction(p, L.w, L.corr) != BNN_OK) return BNN_ERR_FORMAT;
                }
                corr_used += cb;
            }
            binw += p->o * taps * c;
            L.m = p->o;
            h = oh; w = ow; c = p->o;
            state = S_SPATIAL;
            break;
        }
        case T_POOL: {
            bnn_pool2d_params *p = &L.pp;
            int64_t oh, ow;
            np = 4;
            if (L.flags != 0 || rsize != 64) return BNN_ERR_FORMAT;
            if (state != S_SPATIAL || !has_prev || prev.type != T_CONV) return BNN_ERR_FORMAT;
            for (i = 0; i < 4; i++)
                if (prm[i] < 1 || (int64_t)prm[i] > MAX_GEOM) return BNN_ERR_FORMAT;
            memset(p, 0, sizeof *p);
            p->n = 1; p->h = h; p->w = w; p->c = c;
            p->kh = (int32_t)prm[0]; p->kw = (int32_t)prm[1];
            p->stride_h = (int32_t)prm[2]; p->stride_w = (int32_t)prm[3];
            if (bnn_pool2d_output_shape(p, &oh, &ow) != BNN_OK || oh < 1 || ow < 1)
                return BNN_ERR_FORMAT;
            L.flip = prev.flip;
            h = oh; w = ow;
            break;
        }
        case T_FLATTEN:
            if (L.flags != 0 || rsize != 64) return BNN_ERR_FORMAT;
            if (state != S_SPATIAL) return BNN_ERR_FORMAT;
            if (h * w * c > (int64_t)INT32_MAX / 256) return BNN_ERR_FORMAT;
            c = h * w * c; h = 1; w = 1;
            state = S_FLAT;
            break;
        default:
            return BNN_ERR_FORMAT;
        }
        for (i = (int)np; i < 12; i++)
            if (prm[i] != 0) return BNN_ERR_FORMAT;
        if (L.flip != NULL && L.type != T_POOL) {
            for (q = 0; q < L.m; q++)
                if (L.flip[q] > 1) return BNN_ERR_FORMAT;
        }
        L.out_h = h; L.out_w = w; L.out_c = c;
        {
            int64_t words = h * w * bnn_words(c);
            if (words > act) act = words;
        }
        if (layers) layers[li] = L;
        prev = L;
        has_prev = 1;
        off += rsize;
    }
    if (off != size) return BNN_ERR_FORMAT;
    /* load-time tables (the first layer's expanded weights: 64-output
     * blocks, 9 bits per weight) stay within 128x the file: a tiny file
     * cannot ask for gigabytes */
    if (corr_used > 128 * size + ((int64_t)1 << 20)) return BNN_ERR_FORMAT;
    po->info.binary_weights = binw;
    po->corr_bytes = corr_used;
    po->act_words = act;
    return BNN_OK;
}

/* ---- loading ------------------------------------------------------------ */

/* Bytes of model memory for a checked file: the struct, the layer table,
 * the corrections and (when the bytes are not 8-byte aligned) a copy of
 * the file; +64 so any arena alignment works. */
static int64_t model_bytes(const parse_out *po, int copy_file)
{
    return 64 + a64((int64_t)sizeof(bnn_model)) + a64(po->n_layers * (int64_t)sizeof(layer_rt))
           + po->corr_bytes + (copy_file ? a64(po->info.file_bytes) : 0);
}

static int aligned8(const void *p) { return ((uintptr_t)p & 7u) == 0; }

static bnn_status build(void *mem, size_t mem_bytes, const void *data, size_t bytes,
                        bnn_model **out)
{
    parse_out po;
    bnn_status st;
    int copy = !aligned8(data);
    uint8_t *base, *p;
    bnn_model *m;
    const uint8_t *file;
    if ((st = parse((const uint8_t *)data, bytes, &po, NULL, NULL)) != BNN_OK) return st;
    if ((uint64_t)mem_bytes < (uint64_t)model_bytes(&po, copy)) return BNN_ERR_INVALID;
    base = (uint8_t *)mem;
    p = base + ((64 - ((uintptr_t)base & 63)) & 63);
    m = (bnn_model *)p;
    memset(m, 0, sizeof *m);
    p += a64((int64_t)sizeof(bnn_model));
    m->layers = (layer_rt *)p;
    p += a64(po.n_layers * (int64_t)sizeof(layer_rt));
    {
        uint8_t *corr = p;
        p += po.corr_bytes;
        file = (const uint8_t *)data;
        if (copy) {
            memcpy(p, data, bytes);
            file = p;
        }
        if ((st = parse(file, bytes, &po, m->layers, corr)) != BNN_OK) return st;
    }
    m->magic = MODEL_MAGIC;
    m->info = po.info;
    m->info.zero_copy = !copy;
    m->n_layers = po.n_layers;
    m->act_words = po.act_words;
    *out = m;
    return BNN_OK;
}

bnn_status bnn_model_arena_size(const void *data, size_t bytes, size_t *arena_bytes)
{
    parse_out po;
    bnn_status st;
    if (data == NULL || arena_bytes == NULL) return BNN_ERR_NULL;
    if ((st = parse((const uint8_t *)data, bytes, &po, NULL, NULL)) != BNN_OK) return st;
    *arena_bytes = (size_t)model_bytes(&po, !aligned8(data));
    return BNN_OK;
}

bnn_status bnn_model_init(void *arena, size_t arena_bytes, const void *data, size_t bytes,
                          bnn_model **model)
{
    if (model == NULL || data == NULL || arena == NULL) return BNN_ERR_NULL;
    return build(arena, arena_bytes, data, bytes, model);
}

bnn_status bnn_model_open_memory(const void *data, size_t bytes, bnn_model **model)
{
    size_t need;
    void *mem;
    bnn_status st;
    if (model == NULL || data == NULL) return BNN_ERR_NULL;
    if ((st = bnn_model_arena_size(data, bytes, &need)) != BNN_OK) return st;
    if ((mem = malloc(need)) == NULL) return BNN_ERR_NOMEM;
    st = build(mem, need, data, bytes, model);
    if (st != BNN_OK) {
        free(mem);
        return st;
    }
    (*model)->block = mem;
    return BNN_OK;
}

bnn_status bnn_model_open_file(const char *path, bnn_model **model)
{
    FILE *f;
    long len;
    uint64_t *buf;
    size_t got;
    bnn_status st;
    if (path == NULL || model == NULL) return BNN_ERR_NULL;
    if ((f = fopen(path, "rb")) == NULL) return BNN_ERR_IO;
    if (fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return BNN_ERR_IO;
    }
    if (len < HDR_BYTES) {
        fclose(f);
        return BNN_ERR_FORMAT;
    }
    /* a directory opens and can report any size (LONG_MAX on some file
     * systems) but cannot be read: read one byte before allocating */
    if (fgetc(f) == EOF || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return BNN_ERR_IO;
    }
    /* uint64_t storage: 8-byte aligned, so the model reads it in place */
    buf = (uint64_t *)malloc(((size_t)len + 7) / 8 * 8);
    if (buf == NULL) {
        fclose(f);
        return BNN_ERR_NOMEM;
    }
    got = fread(buf, 1, (size_t)len, f);
    fclose(f);
    if (got != (size_t)len) {
        free(buf);
        return BNN_ERR_IO;
    }
    st = bnn_model_open_memory(buf, (size_t)len, model);
    if (st != BNN_OK) {
        free(buf);
        return st;
    }
    (*model)->file_copy = buf;
    return BNN_OK;
}

void bnn_model_free(bnn_model *model)
{
    void *block, *file;
    if (model == NULL || model->magic != MODEL_MAGIC || model->block == NULL) return;
    block = model->block;
    file = model->file_copy;
    model->magic = 0;
    free(file);
    free(block);
}

bnn_status bnn_model_get_info(const bnn_model *model, bnn_model_info *info)
{
    if (model == NULL || info == NULL) return BNN_ERR_NULL;
    if (model->magic != MODEL_MAGIC) return BNN_ERR_INVALID;
    *info = model->info;
    return BNN_OK;
}

/* ---- running -------------------------------------------------------------- */

/* Scratch bytes of the kernels of layer L for a batch of n on t threads. */
static bnn_status layer_scratch(const layer_rt *L, int64_t n, int t, size_t *bytes)
{
    *bytes = 0;
    if (L->type == T_DENSE && (L->flags & F_INPUT_U8)) {
        *bytes = bnn_u8_part_scratch(L->k, t);
        return BNN_OK;
    }
    if (L->type == T_CONV) {
        bnn_conv2d_params p = L->cp;
        p.n = n;
        if (L->flags & F_INPUT_U8) {
            *bytes = bnn_u8_part_scratch(L->cp.kh * L->cp.kw * L->cp.c, t);
            return BNN_OK;
        }
        p.pad_value = 1;    /* the correction is precomputed */
        return bnn_conv2d_workspace_size(&p, t, bytes);
    }
    return BNN_OK;
}

typedef struct ws_plan {
    int64_t act_bytes, score_bytes, scratch_bytes;
} ws_plan;

static bnn_status plan(const bnn_model *m, int64_t n, int threads, ws_plan *wp)
{
    int64_t li, act;
    size_t s, mx = 0;
    bnn_status st;
    if (!bnn_mul_ok(m->act_words, 8, &act) || !bnn_mul_ok(act, n, &act)) return BNN_ERR_OVERFLOW;
    wp->act_bytes = a64(act);
    if (!bnn_mul_ok(m->info.classes * 4, n, &wp->score_bytes)) return BNN_ERR_OVERFLOW;
    wp->score_bytes = a64(wp->score_bytes);
    for (li = 0; li < m->n_layers; li++) {
        if ((st = layer_scratch(&m->layers[li], n, threads, &s)) != BNN_OK) return st;
        if (s > mx) mx = s;
    }
    if ((uint64_t)mx > (uint64_t)INT64_MAX / 4) return BNN_ERR_OVERFLOW;
    wp->scratch_bytes = a64((int64_t)mx);
    if (wp->act_bytes > INT64_MAX / 4 || wp->score_bytes > INT64_MAX / 4) return BNN_ERR_OVERFLOW;
    return BNN_OK;
}

/* Bytes of a plan: 64 for alignment, two activation buffers, the scores
 * and the kernels' scratch. */
static bnn_status plan_total(const ws_plan *wp, size_t *bytes)
{
    int64_t total;
    if (wp->act_bytes > INT64_MAX / 8 || wp->score_bytes > INT64_MAX / 8
        || wp->scratch_bytes > INT64_MAX / 8)
        return BNN_ERR_OVERFLOW;
    total = 64 + 2 * wp->act_bytes + wp->score_bytes + wp->scratch_bytes;
    if ((uint64_t)total > (uint64_t)SIZE_MAX) return BNN_ERR_OVERFLOW;
    *bytes = (size_t)total;
    return BNN_OK;
}

bnn_status bnn_model_workspace_size(const bnn_model *model, int64_t batch, int threads,
                                    size_t *bytes)
{
    ws_plan wp;
    bnn_status st;
    if (model == NULL || bytes == NULL) return BNN_ERR_NULL;
    if (model->magic != MODEL_MAGIC) return BNN_ERR_INVALID;
    if (batch < 0) return BNN_ERR_SHAPE;
    if (threads < 0) return BNN_ERR_INVALID;
    if (threads == 0) threads = bnn_get_num_threads();
    if ((st = plan(model, batch, threads, &wp)) != BNN_OK) return st;
    return plan_total(&wp, bytes);
}

/* Copy nbits (<= 64) low bits of v into dst at bit offset pos (dst zeroed). */
static void put_bits(uint64_t *dst, int64_t pos, uint64_t v, int nbits)
{
    int64_t q = pos / 64;
    int r = (int)(pos % 64);
    if (nbits < 64) v &= ((uint64_t)1 << nbits) - 1;
    dst[q] |= v << r;
    if (r && r + nbits > 64) dst[q + 1] |= v >> (64 - r);
}

/* [n][h][w][words(c)] sign bits -> [n][words(h*w*c)] in NHWC order. */
static void flatten_bits(int64_t n, int64_t hw, int64_t c, const uint64_t *src, uint64_t *dst)
{
    int64_t cw = bnn_words(c), fw = bnn_words(hw * c), i, p, q;
    for (i = 0; i < n; i++) {
        const uint64_t *s = src + i * hw * cw;
        uint64_t *d = dst + i * fw;
        memset(d, 0, (size_t)fw * 8);
        for (p = 0; p < hw; p++)
            for (q = 0; q < cw; q++) {
                int nb = (int)BNN_MIN((int64_t)64, c - 64 * q);
                put_bits(d, p * c + 64 * q, s[p * cw + q], nb);
            }
    }
}

bnn_status bnn_model_run(const bnn_model *model, int64_t n, const uint8_t *x, float *scores,
                         int32_t *classes, void *workspace, size_t workspace_bytes)
{
    ws_plan wp;
    bnn_status st;
    size_t need;
    uint8_t *base;
    uint64_t *buf[2];
    float *sc;
    void *scratch;
    size_t scratch_bytes;
    const uint64_t *cur = NULL;
    int64_t li, i, j, cls;
    int which = 0;

    if (model == NULL) return BNN_ERR_NULL;
    if (model->magic != MODEL_MAGIC) return BNN_ERR_INVALID;
    if (n < 0) return BNN_ERR_SHAPE;
    if (n == 0) return BNN_OK;
    if (x == NULL || workspace == NULL) return BNN_ERR_NULL;
    /* the one-thread plan gives the minimum size; kernels use whatever
     * scratch follows for more threads */
    if ((st = plan(model, n, 1, &wp)) != BNN_OK) return st;
    if ((st = plan_total(&wp, &need)) != BNN_OK) return st;
    if (workspace_bytes < need) return BNN_ERR_INVALID;
    base = (uint8_t *)workspace + ((64 - ((uintptr_t)workspace & 63)) & 63);
    buf[0] = (uint64_t *)base;
    buf[1] = (uint64_t *)(base + wp.act_bytes);
    sc = (float *)(base + 2 * wp.act_bytes);
    scratch = base + 2 * wp.act_bytes + wp.score_bytes;
    scratch_bytes = workspace_bytes - (size_t)((uint8_t *)scratch - (uint8_t *)workspace);

    for (li = 0; li < model->n_layers; li++) {
        const layer_rt *L = &model->layers[li];
        uint64_t *out = buf[which];
        bnn_epilogue epi;
        memset(&epi, 0, sizeof epi);
        if (L->flags & F_SCORES) {
            epi.kind = BNN_EPI_FLOAT;
            epi.scale = L->scale;
            epi.offset = L->offset;
        } else {
            epi.kind = BNN_EPI_BITS;
            epi.thresh = L->thresh;
            epi.flip = L->flip;
        }
        switch (L->type) {
        case T_DENSE: {
            void *o = (L->flags & F_SCORES) ? (void *)sc : (void *)out;
            int64_t ldc = (L->flags & F_SCORES) ? L->m : bnn_words(L->m);
            if (L->flags & F_INPUT_U8)
                st = bnn_u8_run_prepared(NULL, n, L->m, L->k, x, L->w, L->ldw, L->prep, &epi, o,
                                         ldc, BNN_U8_AUTO, scratch, scratch_bytes);
            else
                st = bnn_gemm(n, L->m, L->k, cur, bnn_words(L->k), L->w, L->ldw, &epi, o, ldc);
            break;
        }
        case T_CONV: {
            bnn_conv2d_params p = L->cp;
            p.n = n;
            if (L->flags & F_INPUT_U8)
                st = bnn_u8_run_prepared(&p, n, L->m, p.kh * p.kw * p.c, x, NULL, 0, L->prep,
                                         &epi, out, bnn_words(L->m), BNN_U8_AUTO, scratch,
                                         scratch_bytes);
            else
                st = bnn_conv2d_ex(&p, cur, L->w, L->corr, &epi, out, scratch, scratch_bytes);
            break;
        }
        case T_POOL: {
            bnn_pool2d_params p = L->pp;
            p.n = n;
            st = bnn_maxpool2d_bits(&p, cur, L->flip, out);
            break;
        }
        default: /* T_FLATTEN */
            if (L->in_c % 64 == 0) {
                out = (uint64_t *)cur;   /* the same words in the same order */
                which ^= 1;              /* keep writing to the other buffer */
            } else {
                flatten_bits(n, L->in_h * L->in_w, L->in_c, cur, out);
            }
            st = BNN_OK;
            break;
        }
        if (st != BNN_OK) return st;
        cur = out;
        which ^= 1;
    }
    /* the last layer wrote float scores */
    for (i = 0; i < n; i++) {
        const float *s = sc + i * model->info.classes;
        cls = 0;
        for (j = 0; j < model->info.classes; j++) {
            if (isnan(s[j])) {          /* as numpy's argmax: the first NaN */
                cls = j;
                break;
            }
            if (s[j] > s[cls]) cls = j;
        }
        if (classes) classes[i] = (int32_t)cls;
    }
    if (scores) memcpy(scores, sc, (size_t)(n * model->info.classes) * sizeof(float));
    return BNN_OK;
}
