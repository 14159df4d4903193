/* Every SIMD kernel path against the scalar reference, on awkward sizes. Matrices and vectors end
 * exactly at an inaccessible page, so a kernel that reads past a row's end faults here instead of
 * passing by luck; weight data also starts one element past an aligned address, as in a mapped
 * checkpoint.
 *
 * Tolerances (S = sum_c |x_c w_c|, the size of the terms being added):
 *   exact paths (scalar/avx2/avx512): |y - ref| <= 2e-6 sqrt(cols) S + 2e-7 |ref|: only the order of
 *     fp32 additions differs, whose error grows like sqrt(cols) unit roundoffs of S.
 *   avx512bf16: |y - ref| <= 6e-3 S + the above: x is rounded to bf16 (relative error <= 2^-8 per
 *     term) before the products.
 *   Multi-threaded and row-range products must equal the single-threaded product bit for bit.
 *   Other ops: stated at each test; they differ from the reference by a few ulp of the exp/erf
 *   polynomials and fp32 instead of double sums. */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "check.h"
#include "core/pool.h"
#include "tensor/simd.h" /* white-box: the decode kernels with every x-row count */
#include "tensor/tensor.h"

/* ---- Helpers -------------------------------------------------------------------------------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng_next(void) { /* splitmix64 */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static float uniform(float lo, float hi) { return lo + (hi - lo) * (float)((rng_next() >> 40) * 0x1p-24); }

/* Memory whose last byte is followed by a PROT_NONE page. */
typedef struct {
    void *map;
    size_t len;
    char *end;
} guarded;

