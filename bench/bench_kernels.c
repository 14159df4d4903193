/* Kernel micro-benchmark on the shapes of Qwen3-VL-30B-A3B: matmul for decode (n = 1, judged by
 * weight bytes read per second against the measured read bandwidth) and prefill (n = 64..1024,
 * judged by multiply-adds per second against the measured peak), on every SIMD path the CPU has,
 * one thread and all threads; a MoE layer's expert products batched in one parallel region; then
 * the cheaper kernels. Prints a table at the end; -o FILE also writes it as JSON.
 *
 *   bench_kernels [-o FILE] [-t THREADS] [--quick] [--only NAME] [--max-n N]
 *
 * Every product cycles through enough copies of its matrix to exceed the last-level cache, as a
 * forward pass does (each layer's weights are read once per pass). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/json.h"
#include "core/pool.h"
#include "io/file.h"
#include "tensor/tensor.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t rng = 88172645463325252ull;
static float frand(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((rng >> 40) * 0x1p-24) * 2.0f - 1.0f;
}

typedef struct {
    const char *name;
    int rows, cols;
    int decode_only;
} shape;

static const shape shapes[] = {
    {"expert gate/up", 768, 2048, 0}, {"expert down", 2048, 768, 0}, {"q_proj", 4096, 2048, 0},
    {"router", 128, 2048, 0},         {"lm_head", 151936, 2048, 1},
};
/* 4 and 16: MoE prefill, where each expert gets a few of the prompt's tokens. */
static const int prefill_ns[] = {4, 16, 64, 256, 1024};

typedef struct {
    const char *kernel, *dtype, *path;
    char shape[32];
    int n, threads, judged; /* judged: compared with the roofline; 0: data resident in cache */
    simd_path sp;
    double secs, bytes, flops;
} result;

typedef struct {
    double bw[2]; /* GB/s: one thread, all threads */
    double peak[2][SIMD_N_PATHS];
    int threads;
    double min_time; /* seconds per measurement */
    int trials;      /* at least this many timed trials */
    const char *only; /* run only kernels whose name contains this */
    int max_n;
    result *rows; /* printed at the end, against the best limits measured before and after */
    int n_rows, cap_rows;
} bench;

/* Records one result; the table and JSON are written at the end. */
static void report(bench *b, const char *kernel, const char *shape_s, int n, const char *dtype, const char *path,
                   int threads, double secs, double bytes, double flops, int judged, simd_path sp) {
    if (b->n_rows == b->cap_rows) {
        b->cap_rows = b->cap_rows ? 2 * b->cap_rows : 256;
        if (!(b->rows = realloc(b->rows, (size_t)b->cap_rows * sizeof *b->rows))) {
            fprintf(stderr, "bench_kernels: out of memory\n");
            exit(2);
        }
    }
    result *r = &b->rows[b->n_rows++];
    *r = (result){kernel, dtype, path, "", n, threads, judged, sp, secs, bytes, flops};
    snprintf(r->shape, sizeof r->shape, "%s", shape_s);
    fprintf(stderr, "."); /* progress */
}

static void row_fractions(const bench *b, const result *r, double *fbw, double *fpk) {
    const int ti = r->threads > 1;
    *fbw = r->judged && b->bw[ti] > 0 ? r->bytes / r->secs / 1e9 / b->bw[ti] : 0;
    *fpk = r->judged && b->peak[ti][r->sp] > 0 ? r->flops / r->secs / 1e9 / b->peak[ti][r->sp] : 0;
}

static const char *row_bound(const result *r, double fbw, double fpk) {
    return !r->judged ? "cache" : fbw >= fpk ? "memory" : "compute";
}

