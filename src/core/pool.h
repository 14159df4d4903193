/* A fork-join thread pool (docs/design.md section 4, Threads): one per context, sized to the cores by
 * default. pool_run hands n_tasks numbered tasks to the pool's threads and to the calling thread,
 * and returns when every task has finished, so the caller can read what the tasks wrote without
 * further synchronisation. It is called hundreds of times per token, so idle threads spin briefly
 * before sleeping on a condition variable. There is no global state: a pool owns its threads.
 *
 * Ownership: pool_new returns a pool the caller frees with pool_free (which joins its threads and
 * accepts NULL). A NULL pool is valid everywhere and means "run on the calling thread". */
#ifndef MODES_CORE_POOL_H
#define MODES_CORE_POOL_H

#include <stddef.h>

typedef struct modes_pool modes_pool;

/* A task function: task is in [0, n_tasks); tasks of one run run concurrently, but threads take
 * them in order, each only after every lower-numbered task of the run has been taken by a thread
 * that runs it: so a task may wait for a lower-numbered one to finish, never for a higher one. */
typedef void (*pool_task_fn)(void *arg, int task, int n_tasks);

/* A range function for pool_for: handles items [begin, end). */
typedef void (*pool_range_fn)(void *arg, size_t begin, size_t end);

/* n_threads counts the calling thread; 0 means one per physical core (cores_physical). Returns NULL when out of
 * memory. A pool of 1 starts no threads; if the system refuses threads the pool is smaller than
 * asked (pool_size says how large). */
modes_pool *pool_new(int n_threads);
void pool_free(modes_pool *p);

/* Threads that run tasks, the caller included; 1 for a NULL pool. */
int pool_size(const modes_pool *p);

/* Runs fn(arg, t, n_tasks) once for every t in [0, n_tasks) and waits for all of them. A call made
 * while the pool is already running (from inside a task, or from a second thread) runs its tasks
 * on the calling thread instead of deadlocking. */
void pool_run(modes_pool *p, pool_task_fn fn, void *arg, int n_tasks);

/* Splits [0, n) into contiguous ranges whose starts are multiples of grain (grain 0 is taken as
 * 1), at most a few per thread, and runs fn on each range through pool_run. */
void pool_for(modes_pool *p, size_t n, size_t grain, pool_range_fn fn, void *arg);

/* The range [*begin, *end) of part `part` when [0, n) is cut into `parts` pieces whose boundaries
 * are multiples of grain (the last piece takes the remainder); pieces may be empty. */
void pool_split(size_t n, size_t grain, int part, int parts, size_t *begin, size_t *end);

#endif
