/*
 * model_builder.h -- writes .bnn model files in memory for the tests and
 * the fuzz corpus generator (header only, C99).  docs/model-format.md is
 * the specification followed here.
 *
 * A model is described layer by layer with mb_add_*(): each call takes
 * the record's parameters as they go into the file and sizes the arrays
 * from them alone, so malformed chains (a pool after a dense, a dense k
 * that does not match...) can be written as easily as valid ones.  The
 * shapes an activation would have are tracked along the way for the
 * reference forward pass of the tests (valid chains only).
 *
 *   mb_model m;
 *   mb_init(&m, h, w, c, classes);
 *   mb_add_dense(&m, MB_INPUT_U8, h * w * c, 70);  ...
 *   mb_fill_random(&m, seed);         weights (pad bits 0), thresholds...
 *   bytes = mb_serialize(&m, &size);  malloc'd file, checksum set
 *   mb_free(&m);
 *
 * Editing helpers (mb_put32/mb_put64, mb_record_offset, mb_set_checksum)
 * change single fields of serialized bytes and re-seal the checksum with
 * the library's bnn_model_checksum() (the one FNV-1a of the C side), so
 * users of this header link libbnn.  Record sizes are computed here from
 * the specification, independently of the library, as a second opinion.
 */
#ifndef BNN_MODEL_BUILDER_H
#define BNN_MODEL_BUILDER_H

#include "bnn.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MB_MAX_LAYERS 16
#define MB_HDR 64

enum { MB_DENSE = 1, MB_CONV = 2, MB_POOL = 3, MB_FLATTEN = 4 };
enum { MB_INPUT_U8 = 1, MB_SCORES = 2, MB_PAD_ONE = 4 };

typedef struct mb_layer {
    uint32_t type, flags;
    uint32_t prm[12];
    /* shapes of one image (spatial: h, w, c; flat: 1, 1, features) */
    int64_t in_h, in_w, in_c, out_h, out_w, out_c;
    /* arrays: rows x row_words weight words, then per output channel
     * thresh + flip or (SCORES) scale + offset; nout = 0 for pool/flatten */
    int64_t rows, row_words, row_bits, nout;
    uint64_t *w;
    int32_t *thresh;
    uint8_t *flip;
    float *scale, *offset;
} mb_layer;

typedef struct mb_model {
    uint32_t h, w, c, classes;
    int n;
    int64_t cur_h, cur_w, cur_c;     /* shape after the last added layer */
    mb_layer L[MB_MAX_LAYERS];
} mb_model;

/* ---- small utilities ---------------------------------------------------- */

static inline uint64_t mb_rand(uint64_t *s)
{
    /* splitmix64 */
    uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* Uniform integer in [lo, hi]. */
static inline int64_t mb_range(uint64_t *s, int64_t lo, int64_t hi)
{
    return lo + (int64_t)(mb_rand(s) % ((uint64_t)(hi - lo) + 1u));
}

static inline int64_t mb_words(int64_t k) { return k <= 0 ? 0 : (k + 63) / 64; }
static inline int64_t mb_a64(int64_t x) { return (x + 63) & ~(int64_t)63; }

static inline void mb_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}

static inline void mb_put64(uint8_t *p, uint64_t v)
{
    mb_put32(p, (uint32_t)v);
    mb_put32(p + 4, (uint32_t)(v >> 32));
}

static inline uint32_t mb_get32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static inline uint64_t mb_get64(const uint8_t *p)
{
    return (uint64_t)mb_get32(p) | ((uint64_t)mb_get32(p + 4) << 32);
}

/* Store the checksum of a file of n >= 32 bytes. */
static inline void mb_set_checksum(uint8_t *p, size_t n)
{
    if (n >= 32) mb_put64(p + 24, bnn_model_checksum(p, n));
}

/* Store the size field and the checksum (after an edit that changed the
 * length of the file). */
static inline void mb_reseal(uint8_t *p, size_t n)
{
    if (n >= 24) mb_put64(p + 16, (uint64_t)n);
    mb_set_checksum(p, n);
}

static inline void *mb_xalloc(size_t n)
{
    void *p = calloc(n ? n : 1, 1);
    if (p == NULL) {
        fprintf(stderr, "model_builder: out of memory (%zu bytes)\n", n);
        exit(1);
    }
    return p;
}