static void print_table(const bench *b) {
    printf("%-15s %-14s %5s %-5s %-10s %3s %11s %8s %9s %7s %7s  %s\n", "kernel", "shape", "n", "dtype", "path", "thr",
           "time(us)", "GB/s", "GFLOP/s", "%BW", "%peak", "bound");
    for (int i = 0; i < b->n_rows; i++) {
        const result *r = &b->rows[i];
        double fbw, fpk;
        row_fractions(b, r, &fbw, &fpk);
        char sb[16] = "-", sp[16] = "-";
        if (fbw > 0) snprintf(sb, sizeof sb, "%5.1f%%", 100 * fbw);
        if (fpk > 0) snprintf(sp, sizeof sp, "%5.1f%%", 100 * fpk);
        printf("%-15s %-14s %5d %-5s %-10s %3d %11.1f %8.2f %9.2f %7s %7s  %s\n", r->kernel, r->shape, r->n, r->dtype,
               r->path, r->threads, r->secs * 1e6, r->bytes / r->secs / 1e9, r->flops / r->secs / 1e9, sb, sp,
               row_bound(r, fbw, fpk));
    }
}

/* Through a temporary file: an interrupted run leaves the previous results whole. */
static int write_json(const bench *b, const char *path) {
    strbuf sb = {0};
    sb_printf(&sb, "{\n  \"threads\": %d,\n  \"read_bandwidth_gb_per_s\": {\"1\": %.4g, \"%d\": %.4g},\n", b->threads,
              b->bw[0], b->threads, b->bw[1]);
    sb_puts(&sb, "  \"peak_gflop_per_s\": {");
    for (int p = SIMD_AVX2; p < SIMD_N_PATHS; p++)
        sb_printf(&sb, "%s\"%s\": {\"1\": %.4g, \"%d\": %.4g}", p == SIMD_AVX2 ? "" : ", ",
                  simd_path_name((simd_path)p), b->peak[0][p], b->threads, b->peak[1][p]);
    sb_printf(&sb, "},\n  \"default_path\": \"%s\",\n  \"results\": [", kernels_default()->name);
    for (int i = 0; i < b->n_rows; i++) {
        const result *r = &b->rows[i];
        double fbw, fpk;
        row_fractions(b, r, &fbw, &fpk);
        sb_printf(&sb,
                  "%s\n    {\"kernel\": \"%s\", \"shape\": \"%s\", \"n\": %d, \"dtype\": \"%s\", \"path\": \"%s\", "
                  "\"threads\": %d, \"seconds\": %.9g, \"gb_per_s\": %.6g, \"gflop_per_s\": %.6g, "
                  "\"fraction_of_bandwidth\": %.4f, \"fraction_of_peak\": %.4f, \"bound\": \"%s\"}",
                  i ? "," : "", r->kernel, r->shape, r->n, r->dtype, r->path, r->threads, r->secs,
                  r->bytes / r->secs / 1e9, r->flops / r->secs / 1e9, fbw, fpk, row_bound(r, fbw, fpk));
    }
    sb_puts(&sb, "\n  ]\n}\n");
    modes_error err = {0};
    const int rc = sb.failed ? 1 : write_file_atomic(path, sb.data, sb.len, &err);
    if (rc) fprintf(stderr, "bench_kernels: %s\n", err.msg[0] ? err.msg : "out of memory");
    sb_free(&sb);
    return rc;
}

/* Measures the limits and keeps the best seen so far: probing before and after the kernels gives a
 * busy machine two chances to show what it can do. */
static void probe_limits(bench *b, modes_pool *all, size_t bytes) {
    modes_pool *pools[2] = {NULL, all};
    for (int t = 0; t < 2; t++) {
        const double bw = probe_read_bandwidth(pools[t], bytes);
        b->bw[t] = bw > b->bw[t] ? bw : b->bw[t];
        for (int p = 0; p < SIMD_N_PATHS; p++) {
            const double pk = probe_peak_gflops((simd_path)p, pools[t]);
            b->peak[t][p] = pk > b->peak[t][p] ? pk : b->peak[t][p];
        }
    }
}

static void print_limits(const bench *b) {
    printf("read bandwidth: %.1f GB/s (1 thread), %.1f GB/s (%d threads)\n", b->bw[0], b->bw[1], b->threads);
    for (int p = SIMD_AVX2; p < SIMD_N_PATHS; p++)
        if (kernels_for((simd_path)p))
            printf("peak %-10s: %7.1f GFLOP/s (1 thread), %7.1f GFLOP/s (%d threads)\n", simd_path_name((simd_path)p),
                   b->peak[0][p], b->peak[1][p], b->threads);
    if (b->threads > 1 && b->peak[1][SIMD_AVX2] > 0 && b->peak[1][SIMD_AVX2] < 1.5 * b->peak[0][SIMD_AVX2])
        printf("warning: the %d-thread peak is no more than one thread's: other work held the cores, so the\n"
               "%d-thread rows (and their fractions) are not meaningful\n",
               b->threads, b->threads);
    printf("GB/s counts weight bytes read; %%BW and %%peak are fractions of the limits above for the same thread\n"
           "count (peak of the path's own instructions); bound: the nearer limit\n\n");
}

