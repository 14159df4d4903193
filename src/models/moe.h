/* The MoE block shared by every model family (docs/design.md section 4): route every token, show the
 * routing to an observer, let the skip policy mark (token, slot) pairs, count them, run each active
 * expert once over the tokens that kept it, then add the shared experts. A family calls moe_forward
 * once per MoE layer and never sees which policy is active. */
#ifndef MODES_MODELS_MOE_H
#define MODES_MODELS_MOE_H

#include <stdint.h>

#include "core/arena.h"
#include "core/pool.h"
#include "modes.h"
#include "skip/policy.h"
#include "tensor/tensor.h"

typedef struct {
    wmat gate, up, down; /* [I, H], [I, H], [H, I]: y = down(silu(gate x) * up x) */
} expert_w;

/* How the router turns logits into the top-k and their weights (docs/qwen3-vl-moe.md section 7.4;
 * DeepSeek-style routers score with a sigmoid and select with a bias the weights do not see). */
typedef enum { MOE_SCORE_SOFTMAX, MOE_SCORE_SIGMOID } moe_scoring;

typedef struct {
    moe_scoring scoring;
    int norm_topk;         /* renormalise the k weights to sum to 1 */
    float routed_scale;    /* the k weights are multiplied by this (1 when the config has none) */
    const float *bias;     /* [E] added to the scores for the choice of experts only, or NULL */
} moe_router;

typedef struct {
    int n_experts, top_k, hidden, inter;
    wmat router;           /* [E, H] */
    moe_router rule;
    expert_w *experts;     /* [E], views into the checkpoint or into memory the model owns */
    int n_shared;          /* shared experts: run for every token, never skipped */
    expert_w *shared;      /* [n_shared], each of its own width (the matrices' shapes) */
} moe_layer;

/* What dispatch did: the evidence that skipped experts cost nothing. */
typedef struct {
    uint64_t rows;        /* (token, expert) rows computed */
    uint64_t bytes;       /* expert weight bytes read: each active expert's matrices once */
    uint64_t activations; /* experts run */
} moe_counters;

/* Sees every MoE layer's routing before any skipping: the router's top-k experts and weights of n
 * tokens, [n][k] in descending weight order (calibration records the search's scores here). */
typedef struct {
    void (*routed)(void *user, int moe_layer, const uint8_t *cls, int n, int k, const int32_t *idx, const float *w);
    void *user;
} moe_observer;

/* Debug taps of the block's intermediates, named by the family ("router_logits", "router_topk_idx",
 * "router_topk_weights", "kept_idx"): [rows][cols] of floats or int32. */
typedef void (*moe_tap_fn)(void *user, const char *what, int is_int, const void *data, int rows, int cols);

/* The context's part of one MoE layer's work. */
typedef struct {
    int layer;                 /* index among MoE layers: what policies and statistics count */
    const uint8_t *cls;        /* [n] MODES_TOKEN_* of each token */
    const modes_policy *policy; /* NULL: no skipping */
    modes_stats *stats;        /* slots kept and skipped, and the dispatch counters; may be NULL */
    const moe_observer *observer; /* may be NULL */
    moe_tap_fn tap;            /* may be NULL */
    void *tap_user;
    modes_pool *pool;          /* may be NULL */
    arena *scratch;            /* released to where it was on return */
} moe_env;

/* out[n, H] = the MoE block of x[n, H] (route, observe, skip, count, dispatch, shared experts; plus
 * the input itself for tokens a layer-removal policy replaces by the identity). */
int moe_forward(const moe_layer *m, const moe_env *env, const float *x, int n, float *out, modes_error *err);

/* The router alone: logits [n, E], top-k [n, K] in descending order of weight (lower index first on
 * ties), weights as m->rule says. */
void moe_route(const moe_layer *m, const float *x, int n, float *logits, int32_t *topk_idx, float *topk_w,
               modes_pool *pool);

/* out[n, H] = sum over kept slots of w * expert(x). Slots whose index is MOE_SKIPPED cost nothing:
 * their expert's weights are not read unless another token kept it. counters may be NULL. The
 * active experts run in one parallel region per phase, split by output rows (pool may be NULL). */
int moe_dispatch(const moe_layer *m, const float *x, int n, const int32_t *topk_idx, const float *topk_w,
                 float *out, moe_counters *counters, modes_pool *pool, arena *scratch, modes_error *err);

/* out[n, H] = down(silu(gate x) * up x), the dense SwiGLU MLP (dense layers and shared experts). */
int mlp_forward(const expert_w *w, const float *x, int n, float *out, modes_pool *pool, arena *scratch,
                modes_error *err);

#endif
