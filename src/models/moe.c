#include "models/moe.h"

#include <math.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/pool.h"
#include "skip/stats.h"

static float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

/* One token's routing scores: softmax (mx and z its max and normaliser, fp32 as the reference's
 * softmax rounds) or sigmoid of the logits. */
typedef struct {
    const moe_router *r;
    const float *logit;
    float mx;
    double z;
} token_scores;

static float score_of(const token_scores *t, int e) {
    return t->r->scoring == MOE_SCORE_SOFTMAX ? (float)(exp((double)t->logit[e] - t->mx) / t->z) : sigmoid(t->logit[e]);
}

/* The value experts are chosen by: the logit itself for softmax without a bias (monotone, so the
 * choice equals the reference's on its probabilities, ties included), else the score plus the bias. */
static float choice_value(const token_scores *t, int e) {
    if (t->r->scoring == MOE_SCORE_SOFTMAX && !t->r->bias) return t->logit[e];
    return score_of(t, e) + (t->r->bias ? t->r->bias[e] : 0.0f);
}

/* The k best experts in descending order, lower index first on ties; K is small (8), so selection
 * beats a sort. */
static void select_topk(const token_scores *t, int E, int K, int32_t *idx) {
    for (int k = 0; k < K; k++) {
        int best = -1;
        float bv = 0;
        for (int e = 0; e < E; e++) {
            int taken = 0;
            for (int j = 0; j < k; j++) taken |= idx[j] == e;
            if (taken) continue;
            const float v = choice_value(t, e);
            if (best < 0 || v > bv) best = e, bv = v;
        }
        idx[k] = best;
    }
}