typedef struct {
    const kernel_set *ks;
    modes_pool *pool;
    wmat *set;
    int count;
    float *x, *y;
    int n;
} mm_case;

/* Seconds per call: the fastest of many short trials (a few milliseconds of calls each) spread
 * over min_time, so that other processes taking the CPU now and then do not count. */
static double time_matmul(const bench *b, mm_case *c) {
    double t0 = now_s();
    matmul_mt_using(c->ks, c->pool, c->y, c->x, c->n, &c->set[0], NULL); /* warm-up and calibration */
    const double one = now_s() - t0;
    const int per_trial = one > 2e-3 ? 1 : (int)(2e-3 / (one + 1e-9)) + 1;
    double best = INFINITY;
    int calls = 0, trials = 0;
    t0 = now_s();
    while (trials < b->trials || now_s() - t0 < b->min_time) {
        const double t = now_s();
        for (int k = 0; k < per_trial; k++)
            matmul_mt_using(c->ks, c->pool, c->y, c->x, c->n, &c->set[calls++ % c->count], NULL);
        const double dt = (now_s() - t) / per_trial;
        best = dt < best ? dt : best;
        trials++;
    }
    return best;
}

static wmat *make_set(const shape *s, size_t set_bytes, int *count) {
    const size_t bytes = (size_t)s->rows * s->cols * 2;
    int k = (int)((set_bytes + bytes - 1) / bytes);
    if (k < 1) k = 1;
    wmat *set = calloc((size_t)k, sizeof *set);
    for (int i = 0; i < k; i++) {
        uint16_t *d = malloc(bytes);
        if (!d) {
            fprintf(stderr, "bench_kernels: out of memory\n");
            exit(2);
        }
        for (size_t e = 0; e < bytes / 2; e++) d[e] = f32_to_bf16(frand() * 0.05f);
        set[i] = (wmat){DT_BF16, d, s->rows, s->cols};
    }
    *count = k;
    return set;
}

static void free_set(wmat *set, int count) {
    for (int i = 0; i < count; i++) free((void *)set[i].data);
    free(set);
}

static void bench_matmul(bench *b, modes_pool *all, int quick) {
    const size_t set_bytes = (size_t)(quick ? 96 : 256) << 20;
    modes_pool *pools[2] = {NULL, all};
    for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++) {
        const shape *s = &shapes[si];
        if ((quick && s->decode_only) || (b->only && !strstr(s->name, b->only))) continue;
        int count;
        wmat *set = make_set(s, set_bytes, &count);
        char shape_s[32];
        snprintf(shape_s, sizeof shape_s, "%dx%d", s->rows, s->cols);
        const int max_n = s->decode_only ? 1 : prefill_ns[sizeof prefill_ns / sizeof *prefill_ns - 1];
        float *x = malloc((size_t)max_n * s->cols * sizeof(float)), *y = malloc((size_t)max_n * s->rows * sizeof(float));
        for (size_t i = 0; i < (size_t)max_n * s->cols; i++) x[i] = frand();
        for (int ni = -1; ni < (int)(sizeof prefill_ns / sizeof *prefill_ns); ni++) {
            const int n = ni < 0 ? 1 : prefill_ns[ni];
            if (n > 1 && (s->decode_only || (quick && n > 256) || n > b->max_n)) continue;
            for (int p = 0; p < SIMD_N_PATHS; p++) {
                const kernel_set *ks = kernels_for((simd_path)p);
                /* the scalar reference only where it finishes in reasonable time */
                if (!ks || (p == SIMD_SCALAR && (n > 64 || s->decode_only))) continue;
                for (int t = 0; t < 2; t++) {
                    if (t == 1 && pool_size(all) == 1) continue;
                    mm_case c = {ks, pools[t], set, count, x, y, n};
                    const double secs = time_matmul(b, &c);
                    const double bytes = (double)s->rows * s->cols * 2, flops = 2.0 * n * s->rows * s->cols;
                    report(b, s->name, shape_s, n, "bf16", ks->name, pool_size(pools[t]), secs, bytes, flops, 1,
                           (simd_path)p);
                }
            }
        }
        free(x), free(y);
        free_set(set, count);
    }
}

