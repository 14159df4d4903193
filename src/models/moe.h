/* The MoE block shared by every model family (docs/design.md section 4): route every token, let the skip
 * policy mark (token, slot) pairs, then run each active expert once over the tokens that kept it.
 * Model files call moe_route and moe_dispatch and never see which policy is active. */
#ifndef MODES_MODELS_MOE_H
#define MODES_MODELS_MOE_H

#include <stdint.h>

#include "core/pool.h"
#include "modes.h"
#include "tensor/tensor.h"

#define MOE_SKIPPED (-1) /* the sentinel a skip policy writes into a slot's expert index */

typedef struct {
    wmat gate, up, down; /* [I, H], [I, H], [H, I]: y = down(silu(gate x) * up x) */
} expert_w;

typedef struct {
    int n_experts, top_k, hidden, inter;
    wmat router;         /* [E, H] */
    expert_w *experts;   /* [E], views into the checkpoint or into memory the model owns */
} moe_layer;

/* Router for n tokens: logits [n, E] (x W^T), fp32 softmax over all E, top-k in descending order of
 * probability (lower index first on ties), weights renormalised over the k (docs/qwen3-vl-moe.md section 7.4). */
void moe_route(const moe_layer *m, const float *x, int n, float *logits, int32_t *topk_idx, float *topk_w,
               modes_pool *pool);

/* What dispatch did: the evidence that skipped experts cost nothing. */
typedef struct {
    uint64_t rows;        /* (token, expert) rows computed */
    uint64_t bytes;       /* expert weight bytes read: each active expert's matrices once */
    uint64_t activations; /* experts run */
} moe_counters;

/* out[n, H] = sum over kept slots of w * expert(x). Slots whose index is MOE_SKIPPED cost nothing:
 * their expert's weights are not read unless another token kept it. counters may be NULL. The
 * active experts run in one parallel region per phase, split by output rows (pool may be NULL). */
int moe_dispatch(const moe_layer *m, const float *x, int n, const int32_t *topk_idx, const float *topk_w,
                 float *out, moe_counters *counters, modes_pool *pool, modes_error *err);

#endif
