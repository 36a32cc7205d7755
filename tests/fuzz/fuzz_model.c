/*
 * fuzz_model.c -- libFuzzer target for the .bnn model loader and runtime.
 *
 * Each input is loaded four ways:
 *   1. as given, with bnn_model_open_memory();
 *   2. as given, with bnn_model_arena_size() + bnn_model_init() on a
 *      malloc'd arena of exactly the size asked for;
 *   3. "resealed": a copy whose size field (bytes 16..23) and checksum
 *      (bytes 24..31) are rewritten to match, so that mutations get past
 *      those two checks and reach the structural ones -- loaded with
 *      bnn_model_open_memory();
 *   4. the resealed copy at an odd address (the loader copies it), into an
 *      arena.
 * Each time bnn_model_check() must give the status the loader gave (else
 * abort, so that libFuzzer reports any disagreement).
 * Every model that loads is queried (info, workspace for a batch of 2)
 * and run on a fixed input, unless the input, the workspace or a rough
 * bound on the work would be too large (see RUN_*), then freed.  A
 * result that breaks the API contract (a class out of range, scores that
 * differ between a batch of 2 and the same image alone) aborts.
 *
 * Built by CMake with -DBNN_FUZZ=ON (Clang, -fsanitize=fuzzer,address,
 * undefined) as fuzz_model, and always with the tests as
 * fuzz_model_replay (tests/fuzz/replay.c), which feeds it the corpus.
 */
#include "bnn.h"
#include "../model_builder.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define RUN_MAX_BYTES ((size_t)64 << 20)       /* input or workspace     */
#define RUN_MAX_WORK ((double)(1u << 28))      /* bound on inner steps   */
#define RUN_BATCH 2

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void contract(int ok)
{
    if (!ok) abort();
}

static int same_score(float a, float b)
{
    uint32_t ua, ub;
    if (a != a && b != b) return 1;   /* NaN payloads may differ by path */
    memcpy(&ua, &a, 4);
    memcpy(&ub, &b, 4);
    return ua == ub;
}

static void exercise(const bnn_model *m)
{
    bnn_model_info info;
    size_t ws_bytes = 0, img, x_bytes;
    uint8_t *x, *ws;
    float *scores, *one;
    int32_t cls[RUN_BATCH], cls1 = -1;
    int64_t i;
    double work;

    contract(bnn_model_get_info(m, &info) == BNN_OK);
    contract(info.in_h >= 1 && info.in_w >= 1 && info.in_c >= 1 && info.classes >= 1);
    contract(info.layers >= 1 && info.binary_weights >= 1 && info.file_bytes >= 64);
    if (bnn_model_workspace_size(m, RUN_BATCH, 1, &ws_bytes) != BNN_OK) return;
    if (ws_bytes > RUN_MAX_BYTES) return;
    if ((double)info.in_h * info.in_w * info.in_c * RUN_BATCH > (double)RUN_MAX_BYTES) return;
    /* each layer costs at most (its outputs) x (its weights); both are
     * bounded by the workspace words and the model's weights */
    work = ((double)ws_bytes / 8.0 + 1.0) * ((double)info.binary_weights + 1.0);
    if (work > RUN_MAX_WORK) return;
    if ((double)info.classes * RUN_BATCH * 4.0 > (double)RUN_MAX_BYTES) return;

    img = (size_t)(info.in_h * info.in_w * info.in_c);
    x_bytes = img * RUN_BATCH;
    x = (uint8_t *)malloc(x_bytes);
    ws = (uint8_t *)malloc(ws_bytes ? ws_bytes : 1);
    scores = (float *)malloc((size_t)info.classes * RUN_BATCH * sizeof(float));
    one = (float *)malloc((size_t)info.classes * sizeof(float));
    if (x == NULL || ws == NULL || scores == NULL || one == NULL) {
        free(x); free(ws); free(scores); free(one);
        return;
    }
    for (i = 0; i < (int64_t)x_bytes; i++) x[i] = (uint8_t)(i * 131 + 7);

    contract(bnn_model_run(m, RUN_BATCH, x, scores, cls, ws, ws_bytes) == BNN_OK);
    for (i = 0; i < RUN_BATCH; i++) contract(cls[i] >= 0 && cls[i] < info.classes);
    /* the first image alone gives the same scores */
    contract(bnn_model_run(m, 1, x, one, &cls1, ws, ws_bytes) == BNN_OK);
    contract(cls1 == cls[0]);
    for (i = 0; i < info.classes; i++) contract(same_score(one[i], scores[i]));
    /* too small a workspace is refused */
    if (ws_bytes > 0)
        contract(bnn_model_run(m, RUN_BATCH, x, scores, cls, ws, ws_bytes - 1) == BNN_ERR_INVALID);

    free(x); free(ws); free(scores); free(one);
}

/* Load through the arena API (data as given, any alignment). */
static void via_arena(const uint8_t *data, size_t size)
{
    size_t need = 0;
    void *arena;
    bnn_model *m = NULL;
    if (bnn_model_arena_size(data, size, &need) != BNN_OK) return;
    if (need > RUN_MAX_BYTES + size) return;
    arena = malloc(need ? need : 1);
    if (arena == NULL) return;
    if (need > 0) contract(bnn_model_init(arena, need - 1, data, size, &m) == BNN_ERR_INVALID);
    if (bnn_model_init(arena, need, data, size, &m) == BNN_OK) {
        exercise(m);
        bnn_model_free(m);   /* ignored for arena models */
    } else {
        contract(0);         /* arena_size accepted the same bytes */
    }
    free(arena);
}

/* bnn_model_check() runs the loaders' pass: it must give their status
 * (with and without a report), and a report that is filled in. */
static void check_agrees(const uint8_t *data, size_t size, bnn_status open_st)
{
    bnn_model_report rep;
    bnn_status st;
    memset(&rep, 0xA5, sizeof rep);
    st = bnn_model_check(data, size, &rep);
    contract(st == open_st);
    contract(rep.status == st);
    contract(memchr(rep.message, 0, sizeof rep.message) != NULL && rep.message[0] != 0);
    contract(memchr(rep.field, 0, sizeof rep.field) != NULL);
    contract(rep.offset >= -1 && rep.offset <= (int64_t)size);
    contract(rep.record >= -1 && rep.record < BNN_MODEL_MAX_RECORDS);
    contract(bnn_model_check(data, size, NULL) == open_st);
}

static void via_malloc(const uint8_t *data, size_t size)
{
    bnn_model *m = NULL;
    bnn_status st = bnn_model_open_memory(data, size, &m);
    if (st == BNN_ERR_NOMEM) return;
    check_agrees(data, size, st);
    if (st != BNN_OK) return;
    exercise(m);
    bnn_model_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy;
    /* libFuzzer's buffers are malloc'd (aligned): the zero-copy path */
    via_malloc(data, size);
    via_arena(data, size);
    if (size < 32) return 0;
    /* resealed copy, aligned and at an odd address (the copying path) */
    copy = (uint8_t *)malloc(size + 1);
    if (copy == NULL) return 0;
    memcpy(copy, data, size);
    mb_reseal(copy, size);             /* size field and checksum */
    via_malloc(copy, size);
    memmove(copy + 1, copy, size);
    via_arena(copy + 1, size);
    free(copy);
    return 0;
}
