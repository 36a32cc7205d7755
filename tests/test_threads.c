/*
 * test_threads.c -- the persistent thread pool behind every parallel kernel.
 *
 * A parallel kernel (the optimizer step above its threshold, 2^18
 * elements) must give bitwise the same result for any thread count, over
 * many calls in a row (each a run of the pool), from several application
 * threads at once (the pool is busy: those calls make their own threads),
 * and in the child of a fork() made after the pool started.  On Linux the
 * pool is also shown to persist: after parallel calls on T threads the
 * process has T threads (workers wait between calls), not 1.
 */
#include "test_util.h"

#include <pthread.h>

#if defined(__unix__) || defined(__APPLE__)
#  include <sys/wait.h>
#  include <unistd.h>
#  define BT_HAVE_FORK 1
#endif
#if defined(__linux__)
#  include <dirent.h>
#endif

#define N_ELEMS ((int64_t)1 << 19)

typedef struct opt_case {
    float *w, *g, *m, *v;
} opt_case;

static void case_init(opt_case *c, uint64_t tag)
{
    bt_rng r = bt_stream(tag);
    int64_t i;
    c->w = (float *)bt_alloc(N_ELEMS * sizeof(float));
    c->g = (float *)bt_alloc(N_ELEMS * sizeof(float));
    c->m = (float *)bt_alloc(N_ELEMS * sizeof(float));
    c->v = (float *)bt_alloc(N_ELEMS * sizeof(float));
    for (i = 0; i < N_ELEMS; i++) {
        c->w[i] = (float)(bt_unit(&r) * 2.0 - 1.0);
        c->g[i] = (float)(bt_unit(&r) - 0.5);
        c->m[i] = 0.0f;
        c->v[i] = 0.0f;
    }
}

static void case_free(opt_case *c)
{
    free(c->w); free(c->g); free(c->m); free(c->v);
}

/* `steps` Adam steps in place; BNN_OK or the first error. */
static bnn_status case_run(opt_case *c, int steps)
{
    bnn_opt_params p;
    int t;
    memset(&p, 0, sizeof(p));
    p.kind = BNN_OPT_ADAM; p.lr = 0.01; p.beta1 = 0.9; p.beta2 = 0.999; p.eps = 1e-8;
    p.lr_scale = 1.0; p.clip = 1.0;
    for (t = 1; t <= steps; t++) {
        bnn_status st;
        p.t = t;
        st = bnn_opt_step(&p, N_ELEMS, c->w, c->g, c->m, c->v);
        if (st != BNN_OK) return st;
    }
    return BNN_OK;
}

static int case_same(const opt_case *a, const opt_case *b)
{
    size_t n = (size_t)N_ELEMS * sizeof(float);
    return memcmp(a->w, b->w, n) == 0 && memcmp(a->m, b->m, n) == 0
           && memcmp(a->v, b->v, n) == 0;
}

/* The same steps on 1 thread, as the expected result. */
static void expected(opt_case *e, uint64_t tag, int steps)
{
    int saved = bnn_get_num_threads();
    case_init(e, tag);
    bnn_set_num_threads(1);
    case_run(e, steps);
    bnn_set_num_threads(saved);
}

static int test_thread_counts(void)
{
    static const int counts[] = {2, 3, 8, 2, 5, 1, 4};
    opt_case e, c;
    size_t k;
    expected(&e, 1, 40);
    for (k = 0; k < sizeof(counts) / sizeof(counts[0]); k++) {
        bt_ctx("threads %d, 40 calls", counts[k]);
        CHECK_ST(bnn_set_num_threads(counts[k]), BNN_OK);
        case_init(&c, 1);
        CHECK_ST(case_run(&c, 40), BNN_OK);
        CHECK_MSG(case_same(&c, &e), "40 steps on %d threads differ from 1 thread", counts[k]);
        case_free(&c);
    }
    case_free(&e);
    CHECK_ST(bnn_set_num_threads(1), BNN_OK);
    return 0;
}

#if defined(__linux__)
static int g_tasks0 = -1;    /* the process's threads before any pool (main + an
                                emulator's own, under qemu-user) */
static int task_count(void)
{
    int n = 0;
    struct dirent *d;
    DIR *dir = opendir("/proc/self/task");
    if (dir == NULL) return -1;
    while ((d = readdir(dir)) != NULL)
        if (d->d_name[0] != '.') n++;
    closedir(dir);
    return n;
}
#endif

