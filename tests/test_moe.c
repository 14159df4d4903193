/* The MoE block's router rules and shared experts (src/models/moe.c), against a plain restatement of
 * each rule written here: softmax with and without renormalisation (Qwen3), sigmoid scores chosen with
 * a correction bias the weights do not see and scaled (DeepSeek-V3 / Kimi-VL), and shared experts
 * added for every token and never skipped, while a skip policy still drops the routed ones. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "models/moe.h"
#include "skip/stats.h"

enum { E = 6, H = 4, I = 3, K = 2, N = 3 };

static float router_w[E * H], x[N * H];
static float bias[E] = {0.0f, 0.9f, 0.0f, -0.8f, 0.0f, 0.3f};

static void fill(float *v, int n, unsigned seed) {
    for (int i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        v[i] = (float)((seed >> 16) % 2001) / 1000.0f - 1.0f;
    }
}

/* The k best of value[E] (lower index on ties), as the reference's torch.topk picks them. */
static void naive_topk(const double *value, int32_t *idx) {
    int used[E] = {0};
    for (int k = 0; k < K; k++) {
        int best = -1;
        for (int e = 0; e < E; e++)
            if (!used[e] && (best < 0 || value[e] > value[best])) best = e;
        used[best] = 1;
        idx[k] = best;
    }
}

static void expect_route(const moe_router *rule, const float *logits, int32_t *idx, double *w) {
    double score[E], choice[E], z = 0;
    for (int e = 0; e < E; e++) z += exp(logits[e]);
    for (int e = 0; e < E; e++) {
        score[e] = rule->scoring == MOE_SCORE_SIGMOID ? 1.0 / (1.0 + exp(-logits[e])) : exp(logits[e]) / z;
        choice[e] = score[e] + (rule->bias ? rule->bias[e] : 0.0);
    }
    naive_topk(choice, idx);
    double sum = 0;
    for (int k = 0; k < K; k++) sum += score[idx[k]];
    for (int k = 0; k < K; k++) w[k] = (rule->norm_topk ? score[idx[k]] / sum : score[idx[k]]) * rule->routed_scale;
}

static void check_rule(const char *name, moe_router rule) {
    const moe_layer m = {.n_experts = E, .top_k = K, .hidden = H, .inter = I, .router = {DT_F32, router_w, E, H},
                         .rule = rule};
    float logits[N * E], w[N * K];
    int32_t idx[N * K];
    moe_route(&m, x, N, logits, idx, w, NULL);
    for (int i = 0; i < N; i++) {
        int32_t want_idx[K];
        double want_w[K];
        expect_route(&rule, logits + i * E, want_idx, want_w);
        for (int k = 0; k < K; k++) {
            CHECKF(idx[i * K + k] == want_idx[k], "%s: token %d slot %d: expert %d, want %d", name, i, k, idx[i * K + k],
                   want_idx[k]);
            CHECKF(fabs(w[i * K + k] - want_w[k]) < 1e-6, "%s: token %d slot %d: weight %g, want %g", name, i, k,
                   w[i * K + k], want_w[k]);
        }
    }
}

/* One SwiGLU expert on one row, written out. */
static void expert_row(const expert_w *ew, const float *xi, double *y) {
    const float *g = ew->gate.data, *u = ew->up.data, *d = ew->down.data;
    const int inter = ew->gate.rows;
    double h[16];
    for (int j = 0; j < inter; j++) {
        double a = 0, b = 0;
        for (int c = 0; c < H; c++) a += g[j * H + c] * xi[c], b += u[j * H + c] * xi[c];
        h[j] = a / (1.0 + exp(-a)) * b;
    }
    for (int r = 0; r < H; r++) {
        y[r] = 0;
        for (int j = 0; j < inter; j++) y[r] += d[r * inter + j] * h[j];
    }
}

/* moe_forward with a shared expert of its own width and topk:1: each token gets its best routed
 * expert (the second slot skipped) plus the shared expert. */
static void check_shared_and_skip(void) {
    static float ew[E][3][I * H], sw[3][5 * H];
    expert_w experts[E], shared;
    for (int e = 0; e < E; e++) {
        for (int k = 0; k < 3; k++) fill(ew[e][k], I * H, 100u + 7u * (unsigned)e + (unsigned)k);
        experts[e] = (expert_w){{DT_F32, ew[e][0], I, H}, {DT_F32, ew[e][1], I, H}, {DT_F32, ew[e][2], H, I}};
    }
    for (int k = 0; k < 3; k++) fill(sw[k], 5 * H, 900u + (unsigned)k);
    shared = (expert_w){{DT_F32, sw[0], 5, H}, {DT_F32, sw[1], 5, H}, {DT_F32, sw[2], H, 5}};
    const moe_layer m = {.n_experts = E, .top_k = K, .hidden = H, .inter = I, .router = {DT_F32, router_w, E, H},
                         .rule = {MOE_SCORE_SOFTMAX, 1, 1.0f, NULL}, .experts = experts, .n_shared = 1, .shared = &shared};
    modes_error err = {0};
    modes_policy *topk1 = NULL;
    CHECKF(policy_from_spec("topk:1", NULL, 1, &topk1, &err) == 0, "%s", err.msg);
    modes_stats st;
    CHECK(skip_stats_init(&st, 1) == 0);
    const uint8_t cls[N] = {MODES_TOKEN_TEXT, MODES_TOKEN_VISION, MODES_TOKEN_TEXT};
    arena scratch = {0};
    const moe_env env = {.layer = 0, .cls = cls, .policy = topk1, .stats = &st, .scratch = &scratch};
    float out[N * H], logits[N * E], w[N * K];
    int32_t idx[N * K];
    CHECKF(moe_forward(&m, &env, x, N, out, &err) == 0, "%s", err.msg);
    moe_route(&m, x, N, logits, idx, w, NULL);
    for (int i = 0; i < N; i++) {
        double yr[H], ys[H];
        expert_row(&experts[idx[i * K]], x + i * H, yr);
        expert_row(&shared, x + i * H, ys);
        for (int r = 0; r < H; r++) /* topk:1 renormalises the kept weight to 1 */
            CHECKF(fabs(out[i * H + r] - (yr[r] + ys[r])) < 1e-5, "token %d row %d: %g, want %g", i, r, out[i * H + r],
                   yr[r] + ys[r]);
    }
    CHECK(st.layer[0].skipped + st.layer[1].skipped == (uint64_t)N); /* one routed slot of two per token */
    CHECK(st.expert_rows == (uint64_t)N);
    skip_stats_free(&st);
    arena_free(&scratch);
    modes_policy_free(topk1);
}

int main(void) {
    fill(router_w, E * H, 1);
    fill(x, N * H, 2);
    check_rule("softmax, renormalised", (moe_router){MOE_SCORE_SOFTMAX, 1, 1.0f, NULL});
    check_rule("softmax, not renormalised", (moe_router){MOE_SCORE_SOFTMAX, 0, 1.0f, NULL});
    check_rule("softmax, bias", (moe_router){MOE_SCORE_SOFTMAX, 1, 1.0f, bias});
    check_rule("sigmoid, bias, scaled", (moe_router){MOE_SCORE_SIGMOID, 1, 2.5f, bias});
    check_rule("sigmoid, not renormalised", (moe_router){MOE_SCORE_SIGMOID, 0, 1.0f, NULL});
    check_shared_and_skip();
    return check_done();
}
