/*
 * test_model.c -- the .bnn model runtime: loading, running, and rejecting
 * malformed files (docs/model-format.md, include/bnn.h "Model runtime").
 *
 * Models are written in the test by tests/model_builder.h from the seeded
 * PRNG: a tiny MLP (dense u8 48 -> 70, dense 70 -> 65, dense scores 65 ->
 * 10), a tiny conv net (conv u8 6x6x3 -> 70 3x3 pad 1, max-pool 2x2, conv
 * 70 -> 65 3x3 zero pad 1, flatten, dense scores -> 10), a variant with
 * strides, uneven and +1 padding, dilation, overlapping pooling and a
 * whole-word flatten, and a single-record model.
 *
 *  - Loading: bnn_model_open_memory (zero-copy on aligned bytes, a copy
 *    for bytes at data + 1), bnn_model_arena_size + bnn_model_init in an
 *    arena of exactly that size at any alignment (one byte short:
 *    BNN_ERR_INVALID), bnn_model_open_file on a temporary file (missing:
 *    BNN_ERR_IO, short: BNN_ERR_FORMAT, a directory: BNN_ERR_IO); the
 *    info fields; bnn_model_free(NULL).
 *  - Running: scores and classes equal a plain-loop reference on +-1
 *    integers (first layer dot = sum (x - 128) * w, bit = flip ? dot > t :
 *    dot < t, zero or +1 padding, pooling of bits by AND / OR, NHWC
 *    flatten, fmaf(dot, scale, offset), first maximal class) bit for bit,
 *    for batches of 1 and 5 on 1 and 3 threads and every ISA, with the
 *    workspace bnn_model_workspace_size gives (also misaligned); one byte
 *    short gives BNN_ERR_INVALID and writes nothing; n = 0 is a no-op;
 *    NULL x / model / workspace give BNN_ERR_NULL, n < 0 BNN_ERR_SHAPE.
 *  - Rejection, each case checked on its own against its status (and
 *    bnn_model_check() giving the same status as every loader): every
 *    truncation; every single-byte change (XOR 0x01 and 0x80) at every
 *    offset; magic, versions, size field; then, with the checksum
 *    recomputed so that the structural check is the one that fires:
 *    overflowing dimensions, bad record sizes, broken chains, misplaced
 *    INPUT_U8 / SCORES, unknown types and flags, nonzero unused
 *    parameters and reserved bytes, flip values > 1, nonzero weight pad
 *    bits, PAD_ONE where it is not allowed, layer counts, trailing bytes.
 *    Each rejected file is given to open_memory, arena_size and (copied to
 *    an odd address) open_memory again, in buffers of exactly its size.
 */
#define _XOPEN_SOURCE 700
#include "test_util.h"
#include "model_builder.h"

#include <unistd.h>

#define MAX_CLASSES 64

/* ------------------------------------------------------------------ */
/* Reference forward pass                                               */
/* ------------------------------------------------------------------ */

static int wbit(const mb_layer *L, int64_t row, int64_t j)
{
    return (int)((L->w[row * L->row_words + j / 64] >> (j % 64)) & 1u);
}

/* One image x [h][w][c] -> scores[classes].  Activations are integers:
 * x - 128 for the image, +-1 after (bit 1 = -1). */
static void ref_forward(const mb_model *m, const uint8_t *x, float *scores)
{
    int64_t cur_n = (int64_t)m->h * m->w * m->c, i, q;
    int32_t *a = (int32_t *)bt_alloc((size_t)cur_n * sizeof(int32_t));
    int li;
    for (i = 0; i < cur_n; i++) a[i] = (int32_t)x[i] - 128;
    for (li = 0; li < m->n; li++) {
        const mb_layer *L = &m->L[li];
        int64_t out_n = L->out_h * L->out_w * L->out_c;
        int32_t *b = (int32_t *)bt_alloc((size_t)out_n * sizeof(int32_t));
        if (L->type == MB_DENSE) {
            for (q = 0; q < L->nout; q++) {
                int64_t dot = 0;
                for (i = 0; i < (int64_t)L->prm[0]; i++) dot += a[i] * (wbit(L, q, i) ? -1 : 1);
                if (L->flags & MB_SCORES) {
                    scores[q] = fmaf((float)dot, L->scale[q], L->offset[q]);
                    b[q] = 0;
                } else {
                    int bit = L->flip[q] ? dot > L->thresh[q] : dot < L->thresh[q];
                    b[q] = bit ? -1 : 1;
                }
            }
        } else if (L->type == MB_CONV) {
            int64_t kh = L->prm[2], kw = L->prm[3], sh = L->prm[4], sw = L->prm[5];
            int64_t dh = L->prm[6], dw = L->prm[7], pt = L->prm[8], pl = L->prm[10];
            int64_t c = L->in_c, y, xx, o, ty, tx, ch;
            int pad = (L->flags & MB_PAD_ONE) ? 1 : 0;
            for (y = 0; y < L->out_h; y++)
                for (xx = 0; xx < L->out_w; xx++)
                    for (o = 0; o < L->out_c; o++) {
                        int64_t dot = 0;
                        int bit;
                        for (ty = 0; ty < kh; ty++)
                            for (tx = 0; tx < kw; tx++) {
                                int64_t iy = y * sh - pt + ty * dh, ix = xx * sw - pl + tx * dw;
                                int64_t row = (o * kh + ty) * kw + tx;
                                int inside = iy >= 0 && iy < L->in_h && ix >= 0 && ix < L->in_w;
                                for (ch = 0; ch < c; ch++) {
                                    int32_t v = inside ? a[(iy * L->in_w + ix) * c + ch] : pad;
                                    dot += v * (wbit(L, row, ch) ? -1 : 1);
                                }
                            }
                        bit = L->flip[o] ? dot > L->thresh[o] : dot < L->thresh[o];
                        b[(y * L->out_w + xx) * L->out_c + o] = bit ? -1 : 1;
                    }
        } else if (L->type == MB_POOL) {
            /* the flips of the conv before: AND of bits (max) for 0, OR for 1 */
            const mb_layer *P = &m->L[li - 1];
            int64_t kh = L->prm[0], kw = L->prm[1], sh = L->prm[2], sw = L->prm[3];
            int64_t y, xx, ch, ty, tx;
            for (y = 0; y < L->out_h; y++)
                for (xx = 0; xx < L->out_w; xx++)
                    for (ch = 0; ch < L->out_c; ch++) {
                        int acc = P->flip[ch] ? 0 : 1;
                        for (ty = 0; ty < kh; ty++)
                            for (tx = 0; tx < kw; tx++) {
                                int64_t iy = y * sh + ty, ix = xx * sw + tx;
                                int bit = a[(iy * L->in_w + ix) * L->in_c + ch] < 0;
                                acc = P->flip[ch] ? (acc | bit) : (acc & bit);
                            }
                        b[(y * L->out_w + xx) * L->out_c + ch] = acc ? -1 : 1;
                    }
        } else {
            /* flatten: NHWC order is already the flat order */
            for (i = 0; i < out_n; i++) b[i] = a[i];
        }
        free(a);
        a = b;
        cur_n = out_n;
    }
    free(a);
}

static int32_t ref_argmax(const float *s, int64_t classes)
{
    int64_t j, best = 0;
    for (j = 1; j < classes; j++)
        if (s[j] > s[best]) best = j;
    return (int32_t)best;
}

