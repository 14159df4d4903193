#include "models/moe.h"

#include <math.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/pool.h"

void moe_route(const moe_layer *m, const float *x, int n, float *logits, int32_t *topk_idx, float *topk_w,
               modes_pool *pool) {
    const int E = m->n_experts, K = m->top_k;
    matmul_mt(pool, logits, x, n, &m->router, NULL);
    for (int i = 0; i < n; i++) {
        float *p = logits + (size_t)i * E; /* softmax in place on a copy-free pass: keep the logits */
        int32_t *idx = topk_idx + (size_t)i * K;
        float *w = topk_w + (size_t)i * K;
        float mx = p[0];
        for (int e = 1; e < E; e++) mx = p[e] > mx ? p[e] : mx;
        double z = 0;
        for (int e = 0; e < E; e++) z += exp((double)p[e] - mx);
        double sum = 0;
        for (int k = 0; k < K; k++) { /* K is small (8): selection beats a sort */
            int best = -1;
            for (int e = 0; e < E; e++) {
                int taken = 0;
                for (int j = 0; j < k; j++) taken |= idx[j] == e;
                if (!taken && (best < 0 || p[e] > p[best])) best = e;
            }
            idx[k] = best;
            /* fp32 softmax probability, docs/qwen3-vl-moe.md section 7.4 */
            w[k] = (float)(exp((double)p[best] - mx) / z);
            sum += w[k];
        }
        for (int k = 0; k < K; k++) w[k] = (float)(w[k] / sum);
    }
}

/* Work of one dispatch: kept pairs sorted by expert, their inputs gathered into contiguous rows. */
typedef struct {
    const moe_layer *m;
    int n_active;
    int *active, *start;  /* active experts, and the first gathered row of each ([n_active + 1]) */
    float *xs, *g, *u, *ys;
    int rows_i, rows_h;     /* weight rows per chunk, for gate/up (of I) and for down (of H) */
    int chunks_i, chunks_h; /* chunks per expert */
    atomic_int *ready;      /* gate/up chunks finished, per active expert */
} dispatch;

/* Weight rows per chunk at prefill: a multiple of every SIMD row block (4 and 6), small enough to
 * balance. */
#define ROW_CHUNK 48

/* Rows per chunk of a matrix of `rows` rows of `row_bytes` each (gate and up count together). At
 * decode the experts' weights are streamed, and their chunks are cut like any streamed product
 * (tensor.h): with 48-row chunks a layer's eight experts were 600 pieces, and the prefetcher's
 * restart at each cost more than a tenth of the layer's time. */
static int chunk_rows(int rows, double row_bytes, int streamed, int threads) {
    if (!streamed) return ROW_CHUNK;
    const int count = matmul_stream_pieces(rows * row_bytes, threads), step = (rows + count - 1) / count;
    return (step + 11) / 12 * 12;
}

/* Rows [r0, r1) of gate and up for every token of expert a, then silu(gate) * up on them. */
static void gate_up_chunk(dispatch *d, int a, int c) {
    const int I = d->m->inter, H = d->m->hidden, e = d->active[a];
    const int r0 = c * d->rows_i, r1 = r0 + d->rows_i < I ? r0 + d->rows_i : I;
    const int rows = d->start[a + 1] - d->start[a];
    float *g = d->g + (size_t)d->start[a] * I, *u = d->u + (size_t)d->start[a] * I;
    const float *x = d->xs + (size_t)d->start[a] * H;
    matmul_rows(g, x, rows, &d->m->experts[e].gate, NULL, r0, r1);
    matmul_rows(u, x, rows, &d->m->experts[e].up, NULL, r0, r1);
    for (int i = 0; i < rows; i++) silu_mul(g + (size_t)i * I + r0, g + (size_t)i * I + r0, u + (size_t)i * I + r0, r1 - r0);
    atomic_fetch_add_explicit(&d->ready[a], 1, memory_order_release);
}

/* Rows [r0, r1) of down for every token of expert a, once all of its gate/up chunks are done.
 * Threads take tasks in order (pool.h) and every gate/up task comes before every down task, so the
 * chunks waited for are already running on other threads: the wait is at most the rest of one. */
static void down_chunk(dispatch *d, int a, int c) {
    const int I = d->m->inter, H = d->m->hidden, e = d->active[a];
    const int r0 = c * d->rows_h, r1 = r0 + d->rows_h < H ? r0 + d->rows_h : H;
    const int rows = d->start[a + 1] - d->start[a];
    for (int spins = 0; atomic_load_explicit(&d->ready[a], memory_order_acquire) < d->chunks_i; spins++)
        if (spins >= 1000) sched_yield(); /* a thread holding a chunk was descheduled */
    matmul_rows(d->ys + (size_t)d->start[a] * H, d->g + (size_t)d->start[a] * I, rows, &d->m->experts[e].down, NULL, r0, r1);
}