void moe_route(const moe_layer *m, const float *x, int n, float *logits, int32_t *topk_idx, float *topk_w,
               modes_pool *pool) {
    const int E = m->n_experts, K = m->top_k;
    const moe_router *r = &m->rule;
    matmul_mt(pool, logits, x, n, &m->router, NULL);
    for (int i = 0; i < n; i++) {
        token_scores t = {.r = r, .logit = logits + (size_t)i * E}; /* the logits stay as they are: taps show them */
        int32_t *idx = topk_idx + (size_t)i * K;
        float *w = topk_w + (size_t)i * K;
        if (r->scoring == MOE_SCORE_SOFTMAX) {
            t.mx = t.logit[0];
            for (int e = 1; e < E; e++) t.mx = t.logit[e] > t.mx ? t.logit[e] : t.mx;
            for (int e = 0; e < E; e++) t.z += exp((double)t.logit[e] - t.mx);
        }
        select_topk(&t, E, K, idx);
        double sum = 0;
        for (int k = 0; k < K; k++) sum += w[k] = score_of(&t, idx[k]); /* docs/qwen3-vl-moe.md section 7.4 */
        for (int k = 0; k < K; k++) {
            if (r->norm_topk) w[k] = (float)(w[k] / sum);
            if (r->routed_scale != 1.0f) w[k] *= r->routed_scale;
        }
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

int moe_dispatch(const moe_layer *m, const float *x, int n, const int32_t *topk_idx, const float *topk_w,
                 float *out, moe_counters *counters, modes_pool *pool, arena *scratch, modes_error *err) {
    const int E = m->n_experts, K = m->top_k, H = m->hidden, I = m->inter;
    const size_t mark = arena_mark(scratch);
    memset(out, 0, (size_t)n * H * sizeof *out);
    /* Counting sort of kept (token, slot) pairs by expert; skipped slots never get here. */
    int *count = arena_array(scratch, (size_t)E + 1, sizeof *count), *pairs = arena_array(scratch, (size_t)n * K, sizeof *pairs);
    dispatch d = {.m = m};
    d.active = arena_array(scratch, (size_t)E, sizeof *d.active);
    d.start = arena_array(scratch, (size_t)E + 1, sizeof *d.start);
    int rc = count && pairs && d.active && d.start ? 0 : modes_fail(err, MODES_E_INTERNAL, "out of memory in the MoE block");
    int kept = 0;
    if (!rc) memset(count, 0, ((size_t)E + 1) * sizeof *count);
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
        d.xs = arena_array(scratch, (size_t)kept * H, sizeof *d.xs);
        d.ys = arena_array(scratch, (size_t)kept * H, sizeof *d.ys);
        d.g = arena_array(scratch, (size_t)kept * I, sizeof *d.g);
        d.u = arena_array(scratch, (size_t)kept * I, sizeof *d.u);
        d.ready = arena_array(scratch, (size_t)d.n_active, sizeof *d.ready);
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
    arena_release(scratch, mark);
    return rc;
}

int mlp_forward(const expert_w *w, const float *x, int n, float *out, modes_pool *pool, arena *scratch,
                modes_error *err) {
    const int I = w->gate.rows;
    const size_t mark = arena_mark(scratch);
    float *g = arena_array(scratch, (size_t)n * I, sizeof *g), *u = arena_array(scratch, (size_t)n * I, sizeof *u);
    if (!g || !u) {
        arena_release(scratch, mark);
        return modes_fail(err, MODES_E_INTERNAL, "out of memory for an MLP of %d tokens", n);
    }
    const matmul_job gate_up[2] = {{g, x, n, &w->gate, NULL}, {u, x, n, &w->up, NULL}};
    matmul_batch_mt(pool, gate_up, 2);
    silu_mul(g, g, u, n * I);
    matmul_mt(pool, out, g, n, &w->down, NULL);
    arena_release(scratch, mark);
    return 0;
}

/* Shows one of the block's intermediates to the family's tap. */
static void moe_tap(const moe_env *env, const char *what, int is_int, const void *data, int rows, int cols) {
    if (env->tap) env->tap(env->tap_user, what, is_int, data, rows, cols);
}

/* Adds the shared experts' outputs to out: every token, every shared expert, never skipped. */
static int add_shared_experts(const moe_layer *m, const moe_env *env, const float *x, int n, float *out,
                              modes_error *err) {
    const size_t mark = arena_mark(env->scratch), total = (size_t)n * m->hidden;
    float *y = m->n_shared ? arena_array(env->scratch, total, sizeof *y) : NULL;
    int rc = m->n_shared && !y ? modes_fail(err, MODES_E_INTERNAL, "out of memory for the shared experts") : 0;
    for (int s = 0; !rc && s < m->n_shared; s++) {
        rc = mlp_forward(&m->shared[s], x, n, y, env->pool, env->scratch, err);
        for (size_t i = 0; !rc && i < total; i++) out[i] += y[i];
    }
    arena_release(env->scratch, mark);
    return rc;
}

int moe_forward(const moe_layer *m, const moe_env *env, const float *x, int n, float *out, modes_error *err) {
    const int E = m->n_experts, K = m->top_k, H = m->hidden;
    const size_t mark = arena_mark(env->scratch);
    float *logits = arena_array(env->scratch, (size_t)n * E, sizeof *logits);
    float *w = arena_array(env->scratch, (size_t)n * K, sizeof *w);
    int32_t *idx = arena_array(env->scratch, (size_t)n * K, sizeof *idx);
    if (!logits || !w || !idx) {
        arena_release(env->scratch, mark);
        return modes_fail(err, MODES_E_INTERNAL, "out of memory routing %d tokens", n);
    }
    moe_route(m, x, n, logits, idx, w, env->pool);
    moe_tap(env, "router_logits", 0, logits, n, E);
    moe_tap(env, "router_topk_idx", 1, idx, n, K);
    moe_tap(env, "router_topk_weights", 0, w, n, K);
    if (env->observer) env->observer->routed(env->observer->user, env->layer, env->cls, n, K, idx, w);
    /* The skip decision sits between routing and dispatch (docs/modes-method.md section 3). */
    skip_decide(env->policy, env->layer, K, env->cls, n, idx, w);
    if (env->policy) moe_tap(env, "kept_idx", 1, idx, n, K);
    moe_counters mc = {0};
    int rc = moe_dispatch(m, x, n, idx, w, out, &mc, env->pool, env->scratch, err);
    if (!rc) rc = add_shared_experts(m, env, x, n, out, err);
    for (int i = 0; !rc && i < n; i++)
        if (skip_removes_to_identity(env->policy, env->layer, env->cls[i]))
            for (int d = 0; d < H; d++) out[(size_t)i * H + d] += x[(size_t)i * H + d];
    if (!rc && env->stats) {
        skip_stats_add(env->stats, env->layer, n == 1, env->cls, n, K, idx);
        env->stats->expert_rows += mc.rows;
        env->stats->expert_bytes += mc.bytes;
        env->stats->expert_activations += mc.activations;
    }
    arena_release(env->scratch, mark);
    return rc;
}