static int64_t ref_binary_weights(const mb_model *m)
{
    int64_t t = 0;
    int i;
    for (i = 0; i < m->n; i++) {
        const mb_layer *L = &m->L[i];
        if (L->type == MB_DENSE || L->type == MB_CONV) t += L->rows * L->row_bits;
    }
    return t;
}

/* ------------------------------------------------------------------ */
/* Small helpers                                                        */
/* ------------------------------------------------------------------ */

/* An exact-size heap copy of n bytes (+ extra zero bytes), so that
 * AddressSanitizer sees any read past the end. */
static uint8_t *dup_bytes(const uint8_t *d, size_t n, size_t extra)
{
    uint8_t *p = (uint8_t *)bt_alloc(n + extra);
    if (n) memcpy(p, d, n);
    if (extra) memset(p + n, 0, extra);
    return p;
}

static void random_images(bt_rng *r, uint8_t *x, size_t n)
{
    size_t i;
    static const uint8_t special[] = {0, 1, 127, 128, 129, 254, 255};
    for (i = 0; i < n; i++)
        x[i] = bt_below(r, 5) == 0 ? special[bt_below(r, sizeof special)] : (uint8_t)bt_next(r);
}

/* The system temp directory: $TMPDIR, else the C library's default. */
static const char *temp_dir(void)
{
    const char *dir = getenv("TMPDIR");
#ifdef P_tmpdir
    if (dir == NULL || dir[0] == '\0') dir = P_tmpdir;
#endif
    if (dir == NULL || dir[0] == '\0') dir = "/tmp";
    return dir;
}

/* The file name of a temporary model, unique to this process. */
static void temp_path(char *buf, size_t cap, const char *tag)
{
    snprintf(buf, cap, "%s/bnn_test_model_%ld_%s.bnn", temp_dir(), (long)getpid(), tag);
}

