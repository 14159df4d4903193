/* Fork-join pool. One run is a "generation": the caller publishes the job and bumps `gen`; every
 * worker takes part in every generation (claims tasks from a shared counter until none is left)
 * and then decrements `running`; the caller returns once `running` is zero. Because the caller
 * waits for every worker, not just for every task, no worker can still be reading the job when the
 * next run overwrites it, and the release/acquire pairs on `gen` and `running` order the job fields
 * and the tasks' writes without locks. The mutex and condition variables are only for sleeping:
 * a waiter re-checks its condition under the mutex, and the waker takes the mutex before it
 * signals, so a wake-up cannot fall between the check and the wait. */
#include "core/pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/* Between two kernels of one forward pass the gap is microseconds, far shorter than a futex
 * sleep and wake; a short spin keeps that path off the kernel's scheduler. */
#define POOL_SPIN_NS 100000

struct modes_pool {
    int n_workers; /* threads besides the caller */
    pthread_t *workers;
    pthread_mutex_t mu;
    pthread_cond_t start_cv, done_cv;
    pool_task_fn fn; /* the job: written before `gen` is published, read after */
    void *arg;
    int n_tasks;
    atomic_int next;    /* the next unclaimed task */
    atomic_int running; /* workers that have not finished the current generation */
    atomic_uint gen;    /* generation counter; a change means "a job (or stop) is waiting" */
    atomic_int stop;
    atomic_int busy; /* a run is in progress: nested or concurrent runs go serial */
};

static void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Spins for up to POOL_SPIN_NS until *gen differs from seen (when gen is given) or *count is zero;
 * returns whether that happened. The clock is read only every 64 polls. */
static int spin_until(atomic_uint *gen, unsigned seen, atomic_int *count) {
    long long deadline = 0;
    for (int i = 1;; i++) {
        if (gen ? atomic_load_explicit(gen, memory_order_acquire) != seen
                : atomic_load_explicit(count, memory_order_acquire) == 0)
            return 1;
        cpu_relax();
        if ((i & 63) == 0) {
            long long t = now_ns();
            if (!deadline) deadline = t + POOL_SPIN_NS;
            else if (t > deadline) return 0;
        }
    }
}

static void run_tasks(modes_pool *p) {
    const int n = p->n_tasks;
    for (;;) {
        const int t = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed);
        if (t >= n) break;
        p->fn(p->arg, t, n);
    }
}

static unsigned wait_for_job(modes_pool *p, unsigned seen) {
    if (!spin_until(&p->gen, seen, NULL)) {
        pthread_mutex_lock(&p->mu);
        while (atomic_load_explicit(&p->gen, memory_order_acquire) == seen) pthread_cond_wait(&p->start_cv, &p->mu);
        pthread_mutex_unlock(&p->mu);
    }
    return atomic_load_explicit(&p->gen, memory_order_acquire);
}

static void *worker_main(void *vp) {
    modes_pool *p = vp;
    unsigned seen = 0;
    for (;;) {
        seen = wait_for_job(p, seen);
        if (atomic_load_explicit(&p->stop, memory_order_acquire)) break;
        run_tasks(p);
        if (atomic_fetch_sub_explicit(&p->running, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done_cv);
            pthread_mutex_unlock(&p->mu);
        }
    }
    return NULL;
}

/* Publishes a new generation and wakes sleeping workers. */
static void publish(modes_pool *p) {
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_acq_rel);
    pthread_mutex_lock(&p->mu);
    pthread_cond_broadcast(&p->start_cv);
    pthread_mutex_unlock(&p->mu);
}

static void wait_for_workers(modes_pool *p) {
    if (spin_until(NULL, 0, &p->running)) return;
    pthread_mutex_lock(&p->mu);
    while (atomic_load_explicit(&p->running, memory_order_acquire) != 0) pthread_cond_wait(&p->done_cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

static int online_cores(void) {
    const long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 1024 ? 1024 : (int)n;
}

modes_pool *pool_new(int n_threads) {
    if (n_threads <= 0) n_threads = online_cores();
    modes_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    if (n_threads > 1 && !(p->workers = calloc((size_t)n_threads - 1, sizeof *p->workers))) {
        free(p);
        return NULL;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->start_cv, NULL);
    pthread_cond_init(&p->done_cv, NULL);
    atomic_init(&p->next, 0);
    atomic_init(&p->running, 0);
    atomic_init(&p->gen, 0);
    atomic_init(&p->stop, 0);
    atomic_init(&p->busy, 0);
    /* A system that refuses more threads leaves a smaller pool, which is still correct. */
    for (int i = 0; i < n_threads - 1; i++) {
        if (pthread_create(&p->workers[i], NULL, worker_main, p) != 0) break;
        p->n_workers++;
    }
    return p;
}

void pool_free(modes_pool *p) {
    if (!p) return;
    atomic_store_explicit(&p->stop, 1, memory_order_release);
    publish(p);
    for (int i = 0; i < p->n_workers; i++) pthread_join(p->workers[i], NULL);
    pthread_cond_destroy(&p->done_cv);
    pthread_cond_destroy(&p->start_cv);
    pthread_mutex_destroy(&p->mu);
    free(p->workers);
    free(p);
}

int pool_size(const modes_pool *p) { return p ? p->n_workers + 1 : 1; }

static void run_serial(pool_task_fn fn, void *arg, int n_tasks) {
    for (int t = 0; t < n_tasks; t++) fn(arg, t, n_tasks);
}

void pool_run(modes_pool *p, pool_task_fn fn, void *arg, int n_tasks) {
    if (n_tasks <= 0) return;
    if (!p || p->n_workers == 0 || n_tasks == 1) {
        run_serial(fn, arg, n_tasks);
        return;
    }
    if (atomic_exchange_explicit(&p->busy, 1, memory_order_acquire)) {
        run_serial(fn, arg, n_tasks);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    p->n_tasks = n_tasks;
    atomic_store_explicit(&p->next, 0, memory_order_relaxed);
    atomic_store_explicit(&p->running, p->n_workers, memory_order_relaxed);
    publish(p);
    run_tasks(p);
    wait_for_workers(p);
    atomic_store_explicit(&p->busy, 0, memory_order_release);
}

void pool_split(size_t n, size_t grain, int part, int parts, size_t *begin, size_t *end) {
    if (grain == 0) grain = 1;
    if (parts < 1) parts = 1;
    const size_t grains = n / grain + (n % grain != 0);
    size_t b = grains * (size_t)part / (size_t)parts * grain, e = grains * ((size_t)part + 1) / (size_t)parts * grain;
    *begin = b < n ? b : n;
    *end = e < n ? e : n;
}

typedef struct {
    pool_range_fn fn;
    void *arg;
    size_t n, grain;
} range_job;

static void range_task(void *vp, int task, int n_tasks) {
    const range_job *j = vp;
    size_t b, e;
    pool_split(j->n, j->grain, task, n_tasks, &b, &e);
    if (b < e) j->fn(j->arg, b, e);
}

void pool_for(modes_pool *p, size_t n, size_t grain, pool_range_fn fn, void *arg) {
    if (n == 0) return;
    if (grain == 0) grain = 1;
    /* A few ranges per thread let a thread that was descheduled fall behind without stalling all. */
    const size_t grains = n / grain + (n % grain != 0);
    const size_t want = (size_t)pool_size(p) * 4;
    range_job j = {fn, arg, n, grain};
    pool_run(p, range_task, &j, (int)(grains < want ? grains : want));
}
