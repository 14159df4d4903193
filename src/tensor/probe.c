/* Measures the two limits kernels are judged against: streaming read bandwidth (decode reads every
 * active weight once per token) and the peak multiply-add rate (prefill). */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/pool.h"
#include "tensor/simd.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct {
    const uint64_t *buf;
    atomic_uint_fast64_t sink; /* keeps the reads from being optimised away */
} bw_job;

/* 16-byte vector loads (the baseline of every x86-64 and arm64 CPU) into four independent sums,
 * so the loop is bound by memory, not by load slots or the add chain. */
typedef uint64_t u64x2 __attribute__((vector_size(16)));

static void bw_range(void *arg, size_t b, size_t e) {
    bw_job *j = arg;
    const u64x2 *p = (const u64x2 *)j->buf + b / 2;
    const size_t n = (e - b) / 2;
    u64x2 s0 = {0, 0}, s1 = s0, s2 = s0, s3 = s0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += p[i];
        s1 += p[i + 1];
        s2 += p[i + 2];
        s3 += p[i + 3];
    }
    for (; i < n; i++) s0 += p[i];
    const u64x2 s = s0 + s1 + s2 + s3;
    atomic_fetch_add_explicit(&j->sink, s[0] + s[1], memory_order_relaxed);
}

/* The buffer is read in 8 slices (each still several times a last-level cache when bytes is),
 * each timed alone, three rounds, best slice kept: on a machine shared with other work, a short
 * measurement is more likely to fall in a moment when this process has the cores to itself. */
enum { SLICES = 8 };

double probe_read_bandwidth_in(modes_pool *pool, const void *mem, size_t bytes, int rounds) {
    const size_t words = bytes / (64 * SLICES) * (8 * SLICES); /* whole cache lines per slice */
    const uint64_t *buf = mem;
    if (!words) return 0;
    bw_job j = {NULL, 0};
    double best = 0;
    for (int rep = 0; rep < rounds * SLICES; rep++) {
        j.buf = buf + (size_t)(rep % SLICES) * (words / SLICES);
        const double t = now_s();
        pool_for(pool, words / SLICES, 32 * 1024, bw_range, &j); /* 256 KiB grains: few claims per slice */
        const double gbs = (double)(words / SLICES * 8) / (now_s() - t) / 1e9;
        best = gbs > best ? gbs : best;
    }
    return best;
}

/* Total bytes over total time, no slice dropped: what a pass as long as the one being judged gets
 * when neighbours come and go during it, where the best slice above is what the memory gives when
 * they are away. */
double probe_read_bandwidth_sustained(modes_pool *pool, const void *mem, size_t bytes, double total) {
    const size_t words = bytes / 64 * 8;
    if (!words) return 0;
    bw_job j = {mem, 0};
    double read = 0;
    const double t = now_s();
    do {
        pool_for(pool, words, 32 * 1024, bw_range, &j);
        read += (double)words * 8;
    } while (read < total);
    return read / (now_s() - t) / 1e9;
}

double probe_read_bandwidth(modes_pool *pool, size_t bytes) {
    bytes = bytes / (64 * SLICES) * (64 * SLICES);
    void *buf = bytes ? aligned_alloc(64, bytes) : NULL;
    if (!buf) return 0;
    memset(buf, 1, bytes); /* fault the pages in before timing */
    const double gbs = probe_read_bandwidth_in(pool, buf, bytes, 3);
    free(buf);
    return gbs;
}

typedef struct {
    simd_path path;
    long iters;
    atomic_int sink;
} peak_job;

static void peak_task(void *arg, int task, int n_tasks) {
    peak_job *j = arg;
    float r = 0;
#if defined(__x86_64__) || defined(__i386__)
    switch (j->path) {
    case SIMD_AVX2: r = probe_fma_avx2(j->iters); break;
    case SIMD_AVX512: r = probe_fma_avx512(j->iters); break;
    case SIMD_AVX512BF16: r = probe_dpbf16(j->iters); break;
    default: break;
    }
#endif
    atomic_fetch_add_explicit(&j->sink, r > 0, memory_order_relaxed);
}

/* Many short runs, best kept, for the same reason as above. */
double probe_peak_gflops(simd_path p, modes_pool *pool) {
    static const double flops_per_iter[SIMD_N_PATHS] = {0, 12.0 * 8 * 2, 12.0 * 16 * 2, 12.0 * 32 * 2};
    if (p == SIMD_SCALAR || !kernels_for(p)) return 0;
    const int tasks = pool_size(pool);
    peak_job j = {p, 100000, 0};
    double best = 0;
    for (int rep = 0; rep < 30; rep++) {
        const double t = now_s();
        pool_run(pool, peak_task, &j, tasks);
        const double g = flops_per_iter[p] * (double)j.iters * tasks / (now_s() - t) / 1e9;
        best = g > best ? g : best;
    }
    return best;
}
