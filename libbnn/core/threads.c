/*
 * threads.c -- the thread count and the fork/join helper.
 *
 * Work is split into `parts` fixed ranges by the caller, so which thread
 * runs a part never changes a result.  Threads are created per call: the
 * drivers only go parallel above a work threshold, where creation costs
 * are a small fraction of the call.
 */
#include "bnn_internal.h"

#ifndef BNN_NO_THREADS
#  include <pthread.h>
#endif


static int g_threads = 1;

bnn_status bnn_set_num_threads(int n)
{
    if (n < 1 || n > BNN_MAX_THREADS) return BNN_ERR_INVALID;
    g_threads = n;
    return BNN_OK;
}

int bnn_get_num_threads(void) { return g_threads; }

#ifndef BNN_NO_THREADS
typedef struct part_arg {
    bnn_part_fn fn;
    void *ctx;
    int part, parts;
} part_arg;

static void *part_main(void *p)
{
    part_arg *a = (part_arg *)p;
    a->fn(a->ctx, a->part, a->parts);
    return NULL;
}
#endif

void bnn_run_parts(bnn_part_fn fn, void *ctx, int parts)
{
#ifndef BNN_NO_THREADS
    pthread_t tid[BNN_MAX_THREADS];
    part_arg args[BNN_MAX_THREADS];
    int started[BNN_MAX_THREADS];
    int i;
    if (parts > BNN_MAX_THREADS) parts = BNN_MAX_THREADS;
    for (i = 1; i < parts; i++) {
        args[i].fn = fn; args[i].ctx = ctx;
        args[i].part = i; args[i].parts = parts;
        started[i] = pthread_create(&tid[i], NULL, part_main, &args[i]) == 0;
    }
    fn(ctx, 0, parts);
    for (i = 1; i < parts; i++) {
        if (started[i]) pthread_join(tid[i], NULL);
        else fn(ctx, i, parts);  /* no thread: run the part here */
    }
#else
    int i;
    for (i = 0; i < parts; i++) fn(ctx, i, parts);
#endif
}