static int test_pool_persists(void)
{
#if defined(__linux__)
    opt_case c;
    int before, after;
    bt_ctx("pool persistence");
    case_init(&c, 2);
    CHECK_ST(bnn_set_num_threads(8), BNN_OK);
    CHECK_ST(case_run(&c, 1), BNN_OK);   /* the pool has 7 workers from here */
    before = task_count();
    CHECK_ST(bnn_set_num_threads(3), BNN_OK);
    CHECK_ST(case_run(&c, 30), BNN_OK);
    after = task_count();
    CHECK_MSG(before == g_tasks0 + 7 && after == g_tasks0 + 7,
              "threads after parallel calls: %d then %d, expected %d (the %d before the pool "
              "+ 7 waiting workers)", before, after, g_tasks0 + 7, g_tasks0);
    CHECK_ST(bnn_set_num_threads(1), BNN_OK);
    case_free(&c);
#endif
    return 0;
}

typedef struct app_thread {
    opt_case c;
    bnn_status st;
} app_thread;

static void *app_main(void *arg)
{
    app_thread *a = (app_thread *)arg;
    a->st = case_run(&a->c, 25);
    return NULL;
}

/* Four application threads drive parallel kernels at once: one holds the
 * pool, the others spawn threads for their calls; all results exact. */
static int test_concurrent_callers(void)
{
    enum { APPS = 4 };
    app_thread apps[APPS];
    pthread_t tid[APPS];
    opt_case e;
    int i;
    expected(&e, 3, 25);
    CHECK_ST(bnn_set_num_threads(2), BNN_OK);
    for (i = 0; i < APPS; i++) {
        case_init(&apps[i].c, 3);
        CHECK(pthread_create(&tid[i], NULL, app_main, &apps[i]) == 0);
    }
    for (i = 0; i < APPS; i++) pthread_join(tid[i], NULL);
    for (i = 0; i < APPS; i++) {
        bt_ctx("application thread %d", i);
        CHECK_ST(apps[i].st, BNN_OK);
        CHECK_MSG(case_same(&apps[i].c, &e), "application thread %d: result differs", i);
        case_free(&apps[i].c);
    }
    case_free(&e);
    CHECK_ST(bnn_set_num_threads(1), BNN_OK);
    return 0;
}

/* fork() after the pool has workers: the child builds its own pool. */
static int test_fork_child(void)
{
#ifdef BT_HAVE_FORK
    opt_case e, c;
    pid_t pid;
    int status = 0;
    if (getenv("BNN_TEST_EMULATOR") != NULL) {
        /* qemu-user aborts on an internal assertion when a threaded
         * process forks: the emulator's limit, not the library's */
        printf("  fork child: skipped under the emulator (%s)\n", getenv("BNN_TEST_EMULATOR"));
        return 0;
    }
    expected(&e, 4, 10);
    CHECK_ST(bnn_set_num_threads(4), BNN_OK);
    case_init(&c, 4);
    CHECK_ST(case_run(&c, 1), BNN_OK);        /* the parent's pool is up */
    case_free(&c);
    fflush(stdout);
    pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        opt_case cc;
        case_init(&cc, 4);
        _exit(case_run(&cc, 10) == BNN_OK && case_same(&cc, &e) ? 0 : 3);
    }
    bt_ctx("forked child");
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "the child's parallel steps failed or differ (status %d)", status);
    case_init(&c, 4);                          /* and the parent's pool still works */
    CHECK_ST(case_run(&c, 10), BNN_OK);
    CHECK(case_same(&c, &e));
    case_free(&c);
    case_free(&e);
    CHECK_ST(bnn_set_num_threads(1), BNN_OK);
#endif
    return 0;
}

int main(int argc, char **argv)
{
    int fails = 0;
    bt_init(argc, argv, "test_threads");
#if defined(__linux__)
    g_tasks0 = task_count();
#endif
    fails += test_thread_counts() != 0;
    fails += test_pool_persists() != 0;
    fails += test_concurrent_callers() != 0;
    fails += test_fork_child() != 0;
    if (fails) {
        printf("test_threads: %d test group(s) FAILED (seed %" PRIu64 ")\n", fails, bt_seed);
        return 1;
    }
    printf("test_threads: all passed\n");
    return 0;
}