static void *guarded_alloc(guarded *g, size_t bytes) {
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    const size_t body = (bytes + page - 1) / page * page;
    g->len = body + page;
    g->map = mmap(NULL, g->len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (g->map == MAP_FAILED) {
        fprintf(stderr, "mmap failed\n");
        exit(2);
    }
    mprotect((char *)g->map + body, page, PROT_NONE);
    g->end = (char *)g->map + body;
    return g->end - bytes;
}

static void guarded_free(guarded *g) { munmap(g->map, g->len); }

static const char *dtype_name(modes_dtype t) { return t == DT_F32 ? "f32" : t == DT_BF16 ? "bf16" : "f16"; }

static float weight_value(const wmat *w, int r, int c) {
    const size_t i = (size_t)r * w->cols + c;
    if (w->dtype == DT_F32) return ((const float *)w->data)[i];
    const uint16_t h = ((const uint16_t *)w->data)[i];
    return w->dtype == DT_BF16 ? bf16_to_f32(h) : f16_to_f32(h);
}

/* Random weights of the dtype in guarded memory: the data ends at the guard, so its start is only
 * dtype-aligned for most shapes, and rows of odd length start at odd element offsets. */
static wmat make_weights(guarded *g, modes_dtype dt, int rows, int cols) {
    const size_t n = (size_t)rows * cols;
    void *data = guarded_alloc(g, dtype_row_bytes(dt, n));
    for (size_t i = 0; i < n; i++) {
        const float v = uniform(-1, 1);
        if (dt == DT_F32) ((float *)data)[i] = v;
        else if (dt == DT_BF16) ((uint16_t *)data)[i] = f32_to_bf16(v);
        else ((uint16_t *)data)[i] = f32_to_f16(v);
    }
    return (wmat){dt, data, rows, cols};
}

/* ---- Matmul --------------------------------------------------------------------------------- */

typedef struct {
    int failures; /* per path, to keep the log short */
    double worst; /* largest error / tolerance seen */
} path_stats;

static void check_matmul_case(const kernel_set *ks, path_stats *st, const float *x, int n, const wmat *w,
                              const float *bias, const float *ref) {
    const int R = w->rows, C = w->cols;
    guarded gy;
    float *y = guarded_alloc(&gy, (size_t)n * R * sizeof(float));
    ks->matmul_rows(y, x, n, w, bias, 0, R);
    const double k_lossy = ks->path == SIMD_AVX512BF16 && w->dtype == DT_BF16 ? 6e-3 : 0.0;
    int bad = 0;
    for (int i = 0; i < n && !bad; i++)
        for (int r = 0; r < R; r++) {
            double S = 0;
            for (int c = 0; c < C; c++) S += fabs((double)x[(size_t)i * C + c] * weight_value(w, r, c));
            const double want = ref[(size_t)i * R + r], got = y[(size_t)i * R + r];
            const double tol = (2e-6 * sqrt((double)C) + k_lossy) * S + 2e-7 * fabs(want) + 1e-30;
            const double err = fabs(got - want);
            if (err / tol > st->worst) st->worst = err / tol;
            if (!(err <= tol)) {
                if (st->failures++ < 5)
                    fprintf(stderr, "  %s %s rows %d cols %d n %d bias %d: y[%d,%d] = %.9g, want %.9g (tol %.3g)\n",
                            ks->name, dtype_name(w->dtype), R, C, n, bias != NULL, i, r, got, want, tol);
                bad = 1;
                break;
            }
        }
    CHECKF(!bad, "%s matmul %s [%d x %d] n=%d", ks->name, dtype_name(w->dtype), R, C, n);
    guarded_free(&gy);
}

static void test_matmul_paths(void) {
    static const int rows_set[] = {1, 3, 7, 15, 17, 33, 100, 257};
    static const int cols_set[] = {1, 3, 7, 15, 17, 33, 100, 257, 1000};
    static const int n_set[] = {1, 2, 3, 4, 5, 16, 17};
    static const modes_dtype dts[] = {DT_F32, DT_BF16, DT_F16};
    path_stats stats[SIMD_N_PATHS] = {{0, 0}};
    const kernel_set *scalar = kernels_for(SIMD_SCALAR);
    for (size_t d = 0; d < 3; d++)
        for (size_t ri = 0; ri < sizeof rows_set / sizeof *rows_set; ri++)
            for (size_t ci = 0; ci < sizeof cols_set / sizeof *cols_set; ci++) {
                const int R = rows_set[ri], C = cols_set[ci];
                guarded gw, gx, gb;
                const wmat w = make_weights(&gw, dts[d], R, C);
                float *x = guarded_alloc(&gx, (size_t)17 * C * sizeof(float));
                for (size_t i = 0; i < (size_t)17 * C; i++) x[i] = uniform(-1, 1);
                float *bias = guarded_alloc(&gb, (size_t)R * sizeof(float));
                for (int r = 0; r < R; r++) bias[r] = uniform(-1, 1);
                for (size_t ni = 0; ni < sizeof n_set / sizeof *n_set; ni++) {
                    const int n = n_set[ni];
                    const float *xn = x + (size_t)(17 - n) * C; /* x ends at the guard too */
                    float *ref = malloc((size_t)n * R * sizeof(float));
                    for (int with_bias = 0; with_bias < 2; with_bias++) {
                        const float *b = with_bias ? bias : NULL;
                        scalar->matmul_rows(ref, xn, n, &w, b, 0, R);
                        for (int p = SIMD_AVX2; p < SIMD_N_PATHS; p++) {
                            const kernel_set *ks = kernels_for((simd_path)p);
                            if (ks) check_matmul_case(ks, &stats[p], xn, n, &w, b, ref);
                        }
                    }
                    free(ref);
                }
                guarded_free(&gb);
                guarded_free(&gx);
                guarded_free(&gw);
            }
    for (int p = SIMD_AVX2; p < SIMD_N_PATHS; p++)
        if (kernels_for((simd_path)p))
            printf("matmul %-10s: worst error %.3f of tolerance, %d failing cases\n", simd_path_name((simd_path)p),
                   stats[p].worst, stats[p].failures);
}

/* Row ranges, thread counts and the public entry points give the same bits as one full call. */
static void test_matmul_split(void) {
    static const modes_dtype dts[] = {DT_F32, DT_BF16, DT_F16};
    modes_pool *pools[4] = {NULL, pool_new(1), pool_new(2), pool_new(3)};
    for (int p = 0; p < SIMD_N_PATHS; p++) {
        const kernel_set *ks = kernels_for((simd_path)p);
        if (!ks) continue;
        for (size_t d = 0; d < 3 * 2; d++) {
            /* The second shape is large enough that a decode product (n = 1) is split in pieces. */
            const int R = d < 3 ? 301 : 1201, C = d < 3 ? 129 : 513;
            for (int n = 1; n <= 9; n += 4) {
                guarded gw;
                const wmat w = make_weights(&gw, dts[d % 3], R, C);
                float *x = malloc((size_t)n * C * sizeof(float)), *bias = malloc((size_t)R * sizeof(float));
                float *full = malloc((size_t)n * R * sizeof(float)), *y = malloc((size_t)n * R * sizeof(float));
                for (int i = 0; i < n * C; i++) x[i] = uniform(-2, 2);
                for (int r = 0; r < R; r++) bias[r] = uniform(-1, 1);
                ks->matmul_rows(full, x, n, &w, bias, 0, R);
                /* Ranges cut at odd places, covering [0, R) once. */
                memset(y, 0, (size_t)n * R * sizeof(float));
                for (int r0 = 0, step = 1; r0 < R; r0 += step, step = step * 3 + 1) {
                    const int r1 = r0 + step < R ? r0 + step : R;
                    ks->matmul_rows(y, x, n, &w, bias, r0, r1);
                }
                CHECKF(!memcmp(y, full, (size_t)n * R * sizeof(float)), "%s %s row ranges n=%d", ks->name,
                       dtype_name(w.dtype), n);
                for (int t = 0; t < 4; t++) {
                    memset(y, 0, (size_t)n * R * sizeof(float));
                    matmul_mt_using(ks, pools[t], y, x, n, &w, bias);
                    CHECKF(!memcmp(y, full, (size_t)n * R * sizeof(float)), "%s %s matmul_mt threads %d n=%d",
                           ks->name, dtype_name(w.dtype), pool_size(pools[t]), n);
                }
                if (ks == kernels_default()) {
                    matmul(y, x, n, &w, bias);
                    CHECKF(!memcmp(y, full, (size_t)n * R * sizeof(float)), "matmul() uses the default set");
                    matmul_mt(pools[2], y, x, n, &w, bias);
                    CHECKF(!memcmp(y, full, (size_t)n * R * sizeof(float)), "matmul_mt() uses the default set");
                }
                free(x), free(bias), free(full), free(y);
                guarded_free(&gw);
            }
        }
    }
    for (int t = 0; t < 4; t++) pool_free(pools[t]);
}

/* Degenerate shapes: no columns (y is the bias), no rows, no x rows; nothing is read or written
 * out of bounds. */
static void test_matmul_empty(void) {
    for (int p = 0; p < SIMD_N_PATHS; p++) {
        const kernel_set *ks = kernels_for((simd_path)p);
        if (!ks) continue;
        for (int d = 0; d < 3; d++) {
            const modes_dtype dt = d == 0 ? DT_F32 : d == 1 ? DT_BF16 : DT_F16;
            const float bias[5] = {1, -2, 3, -4, 5}, x[8] = {0};
            float y[8 * 5];
            for (int n = 1; n <= 8; n += 7) {
                const wmat w0 = {dt, bias, 5, 0};
                ks->matmul_rows(y, x, n, &w0, bias, 0, 5);
                int ok = 1;
                for (int i = 0; i < n * 5; i++) ok &= y[i] == bias[i % 5];
                ks->matmul_rows(y, x, n, &w0, NULL, 0, 5);
                for (int i = 0; i < n * 5; i++) ok &= y[i] == 0.0f;
                CHECKF(ok, "%s %s cols 0 n %d", ks->name, dtype_name(dt), n);
            }
            y[0] = 7;
            const wmat none = {dt, bias, 0, 4};
            ks->matmul_rows(y, x, 1, &none, NULL, 0, 0);
            const wmat w1 = {dt, bias, 1, 4};
            ks->matmul_rows(y, x, 0, &w1, NULL, 0, 1);
            CHECKF(y[0] == 7, "%s %s: no rows / no x rows write nothing", ks->name, dtype_name(dt));
        }
    }
}

/* A batch (MoE-like: several experts of different n, some empty) gives the same bits as one
 * matmul per job, for every pool size. */
static void test_matmul_batch(void) {
    enum { JOBS = 7 };
    static const int ns[JOBS] = {1, 0, 5, 17, 2, 64, 3};
    static const int rows[JOBS] = {96, 50, 257, 31, 768, 40, 6};
    const int C = 130;
    guarded gw[JOBS];
    wmat w[JOBS];
    matmul_job jobs[JOBS];
    float *want[JOBS];
    float *x = malloc((size_t)64 * C * sizeof(float));
    for (int i = 0; i < 64 * C; i++) x[i] = uniform(-1, 1);
    for (int j = 0; j < JOBS; j++) {
        w[j] = make_weights(&gw[j], j % 2 ? DT_F32 : DT_BF16, rows[j], C);
        want[j] = malloc((size_t)(ns[j] + 1) * rows[j] * sizeof(float));
        jobs[j] = (matmul_job){malloc((size_t)(ns[j] + 1) * rows[j] * sizeof(float)), x, ns[j], &w[j], NULL};
        matmul(want[j], x, ns[j], &w[j], NULL);
    }
    for (int t = 1; t <= 4; t++) {
        modes_pool *p = t == 1 ? NULL : pool_new(t);
        for (int j = 0; j < JOBS; j++) memset(jobs[j].y, 0, (size_t)(ns[j] + 1) * rows[j] * sizeof(float));
        matmul_batch_mt(p, jobs, JOBS);
        int ok = 1;
        for (int j = 0; j < JOBS; j++) ok &= !memcmp(jobs[j].y, want[j], (size_t)ns[j] * rows[j] * sizeof(float));
        CHECKF(ok, "matmul_batch_mt with %d threads", t);
        pool_free(p);
    }
    for (int j = 0; j < JOBS; j++) {
        free(jobs[j].y), free(want[j]);
        guarded_free(&gw[j]);
    }
    free(x);
}

/* Long rows: the blocked prefill path with several blocks and a K tail, and small n whose x rows
 * outgrow L1 (the driver then switches from row-by-row to tiles; for bf16 x beyond 4096 columns). */
static void test_matmul_large(void) {
    static const int cols[] = {2050, 4100};
    static const int ns[] = {2, 3, 4, 37};
    const int R = 200;
    for (int d = 0; d < 3; d++)
        for (size_t ci = 0; ci < 2; ci++)
            for (size_t ni = 0; ni < 4; ni++) {
                const modes_dtype dt = d == 0 ? DT_F32 : d == 1 ? DT_BF16 : DT_F16;
                const int C = cols[ci], n = ns[ni];
                if (C > 4096 && n > 4) continue;
                guarded gw, gx;
                const wmat w = make_weights(&gw, dt, R, C);
                float *x = guarded_alloc(&gx, (size_t)n * C * sizeof(float));
                for (size_t i = 0; i < (size_t)n * C; i++) x[i] = uniform(-1, 1);
                float *ref = malloc((size_t)n * R * sizeof(float));
                kernels_for(SIMD_SCALAR)->matmul_rows(ref, x, n, &w, NULL, 0, R);
                for (int p = SIMD_AVX2; p < SIMD_N_PATHS; p++) {
                    const kernel_set *ks = kernels_for((simd_path)p);
                    path_stats st = {0, 0};
                    if (ks) check_matmul_case(ks, &st, x, n, &w, NULL, ref);
                }
                free(ref);
                guarded_free(&gx);
                guarded_free(&gw);
            }
}

/* The decode kernels (rows) with 1..MM_MAX_MR x rows, including counts the driver only uses when
 * out of memory for the prefill scratch. Same tolerance as the exact paths. */
static void test_rows_kernels(void) {
#if defined(__x86_64__) || defined(__i386__)
    static const modes_dtype dts[] = {DT_F32, DT_BF16, DT_F16};
    const struct {
        simd_path path;
        const mm_isa *isa;
    } sets[] = {{SIMD_AVX2, &mm_isa_avx2}, {SIMD_AVX512, &mm_isa_avx512}};
    for (size_t si = 0; si < sizeof sets / sizeof *sets; si++) {
        const kernel_set *ks = kernels_for(sets[si].path);
        if (!ks) continue;
        for (size_t d = 0; d < 3; d++)
            for (int C = 1; C <= 70; C += 23) {
                const int R = 13, ldy = R + 2;
                guarded gw, gx;
                const wmat w = make_weights(&gw, dts[d], R, C);
                float *x = guarded_alloc(&gx, (size_t)MM_MAX_MR * C * sizeof(float));
                for (int i = 0; i < MM_MAX_MR * C; i++) x[i] = uniform(-1, 1);
                float ref[MM_MAX_MR * 13], y[MM_MAX_MR * 15], bias[13];
                for (int r = 0; r < R; r++) bias[r] = uniform(-1, 1);
                kernels_for(SIMD_SCALAR)->matmul_rows(ref, x, MM_MAX_MR, &w, bias, 0, R);
                for (int m = 1; m <= MM_MAX_MR; m++) {
                    sets[si].isa->rows(y, (size_t)ldy, x, (size_t)C, m, &w, bias, 2, R);
                    int ok = 1;
                    for (int i = 0; i < m; i++)
                        for (int r = 2; r < R; r++) {
                            double S = fabs(bias[r]);
                            for (int c = 0; c < C; c++) S += fabs((double)x[i * C + c] * weight_value(&w, r, c));
                            ok &= fabs(y[i * ldy + r] - ref[i * R + r]) <= 2e-6 * sqrt((double)C) * S + 1e-30;
                        }
                    CHECKF(ok, "%s rows kernel %s m=%d cols=%d", ks->name, dtype_name(dts[d]), m, C);
                }
                guarded_free(&gx);
                guarded_free(&gw);
            }
    }
#endif
}

/* ---- Other kernels -------------------------------------------------------------------------- */

static int close_enough(const float *got, const float *want, size_t n, double rel, double abs_tol, size_t *at) {
    for (size_t i = 0; i < n; i++) {
        const double err = fabs((double)got[i] - want[i]);
        if (!(err <= rel * fabs(want[i]) + abs_tol) && !(isnan(got[i]) && isnan(want[i]))) {
            *at = i;
            return 0;
        }
    }
    return 1;
}

#define CHECK_CLOSE(ks, what, got, want, n, rel, abs_tol)                                                  \
    do {                                                                                                   \
        size_t at_ = 0;                                                                                    \
        const int ok_ = close_enough(got, want, n, rel, abs_tol, &at_);                                  \
        CHECKF(ok_, "%s %s n=%zu: [%zu] = %.9g, want %.9g", (ks)->name, what, (size_t)(n), at_,          \
               (double)(got)[at_], (double)(want)[at_]);                                                   \
    } while (0)

static const int dims[] = {1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 33, 64, 100, 128, 257, 1000, 2048};

/* rmsnorm, layernorm: the scale 1/sqrt(mean) differs by a few ulp: relative 1e-5, absolute 1e-6. */
static void test_norms(const kernel_set *ks, const kernel_set *ref) {
    for (size_t di = 0; di < sizeof dims / sizeof *dims; di++) {
        const int n = dims[di];
        guarded g1, g2, g3, g4;
        float *x = guarded_alloc(&g1, n * sizeof(float)), *w = guarded_alloc(&g2, n * sizeof(float));
        float *b = guarded_alloc(&g3, n * sizeof(float)), *y = guarded_alloc(&g4, n * sizeof(float));
        float *want = malloc(n * sizeof(float));
        for (int i = 0; i < n; i++) x[i] = uniform(-3, 3) + 0.5f, w[i] = uniform(-2, 2), b[i] = uniform(-1, 1);
        ref->rmsnorm(want, x, w, n, 1e-6f);
        ks->rmsnorm(y, x, w, n, 1e-6f);
        CHECK_CLOSE(ks, "rmsnorm", y, want, n, 1e-5, 1e-6);
        memcpy(y, x, n * sizeof(float));
        ks->rmsnorm(y, y, w, n, 1e-6f); /* in place */
        CHECK_CLOSE(ks, "rmsnorm in place", y, want, n, 1e-5, 1e-6);
        ref->layernorm(want, x, w, b, n, 1e-6f);
        ks->layernorm(y, x, w, b, n, 1e-6f);
        CHECK_CLOSE(ks, "layernorm", y, want, n, 1e-5, 1e-5);
        free(want);
        guarded_free(&g4), guarded_free(&g3), guarded_free(&g2), guarded_free(&g1);
    }
}

/* softmax: relative 1e-5, absolute 1e-7; includes -inf (masked) and large logits. */
static void test_softmax(const kernel_set *ks, const kernel_set *ref) {
    for (size_t di = 0; di < sizeof dims / sizeof *dims; di++) {
        const int n = dims[di];
        guarded g;
        float *x = guarded_alloc(&g, n * sizeof(float)), *want = malloc(n * sizeof(float));
        for (int i = 0; i < n; i++) x[i] = uniform(-30, 30);
        if (n > 2) x[1] = -INFINITY, x[n - 1] = 80.0f;
        memcpy(want, x, n * sizeof(float));
        ref->softmax(want, n);
        ks->softmax(x, n);
        CHECK_CLOSE(ks, "softmax", x, want, n, 1e-5, 1e-7);
        free(want);
        guarded_free(&g);
    }
}

/* silu_mul: relative 1e-5, absolute 1e-6; gelu (both): absolute 1e-6 (1 + |x|), since erf is an
 * approximation with absolute error 1.5e-7 and tanh loses relative precision near 0. */
static void test_activations(const kernel_set *ks, const kernel_set *ref) {
    for (size_t di = 0; di < sizeof dims / sizeof *dims; di++) {
        const int n = dims[di];
        guarded g1, g2, g3;
        float *gate = guarded_alloc(&g1, n * sizeof(float)), *up = guarded_alloc(&g2, n * sizeof(float));
        float *y = guarded_alloc(&g3, n * sizeof(float)), *want = malloc(n * sizeof(float));
        for (int i = 0; i < n; i++) gate[i] = uniform(-12, 12), up[i] = uniform(-3, 3);
        if (n > 3) gate[0] = -100.0f, gate[1] = 100.0f, gate[2] = 0.0f;
        ref->silu_mul(want, gate, up, n);
        ks->silu_mul(y, gate, up, n);
        CHECK_CLOSE(ks, "silu_mul", y, want, n, 1e-5, 1e-6);
        for (int kind = 0; kind < 2; kind++) {
            for (int i = 0; i < n; i++) want[i] = y[i] = uniform(-10, 10);
            if (n > 3) want[0] = y[0] = 1e-4f, want[1] = y[1] = -1e-4f, want[2] = y[2] = 0.0f;
            (kind ? ref->gelu_erf : ref->gelu_tanh)(want, (size_t)n);
            (kind ? ks->gelu_erf : ks->gelu_tanh)(y, (size_t)n);
            int ok = 1, at = 0;
            for (int i = 0; i < n && ok; i++)
                if (!(fabs(y[i] - want[i]) <= 1e-6 * (1.0 + fabs(want[i])))) ok = 0, at = i;
            CHECKF(ok, "%s %s n=%d: [%d] = %.9g, want %.9g", ks->name, kind ? "gelu_erf" : "gelu_tanh", n, at,
                   (double)y[at], (double)want[at]);
        }
        free(want);
        guarded_free(&g3), guarded_free(&g2), guarded_free(&g1);
    }
}

/* rope: absolute 1e-6 (values and angles of size 1; FMA changes the last bit). */
static void test_rope(const kernel_set *ks, const kernel_set *ref) {
    static const int hds[] = {2, 4, 6, 16, 18, 34, 64, 72, 80, 128};
    for (size_t h = 0; h < sizeof hds / sizeof *hds; h++) {
        const int hd = hds[h];
        float v[128], want[128], cs[128];
        for (int i = 0; i < hd; i++) v[i] = want[i] = uniform(-2, 2);
        for (int i = 0; i < hd / 2; i++) {
            const float a = uniform(-10, 10);
            cs[i] = cosf(a), cs[hd / 2 + i] = sinf(a);
        }
        ref->rope_apply(want, hd, cs);
        ks->rope_apply(v, hd, cs);
        CHECK_CLOSE(ks, "rope_apply", v, want, (size_t)hd, 0, 1e-6);
    }
}

/* attention: outputs are averages of values of size 1: absolute 2e-6 + relative 1e-5 (the SIMD
 * version's running softmax rescales partial sums once per 128 keys, a few ulp each). */
static void test_attention(const kernel_set *ks, const kernel_set *ref) {
    static const int hds[] = {1, 7, 8, 16, 33, 64, 72, 128};
    static const int ns[] = {1, 2, 5, 17, 130};
    static const int pasts[] = {0, 1, 13, 100, 300}; /* past + n beyond 128: several key chunks */
    for (size_t h = 0; h < sizeof hds / sizeof *hds; h++)
        for (size_t ni = 0; ni < sizeof ns / sizeof *ns; ni++)
            for (size_t pi = 0; pi < sizeof pasts / sizeof *pasts; pi++)
                for (int causal = 0; causal < 2; causal++) {
                    const int hd = hds[h], n = ns[ni], past = pasts[pi], T = past + n;
                    const int qs = hd * 3 + 1, kvs = hd * 2 + 3, os = hd + 5; /* strided, as heads in rows */
                    guarded gq, gk, gv;
                    float *q = guarded_alloc(&gq, ((size_t)(n - 1) * qs + hd) * sizeof(float));
                    float *k = guarded_alloc(&gk, ((size_t)(T - 1) * kvs + hd) * sizeof(float));
                    float *v = guarded_alloc(&gv, ((size_t)(T - 1) * kvs + hd) * sizeof(float));
                    for (size_t i = 0; i < (size_t)(n - 1) * qs + hd; i++) q[i] = uniform(-1, 1);
                    for (size_t i = 0; i < (size_t)(T - 1) * kvs + hd; i++) k[i] = uniform(-1, 1), v[i] = uniform(-1, 1);
                    float *o = calloc((size_t)n * os, sizeof(float)), *want = calloc((size_t)n * os, sizeof(float));
                    float *scores = malloc((size_t)T * sizeof(float));
                    const float scale = 2.0f / sqrtf((float)hd);
                    ref->attention_head(want, os, q, qs, k, v, kvs, n, past, hd, scale, causal, scores);
                    ks->attention_head(o, os, q, qs, k, v, kvs, n, past, hd, scale, causal, scores);
                    size_t at = 0;
                    const int ok = close_enough(o, want, (size_t)n * os, 1e-5, 2e-6, &at);
                    CHECKF(ok, "%s attention hd %d n %d past %d causal %d: [%zu] = %.9g, want %.9g", ks->name, hd, n,
                           past, causal, at, (double)o[at], (double)want[at]);
                    free(scores), free(want), free(o);
                    guarded_free(&gv), guarded_free(&gk), guarded_free(&gq);
                }
}

/* Decode attention of the query heads that share a key/value head, in one call, against each head
 * alone on the scalar path as a causal row at position T - 1; same tolerance as above. Groups
 * beyond 16 take two passes; T = 1 is the first token, where the group outnumbers the keys. */
static void test_attention_shared_kv(const kernel_set *ref) {
    static const int groups[] = {1, 2, 7, 8, 16, 17};
    static const int Ts[] = {1, 3, 129, 300};
    static const int hds[] = {8, 33, 128};
    int ok = 1;
    for (size_t gi = 0; gi < sizeof groups / sizeof *groups; gi++)
        for (size_t ti = 0; ti < sizeof Ts / sizeof *Ts; ti++)
            for (size_t h = 0; h < sizeof hds / sizeof *hds; h++) {
                const int G = groups[gi], T = Ts[ti], hd = hds[h], kvs = hd * 3 + 1;
                float *q = malloc((size_t)G * hd * sizeof(float)), *k = malloc((size_t)T * kvs * sizeof(float));
                float *v = malloc((size_t)T * kvs * sizeof(float)), *o = malloc((size_t)G * hd * sizeof(float));
                float *want = malloc((size_t)G * hd * sizeof(float)), *scores = malloc((size_t)G * T * sizeof(float));
                for (int i = 0; i < G * hd; i++) q[i] = uniform(-1, 1);
                for (int i = 0; i < T * kvs; i++) k[i] = uniform(-1, 1), v[i] = uniform(-1, 1);
                const float scale = 2.0f / sqrtf((float)hd);
                for (int g = 0; g < G; g++)
                    ref->attention_head(want + g * hd, hd, q + g * hd, hd, k, v, kvs, 1, T - 1, hd, scale, 1, scores);
                attention_shared_kv(o, q, G, k, v, kvs, T, hd, scale, scores);
                size_t at = 0;
                const int same = close_enough(o, want, (size_t)G * hd, 1e-5, 2e-6, &at);
                CHECKF(same, "attention_shared_kv group %d T %d hd %d: [%zu] = %.9g, want %.9g", G, T, hd, at,
                       (double)o[at], (double)want[at]);
                ok &= same;
                free(q), free(k), free(v), free(o), free(want), free(scores);
            }
    CHECK(ok);
}

static void test_dispatch(void) {
    simd_path p;
    CHECK(kernels_for(SIMD_SCALAR) != NULL);
    CHECK(kernels_for(SIMD_N_PATHS) == NULL);
    CHECK(kernels_default() != NULL);
    CHECK(simd_path_parse("avx512bf16", &p) == 0 && p == SIMD_AVX512BF16);
    CHECK(simd_path_parse("avx3", &p) != 0);
    CHECK(simd_path_parse(NULL, &p) != 0);
    const char *env = getenv("MODES_SIMD");
    if (!env || simd_path_parse(env, &p)) /* lossy bf16 dot products are never chosen unasked */
        CHECK(kernels_default()->path != SIMD_AVX512BF16);
    for (int i = 0; i < SIMD_N_PATHS; i++) {
        const kernel_set *ks = kernels_for((simd_path)i);
        printf("path %-10s: %s\n", simd_path_name((simd_path)i), ks ? "available" : "not on this CPU, skipped");
        if (ks) CHECK(ks->path == (simd_path)i && !strcmp(ks->name, simd_path_name((simd_path)i)));
    }
    printf("default path: %s\n", kernels_default()->name);
}

int main(void) {
    test_dispatch();
    test_matmul_paths();
    test_matmul_split();
    test_matmul_large();
    test_matmul_batch();
    test_matmul_empty();
    test_rows_kernels();
    const kernel_set *ref = kernels_for(SIMD_SCALAR);
    for (int p = SIMD_AVX2; p < SIMD_N_PATHS; p++) {
        const kernel_set *ks = kernels_for((simd_path)p);
        if (!ks) continue;
        test_norms(ks, ref);
        test_softmax(ks, ref);
        test_activations(ks, ref);
        test_rope(ks, ref);
        test_attention(ks, ref);
    }
    test_attention_shared_kv(ref);
    return check_done();
}
