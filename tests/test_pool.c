/* The thread pool runs every task exactly once per run, for any thread and task count, over many
 * runs back to back (the spinning hand-over) and after pauses long enough for the workers to fall
 * asleep (the condition-variable hand-over); nested runs go serial; pool_for covers its range once;
 * tasks are taken in order. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "core/pool.h"

typedef struct {
    atomic_int *hits; /* per task */
    int n_tasks_seen;
    atomic_int bad_count;
} count_job;

static void count_task(void *arg, int task, int n_tasks) {
    count_job *j = arg;
    if (n_tasks != j->n_tasks_seen || task < 0 || task >= n_tasks)
        atomic_fetch_add(&j->bad_count, 1);
    else
        atomic_fetch_add(&j->hits[task], 1);
}

/* Runs `runs` times and checks that each task ran exactly once per run. */
static int run_counted(modes_pool *p, int n_tasks, int runs) {
    atomic_int *hits = calloc((size_t)n_tasks + 1, sizeof *hits);
    count_job j = {hits, n_tasks, 0};
    for (int r = 0; r < runs; r++) pool_run(p, count_task, &j, n_tasks);
    int ok = atomic_load(&j.bad_count) == 0;
    for (int t = 0; t < n_tasks; t++) ok &= atomic_load(&hits[t]) == runs;
    free(hits);
    return ok;
}

static void test_counts(void) {
    static const int threads[] = {1, 2, 3, 4, 8};
    static const int tasks[] = {1, 2, 3, 7, 64, 1000};
    for (size_t a = 0; a < sizeof threads / sizeof *threads; a++) {
        modes_pool *p = pool_new(threads[a]);
        CHECK(p != NULL);
        CHECKF(pool_size(p) == threads[a], "pool_size %d for %d threads", pool_size(p), threads[a]);
        for (size_t b = 0; b < sizeof tasks / sizeof *tasks; b++)
            CHECKF(run_counted(p, tasks[b], 200), "threads %d tasks %d", threads[a], tasks[b]);
        pool_run(p, count_task, NULL, 0); /* no tasks: returns at once, fn never called */
        pool_free(p);
    }
    CHECK(pool_size(NULL) == 1);
    CHECK(run_counted(NULL, 10, 3));
    modes_pool *all = pool_new(0);
    CHECK(all != NULL && pool_size(all) >= 1);
    CHECK(run_counted(all, 33, 50));
    pool_free(all);
    pool_free(NULL);
}

/* Pauses between runs let the workers stop spinning and sleep; each run must still wake them. */
static void test_sleep_wake(void) {
    modes_pool *p = pool_new(3);
    int ok = 1;
    for (int r = 0; r < 5; r++) {
        const struct timespec ts = {0, 3 * 1000 * 1000};
        nanosleep(&ts, NULL);
        ok &= run_counted(p, 17, 1);
    }
    CHECK(ok);
    pool_free(p);
}

typedef struct {
    modes_pool *pool;
    atomic_int inner_hits;
} nest_job;

static void inner_task(void *arg, int task, int n_tasks) {
    (void)task, (void)n_tasks;
    atomic_fetch_add(&((nest_job *)arg)->inner_hits, 1);
}

static void outer_task(void *arg, int task, int n_tasks) {
    nest_job *j = arg;
    pool_run(j->pool, inner_task, j, 5); /* the pool is busy: this runs serially, here */
}

static void test_nested(void) {
    modes_pool *p = pool_new(4);
    nest_job j = {p, 0};
    pool_run(p, outer_task, &j, 8);
    CHECKF(atomic_load(&j.inner_hits) == 40, "nested runs: %d inner tasks", atomic_load(&j.inner_hits));
    /* and the pool still works normally afterwards */
    CHECK(run_counted(p, 9, 100));
    pool_free(p);
}

/* Tasks write plain memory; after pool_run returns, the caller reads it (the join orders it). */
typedef struct {
    int *out;
    int n;
} fill_job;

static void fill_range(void *arg, size_t b, size_t e) {
    fill_job *j = arg;
    for (size_t i = b; i < e; i++) j->out[i] += (int)i + 1;
}

static void test_for(void) {
    modes_pool *p = pool_new(3);
    static const size_t ns[] = {0, 1, 5, 6, 7, 100, 1001};
    static const size_t grains[] = {0, 1, 6, 64};
    for (size_t a = 0; a < sizeof ns / sizeof *ns; a++)
        for (size_t g = 0; g < sizeof grains / sizeof *grains; g++) {
            const size_t n = ns[a];
            int *out = calloc(n + 1, sizeof *out);
            fill_job j = {out, (int)n};
            pool_for(p, n, grains[g], fill_range, &j);
            int ok = 1;
            for (size_t i = 0; i < n; i++) ok &= out[i] == (int)i + 1;
            CHECKF(ok, "pool_for n %zu grain %zu", n, grains[g]);
            free(out);
        }
    /* pool_split: pieces are disjoint, ordered, grain-aligned and cover [0, n). */
    for (int parts = 1; parts <= 9; parts++) {
        size_t prev = 0;
        int ok = 1;
        for (int t = 0; t < parts; t++) {
            size_t b, e;
            pool_split(1000, 48, t, parts, &b, &e);
            ok &= b == prev && e >= b && (b % 48 == 0 || b == 1000);
            prev = e;
        }
        CHECKF(ok && prev == 1000, "pool_split parts %d", parts);
    }
    pool_free(p);
}

/* Tasks are taken in order, so a task may wait for a lower-numbered one (the MoE's down chunks
 * wait for their expert's gate/up chunks): each task here waits for the previous one to finish, a
 * chain that hangs (and the test times out) if a thread could take a task while a lower one was
 * left untaken. */
typedef struct {
    atomic_int *finished;
} chain_job;

static void chain_task(void *arg, int task, int n_tasks) {
    chain_job *j = arg;
    if (task > 0)
        while (!atomic_load(&j->finished[task - 1])) {
        }
    atomic_store(&j->finished[task], 1);
    (void)n_tasks;
}

static void test_order(void) {
    enum { N = 300 };
    static const int threads[] = {1, 2, 4};
    for (size_t a = 0; a < sizeof threads / sizeof *threads; a++) {
        modes_pool *p = pool_new(threads[a]);
        int ok = p != NULL;
        for (int run = 0; ok && run < 20; run++) {
            atomic_int finished[N];
            for (int t = 0; t < N; t++) atomic_init(&finished[t], 0);
            chain_job j = {finished};
            pool_run(p, chain_task, &j, N);
            for (int t = 0; t < N; t++) ok &= atomic_load(&finished[t]);
        }
        CHECKF(ok, "a chain of tasks, each waiting for the one before, with %d threads", threads[a]);
        pool_free(p);
    }
}

/* Many pools made and freed with work in flight between: clean start-up and shut-down. */
static void test_churn(void) {
    int ok = 1;
    for (int i = 0; i < 50; i++) {
        modes_pool *p = pool_new(1 + i % 4);
        ok &= p != NULL && run_counted(p, 1 + i % 7, 3);
        pool_free(p);
    }
    CHECK(ok);
}

int main(void) {
    test_counts();
    test_sleep_wake();
    test_nested();
    test_for();
    test_order();
    test_churn();
    return check_done();
}
