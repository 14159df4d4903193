/* Fork-join pool. One run is a "generation": the caller writes the job (fn, arg) and then
 * publishes one 64-bit word holding the generation, the task count and the next unclaimed task.
 * Threads claim tasks by compare-and-swap on that word, which succeeds only while its generation is
 * the one they woke for, and count finished tasks in `done`; the caller returns once `done` reaches
 * the task count. So the caller waits for tasks, never for threads: a worker the OS has not
 * scheduled (a busy machine) is simply left out of the run, where waiting for it would cost a
 * scheduler time slice per run. A worker reads the job only after a successful claim, and the
 * caller cannot move on while a claimed task is unfinished, so the job it reads is the one it
 * claimed from; the release/acquire pairs on the word and on `done` order the job fields and the
 * tasks' writes. The mutex and condition variables are only for sleeping: a sleeper announces
 * itself, then re-checks under the mutex; the waker publishes, then signals under the mutex if
 * anyone announced (sequentially consistent on both sides, so one of them sees the other). */
#include "core/pool.h"

#include "core/cores.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

/* Between two kernels of one forward pass the gap is microseconds, far shorter than a futex
 * sleep and wake; a short spin keeps that path off the kernel's scheduler. */
#define POOL_SPIN_NS 100000

/* The work word: generation (24 bits) | tasks in this run (20 bits) | next task (20 bits). A run of
 * more tasks is issued in several generations. The generation wraps after 16M runs; a thread would
 * have to stall between reading the word and its compare-and-swap for exactly that many runs to be
 * fooled. */
#define TASK_BITS 20
#define TASK_MASK ((1u << TASK_BITS) - 1)
#define GEN_SHIFT (2 * TASK_BITS)
#define GEN_MASK ((1u << 24) - 1)

struct modes_pool {
    int n_workers; /* threads besides the caller */
    pthread_t *workers;
    pthread_mutex_t mu;
    pthread_cond_t start_cv, done_cv;
    pool_task_fn fn; /* the job: written before the word is published, read after a claim */
    void *arg;
    int base, total; /* this generation's first task number and the run's task count */
    unsigned gen;    /* the caller's copy of the current generation */
    _Atomic uint64_t work;
    atomic_int done;           /* tasks of this generation finished */
    atomic_int sleepers;       /* workers inside (or entering) the start wait */
    atomic_int caller_waiting; /* the caller is inside (or entering) the done wait */
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

static unsigned word_gen(uint64_t w) { return (unsigned)(w >> GEN_SHIFT) & GEN_MASK; }

/* Claims the next task of generation gen; 0 when that generation has none left (or is over). */
static int claim(modes_pool *p, unsigned gen, unsigned *task, unsigned *n) {
    uint64_t w = atomic_load_explicit(&p->work, memory_order_acquire);
    for (;;) {
        const unsigned next = (unsigned)w & TASK_MASK;
        *n = (unsigned)(w >> TASK_BITS) & TASK_MASK;
        if (word_gen(w) != gen || next >= *n) return 0;
        if (atomic_compare_exchange_weak_explicit(&p->work, &w, w + 1, memory_order_acquire, memory_order_acquire)) {
            *task = next;
            return 1;
        }
    }
}

static void run_claimed(modes_pool *p, unsigned gen) {
    unsigned t, n;
    while (claim(p, gen, &t, &n)) {
        p->fn(p->arg, p->base + (int)t, p->total);
        if (atomic_fetch_add_explicit(&p->done, 1, memory_order_seq_cst) + 1 == (int)n &&
            atomic_load_explicit(&p->caller_waiting, memory_order_seq_cst)) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done_cv);
            pthread_mutex_unlock(&p->mu);
        }
    }
}

/* Spins for up to POOL_SPIN_NS until cond(p, v) holds; returns whether it did. The clock is read
 * only every 64 polls. */