/* ---- describing a model ------------------------------------------------ */

static inline void mb_init(mb_model *m, uint32_t h, uint32_t w, uint32_t c, uint32_t classes)
{
    memset(m, 0, sizeof *m);
    m->h = h; m->w = w; m->c = c; m->classes = classes;
    m->cur_h = h; m->cur_w = w; m->cur_c = c;
}

static inline mb_layer *mb_next(mb_model *m, uint32_t type, uint32_t flags)
{
    mb_layer *L;
    if (m->n >= MB_MAX_LAYERS) {
        fprintf(stderr, "model_builder: more than %d layers\n", MB_MAX_LAYERS);
        exit(1);
    }
    L = &m->L[m->n++];
    memset(L, 0, sizeof *L);
    L->type = type;
    L->flags = flags;
    L->in_h = m->cur_h; L->in_w = m->cur_w; L->in_c = m->cur_c;
    return L;
}

static inline void mb_alloc_arrays(mb_layer *L, int64_t rows, int64_t row_bits, int64_t nout)
{
    L->rows = rows;
    L->row_bits = row_bits;
    L->row_words = mb_words(row_bits);
    L->nout = nout;
    L->w = (uint64_t *)mb_xalloc((size_t)(rows * L->row_words) * 8);
    if (L->flags & MB_SCORES) {
        L->scale = (float *)mb_xalloc((size_t)nout * sizeof(float));
        L->offset = (float *)mb_xalloc((size_t)nout * sizeof(float));
    } else {
        L->thresh = (int32_t *)mb_xalloc((size_t)nout * sizeof(int32_t));
        L->flip = (uint8_t *)mb_xalloc((size_t)nout);
    }
}

/* dense: k inputs, m outputs. */
static inline void mb_add_dense(mb_model *m, uint32_t flags, uint32_t k, uint32_t outs)
{
    mb_layer *L = mb_next(m, MB_DENSE, flags);
    L->prm[0] = k;
    L->prm[1] = outs;
    mb_alloc_arrays(L, outs, k, outs);
    L->out_h = 1; L->out_w = 1; L->out_c = outs;
    m->cur_h = 1; m->cur_w = 1; m->cur_c = outs;
}

/* conv: c -> o channels, kh x kw kernel, strides, dilations, paddings
 * (top, bottom, left, right). */
static inline void mb_add_conv(mb_model *m, uint32_t flags, uint32_t c, uint32_t o, uint32_t kh,
                               uint32_t kw, uint32_t sh, uint32_t sw, uint32_t dh, uint32_t dw,
                               uint32_t pt, uint32_t pb, uint32_t pl, uint32_t pr)
{
    mb_layer *L = mb_next(m, MB_CONV, flags);
    int64_t eh = ((int64_t)kh - 1) * dh + 1, ew = ((int64_t)kw - 1) * dw + 1;
    L->prm[0] = c; L->prm[1] = o; L->prm[2] = kh; L->prm[3] = kw;
    L->prm[4] = sh; L->prm[5] = sw; L->prm[6] = dh; L->prm[7] = dw;
    L->prm[8] = pt; L->prm[9] = pb; L->prm[10] = pl; L->prm[11] = pr;
    /* one row of words(c) per (o, tap) */
    mb_alloc_arrays(L, (int64_t)o * kh * kw, c, o);
    if (sh && sw) {
        L->out_h = (m->cur_h + pt + pb - eh) / sh + 1;
        L->out_w = (m->cur_w + pl + pr - ew) / sw + 1;
    }
    L->out_c = o;
    m->cur_h = L->out_h; m->cur_w = L->out_w; m->cur_c = o;
}

static inline void mb_add_pool(mb_model *m, uint32_t kh, uint32_t kw, uint32_t sh, uint32_t sw)
{
    mb_layer *L = mb_next(m, MB_POOL, 0);
    L->prm[0] = kh; L->prm[1] = kw; L->prm[2] = sh; L->prm[3] = sw;
    if (sh && sw) {
        L->out_h = (m->cur_h - (int64_t)kh) / sh + 1;
        L->out_w = (m->cur_w - (int64_t)kw) / sw + 1;
    }
    L->out_c = m->cur_c;
    m->cur_h = L->out_h; m->cur_w = L->out_w;
}