static int write_file(const char *path, const uint8_t *d, size_t n)
{
    FILE *f = fopen(path, "wb");
    size_t put;
    if (f == NULL) return 1;
    put = fwrite(d, 1, n, f);
    if (fclose(f) != 0 || put != n) return 1;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Running a loaded model against the reference                          */
/* ------------------------------------------------------------------ */

typedef struct run_ctx {
    const mb_model *m;
    const uint8_t *bytes;
    size_t size;
    const char *name;
} run_ctx;

static int check_info(const bnn_model *bm, const mb_model *m, size_t size, int zero_copy)
{
    bnn_model_info info;
    memset(&info, 0x5a, sizeof info);
    CHECK_ST(bnn_model_get_info(bm, &info), BNN_OK);
    CHECK_EQ(info.in_h, m->h);
    CHECK_EQ(info.in_w, m->w);
    CHECK_EQ(info.in_c, m->c);
    CHECK_EQ(info.classes, m->classes);
    CHECK_EQ(info.layers, m->n);
    CHECK_EQ(info.binary_weights, ref_binary_weights(m));
    CHECK_EQ(info.file_bytes, (int64_t)size);
    CHECK_EQ(info.format_version, 1);
    CHECK_EQ(info.layout_version, BNN_LAYOUT_VERSION);
    CHECK_EQ(info.zero_copy, zero_copy);
    CHECK_ST(bnn_model_get_info(NULL, &info), BNN_ERR_NULL);
    CHECK_ST(bnn_model_get_info(bm, NULL), BNN_ERR_NULL);
    return 0;
}

/* Batches of 1 and 5 on 1 and 3 threads equal the reference bit for bit. */
static int check_outputs(const bnn_model *bm, const mb_model *m, const char *how)
{
    static const int threads[2] = {1, 3};
    static const int64_t batches[2] = {1, 5};
    int64_t classes = m->classes, img = (int64_t)m->h * m->w * m->c, i, j;
    int ti, bi;
    bt_rng r = bt_stream(0x600d + (uint64_t)m->n * 131 + (uint64_t)img);
    for (ti = 0; ti < 2; ti++) {
        CHECK_ST(bnn_set_num_threads(threads[ti]), BNN_OK);
        for (bi = 0; bi < 2; bi++) {
            int64_t n = batches[bi];
            size_t ws_bytes = 0, ws1 = 0;
            uint8_t *x = (uint8_t *)bt_alloc((size_t)(n * img));
            float *want = (float *)bt_alloc((size_t)(n * classes) * sizeof(float));
            float *got = (float *)bt_alloc((size_t)(n * classes) * sizeof(float));
            int32_t *cls = (int32_t *)bt_alloc((size_t)n * sizeof(int32_t));
            uint8_t *ws, *ws_odd;
            bt_ctx("%s: n=%lld threads=%d", how, (long long)n, threads[ti]);
            random_images(&r, x, (size_t)(n * img));
            for (i = 0; i < n; i++) ref_forward(m, x + i * img, want + i * classes);
            CHECK_ST(bnn_model_workspace_size(bm, n, threads[ti], &ws_bytes), BNN_OK);
            CHECK_ST(bnn_model_workspace_size(bm, n, 1, &ws1), BNN_OK);
            CHECK(ws1 <= ws_bytes);
            ws = (uint8_t *)bt_alloc(ws_bytes);
            ws_odd = (uint8_t *)bt_alloc(ws_bytes + 3);

            memset(got, 0xcc, (size_t)(n * classes) * sizeof(float));
            memset(cls, 0xcc, (size_t)n * sizeof(int32_t));
            CHECK_ST(bnn_model_run(bm, n, x, got, cls, ws, ws_bytes), BNN_OK);
            for (i = 0; i < n; i++) {
                for (j = 0; j < classes; j++)
                    CHECK_MSG(bt_f2u(got[i * classes + j]) == bt_f2u(want[i * classes + j]),
                              "image %lld class %lld: got %.9g want %.9g", (long long)i,
                              (long long)j, (double)got[i * classes + j],
                              (double)want[i * classes + j]);
                CHECK_EQ(cls[i], ref_argmax(want + i * classes, classes));
            }
            /* any workspace alignment; scores or classes alone */
            memset(got, 0xcc, (size_t)(n * classes) * sizeof(float));
            CHECK_ST(bnn_model_run(bm, n, x, got, NULL, ws_odd + 3, ws_bytes), BNN_OK);
            CHECK(memcmp(got, want, (size_t)(n * classes) * sizeof(float)) == 0);
            memset(cls, 0xcc, (size_t)n * sizeof(int32_t));
            CHECK_ST(bnn_model_run(bm, n, x, NULL, cls, ws, ws_bytes), BNN_OK);
            for (i = 0; i < n; i++) CHECK_EQ(cls[i], ref_argmax(want + i * classes, classes));

            /* one byte short of the single-thread size: nothing written */
            memset(got, 0xcc, (size_t)(n * classes) * sizeof(float));
            memset(cls, 0xcc, (size_t)n * sizeof(int32_t));
            CHECK_ST(bnn_model_run(bm, n, x, got, cls, ws, ws1 - 1), BNN_ERR_INVALID);
            CHECK_ST(bnn_model_run(bm, n, x, got, cls, ws, 0), BNN_ERR_INVALID);
            CHECK_ST(bnn_model_run(bm, n, NULL, got, cls, ws, ws_bytes), BNN_ERR_NULL);
            CHECK_ST(bnn_model_run(bm, n, x, got, cls, NULL, ws_bytes), BNN_ERR_NULL);
            CHECK_ST(bnn_model_run(NULL, n, x, got, cls, ws, ws_bytes), BNN_ERR_NULL);
            CHECK_ST(bnn_model_run(bm, -1, x, got, cls, ws, ws_bytes), BNN_ERR_SHAPE);
            CHECK_ST(bnn_model_run(bm, 0, x, got, cls, ws, ws_bytes), BNN_OK);
            for (i = 0; i < n * classes; i++) CHECK(bt_f2u(got[i]) == 0xccccccccu);
            for (i = 0; i < n; i++) CHECK(cls[i] == (int32_t)0xccccccccu);

            free(x); free(want); free(got); free(cls); free(ws); free(ws_odd);
        }
    }
    CHECK_ST(bnn_model_workspace_size(bm, -1, 1, &(size_t){0}), BNN_ERR_SHAPE);
    CHECK_ST(bnn_model_workspace_size(bm, 1, -1, &(size_t){0}), BNN_ERR_INVALID);
    CHECK_ST(bnn_model_workspace_size(bm, 1, 1, NULL), BNN_ERR_NULL);
    CHECK_ST(bnn_model_workspace_size(NULL, 1, 1, &(size_t){0}), BNN_ERR_NULL);
    CHECK_ST(bnn_set_num_threads(1), BNN_OK);
    return 0;
}

/* Every way of loading; each model is checked and run. */
static int load_and_run_body(bnn_isa isa, void *vctx)
{
    const run_ctx *c = (const run_ctx *)vctx;
    const mb_model *m = c->m;
    size_t n = c->size, arena_bytes = 0, arena_odd = 0;
    uint8_t *odd = (uint8_t *)bt_alloc(n + 1), *arena;
    bnn_model *bm = NULL;
    char how[160], path[512];
    (void)isa;
    memcpy(odd + 1, c->bytes, n);

    /* malloc'd bytes are 8-byte aligned: used in place */
    snprintf(how, sizeof how, "%s open_memory", c->name);
    bt_ctx("%s", how);
    CHECK_ST(bnn_model_open_memory(c->bytes, n, &bm), BNN_OK);
    RUN(check_info(bm, m, n, 1));
    RUN(check_outputs(bm, m, how));
    bnn_model_free(bm);

    /* data + 1: copied */
    snprintf(how, sizeof how, "%s open_memory(data + 1)", c->name);
    bt_ctx("%s", how);
    bm = NULL;
    CHECK_ST(bnn_model_open_memory(odd + 1, n, &bm), BNN_OK);
    RUN(check_info(bm, m, n, 0));
    RUN(check_outputs(bm, m, how));
    bnn_model_free(bm);

    /* arenas of exactly the size asked for, at an odd address too */
    snprintf(how, sizeof how, "%s arena", c->name);
    bt_ctx("%s", how);
    CHECK_ST(bnn_model_arena_size(c->bytes, n, &arena_bytes), BNN_OK);
    CHECK_ST(bnn_model_arena_size(odd + 1, n, &arena_odd), BNN_OK);
    CHECK(arena_odd >= arena_bytes + n);
    arena = (uint8_t *)bt_alloc(arena_odd + 1);
    bm = NULL;
    CHECK_ST(bnn_model_init(arena, arena_bytes - 1, c->bytes, n, &bm), BNN_ERR_INVALID);
    CHECK(bm == NULL);
    CHECK_ST(bnn_model_init(arena + 1, arena_bytes, c->bytes, n, &bm), BNN_OK);
    RUN(check_info(bm, m, n, 1));
    RUN(check_outputs(bm, m, how));
    bnn_model_free(bm);   /* arena models: ignored */
    snprintf(how, sizeof how, "%s arena(data + 1)", c->name);
    bt_ctx("%s", how);
    bm = NULL;
    CHECK_ST(bnn_model_init(arena, arena_odd - 1, odd + 1, n, &bm), BNN_ERR_INVALID);
    CHECK(bm == NULL);
    CHECK_ST(bnn_model_init(arena, arena_odd, odd + 1, n, &bm), BNN_OK);
    RUN(check_info(bm, m, n, 0));
    RUN(check_outputs(bm, m, how));
    CHECK_ST(bnn_model_init(NULL, arena_odd, odd + 1, n, &bm), BNN_ERR_NULL);
    CHECK_ST(bnn_model_init(arena, arena_odd, NULL, n, &bm), BNN_ERR_NULL);
    CHECK_ST(bnn_model_init(arena, arena_odd, odd + 1, n, NULL), BNN_ERR_NULL);
    CHECK_ST(bnn_model_arena_size(NULL, n, &arena_bytes), BNN_ERR_NULL);
    CHECK_ST(bnn_model_arena_size(c->bytes, n, NULL), BNN_ERR_NULL);
    free(arena);

    /* a file */
    snprintf(how, sizeof how, "%s open_file", c->name);
    bt_ctx("%s", how);
    temp_path(path, sizeof path, c->name);
    CHECK_MSG(write_file(path, c->bytes, n) == 0, "cannot write %s", path);
    bm = NULL;
    {
        bnn_status st = bnn_model_open_file(path, &bm);
        remove(path);
        CHECK_ST(st, BNN_OK);
    }
    RUN(check_info(bm, m, n, 1));
    RUN(check_outputs(bm, m, how));
    bnn_model_free(bm);

    free(odd);
    return 0;
}

static int test_load_and_run(const mb_model *m, const char *name)
{
    run_ctx c;
    size_t n;
    uint8_t *bytes = mb_serialize(m, &n);
    char label[64];
    c.m = m;
    c.bytes = bytes;
    c.size = n;
    c.name = name;
    snprintf(label, sizeof label, "load and run: %s (%zu bytes)", name, n);
    RUN(for_each_isa_ctx(label, load_and_run_body, &c));
    free(bytes);
    return 0;
}

static int test_file_errors(const mb_model *m)
{
    char path[512];
    size_t n;
    uint8_t *bytes = mb_serialize(m, &n);
    bnn_model *bm = NULL;
    bt_ctx("open_file errors");
    temp_path(path, sizeof path, "missing");
    remove(path);
    CHECK_ST(bnn_model_open_file(path, &bm), BNN_ERR_IO);
    CHECK_ST(bnn_model_open_file(NULL, &bm), BNN_ERR_NULL);
    CHECK_ST(bnn_model_open_file(path, NULL), BNN_ERR_NULL);
    CHECK_ST(bnn_model_open_memory(NULL, n, &bm), BNN_ERR_NULL);
    CHECK_ST(bnn_model_open_memory(bytes, n, NULL), BNN_ERR_NULL);
    /* a truncated file, a short file, an empty file */
    temp_path(path, sizeof path, "short");
    CHECK(write_file(path, bytes, n - 64) == 0);
    CHECK_ST(bnn_model_open_file(path, &bm), BNN_ERR_FORMAT);
    CHECK(write_file(path, bytes, 40) == 0);
    CHECK_ST(bnn_model_open_file(path, &bm), BNN_ERR_FORMAT);
    CHECK(write_file(path, bytes, 0) == 0);
    CHECK_ST(bnn_model_open_file(path, &bm), BNN_ERR_FORMAT);
    remove(path);
    /* a directory opens on some systems but cannot be read */
    bt_ctx("open_file(directory %s)", temp_dir());
    CHECK_ST(bnn_model_open_file(temp_dir(), &bm), BNN_ERR_IO);
    bnn_model_free(NULL);
    free(bytes);
    printf("  %-34s ok\n", "open_file errors, free(NULL)");
    return 0;
}

/* ------------------------------------------------------------------ */
/* Rejection                                                            */
/* ------------------------------------------------------------------ */

static int n_cases;

/* Every loader gives `want` for these bytes (each given an exact-size
 * buffer), and nothing else is touched. */
static int expect_load(const uint8_t *d, size_t n, bnn_status want, const char *what)
{
    uint8_t *p = dup_bytes(d, n, 0), *odd = (uint8_t *)bt_alloc(n + 1);
    bnn_model *bm = NULL;
    size_t arena = 12345;
    bnn_status st;
    bt_ctx("%s (%zu bytes)", what, n);
    if (n) memcpy(odd + 1, d, n);
    {
        /* the checker runs the loaders' pass: the same status, a report
         * that names a field or at least says why */
        bnn_model_report rep;
        memset(&rep, 0xA5, sizeof rep);
        CHECK_ST(bnn_model_check(p, n, &rep), want);
        CHECK_ST(rep.status, want);
        CHECK(memchr(rep.message, 0, sizeof rep.message) != NULL && rep.message[0] != 0);
        CHECK(memchr(rep.field, 0, sizeof rep.field) != NULL);
        CHECK(rep.offset >= -1 && rep.offset < (int64_t)n + 1);
        if (want == BNN_OK) CHECK(rep.offset == -1 && rep.record == -1);
        CHECK_ST(bnn_model_check(odd + 1, n, NULL), want);
    }
    st = bnn_model_open_memory(p, n, &bm);
    if (st == BNN_OK) bnn_model_free(bm);
    CHECK_ST(st, want);
    st = bnn_model_arena_size(p, n, &arena);
    CHECK_ST(st, want);
    if (want != BNN_OK) CHECK(arena == 12345);
    bm = NULL;
    st = bnn_model_open_memory(odd + 1, n, &bm);
    if (st == BNN_OK) bnn_model_free(bm);
    CHECK_ST(st, want);
    if (want != BNN_OK) {
        /* the arena loader on a generous arena fails the same way */
        uint8_t arena_mem[256];
        bm = NULL;
        CHECK_ST(bnn_model_init(arena_mem, sizeof arena_mem, p, n, &bm), want);
        CHECK(bm == NULL);
    }
    free(p);
    free(odd);
    n_cases++;
    return 0;
}

/* Copy, change one 32- or 64-bit field, recompute the checksum, expect. */
static int edit_case(const uint8_t *base, size_t n, size_t off, int width, uint64_t v,
                     bnn_status want, const char *what)
{
    uint8_t *d = dup_bytes(base, n, 0);
    if (width == 8) mb_put64(d + off, v);
    else if (width == 4) mb_put32(d + off, (uint32_t)v);
    else d[off] = (uint8_t)v;
    mb_set_checksum(d, n);
    RUN(expect_load(d, n, want, what));
    free(d);
    return 0;
}

/* Offsets inside the file of a model. */
#define REC(m, i) ((size_t)mb_record_offset((m), (i)))
#define PRM(m, i, j) (REC(m, i) + 16 + 4 * (size_t)(j))
/* the start of array 0 (weights) / 1 (thresh or scale) / 2 (flip or offset) */
static size_t array_off(const mb_model *m, int i, int which)
{
    const mb_layer *L = &m->L[i];
    size_t off = REC(m, i) + 64;
    if (which >= 1) off += (size_t)mb_a64(L->rows * L->row_words * 8);
    if (which >= 2) off += (size_t)mb_a64(4 * L->nout);
    return off;
}

static int test_truncations(const mb_model *m, const char *name)
{
    size_t n, len;
    uint8_t *bytes = mb_serialize(m, &n);
    char what[96];
    int before = n_cases;
    for (len = 0; len < n; len++) {
        snprintf(what, sizeof what, "%s truncated to %zu", name, len);
        RUN(expect_load(bytes, len, BNN_ERR_FORMAT, what));
    }
    /* the control: the whole file loads */
    RUN(expect_load(bytes, n, BNN_OK, name));
    free(bytes);
    printf("  %-34s %d cases ok\n", name, n_cases - before);
    return 0;
}

static int test_byte_changes(const mb_model *m, const char *name)
{
    size_t n, off;
    uint8_t *bytes = mb_serialize(m, &n);
    static const uint8_t xors[2] = {0x01, 0x80};
    int before = n_cases, k;
    for (off = 0; off < n; off++)
        for (k = 0; k < 2; k++) {
            bnn_model *bm = NULL;
            size_t arena = 0;
            bnn_status st;
            bytes[off] ^= xors[k];
            bt_ctx("%s: byte %zu ^ 0x%02x", name, off, xors[k]);
            st = bnn_model_open_memory(bytes, n, &bm);
            if (st == BNN_OK) bnn_model_free(bm);
            CHECK(st != BNN_OK);
            CHECK_ST(bnn_model_check(bytes, n, NULL), st);
            CHECK(bnn_model_arena_size(bytes, n, &arena) != BNN_OK);
            bytes[off] ^= xors[k];
            n_cases++;
        }
    free(bytes);
    printf("  %-34s %d cases ok\n", name, n_cases - before);
    return 0;
}

static int test_header(const mb_model *m)
{
    size_t n, off;
    uint8_t *bytes = mb_serialize(m, &n), *d;
    char what[96];
    int before = n_cases;

    /* without resealing: the field itself is what fails */
    d = dup_bytes(bytes, n, 0);
    d[0] = 'X';
    RUN(expect_load(d, n, BNN_ERR_FORMAT, "wrong magic (checksum stale)"));
    free(d);
    RUN(edit_case(bytes, n, 0, 1, 'b', BNN_ERR_FORMAT, "magic 'bNNMODEL'"));
    RUN(edit_case(bytes, n, 7, 1, 0, BNN_ERR_FORMAT, "magic 'BNNMODE\\0'"));
    RUN(edit_case(bytes, n, 8, 4, 0, BNN_ERR_FORMAT, "format version 0"));
    RUN(edit_case(bytes, n, 8, 4, 2, BNN_ERR_UNSUPPORTED, "format version 2"));
    RUN(edit_case(bytes, n, 8, 4, 0xFFFFFFFFu, BNN_ERR_UNSUPPORTED, "format version 2^32-1"));
    RUN(edit_case(bytes, n, 12, 4, 2, BNN_ERR_UNSUPPORTED, "layout version 2"));
    RUN(edit_case(bytes, n, 12, 4, 0, BNN_ERR_UNSUPPORTED, "layout version 0"));
    RUN(edit_case(bytes, n, 16, 8, n + 64, BNN_ERR_FORMAT, "size field + 64"));
    RUN(edit_case(bytes, n, 16, 8, n - 1, BNN_ERR_FORMAT, "size field - 1"));
    RUN(edit_case(bytes, n, 16, 8, 0, BNN_ERR_FORMAT, "size field 0"));
    RUN(edit_case(bytes, n, 16, 8, UINT64_MAX, BNN_ERR_FORMAT, "size field 2^64-1"));
    d = dup_bytes(bytes, n, 0);
    mb_put64(d + 24, 0);
    RUN(expect_load(d, n, BNN_ERR_FORMAT, "checksum 0"));
    mb_put64(d + 24, mb_get64(d + 24) ^ 1);
    RUN(expect_load(d, n, BNN_ERR_FORMAT, "checksum off by one bit"));
    free(d);
    RUN(edit_case(bytes, n, 32, 4, 0, BNN_ERR_FORMAT, "n_layers 0"));
    RUN(edit_case(bytes, n, 32, 4, 5000, BNN_ERR_FORMAT, "n_layers 5000"));
    RUN(edit_case(bytes, n, 32, 4, 4097, BNN_ERR_FORMAT, "n_layers 4097"));
    RUN(edit_case(bytes, n, 32, 4, (uint64_t)m->n - 1, BNN_ERR_FORMAT, "n_layers one short"));
    RUN(edit_case(bytes, n, 32, 4, (uint64_t)m->n + 1, BNN_ERR_FORMAT, "n_layers one over"));
    RUN(edit_case(bytes, n, 32, 4, 0xFFFFFFFFu, BNN_ERR_FORMAT, "n_layers 2^32-1"));
    RUN(edit_case(bytes, n, 36, 4, 0, BNN_ERR_FORMAT, "input h 0"));
    RUN(edit_case(bytes, n, 40, 4, 0, BNN_ERR_FORMAT, "input w 0"));
    RUN(edit_case(bytes, n, 44, 4, 0, BNN_ERR_FORMAT, "input c 0"));
    RUN(edit_case(bytes, n, 36, 4, 0xFFFFFFFFu, BNN_ERR_FORMAT, "input h 2^32-1"));
    RUN(edit_case(bytes, n, 40, 4, 0xFFFFFFFFu, BNN_ERR_FORMAT, "input w 2^32-1"));
    RUN(edit_case(bytes, n, 44, 4, 0xFFFFFFFFu, BNN_ERR_FORMAT, "input c 2^32-1"));
    d = dup_bytes(bytes, n, 0);
    mb_put32(d + 36, 0x10000); mb_put32(d + 40, 0x10000); mb_put32(d + 44, 0x10000);
    mb_set_checksum(d, n);
    RUN(expect_load(d, n, BNN_ERR_FORMAT, "input h*w*c = 2^48"));
    mb_put32(d + 36, 0x1000); mb_put32(d + 40, 0x1000); mb_put32(d + 44, 0x100);
    mb_set_checksum(d, n);
    RUN(expect_load(d, n, BNN_ERR_FORMAT, "input h*w*c = 2^32"));
    free(d);
    RUN(edit_case(bytes, n, 36, 4, m->h + 1, BNN_ERR_FORMAT, "input h + 1 (k mismatch)"));
    RUN(edit_case(bytes, n, 48, 4, 0, BNN_ERR_FORMAT, "classes 0"));
    RUN(edit_case(bytes, n, 48, 4, m->classes + 1, BNN_ERR_FORMAT, "classes + 1"));
    RUN(edit_case(bytes, n, 48, 4, 0xFFFFFFFFu, BNN_ERR_FORMAT, "classes 2^32-1"));
    for (off = 52; off < 64; off++) {
        snprintf(what, sizeof what, "reserved header byte %zu = 1", off);
        RUN(edit_case(bytes, n, off, 1, 1, BNN_ERR_FORMAT, what));
        snprintf(what, sizeof what, "reserved header byte %zu = 0x80", off);
        RUN(edit_case(bytes, n, off, 1, 0x80, BNN_ERR_FORMAT, what));
    }
    /* trailing bytes */
    d = dup_bytes(bytes, n, 64);
    mb_reseal(d, n + 64);
    RUN(expect_load(d, n + 64, BNN_ERR_FORMAT, "64 zero bytes after the last record"));
    free(d);
    d = dup_bytes(bytes, n, 1);
    mb_reseal(d, n + 1);
    RUN(expect_load(d, n + 1, BNN_ERR_FORMAT, "1 byte after the last record"));
    free(d);
    /* the control: an edit of a free value, resealed, loads */
    RUN(edit_case(bytes, n, array_off(m, 0, 1), 4, 12345, BNN_OK, "control: threshold edited"));
    free(bytes);
    printf("  %-34s %d cases ok\n", "header fields", n_cases - before);
    return 0;
}

/* Record fields of the MLP (dense u8 48->70, dense 70->65, scores 65->10). */
static int test_mlp_records(const mb_model *m)
{
    size_t n;
    uint8_t *b = mb_serialize(m, &n);
    char what[96];
    int before = n_cases, i, j;

    /* overflowing or out-of-range dimensions */
    RUN(edit_case(b, n, PRM(m, 1, 0), 4, 0xFFFFFFFFu, BNN_ERR_FORMAT, "dense k = 2^32-1"));
    RUN(edit_case(b, n, PRM(m, 0, 0), 4, 0xFFFFFFFFu, BNN_ERR_FORMAT, "u8 dense k = 2^32-1"));
    RUN(edit_case(b, n, PRM(m, 1, 1), 4, 0xFFFFFFFFu, BNN_ERR_FORMAT, "dense m = 2^32-1"));
    RUN(edit_case(b, n, PRM(m, 1, 1), 4, 0x80000000u, BNN_ERR_FORMAT, "dense m = 2^31"));
    RUN(edit_case(b, n, PRM(m, 1, 1), 4, 0x01000001u, BNN_ERR_FORMAT, "dense m = 2^24+1"));
    RUN(edit_case(b, n, PRM(m, 1, 0), 4, 0, BNN_ERR_FORMAT, "dense k = 0"));
    RUN(edit_case(b, n, PRM(m, 1, 1), 4, 0, BNN_ERR_FORMAT, "dense m = 0"));
    RUN(edit_case(b, n, PRM(m, 2, 0), 4, 0x7FFFFFC0u, BNN_ERR_FORMAT, "scores k = 2^31-64"));
    /* chain: k != outputs of the layer before (same words, pad bits 0) */
    RUN(edit_case(b, n, PRM(m, 1, 0), 4, 71, BNN_ERR_FORMAT, "dense k 71 after m 70"));
    RUN(edit_case(b, n, PRM(m, 2, 0), 4, 66, BNN_ERR_FORMAT, "dense k 66 after m 65"));
    RUN(edit_case(b, n, PRM(m, 0, 0), 4, 47, BNN_ERR_FORMAT, "u8 dense k 47 for 48 bytes"));
    RUN(edit_case(b, n, PRM(m, 2, 1), 4, 11, BNN_ERR_FORMAT, "last m 11 != classes 10"));
    RUN(edit_case(b, n, PRM(m, 2, 1), 4, 9, BNN_ERR_FORMAT, "last m 9 != classes 10"));
    /* record sizes */
    for (i = 0; i < m->n; i++) {
        size_t so = REC(m, i) + 8;
        uint64_t rs = (uint64_t)mb_record_size(&m->L[i]);
        snprintf(what, sizeof what, "record %d size + 64", i);
        RUN(edit_case(b, n, so, 8, rs + 64, BNN_ERR_FORMAT, what));
        snprintf(what, sizeof what, "record %d size - 64", i);
        RUN(edit_case(b, n, so, 8, rs - 64, BNN_ERR_FORMAT, what));
        snprintf(what, sizeof what, "record %d size + 1", i);
        RUN(edit_case(b, n, so, 8, rs + 1, BNN_ERR_FORMAT, what));
        snprintf(what, sizeof what, "record %d size - 32", i);
        RUN(edit_case(b, n, so, 8, rs - 32, BNN_ERR_FORMAT, what));
        snprintf(what, sizeof what, "record %d size 0", i);
        RUN(edit_case(b, n, so, 8, 0, BNN_ERR_FORMAT, what));
        snprintf(what, sizeof what, "record %d size 64", i);
        RUN(edit_case(b, n, so, 8, 64, BNN_ERR_FORMAT, what));
        snprintf(what, sizeof what, "record %d size past the file end", i);
        RUN(edit_case(b, n, so, 8, n - (size_t)REC(m, i) + 64, BNN_ERR_FORMAT, what));
        snprintf(what, sizeof what, "record %d size 2^63", i);
        RUN(edit_case(b, n, so, 8, UINT64_C(1) << 63, BNN_ERR_FORMAT, what));
        snprintf(what, sizeof what, "record %d size 2^64-64", i);
        RUN(edit_case(b, n, so, 8, UINT64_MAX - 63, BNN_ERR_FORMAT, what));
        /* type and flags */
        snprintf(what, sizeof what, "record %d type 0", i);
        RUN(edit_case(b, n, REC(m, i), 4, 0, BNN_ERR_FORMAT, what));
        snprintf(what, sizeof what, "record %d type 5", i);
        RUN(edit_case(b, n, REC(m, i), 4, 5, BNN_ERR_FORMAT, what));
        snprintf(what, sizeof what, "record %d type 2^32-1", i);
        RUN(edit_case(b, n, REC(m, i), 4, 0xFFFFFFFFu, BNN_ERR_FORMAT, what));
        snprintf(what, sizeof what, "record %d flag bit 3", i);
        RUN(edit_case(b, n, REC(m, i) + 4, 4, m->L[i].flags | 8u, BNN_ERR_FORMAT, what));
        snprintf(what, sizeof what, "record %d flag bit 31", i);
        RUN(edit_case(b, n, REC(m, i) + 4, 4, m->L[i].flags | 0x80000000u, BNN_ERR_FORMAT, what));
        snprintf(what, sizeof what, "record %d PAD_ONE on a dense", i);
        RUN(edit_case(b, n, REC(m, i) + 4, 4, m->L[i].flags | MB_PAD_ONE, BNN_ERR_FORMAT, what));
        /* unused parameters of a dense */
        for (j = 2; j < 12; j++) {
            snprintf(what, sizeof what, "record %d unused parameter %d = 1", i, j);
            RUN(edit_case(b, n, PRM(m, i, j), 4, 1, BNN_ERR_FORMAT, what));
        }
    }
    /* INPUT_U8 / SCORES in the wrong places */
    RUN(edit_case(b, n, REC(m, 1) + 4, 4, MB_INPUT_U8, BNN_ERR_FORMAT, "INPUT_U8 on record 1"));
    RUN(edit_case(b, n, REC(m, 0) + 4, 4, 0, BNN_ERR_FORMAT, "INPUT_U8 missing on record 0"));
    RUN(edit_case(b, n, REC(m, 2) + 4, 4, 0, BNN_ERR_FORMAT, "SCORES missing on the last"));
    RUN(edit_case(b, n, REC(m, 1) + 4, 4, MB_SCORES, BNN_ERR_FORMAT, "SCORES on a middle record"));
    RUN(edit_case(b, n, REC(m, 0) + 4, 4, MB_INPUT_U8 | MB_SCORES, BNN_ERR_FORMAT,
                  "SCORES on the first record"));
    RUN(edit_case(b, n, REC(m, 2) + 4, 4, MB_SCORES | MB_INPUT_U8, BNN_ERR_FORMAT,
                  "INPUT_U8 on the last record"));
    /* flips */
    RUN(edit_case(b, n, array_off(m, 0, 2), 1, 2, BNN_ERR_FORMAT, "flip[0] = 2 (u8 dense)"));
    RUN(edit_case(b, n, array_off(m, 0, 2) + 69, 1, 0xFF, BNN_ERR_FORMAT, "flip[69] = 255"));
    RUN(edit_case(b, n, array_off(m, 1, 2) + 64, 1, 2, BNN_ERR_FORMAT, "flip[64] = 2 (dense)"));
    /* pad bits of weight rows */
    RUN(edit_case(b, n, array_off(m, 0, 0), 8, m->L[0].w[0] | (UINT64_C(1) << 48), BNN_ERR_FORMAT,
                  "pad bit 48 of row 0 (k 48)"));
    RUN(edit_case(b, n, array_off(m, 0, 0) + 8 * 69, 8, m->L[0].w[69] | (UINT64_C(1) << 63),
                  BNN_ERR_FORMAT, "pad bit 63 of row 69 (k 48)"));
    RUN(edit_case(b, n, array_off(m, 1, 0) + 8 * (64 * 2 + 1), 8,
                  m->L[1].w[64 * 2 + 1] | (UINT64_C(1) << 6), BNN_ERR_FORMAT,
                  "pad bit 70 of row 64 (k 70)"));
    RUN(edit_case(b, n, array_off(m, 2, 0) + 8 * (9 * 2 + 1), 8,
                  m->L[2].w[9 * 2 + 1] | (UINT64_C(1) << 1), BNN_ERR_FORMAT,
                  "pad bit 65 of row 9 (scores, k 65)"));
    /* the last used bit is not a pad bit */
    RUN(edit_case(b, n, array_off(m, 1, 0) + 8 * 1, 8, m->L[1].w[1] ^ (UINT64_C(1) << 5), BNN_OK,
                  "control: bit 69 of row 0 (k 70)"));
    free(b);
    printf("  %-34s %d cases ok\n", "MLP record fields", n_cases - before);
    return 0;
}

/* Record fields of the conv net (conv u8, pool, conv, flatten, scores). */
static int test_cnn_records(const mb_model *m)
{
    size_t n;
    uint8_t *b = mb_serialize(m, &n), *d;
    char what[96];
    int before = n_cases, j;

    /* overflowing dimensions of the second conv (record 2) */
    RUN(edit_case(b, n, PRM(m, 2, 1), 4, 0xFFFFFFFFu, BNN_ERR_FORMAT, "conv o = 2^32-1"));
    RUN(edit_case(b, n, PRM(m, 2, 1), 4, 0, BNN_ERR_FORMAT, "conv o = 0"));
    RUN(edit_case(b, n, PRM(m, 2, 0), 4, 0xFFFFFFFFu, BNN_ERR_FORMAT, "conv c = 2^32-1"));
    RUN(edit_case(b, n, PRM(m, 2, 2), 4, 0xFFFFFFFFu, BNN_ERR_FORMAT, "conv kh = 2^32-1"));
    RUN(edit_case(b, n, PRM(m, 2, 3), 4, 0x80000000u, BNN_ERR_FORMAT, "conv kw = 2^31"));
    d = dup_bytes(b, n, 0);
    mb_put32(d + PRM(m, 2, 1), 0x01000000u);
    mb_put32(d + PRM(m, 2, 2), 0xFFFF);
    mb_put32(d + PRM(m, 2, 3), 0xFFFF);
    mb_put32(d + PRM(m, 2, 8), 0xFFFF);
    mb_put32(d + PRM(m, 2, 9), 0xFFFF);
    mb_put32(d + PRM(m, 2, 10), 0xFFFF);
    mb_put32(d + PRM(m, 2, 11), 0xFFFF);
    mb_set_checksum(d, n);
    RUN(expect_load(d, n, BNN_ERR_FORMAT, "conv o*kh*kw*words = 2^24 * 2^32 * 2"));
    free(d);
    d = dup_bytes(b, n, 0);
    mb_put32(d + PRM(m, 0, 2), 0x10000);
    mb_put32(d + PRM(m, 0, 3), 0x10000);
    mb_put32(d + PRM(m, 0, 8), 0x10000);
    mb_put32(d + PRM(m, 0, 9), 0x10000);
    mb_put32(d + PRM(m, 0, 10), 0x10000);
    mb_put32(d + PRM(m, 0, 11), 0x10000);
    mb_set_checksum(d, n);
    RUN(expect_load(d, n, BNN_ERR_FORMAT, "u8 conv 65536x65536 kernel"));
    free(d);
    RUN(edit_case(b, n, PRM(m, 2, 8), 4, 0x10001, BNN_ERR_FORMAT, "conv pad_top 65537"));
    RUN(edit_case(b, n, PRM(m, 2, 8), 4, 0x80000000u, BNN_ERR_FORMAT, "conv pad_top 2^31"));
    RUN(edit_case(b, n, PRM(m, 2, 4), 4, 0, BNN_ERR_FORMAT, "conv stride_h 0"));
    RUN(edit_case(b, n, PRM(m, 2, 5), 4, 0xFFFFFFFFu, BNN_ERR_FORMAT, "conv stride_w 2^32-1"));
    RUN(edit_case(b, n, PRM(m, 2, 6), 4, 0, BNN_ERR_FORMAT, "conv dilation_h 0"));
    RUN(edit_case(b, n, PRM(m, 2, 7), 4, 5, BNN_ERR_FORMAT, "conv dilation_w 5 (kernel > input)"));
    RUN(edit_case(b, n, PRM(m, 0, 9), 4, 0, BNN_ERR_FORMAT, "u8 conv pad_bottom 0 (shape chain)"));
    /* chain */
    RUN(edit_case(b, n, PRM(m, 2, 0), 4, 71, BNN_ERR_FORMAT, "conv c 71 after 70 channels"));
    RUN(edit_case(b, n, PRM(m, 0, 0), 4, 4, BNN_ERR_FORMAT, "u8 conv c 4 for a 3-channel image"));
    RUN(edit_case(b, n, PRM(m, 4, 0), 4, 586, BNN_ERR_FORMAT, "dense k 586 after flatten 585"));
    RUN(edit_case(b, n, REC(m, 1), 4, MB_FLATTEN, BNN_ERR_FORMAT, "flatten where the pool was"));
    RUN(edit_case(b, n, REC(m, 3), 4, MB_POOL, BNN_ERR_FORMAT, "pool where the flatten was"));
    /* flags */
    RUN(edit_case(b, n, REC(m, 0) + 4, 4, MB_INPUT_U8 | MB_PAD_ONE, BNN_ERR_FORMAT,
                  "PAD_ONE with INPUT_U8"));
    RUN(edit_case(b, n, REC(m, 2) + 4, 4, MB_INPUT_U8, BNN_ERR_FORMAT, "INPUT_U8 on conv 2"));
    RUN(edit_case(b, n, REC(m, 1) + 4, 4, MB_PAD_ONE, BNN_ERR_FORMAT, "PAD_ONE on a pool"));
    RUN(edit_case(b, n, REC(m, 3) + 4, 4, MB_SCORES, BNN_ERR_FORMAT, "SCORES on a flatten"));
    RUN(edit_case(b, n, REC(m, 2) + 4, 4, 8, BNN_ERR_FORMAT, "conv flag bit 3"));
    /* the zero-padded conv also loads with PAD_ONE (same arrays) */
    RUN(edit_case(b, n, REC(m, 2) + 4, 4, MB_PAD_ONE, BNN_OK, "control: conv 2 PAD_ONE"));
    /* unused parameters of pool and flatten */
    for (j = 4; j < 12; j++) {
        snprintf(what, sizeof what, "pool unused parameter %d = 1", j);
        RUN(edit_case(b, n, PRM(m, 1, j), 4, 1, BNN_ERR_FORMAT, what));
    }
    for (j = 0; j < 12; j++) {
        snprintf(what, sizeof what, "flatten parameter %d = 1", j);
        RUN(edit_case(b, n, PRM(m, 3, j), 4, 1, BNN_ERR_FORMAT, what));
    }
    for (j = 0; j < 4; j++) {
        snprintf(what, sizeof what, "pool parameter %d = 0", j);
        RUN(edit_case(b, n, PRM(m, 1, j), 4, 0, BNN_ERR_FORMAT, what));
        snprintf(what, sizeof what, "pool parameter %d = 2^32-1", j);
        RUN(edit_case(b, n, PRM(m, 1, j), 4, 0xFFFFFFFFu, BNN_ERR_FORMAT, what));
    }
    RUN(edit_case(b, n, PRM(m, 1, 0), 4, 7, BNN_ERR_FORMAT, "pool window 7 > input 6"));
    RUN(edit_case(b, n, REC(m, 1) + 8, 8, 128, BNN_ERR_FORMAT, "pool record size 128"));
    RUN(edit_case(b, n, REC(m, 3) + 8, 8, 128, BNN_ERR_FORMAT, "flatten record size 128"));
    /* flips and pad bits */
    RUN(edit_case(b, n, array_off(m, 0, 2) + 3, 1, 2, BNN_ERR_FORMAT, "u8 conv flip[3] = 2"));
    RUN(edit_case(b, n, array_off(m, 2, 2) + 64, 1, 2, BNN_ERR_FORMAT, "conv flip[64] = 2"));
    RUN(edit_case(b, n, array_off(m, 0, 0) + 8 * (70 * 9 - 1), 8,
                  m->L[0].w[70 * 9 - 1] | (UINT64_C(1) << 3), BNN_ERR_FORMAT,
                  "u8 conv pad bit 3 of the last filter row (c 3)"));
    RUN(edit_case(b, n, array_off(m, 2, 0) + 8, 8, m->L[2].w[1] | (UINT64_C(1) << 63),
                  BNN_ERR_FORMAT, "conv pad bit 127 of row 0 (c 70)"));
    RUN(edit_case(b, n, array_off(m, 4, 0) + 8 * 9, 8, m->L[4].w[9] | (UINT64_C(1) << 9),
                  BNN_ERR_FORMAT, "dense pad bit 585 of row 0 (k 585)"));
    free(b);
    printf("  %-34s %d cases ok\n", "conv net record fields", n_cases - before);
    return 0;
}

/* Whole models whose chain is wrong (written directly, checksums right). */
static int bad_model(mb_model *m, bnn_status want, const char *what)
{
    size_t n;
    uint8_t *b;
    mb_fill_random(m, bt_seed ^ 0xbad);
    b = mb_serialize(m, &n);
    RUN(expect_load(b, n, want, what));
    free(b);
    mb_free(m);
    return 0;
}

static int test_bad_chains(void)
{
    mb_model m;
    int before = n_cases;

    mb_init(&m, 4, 4, 3, 10);
    mb_add_dense(&m, MB_INPUT_U8, 48, 70);
    mb_add_pool(&m, 1, 1, 1, 1);
    mb_add_dense(&m, MB_SCORES, 70, 10);
    RUN(bad_model(&m, BNN_ERR_FORMAT, "pool after a dense"));

    mb_init(&m, 4, 4, 3, 10);
    mb_add_conv(&m, MB_INPUT_U8, 3, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1);
    mb_add_flatten(&m);
    mb_add_flatten(&m);
    mb_add_dense(&m, MB_SCORES, 128, 10);
    RUN(bad_model(&m, BNN_ERR_FORMAT, "flatten after flatten"));

    mb_init(&m, 4, 4, 3, 10);
    mb_add_conv(&m, MB_INPUT_U8, 3, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1);
    mb_add_dense(&m, MB_SCORES, 128, 10);
    RUN(bad_model(&m, BNN_ERR_FORMAT, "dense after conv without flatten"));

    mb_init(&m, 4, 4, 3, 10);
    mb_add_conv(&m, MB_INPUT_U8, 3, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1);
    mb_add_dense(&m, MB_SCORES, 8, 10);
    RUN(bad_model(&m, BNN_ERR_FORMAT, "dense k = channels after conv without flatten"));

    mb_init(&m, 4, 4, 3, 10);
    mb_add_conv(&m, MB_INPUT_U8, 3, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1);
    mb_add_pool(&m, 2, 2, 2, 2);
    mb_add_pool(&m, 1, 1, 1, 1);
    mb_add_flatten(&m);
    mb_add_dense(&m, MB_SCORES, 32, 10);
    RUN(bad_model(&m, BNN_ERR_FORMAT, "pool after pool"));

    mb_init(&m, 4, 4, 3, 10);
    mb_add_conv(&m, MB_INPUT_U8, 3, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1);
    mb_add_flatten(&m);
    mb_add_conv(&m, 0, 128, 8, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0);
    mb_add_flatten(&m);
    mb_add_dense(&m, MB_SCORES, 8, 10);
    RUN(bad_model(&m, BNN_ERR_FORMAT, "conv after flatten"));

    mb_init(&m, 4, 4, 3, 10);
    mb_add_dense(&m, MB_INPUT_U8, 48, 70);
    mb_add_flatten(&m);
    mb_add_dense(&m, MB_SCORES, 70, 10);
    RUN(bad_model(&m, BNN_ERR_FORMAT, "flatten after a dense"));

    mb_init(&m, 4, 4, 3, 10);
    mb_add_pool(&m, 1, 1, 1, 1);
    mb_add_flatten(&m);
    mb_add_dense(&m, MB_SCORES, 48, 10);
    RUN(bad_model(&m, BNN_ERR_FORMAT, "pool first"));

    mb_init(&m, 4, 4, 3, 10);
    mb_add_conv(&m, MB_INPUT_U8 | MB_SCORES, 3, 10, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1);
    mb_add_flatten(&m);
    mb_add_dense(&m, MB_SCORES, 160, 10);
    RUN(bad_model(&m, BNN_ERR_FORMAT, "conv with SCORES"));

    mb_init(&m, 4, 4, 3, 10);
    mb_add_conv(&m, MB_INPUT_U8 | MB_SCORES, 3, 10, 4, 4, 1, 1, 1, 1, 0, 0, 0, 0);
    RUN(bad_model(&m, BNN_ERR_FORMAT, "a conv as the only (scores) layer"));

    mb_init(&m, 4, 4, 3, 10);
    mb_add_dense(&m, MB_INPUT_U8, 48, 70);
    mb_add_dense(&m, 0, 70, 65);
    RUN(bad_model(&m, BNN_ERR_FORMAT, "no SCORES record"));

    mb_init(&m, 4, 4, 3, 10);
    mb_add_dense(&m, MB_INPUT_U8 | MB_SCORES, 48, 10);
    mb_add_dense(&m, MB_SCORES, 10, 10);
    RUN(bad_model(&m, BNN_ERR_FORMAT, "SCORES twice"));

    mb_init(&m, 4, 4, 3, 10);
    mb_add_conv(&m, MB_INPUT_U8, 3, 8, 5, 5, 1, 1, 1, 1, 0, 0, 0, 0);
    mb_add_flatten(&m);
    mb_add_dense(&m, MB_SCORES, 8, 10);
    RUN(bad_model(&m, BNN_ERR_FORMAT, "conv kernel larger than the input"));

    mb_init(&m, 4, 4, 3, 10);
    mb_add_conv(&m, MB_INPUT_U8, 3, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1);
    mb_add_flatten(&m);
    mb_add_dense(&m, MB_SCORES, 128, 10);
    RUN(bad_model(&m, BNN_OK, "control: conv, flatten, scores"));

    mb_init(&m, 4, 4, 3, 10);
    mb_add_conv(&m, MB_INPUT_U8, 3, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1);
    mb_add_conv(&m, 0, 8, 8, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0);
    mb_add_pool(&m, 2, 2, 2, 2);
    mb_add_flatten(&m);
    mb_add_dense(&m, MB_SCORES, 32, 10);
    RUN(bad_model(&m, BNN_OK, "control: conv, conv, pool, flatten"));
    printf("  %-34s %d cases ok\n", "broken chains", n_cases - before);
    return 0;
}

int main(int argc, char **argv)
{
    mb_model mlp, cnn, var, one;
    int fails = 0;
    bt_init(argc, argv, "test_model");

    mb_tiny_mlp(&mlp, bt_seed ^ 0x11);
    mb_tiny_cnn(&cnn, bt_seed ^ 0x22);
    mb_tiny_variant(&var, bt_seed ^ 0x33);
    mb_one_dense(&one, bt_seed ^ 0x44);

    fails += test_load_and_run(&mlp, "mlp") != 0;
    fails += test_load_and_run(&cnn, "cnn") != 0;
    fails += test_load_and_run(&var, "variant") != 0;
    fails += test_load_and_run(&one, "single") != 0;
    fails += test_file_errors(&mlp) != 0;
    fails += test_truncations(&mlp, "truncations: mlp") != 0;
    fails += test_truncations(&cnn, "truncations: cnn") != 0;
    fails += test_byte_changes(&mlp, "byte changes: mlp") != 0;
    fails += test_byte_changes(&cnn, "byte changes: cnn") != 0;
    fails += test_header(&mlp) != 0;
    fails += test_mlp_records(&mlp) != 0;
    fails += test_cnn_records(&cnn) != 0;
    fails += test_bad_chains() != 0;

    mb_free(&mlp);
    mb_free(&cnn);
    mb_free(&var);
    mb_free(&one);
    if (fails) {
        printf("test_model: %d test group(s) FAILED (seed %" PRIu64 ")\n", fails, bt_seed);
        return 1;
    }
    printf("test_model: all passed\n");
    return 0;
}