static int spin_until(int (*cond)(modes_pool *, unsigned), modes_pool *p, unsigned v) {
    long long deadline = 0;
    for (int i = 1;; i++) {
        if (cond(p, v)) return 1;
        cpu_relax();
        if ((i & 63) == 0) {
            const long long t = now_ns();
            if (!deadline) deadline = t + POOL_SPIN_NS;
            else if (t > deadline) return 0;
        }
    }
}

static int gen_changed(modes_pool *p, unsigned seen) {
    return word_gen(atomic_load_explicit(&p->work, memory_order_seq_cst)) != seen;
}

static int all_done(modes_pool *p, unsigned n) {
    return atomic_load_explicit(&p->done, memory_order_seq_cst) == (int)n;
}

static unsigned wait_for_job(modes_pool *p, unsigned seen) {
    if (!spin_until(gen_changed, p, seen)) {
        pthread_mutex_lock(&p->mu);
        atomic_fetch_add_explicit(&p->sleepers, 1, memory_order_seq_cst);
        while (!gen_changed(p, seen)) pthread_cond_wait(&p->start_cv, &p->mu);
        atomic_fetch_sub_explicit(&p->sleepers, 1, memory_order_seq_cst);
        pthread_mutex_unlock(&p->mu);
    }
    return word_gen(atomic_load_explicit(&p->work, memory_order_acquire));
}

static void *worker_main(void *vp) {
    modes_pool *p = vp;
    unsigned seen = 0;
    for (;;) {
        seen = wait_for_job(p, seen);
        if (atomic_load_explicit(&p->stop, memory_order_acquire)) break;
        run_claimed(p, seen);
    }
    return NULL;
}

/* Starts generation p->gen + 1 with n tasks and wakes sleeping workers. */
static void publish(modes_pool *p, unsigned n) {
    atomic_store_explicit(&p->done, 0, memory_order_relaxed);
    p->gen = (p->gen + 1) & GEN_MASK;
    atomic_store_explicit(&p->work, (uint64_t)p->gen << GEN_SHIFT | (uint64_t)n << TASK_BITS, memory_order_seq_cst);
    if (atomic_load_explicit(&p->sleepers, memory_order_seq_cst)) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->start_cv);
        pthread_mutex_unlock(&p->mu);
    }
}

static void wait_for_tasks(modes_pool *p, unsigned n) {
    if (spin_until(all_done, p, n)) return;
    pthread_mutex_lock(&p->mu);
    atomic_store_explicit(&p->caller_waiting, 1, memory_order_seq_cst);
    while (!all_done(p, n)) pthread_cond_wait(&p->done_cv, &p->mu);
    atomic_store_explicit(&p->caller_waiting, 0, memory_order_seq_cst);
    pthread_mutex_unlock(&p->mu);
}

modes_pool *pool_new(int n_threads) {
    if (n_threads <= 0) n_threads = cores_physical();
    modes_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    if (n_threads > 1 && !(p->workers = calloc((size_t)n_threads - 1, sizeof *p->workers))) {
        free(p);
        return NULL;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->start_cv, NULL);
    pthread_cond_init(&p->done_cv, NULL);
    atomic_init(&p->work, 0);
    atomic_init(&p->done, 0);
    atomic_init(&p->sleepers, 0);
    atomic_init(&p->caller_waiting, 0);
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
    publish(p, 0); /* a generation with no tasks: every worker wakes, sees stop and returns */
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
    if (!p || p->n_workers == 0 || n_tasks == 1 || atomic_exchange_explicit(&p->busy, 1, memory_order_acquire)) {
        run_serial(fn, arg, n_tasks);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    p->total = n_tasks;
    for (int base = 0; base < n_tasks; base += (int)TASK_MASK) {
        const unsigned n = n_tasks - base < (int)TASK_MASK ? (unsigned)(n_tasks - base) : TASK_MASK;
        p->base = base;
        publish(p, n);
        run_claimed(p, p->gen);
        wait_for_tasks(p, n);
    }
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