static inline void mb_add_flatten(mb_model *m)
{
    mb_layer *L = mb_next(m, MB_FLATTEN, 0);
    L->out_h = 1; L->out_w = 1; L->out_c = m->cur_h * m->cur_w * m->cur_c;
    m->cur_h = 1; m->cur_w = 1; m->cur_c = L->out_c;
}

/* Random contents: weight bits (pad bits 0), thresholds in +-thr of the
 * layer's typical dot product (ties with the dot happen), flips 0/1,
 * scales in [-2, 2) and offsets in [-8, 8). */
static inline void mb_fill_random(mb_model *m, uint64_t seed)
{
    uint64_t s = seed;
    int i;
    for (i = 0; i < m->n; i++) {
        mb_layer *L = &m->L[i];
        int64_t r, q, taps = 1, spread;
        uint64_t mask = (L->row_bits % 64) ? (~(uint64_t)0 >> (64 - L->row_bits % 64)) : ~(uint64_t)0;
        for (r = 0; r < L->rows; r++)
            for (q = 0; q < L->row_words; q++) {
                uint64_t v = mb_rand(&s);
                if (q == L->row_words - 1) v &= mask;
                L->w[r * L->row_words + q] = v;
            }
        if (L->type == MB_CONV) taps = (int64_t)L->prm[2] * L->prm[3];
        /* about one standard deviation of the dot product */
        {
            int64_t terms = taps * L->row_bits, sd = 1;
            while (sd * sd < terms) sd++;
            spread = (L->flags & MB_INPUT_U8) ? sd * 60 : sd;
        }
        for (q = 0; q < L->nout; q++) {
            if (L->flags & MB_SCORES) {
                L->scale[q] = (float)((double)(mb_rand(&s) >> 11) * (4.0 / 9007199254740992.0) - 2.0);
                L->offset[q] = (float)((double)(mb_rand(&s) >> 11) * (16.0 / 9007199254740992.0) - 8.0);
            } else {
                L->thresh[q] = (int32_t)mb_range(&s, -spread, spread);
                L->flip[q] = (uint8_t)(mb_rand(&s) & 1);
            }
        }
    }
}

static inline void mb_free(mb_model *m)
{
    int i;
    for (i = 0; i < m->n; i++) {
        mb_layer *L = &m->L[i];
        free(L->w); free(L->thresh); free(L->flip); free(L->scale); free(L->offset);
    }
    m->n = 0;
}

/* ---- writing ------------------------------------------------------------ */

static inline int64_t mb_record_size(const mb_layer *L)
{
    int64_t s = 64;
    if (L->type == MB_POOL || L->type == MB_FLATTEN) return s;
    s += mb_a64(L->rows * L->row_words * 8);
    if (L->flags & MB_SCORES) s += 2 * mb_a64(4 * L->nout);
    else s += mb_a64(4 * L->nout) + mb_a64(L->nout);
    return s;
}

/* Offset of record i (i == m->n: the end of the file). */
static inline int64_t mb_record_offset(const mb_model *m, int i)
{
    int64_t off = MB_HDR;
    int j;
    for (j = 0; j < i; j++) off += mb_record_size(&m->L[j]);
    return off;
}

