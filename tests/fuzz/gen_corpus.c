/*
 * gen_corpus.c -- writes the seed corpus of fuzz_model into a directory:
 *
 *   fuzz_gen_corpus tests/fuzz/corpus
 *
 * Small valid models (every layer type, flag and padding mode; a few KB
 * each) from tests/model_builder.h with fixed seeds, so the files are the
 * same on every run, and malformed ones (bad checksum, truncation, broken
 * chain, pad bits, flip values, overflowing sizes, trailing bytes), most
 * with a correct checksum so that the check behind it is reached.  The
 * generated files are committed; rerun after a format change.
 */
#include "model_builder.h"

#include <stdio.h>
#include <string.h>

static const char *g_dir;
static int g_fail;

static void put(const char *name, const uint8_t *d, size_t n)
{
    char path[4096];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    f = fopen(path, "wb");
    if (f == NULL || fwrite(d, 1, n, f) != n || fclose(f) != 0) {
        fprintf(stderr, "gen_corpus: cannot write %s\n", path);
        g_fail = 1;
        return;
    }
    printf("%-28s %6zu bytes\n", name, n);
}

/* Serialize, optionally write, keep the bytes for the malformed variants. */
static uint8_t *emit(mb_model *m, const char *name, size_t *n)
{
    uint8_t *d = mb_serialize(m, n);
    if (name) put(name, d, *n);
    return d;
}