/* Every active expert in one parallel region, split by output rows: gate/up chunks first, then
 * down chunks, with no barrier between the two (a barrier leaves threads idle twice per layer). */
static void expert_task(void *arg, int task, int n_tasks) {
    dispatch *d = arg;
    const int n_up = d->n_active * d->chunks_i;
    if (task < n_up) gate_up_chunk(d, task / d->chunks_i, task % d->chunks_i);
    else down_chunk(d, (task - n_up) / d->chunks_h, (task - n_up) % d->chunks_h);
    (void)n_tasks;
}

static void dispatch_free(dispatch *d) {
    free(d->active);
    free(d->start);
    free(d->xs);
    free(d->g);
    free(d->u);
    free(d->ys);
    free(d->ready);
}

int moe_dispatch(const moe_layer *m, const float *x, int n, const int32_t *topk_idx, const float *topk_w,
                 float *out, moe_counters *counters, modes_pool *pool, modes_error *err) {
    const int E = m->n_experts, K = m->top_k, H = m->hidden, I = m->inter;
    memset(out, 0, (size_t)n * H * sizeof *out);
    /* Counting sort of kept (token, slot) pairs by expert; skipped slots never get here. */
    int *count = calloc((size_t)E + 1, sizeof *count), *pairs = malloc((size_t)n * K * sizeof *pairs);
    dispatch d = {.m = m};
    d.active = malloc((size_t)E * sizeof *d.active);
    d.start = malloc(((size_t)E + 1) * sizeof *d.start);
    int rc = count && pairs && d.active && d.start ? 0 : modes_fail(err, MODES_E_INTERNAL, "out of memory in the MoE block");
    int kept = 0;
    for (int s = 0; !rc && s < n * K; s++)
        if (topk_idx[s] != MOE_SKIPPED) count[topk_idx[s]]++, kept++;
    for (int e = 0; !rc && e < E; e++)
        if (count[e]) { /* an expert no token kept is never touched */
            d.start[d.n_active] = d.n_active ? d.start[d.n_active - 1] + count[d.active[d.n_active - 1]] : 0;
            d.active[d.n_active++] = e;
        }
    if (!rc && kept) {
        d.start[d.n_active] = kept;
        int most = 0; /* tokens of the busiest active expert */
        for (int a = 0; a < d.n_active; a++) most = d.start[a + 1] - d.start[a] > most ? d.start[a + 1] - d.start[a] : most;
        const expert_w *w0 = &m->experts[d.active[0]];
        const int streamed = most <= MATMUL_STREAM_MAX_N, threads = pool_size(pool);
        d.rows_i = chunk_rows(I, 2.0 * (double)wmat_row_bytes(&w0->gate), streamed, threads);
        d.rows_h = chunk_rows(H, (double)wmat_row_bytes(&w0->down), streamed, threads);
        d.chunks_i = (I + d.rows_i - 1) / d.rows_i;
        d.chunks_h = (H + d.rows_h - 1) / d.rows_h;
        d.xs = malloc((size_t)kept * H * sizeof *d.xs);
        d.ys = malloc((size_t)kept * H * sizeof *d.ys);
        d.g = malloc((size_t)kept * I * sizeof *d.g);
        d.u = malloc((size_t)kept * I * sizeof *d.u);
        d.ready = calloc((size_t)d.n_active, sizeof *d.ready);
        if (!d.xs || !d.ys || !d.g || !d.u || !d.ready) rc = modes_fail(err, MODES_E_INTERNAL, "out of memory in the MoE block");
        for (int a = 0; !rc && a < d.n_active; a++) atomic_init(&d.ready[a], 0);
    }
    if (!rc && kept) {
        int *fill = count; /* reused: the next free gathered row of each expert */
        for (int a = 0; a < d.n_active; a++) fill[d.active[a]] = d.start[a];
        for (int s = 0; s < n * K; s++)
            if (topk_idx[s] != MOE_SKIPPED) {
                const int row = fill[topk_idx[s]]++;
                pairs[row] = s;
                memcpy(d.xs + (size_t)row * H, x + (size_t)(s / K) * H, (size_t)H * sizeof *d.xs);
            }
        pool_run(pool, expert_task, &d, d.n_active * (d.chunks_i + d.chunks_h));
        for (int row = 0; row < kept; row++) { /* scatter-add with the routing weights */
            float *o = out + (size_t)(pairs[row] / K) * H;
            const float w = topk_w[pairs[row]], *y = d.ys + (size_t)row * H;
            for (int k = 0; k < H; k++) o[k] += w * y[k];
        }
        if (counters) {
            counters->rows += (uint64_t)kept;
            counters->activations += (uint64_t)d.n_active;
            for (int a = 0; a < d.n_active; a++) {
                const expert_w *ew = &m->experts[d.active[a]];
                counters->bytes += (uint64_t)(2 * wmat_bytes(&ew->gate) + wmat_bytes(&ew->down));
            }
        }
    }
    free(count);
    free(pairs);
    dispatch_free(&d);
    return rc;
}