/* The file bytes (malloc'd, *size set), with size and checksum filled in. */
static inline uint8_t *mb_serialize(const mb_model *m, size_t *size)
{
    int64_t total = mb_record_offset(m, m->n), off = MB_HDR, q;
    uint8_t *d = (uint8_t *)mb_xalloc((size_t)total);
    int i, j;
    memcpy(d, "BNNMODEL", 8);
    mb_put32(d + 8, 1);
    mb_put32(d + 12, 1);
    mb_put32(d + 32, (uint32_t)m->n);
    mb_put32(d + 36, m->h);
    mb_put32(d + 40, m->w);
    mb_put32(d + 44, m->c);
    mb_put32(d + 48, m->classes);
    for (i = 0; i < m->n; i++) {
        const mb_layer *L = &m->L[i];
        uint8_t *r = d + off, *a = r + 64;
        mb_put32(r, L->type);
        mb_put32(r + 4, L->flags);
        mb_put64(r + 8, (uint64_t)mb_record_size(L));
        for (j = 0; j < 12; j++) mb_put32(r + 16 + 4 * j, L->prm[j]);
        if (L->type == MB_DENSE || L->type == MB_CONV) {
            int64_t nw = L->rows * L->row_words;
            for (q = 0; q < nw; q++) mb_put64(a + 8 * q, L->w[q]);
            a += mb_a64(8 * nw);
            if (L->flags & MB_SCORES) {
                for (q = 0; q < L->nout; q++) {
                    uint32_t u;
                    memcpy(&u, &L->scale[q], 4);
                    mb_put32(a + 4 * q, u);
                    memcpy(&u, &L->offset[q], 4);
                    mb_put32(a + mb_a64(4 * L->nout) + 4 * q, u);
                }
            } else {
                for (q = 0; q < L->nout; q++) {
                    mb_put32(a + 4 * q, (uint32_t)L->thresh[q]);
                    a[mb_a64(4 * L->nout) + q] = L->flip[q];
                }
            }
        }
        off += mb_record_size(L);
    }
    mb_reseal(d, (size_t)total);
    *size = (size_t)total;
    return d;
}

/* ---- the models of the tests and of the fuzz corpus --------------------- */

/* MLP: 4x4x3 image -> dense 48 -> 70 -> dense 70 -> 65 -> dense scores 65 -> 10. */
static inline void mb_tiny_mlp(mb_model *m, uint64_t seed)
{
    mb_init(m, 4, 4, 3, 10);
    mb_add_dense(m, MB_INPUT_U8, 48, 70);
    mb_add_dense(m, 0, 70, 65);
    mb_add_dense(m, MB_SCORES, 65, 10);
    mb_fill_random(m, seed);
}

/* Conv net: 6x6x3 image -> conv 3x3 pad 1 -> 70, max-pool 2x2 -> 3x3x70,
 * conv 3x3 pad 1 (zeros) -> 65, flatten 585, dense scores -> 10. */
static inline void mb_tiny_cnn(mb_model *m, uint64_t seed)
{
    mb_init(m, 6, 6, 3, 10);
    mb_add_conv(m, MB_INPUT_U8, 3, 70, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1);
    mb_add_pool(m, 2, 2, 2, 2);
    mb_add_conv(m, 0, 70, 65, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1);
    mb_add_flatten(m);
    mb_add_dense(m, MB_SCORES, 585, 10);
    mb_fill_random(m, seed);
}

/* The other paths: strided conv with uneven padding, a +1-padded dilated
 * conv, overlapping pooling, a flatten of whole words (c = 64), a dense
 * layer with k a multiple of 64 and m over two words.  7x5x2 image ->
 * conv 3x3 s2 pad (1,0,2,1) -> 3x3x64 -> conv PAD_ONE 2x2 d2 pad 1 ->
 * 3x3x64 -> pool 2x2 s1 -> 2x2x64 -> flatten 256 -> dense 130 -> scores 7. */
static inline void mb_tiny_variant(mb_model *m, uint64_t seed)
{
    mb_init(m, 7, 5, 2, 7);
    mb_add_conv(m, MB_INPUT_U8, 2, 64, 3, 3, 2, 2, 1, 1, 1, 0, 2, 1);
    mb_add_conv(m, MB_PAD_ONE, 64, 64, 2, 2, 1, 1, 2, 2, 1, 1, 1, 1);
    mb_add_pool(m, 2, 2, 1, 1);
    mb_add_flatten(m);
    mb_add_dense(m, 0, 256, 130);
    mb_add_dense(m, MB_SCORES, 130, 7);
    mb_fill_random(m, seed);
}

/* The smallest model: one dense layer reading a 3x2x5 image and giving 4 scores. */
static inline void mb_one_dense(mb_model *m, uint64_t seed)
{
    mb_init(m, 3, 2, 5, 4);
    mb_add_dense(m, MB_INPUT_U8 | MB_SCORES, 30, 4);
    mb_fill_random(m, seed);
}

#endif /* BNN_MODEL_BUILDER_H */