int main(int argc, char **argv)
{
    mb_model m;
    uint8_t *mlp, *cnn, *one, *var, *d;
    size_t n_mlp, n_cnn, n_one, n_var, n;

    if (argc != 2) {
        fprintf(stderr, "usage: %s DIRECTORY\n", argv[0]);
        return 1;
    }
    g_dir = argv[1];

    /* --- valid models --- */
    mb_tiny_mlp(&m, 1);
    mlp = emit(&m, "valid_mlp.bnn", &n_mlp);
    mb_free(&m);

    /* 5x5x2: conv 3x3 pad 1 -> 8, pool 2x2/2, conv 3x3 zero pad 1 -> 5,
     * flatten 20, scores 3 */
    mb_init(&m, 5, 5, 2, 3);
    mb_add_conv(&m, MB_INPUT_U8, 2, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1);
    mb_add_pool(&m, 2, 2, 2, 2);
    mb_add_conv(&m, 0, 8, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1);
    mb_add_flatten(&m);
    mb_add_dense(&m, MB_SCORES, 20, 3);
    mb_fill_random(&m, 2);
    cnn = emit(&m, "valid_cnn.bnn", &n_cnn);
    mb_free(&m);

    /* 4x4x1: conv 2x2/2 pad (1,0,1,0) -> 2x2x64, conv PAD_ONE 2x2 dilation
     * 2 pad 1 -> 2x2x64, pool 2x2/1, flatten 64 (whole words), dense 70,
     * scores 5 */
    mb_init(&m, 4, 4, 1, 5);
    mb_add_conv(&m, MB_INPUT_U8, 1, 64, 2, 2, 2, 2, 1, 1, 1, 0, 1, 0);
    mb_add_conv(&m, MB_PAD_ONE, 64, 64, 2, 2, 1, 1, 2, 2, 1, 1, 1, 1);
    mb_add_pool(&m, 2, 2, 1, 1);
    mb_add_flatten(&m);
    mb_add_dense(&m, 0, 64, 70);
    mb_add_dense(&m, MB_SCORES, 70, 5);
    mb_fill_random(&m, 3);
    var = emit(&m, "valid_variant.bnn", &n_var);
    mb_free(&m);

    /* one record: the u8 layer gives the scores */
    mb_init(&m, 2, 2, 3, 4);
    mb_add_dense(&m, MB_INPUT_U8 | MB_SCORES, 12, 4);
    mb_fill_random(&m, 4);
    one = emit(&m, "valid_single.bnn", &n_one);
    mb_free(&m);

    /* a chain of narrow dense layers on a 1x1x1 image */
    mb_init(&m, 1, 1, 1, 2);
    mb_add_dense(&m, MB_INPUT_U8, 1, 3);
    mb_add_dense(&m, 0, 3, 2);
    mb_add_dense(&m, MB_SCORES, 2, 2);
    mb_fill_random(&m, 5);
    free(emit(&m, "valid_narrow.bnn", &n));
    mb_free(&m);

    /* padding far larger than the image: 1x1x1 -> 2001x1 */
    mb_init(&m, 1, 1, 1, 2);
    mb_add_conv(&m, MB_INPUT_U8, 1, 1, 1, 1, 1, 1, 1, 1, 1000, 1000, 0, 0);
    mb_add_flatten(&m);
    mb_add_dense(&m, MB_SCORES, 2001, 2);
    mb_fill_random(&m, 6);
    free(emit(&m, "valid_wide_pad.bnn", &n));
    mb_free(&m);

    /* --- malformed --- */
    d = (uint8_t *)mb_xalloc(n_one);
    memcpy(d, one, n_one);
    d[100] ^= 0x10;
    put("bad_checksum.bnn", d, n_one);
    free(d);

    put("bad_truncated.bnn", mlp, 1000);

    d = (uint8_t *)mb_xalloc(n_one + 64);
    memcpy(d, one, n_one);
    mb_reseal(d, n_one + 64);
    put("bad_trailing.bnn", d, n_one + 64);
    free(d);

    mb_init(&m, 4, 4, 3, 10);
    mb_add_dense(&m, MB_INPUT_U8, 48, 20);
    mb_add_pool(&m, 1, 1, 1, 1);
    mb_add_dense(&m, MB_SCORES, 20, 10);
    mb_fill_random(&m, 7);
    free(emit(&m, "bad_pool_after_dense.bnn", &n));
    mb_free(&m);

    d = (uint8_t *)mb_xalloc(n_one);
    memcpy(d, one, n_one);
    d[64 + 64 + 1] |= 0x10;              /* bit 12 of row 0: a pad bit (k 12) */
    mb_set_checksum(d, n_one);
    put("bad_pad_bits.bnn", d, n_one);
    free(d);

    d = (uint8_t *)mb_xalloc(n_cnn);
    memcpy(d, cnn, n_cnn);
    /* the flips of the first conv: after 8*9 weight words and 8 thresholds */
    d[64 + 64 + (size_t)mb_a64(8 * 9 * 8) + 64 + 1] = 2;
    mb_set_checksum(d, n_cnn);
    put("bad_flip.bnn", d, n_cnn);
    free(d);

    d = (uint8_t *)mb_xalloc(n_one);
    memcpy(d, one, n_one);
    mb_put32(d + 36, 0x10000);
    mb_put32(d + 40, 0x10000);
    mb_put32(d + 44, 0x10000);
    mb_set_checksum(d, n_one);
    put("bad_huge_input.bnn", d, n_one);
    free(d);

    d = (uint8_t *)mb_xalloc(n_var);
    memcpy(d, var, n_var);
    mb_put32(d + 64 + 16 + 4, 0xFFFFFFFFu);   /* first conv: o */
    mb_set_checksum(d, n_var);
    put("bad_conv_o.bnn", d, n_var);
    free(d);

    d = (uint8_t *)mb_xalloc(n_mlp);
    memcpy(d, mlp, n_mlp);
    mb_put64(d + 64 + 8, mb_get64(d + 64 + 8) + 64);   /* first record size */
    mb_set_checksum(d, n_mlp);
    put("bad_record_size.bnn", d, n_mlp);
    free(d);

    d = (uint8_t *)mb_xalloc(64);
    memcpy(d, one, 64);
    mb_reseal(d, 64);
    put("bad_header_only.bnn", d, 64);
    free(d);

    free(mlp); free(cnn); free(one); free(var);
    return g_fail;
}