/* ---- A MoE layer's expert products in one parallel region ---------------------------------- */

enum { MOE_ACTIVE = 8, MOE_LAYERS = 4 }; /* top-8 experts; 4 layers' worth of weights (192 MiB) */

/* Gate and up products of the 8 active experts of one layer, each expert with n tokens: one
 * matmul_batch_mt call, against the same 16 products issued one matmul_mt at a time. */
static void bench_moe(bench *b, modes_pool *all) {
    const int H = 2048, I = 768, NJ = 2 * MOE_ACTIVE;
    static const int ns[] = {1, 16};
    shape s = {"moe gate+up", I, H, 0};
    int count;
    wmat *set = make_set(&s, (size_t)NJ * MOE_LAYERS * I * H * 2, &count);
    float *x = malloc((size_t)16 * H * sizeof(float)), *y = malloc((size_t)NJ * 16 * I * sizeof(float));
    for (int i = 0; i < 16 * H; i++) x[i] = frand();
    modes_pool *pools[2] = {NULL, all};
    for (size_t ni = 0; ni < sizeof ns / sizeof *ns; ni++)
        for (int p = SIMD_AVX2; p < SIMD_N_PATHS; p++)
            for (int t = 0; t < 2; t++)
                for (int batched = 0; batched < 2; batched++) {
                    const kernel_set *ks = kernels_for((simd_path)p);
                    if (!ks || (t == 1 && pool_size(all) == 1) || (t == 0 && batched == 0)) continue;
                    const int n = ns[ni];
                    matmul_job jobs[2 * MOE_ACTIVE];
                    double best = INFINITY;
                    const double t0 = now_s();
                    for (int call = 0; call < b->trials * 4 || now_s() - t0 < b->min_time; call++) {
                        for (int j = 0; j < NJ; j++)
                            jobs[j] = (matmul_job){y + (size_t)j * 16 * I, x, n, &set[(call % MOE_LAYERS * NJ + j) % count], NULL};
                        const double start = now_s();
                        if (batched)
                            matmul_batch_mt_using(ks, pools[t], jobs, NJ);
                        else
                            for (int j = 0; j < NJ; j++) matmul_mt_using(ks, pools[t], jobs[j].y, x, n, jobs[j].w, NULL);
                        const double dt = now_s() - start;
                        best = dt < best ? dt : best;
                    }
                    report(b, batched ? "moe gate+up" : "moe (1 by 1)", "16x768x2048", n, "bf16", ks->name,
                           pool_size(pools[t]), best, (double)NJ * I * H * 2, 2.0 * NJ * n * I * H, 1, (simd_path)p);
                }
    free(x), free(y);
    free_set(set, count);
}

/* ---- Cheaper kernels, one thread ------------------------------------------------------------ */

typedef enum { OP_RMSNORM, OP_SILU, OP_SOFTMAX, OP_GELU_TANH, OP_ATT_DECODE, OP_ATT_PREFILL, OP_N } op_kind;

static void run_op(const kernel_set *ks, op_kind op, float *a, float *bb, float *c, float *w, int n) {
    switch (op) {
    case OP_RMSNORM:
        for (int i = 0; i < 64; i++) ks->rmsnorm(a + (size_t)i * 2048, bb + (size_t)i * 2048, w, 2048, 1e-6f);
        break;
    case OP_SILU: ks->silu_mul(a, bb, c, 64 * 2048); break;
    case OP_SOFTMAX:
        for (int i = 0; i < 64; i++) ks->softmax(a + (size_t)i * 2048, 2048);
        break;
    case OP_GELU_TANH: ks->gelu_tanh(a, (size_t)64 * 2048); break;
    case OP_ATT_DECODE: /* one query over 4096 cached keys, head dim 128, K and V rows of 512 */
        ks->attention_head(a, 128, c, 128, bb, bb + 128, 512, 1, 4095, 128, 0.088f, 1, w);
        break;
    case OP_ATT_PREFILL: /* 512 new queries, causal, no past */
        ks->attention_head(a, 128, c, 128, bb, bb + 128, 512, 512, 0, 128, 0.088f, 1, w);
        break;
    default: break;
    }
    (void)n;
}

