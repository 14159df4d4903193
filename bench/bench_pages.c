/* Page size and decode streaming: the same bytes read, and the same decode product run, over
 * weights on 4 KiB pages and on the 2 MiB pages mem_alloc_streamed asks for, alternating in one
 * process so that both sides see the same machine (this VM's bandwidth moves by 2x within seconds).
 *
 *   bench_pages [-o FILE] [--gib N] [--rounds R]
 *
 * Each region is N GiB (default 2) of bf16 expert matrices (768 x 2048, 3 MiB, as Qwen3-VL-30B-A3B's
 * gate/up), far beyond the caches. Per round and thread count: a pure read of each region, then a
 * pass of one-token products (matmul_mt, n = 1) over every matrix of each region. Prints medians
 * over the rounds and the 2 MiB / 4 KiB ratio of each round's pair (median); -o also writes JSON. */
#define _DEFAULT_SOURCE /* madvise */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "core/mem.h"
#include "core/pool.h"
#include "eval/bench.h"
#include "io/file.h"
#include "tensor/tensor.h"

enum { ROWS = 768, COLS = 2048, KINDS = 2, TESTS = 2, THREADS = 2 };
static const char *const kind_name[KINDS] = {"4 KiB", "2 MiB"};
static const char *const test_name[TESTS] = {"read", "decode matmul"};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Ordinary pages: an anonymous mapping the kernel is told not to back with huge pages. */
static void *small_pages(size_t bytes) {
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
#ifdef MADV_NOHUGEPAGE
    (void)madvise(p, bytes, MADV_NOHUGEPAGE);
#endif
    return p;
}

/* bf16 weights, small and finite (0x3c3c is about 0.0115), written after allocation so the advice
 * applies. */
static void fill(void *p, size_t bytes) { memset(p, 0x3c, bytes); }

static double decode_pass(modes_pool *pool, const char *region, size_t bytes, const float *x, float *y) {
    const size_t mat = (size_t)ROWS * COLS * 2, n = bytes / mat;
    const double t = now_s();
    for (size_t i = 0; i < n; i++) {
        const wmat w = {DT_BF16, region + i * mat, ROWS, COLS};
        matmul_mt(pool, y, x, 1, &w, NULL);
    }
    return (double)(n * mat) / (now_s() - t) / 1e9;
}

typedef struct {
    int threads;
    double gbs[KINDS][TESTS], ratio[TESTS]; /* medians over rounds */
} row;

static int write_json(const char *path, const row *rows, int n_rows, double gib, int rounds) {
    atomic_file af;
    modes_error err;
    if (atomic_open(&af, path, &err)) return 1;
    fprintf(af.f, "{\n  \"region_gib\": %g,\n  \"rounds\": %d,\n  \"results\": [", gib, rounds);
    for (int i = 0; i < n_rows; i++)
        for (int t = 0; t < TESTS; t++)
            fprintf(af.f,
                    "%s\n    {\"test\": \"%s\", \"threads\": %d, \"gb_per_s_4k\": %.4g, \"gb_per_s_2m\": %.4g, "
                    "\"ratio_2m_over_4k\": %.4f}",
                    i || t ? "," : "", test_name[t], rows[i].threads, rows[i].gbs[0][t], rows[i].gbs[1][t], rows[i].ratio[t]);
    fprintf(af.f, "\n  ]\n}\n");
    return atomic_commit(&af, &err);
}

int main(int argc, char **argv) {
    const char *out = NULL;
    double gib = 2;
    int rounds = 8;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-o") && i + 1 < argc) out = argv[++i];
        else if (!strcmp(argv[i], "--gib") && i + 1 < argc) gib = atof(argv[++i]);
        else if (!strcmp(argv[i], "--rounds") && i + 1 < argc) rounds = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_pages [-o FILE] [--gib N] [--rounds R]\n");
            return 2;
        }
    }
    const size_t mat = (size_t)ROWS * COLS * 2;
    const size_t bytes = (size_t)(gib * (double)(1u << 30)) / mat * mat;
    if (bytes == 0 || rounds < 1 || rounds > 1000) {
        fprintf(stderr, "bench_pages: --gib must hold at least one 3 MiB matrix and --rounds be in [1, 1000]\n");
        return 2;
    }
    char *region[KINDS] = {small_pages(bytes), mem_alloc_streamed(bytes)};
    float *x = malloc(COLS * sizeof *x), *y = malloc(ROWS * sizeof *y);
    double *v = malloc((size_t)rounds * KINDS * TESTS * sizeof *v), *r = malloc((size_t)rounds * sizeof *r);
    modes_pool *pools[THREADS] = {pool_new(1), pool_new(0)};
    if (!region[0] || !region[1] || !x || !y || !v || !r || !pools[0] || !pools[1]) {
        fprintf(stderr, "bench_pages: out of memory for two regions of %.1f GiB\n", gib);
        return 1;
    }
    for (int k = 0; k < KINDS; k++) fill(region[k], bytes);
    for (int c = 0; c < COLS; c++) x[c] = 1e-3f * (float)(c % 97);
    row rows[THREADS];
    for (int p = 0; p < THREADS; p++) {
        rows[p].threads = pool_size(pools[p]);
        for (int q = 0; q < rounds; q++)
            for (int k = 0; k < KINDS; k++) { /* the two kinds back to back, every round */
                v[(q * KINDS + k) * TESTS + 0] = probe_read_bandwidth_sustained(pools[p], region[k], bytes, (double)bytes);
                v[(q * KINDS + k) * TESTS + 1] = decode_pass(pools[p], region[k], bytes, x, y);
                fprintf(stderr, ".");
            }
        for (int t = 0; t < TESTS; t++) {
            for (int q = 0; q < rounds; q++) r[q] = v[(q * KINDS + 1) * TESTS + t] / v[(q * KINDS + 0) * TESTS + t];
            rows[p].ratio[t] = bench_median(r, rounds);
            for (int k = 0; k < KINDS; k++) {
                for (int q = 0; q < rounds; q++) r[q] = v[(q * KINDS + k) * TESTS + t];
                rows[p].gbs[k][t] = bench_median(r, rounds);
            }
        }
    }
    fprintf(stderr, "\n");
    printf("regions of %.2f GiB, %d rounds, medians\n\n", (double)bytes / (1u << 30), rounds);
    printf("%-14s %7s %12s %12s %10s\n", "test", "threads", kind_name[0], kind_name[1], "2M / 4K");
    for (int p = 0; p < THREADS; p++)
        for (int t = 0; t < TESTS; t++)
            printf("%-14s %7d %8.1f GB/s %7.1f GB/s %10.3f\n", test_name[t], rows[p].threads, rows[p].gbs[0][t],
                   rows[p].gbs[1][t], rows[p].ratio[t]);
    int rc = 0;
    if (out && write_json(out, rows, THREADS, (double)bytes / (1u << 30), rounds)) {
        fprintf(stderr, "bench_pages: %s: cannot write\n", out);
        rc = 1;
    }
    munmap(region[0], bytes);
    free(region[1]);
    free(x), free(y), free(v), free(r);
    pool_free(pools[0]);
    pool_free(pools[1]);
    return rc;
}
