/*
 * embedded.c -- run a model with no file system and no malloc.
 *
 * The recipe for a microcontroller or any system without a heap:
 *
 *   1. The model is compiled in as a const byte array, 64-byte aligned
 *      (demo_model.c, written by `pybnn export ... --format c` or by
 *      bin2c.py), so the runtime reads the packed weights in place.
 *   2. bnn_model_arena_size() tells how much memory the model's own
 *      structures need; bnn_model_init() builds the model in a static
 *      arena of at least that size.
 *   3. bnn_model_workspace_size(model, 1, 1, ...) tells how much scratch
 *      memory one image needs on one thread; a static buffer of that size
 *      is the workspace of every bnn_model_run().
 *   4. bnn_set_num_threads(1): the kernels start no threads and touch
 *      nothing but the caller's buffers.
 *
 * The arena and workspace sizes are fixed at compile time (override with
 * -DEMBEDDED_ARENA_BYTES=... / -DEMBEDDED_WORKSPACE_BYTES=...); the
 * program checks them against what the model needs and stops with a clear
 * message when they are too small.
 *
 * It then classifies the test images of demo_model_inputs.h and compares
 * the classes with the ones the Python implementation computed for them.
 * Exit code: 0 when every class matches, 1 otherwise.
 */
#include <bnn.h>

#include <stdint.h>
#include <stdio.h>

#include "demo_model.h"
#include "demo_model_inputs.h"

#ifndef EMBEDDED_ARENA_BYTES
#define EMBEDDED_ARENA_BYTES (64 * 1024)
#endif
#ifndef EMBEDDED_WORKSPACE_BYTES
#define EMBEDDED_WORKSPACE_BYTES (64 * 1024)
#endif

static uint8_t arena[EMBEDDED_ARENA_BYTES];
static uint8_t workspace[EMBEDDED_WORKSPACE_BYTES];

int main(void)
{
    bnn_model *model = NULL;
    bnn_model_info info;
    bnn_status st;
    size_t arena_need = 0, workspace_need = 0;
    int i, wrong = 0;

    /* One thread: no threads are started, nothing is allocated. */
    if ((st = bnn_set_num_threads(1)) != BNN_OK) {
        printf("embedded: bnn_set_num_threads(1): %s\n", bnn_status_string(st));
        return 1;
    }

    /* The model, built in the static arena (the file is checked here). */
    st = bnn_model_arena_size(demo_model, (size_t)demo_model_size, &arena_need);
    if (st != BNN_OK) {
        printf("embedded: the compiled-in model is invalid: %s\n", bnn_status_string(st));
        return 1;
    }
    if (arena_need > sizeof arena) {
        printf("embedded: the model needs an arena of %lu bytes, this build has %lu: "
               "rebuild with -DEMBEDDED_ARENA_BYTES=%lu or more\n",
               (unsigned long)arena_need, (unsigned long)sizeof arena,
               (unsigned long)arena_need);
        return 1;
    }
    st = bnn_model_init(arena, sizeof arena, demo_model, (size_t)demo_model_size, &model);
    if (st != BNN_OK) {
        printf("embedded: bnn_model_init: %s\n", bnn_status_string(st));
        return 1;
    }
    if ((st = bnn_model_get_info(model, &info)) != BNN_OK) {
        printf("embedded: bnn_model_get_info: %s\n", bnn_status_string(st));
        return 1;
    }
    if (info.in_h * info.in_w * info.in_c != DEMO_MODEL_INPUT_BYTES) {
        printf("embedded: the model takes %ldx%ldx%ld images, the test images have %d bytes\n",
               (long)info.in_h, (long)info.in_w, (long)info.in_c, DEMO_MODEL_INPUT_BYTES);
        return 1;
    }

    /* Scratch memory for one image on one thread. */
    st = bnn_model_workspace_size(model, 1, 1, &workspace_need);
    if (st != BNN_OK) {
        printf("embedded: bnn_model_workspace_size: %s\n", bnn_status_string(st));
        return 1;
    }
    if (workspace_need > sizeof workspace) {
        printf("embedded: one image needs a workspace of %lu bytes, this build has %lu: "
               "rebuild with -DEMBEDDED_WORKSPACE_BYTES=%lu or more\n",
               (unsigned long)workspace_need, (unsigned long)sizeof workspace,
               (unsigned long)workspace_need);
        return 1;
    }
    printf("model: %ldx%ldx%ld uint8 -> %ld classes, %ld layers, %lu bytes in flash "
           "(%s)\n", (long)info.in_h, (long)info.in_w, (long)info.in_c, (long)info.classes,
           (long)info.layers, (unsigned long)demo_model_size,
           info.zero_copy ? "weights read in place" : "weights copied");
    printf("memory: arena %lu of %lu bytes, workspace %lu of %lu bytes\n",
           (unsigned long)arena_need, (unsigned long)sizeof arena,
           (unsigned long)workspace_need, (unsigned long)sizeof workspace);

    /* Classify the test images one by one. */
    for (i = 0; i < DEMO_MODEL_INPUT_COUNT; i++) {
        int32_t cls = -1;
        st = bnn_model_run(model, 1, demo_model_inputs[i], NULL, &cls, workspace,
                           workspace_need);
        if (st != BNN_OK) {
            printf("embedded: bnn_model_run: %s\n", bnn_status_string(st));
            return 1;
        }
        printf("image %2d: class %ld, expected %d%s\n", i, (long)cls,
               demo_model_expected_classes[i],
               cls == demo_model_expected_classes[i] ? "" : "  MISMATCH");
        wrong += cls != demo_model_expected_classes[i];
    }
    if (wrong != 0) {
        printf("FAIL: %d of %d classes differ from the expected ones\n", wrong,
               DEMO_MODEL_INPUT_COUNT);
        return 1;
    }
    printf("OK: all %d classes match\n", DEMO_MODEL_INPUT_COUNT);
    /* An arena model is released by dropping the arena: nothing to free. */
    return 0;
}