static void bench_ops(bench *b) {
    static const char *names[OP_N] = {"rmsnorm", "silu_mul", "softmax", "gelu_tanh", "attn decode", "attn prefill"};
    static const char *shapes_s[OP_N] = {"64x2048", "131072", "64x2048", "131072", "T=4096 hd128", "n=512 hd128"};
    /* bytes moved (read + written) and flops per call */
    static const double bytes[OP_N] = {64 * 2048 * 8.0, 131072 * 12.0, 64 * 2048 * 8.0, 131072 * 8.0,
                                       4096 * 128 * 8.0, 512 * 128 * 8.0};
    static const double flops[OP_N] = {64 * 2048 * 3.0, 131072 * 4.0, 64 * 2048 * 3.0, 131072 * 8.0,
                                       4096 * 128 * 4.0, 512.0 * 513 / 2 * 128 * 4};
    const size_t big = (size_t)4096 * 512;
    float *a = malloc(big * sizeof(float)), *bb = malloc(big * sizeof(float)), *c = malloc(big * sizeof(float));
    float *w = malloc(4096 * sizeof(float));
    for (size_t i = 0; i < big; i++) a[i] = frand(), bb[i] = frand(), c[i] = frand();
    for (int i = 0; i < 4096; i++) w[i] = frand();
    for (int op = 0; op < OP_N; op++)
        for (int p = 0; p < SIMD_N_PATHS && (!b->only || strstr(names[op], b->only)); p++) {
            const kernel_set *ks = kernels_for((simd_path)p);
            if (!ks || p == SIMD_AVX512 || p == SIMD_AVX512BF16) continue; /* those sets share the avx2 ops */
            run_op(ks, (op_kind)op, a, bb, c, w, 0);
            double best = INFINITY;
            const double t0 = now_s();
            for (int trial = 0; trial < b->trials || now_s() - t0 < b->min_time / 2; trial++) {
                const double t = now_s();
                run_op(ks, (op_kind)op, a, bb, c, w, 0);
                best = now_s() - t < best ? now_s() - t : best;
            }
            /* the data stay in cache, so neither fraction means anything: report speeds only */
            report(b, names[op], shapes_s[op], 1, "f32", ks->name, 1, best, bytes[op], flops[op], 0, (simd_path)p);
        }
    free(a), free(bb), free(c), free(w);
}

static void usage(void) {
    fprintf(stderr, "usage: bench_kernels [-o FILE] [-t THREADS] [--quick] [--only NAME] [--max-n N]\n");
    exit(1);
}

int main(int argc, char **argv) {
    const char *out = NULL;
    int threads = 0, quick = 0, max_n = 1 << 30;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-o") && i + 1 < argc) out = argv[++i];
        else if (!strcmp(argv[i], "-t") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--quick")) quick = 1;
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
        else if (!strcmp(argv[i], "--max-n") && i + 1 < argc) max_n = atoi(argv[++i]);
        else usage();
    }
    modes_pool *all = pool_new(threads);
    if (!all) {
        fprintf(stderr, "bench_kernels: cannot start threads\n");
        return 2;
    }
    bench b = {.threads = pool_size(all), .min_time = quick ? 0.15 : 0.5, .trials = 3, .only = only, .max_n = max_n};
    const size_t probe_bytes = (size_t)(quick ? 256 : 1024) << 20;
    probe_limits(&b, all, probe_bytes);
    bench_matmul(&b, all, quick);
    if (!only || strstr("moe gate+up", only)) bench_moe(&b, all);
    bench_ops(&b);
    probe_limits(&b, all, probe_bytes);
    fprintf(stderr, "\n");
    print_limits(&b);
    print_table(&b);
    const int rc = out ? write_json(&b, out) : 0;
    free(b.rows);
    pool_free(all);
    return rc;
}
