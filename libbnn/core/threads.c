/*
 * threads.c -- the thread count and the fork/join helper.
 *
 * Work is split into `parts` fixed ranges by the caller, so which thread
 * runs a part never changes a result.  Parts 1.. run on one persistent pool
 * of worker threads, created on first use and grown to the largest part
 * count asked for: a training step makes hundreds of parallel calls, and
 * waking a waiting thread costs a fraction of creating one.  Worker w runs
 * part w + 1 of each run; part 0 runs on the caller.
 *
 * One run uses the pool at a time.  A call made while the pool is busy (from
 * another application thread, or from inside a part) creates its own
 * threads for that call, as a pool-less build would, so calls never wait
 * on each other and never deadlock.  After fork() the child has none of
 * the parent's workers: an atfork handler empties the pool, and the child
 * builds its own on its first parallel call.  Where a thread cannot be
 * created, its parts run on the caller.
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
/* ---- threads for one call (the pool is busy) ---------------------------- */

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

static void run_parts_spawned(bnn_part_fn fn, void *ctx, int parts)
{
    pthread_t tid[BNN_MAX_THREADS];
    part_arg args[BNN_MAX_THREADS];
    int started[BNN_MAX_THREADS];
    int i;
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
}

/* ---- the pool ------------------------------------------------------------ */

static struct {
    pthread_mutex_t busy;      /* held by the run that owns the pool */
    pthread_mutex_t m;         /* guards the fields below */
    pthread_cond_t go, done;
    int workers;               /* live workers; worker w runs part w + 1 */
    unsigned long gen;         /* run counter: a change wakes the workers */
    int left;                  /* workers of this run not finished yet */
    bnn_part_fn fn;
    void *ctx;
    int parts;
} g_pool = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
             PTHREAD_COND_INITIALIZER, 0, 0, 0, NULL, NULL, 0 };

/* The run counter when worker w was created: its first run is the next. */
static unsigned long g_born[BNN_MAX_THREADS];

static pthread_once_t g_atfork_once = PTHREAD_ONCE_INIT;

/* The child of a fork has only the forking thread: no workers, and the
 * locks as they were at the fork (possibly held by a thread that is gone),
 * so all are made anew. */
static void pool_atfork_child(void)
{
    pthread_mutex_init(&g_pool.busy, NULL);
    pthread_mutex_init(&g_pool.m, NULL);
    pthread_cond_init(&g_pool.go, NULL);
    pthread_cond_init(&g_pool.done, NULL);
    g_pool.workers = 0;
    g_pool.left = 0;
}

static void pool_register_atfork(void)
{
    pthread_atfork(NULL, NULL, pool_atfork_child);
}

static void *pool_worker(void *arg)
{
    const int part = (int)(intptr_t)arg;
    unsigned long seen;
    pthread_mutex_lock(&g_pool.m);
    seen = g_born[part];   /* not g_pool.gen: the first run may have begun */
    for (;;) {
        bnn_part_fn fn;
        void *ctx;
        int parts;
        while (g_pool.gen == seen) pthread_cond_wait(&g_pool.go, &g_pool.m);
        seen = g_pool.gen;
        if (part >= g_pool.parts) continue;   /* not in this run */
        fn = g_pool.fn; ctx = g_pool.ctx; parts = g_pool.parts;
        pthread_mutex_unlock(&g_pool.m);
        fn(ctx, part, parts);
        pthread_mutex_lock(&g_pool.m);
        if (--g_pool.left == 0) pthread_cond_signal(&g_pool.done);
    }
    return NULL;
}

/* Workers for parts 1 .. parts-1, as many as can be created; returns the
 * number alive.  Called with `busy` held, between runs. */
static int pool_grow(int parts)
{
    pthread_attr_t attr;
    if (g_pool.workers >= parts - 1) return g_pool.workers;
    pthread_once(&g_atfork_once, pool_register_atfork);
    if (pthread_attr_init(&attr) != 0) return g_pool.workers;
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_mutex_lock(&g_pool.m);
    while (g_pool.workers < parts - 1) {
        pthread_t tid;
        g_born[g_pool.workers + 1] = g_pool.gen;
        if (pthread_create(&tid, &attr, pool_worker, (void *)(intptr_t)(g_pool.workers + 1)) != 0)
            break;
        g_pool.workers++;
    }
    pthread_mutex_unlock(&g_pool.m);
    pthread_attr_destroy(&attr);
    return g_pool.workers;
}
#endif

void bnn_run_parts(bnn_part_fn fn, void *ctx, int parts)
{
#ifndef BNN_NO_THREADS
    int workers, i;
    if (parts > BNN_MAX_THREADS) parts = BNN_MAX_THREADS;
    if (parts <= 1) {
        if (parts == 1) fn(ctx, 0, 1);
        return;
    }
    if (pthread_mutex_trylock(&g_pool.busy) != 0) {
        run_parts_spawned(fn, ctx, parts);
        return;
    }
    workers = pool_grow(parts);
    pthread_mutex_lock(&g_pool.m);
    g_pool.fn = fn; g_pool.ctx = ctx; g_pool.parts = parts;
    g_pool.left = BNN_MIN(workers, parts - 1);
    g_pool.gen++;
    pthread_cond_broadcast(&g_pool.go);
    pthread_mutex_unlock(&g_pool.m);
    fn(ctx, 0, parts);
    for (i = workers + 1; i < parts; i++) fn(ctx, i, parts);   /* no worker for it */
    pthread_mutex_lock(&g_pool.m);
    while (g_pool.left > 0) pthread_cond_wait(&g_pool.done, &g_pool.m);
    pthread_mutex_unlock(&g_pool.m);
    pthread_mutex_unlock(&g_pool.busy);
#else
    int i;
    for (i = 0; i < parts; i++) fn(ctx, i, parts);
#endif
}
