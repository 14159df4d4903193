/* The Qwen3 decoder (docs/qwen3-vl-moe.md sections 1 and 7), shared by the families built on it
 * (Qwen3-VL-MoE, Qwen3-MoE, InternVL3.5-MoE's language model):
 *
 *   x = embed(ids)                       (the family may replace or add rows: vision features)
 *   for each layer:  h = x + Attn(RMSNorm_in(x));  x = h + FFN(RMSNorm_post(h))
 *   logits = lm_head(RMSNorm(x))
 *
 * Attention is GQA with per-head RMSNorm on q and k before the rotary embedding; FFN is the MoE
 * block (moe.c) or a dense SwiGLU MLP, as the config says per layer. The rotary angles come from the
 * family (M-RoPE or 1-D), so the decoder knows nothing of positions. */
#ifndef MODES_MODELS_DECODER_H
#define MODES_MODELS_DECODER_H

#include "io/config.h"
#include "models/model.h"
#include "models/moe.h"

typedef struct {
    float *attn_norm, *ffn_norm, *q_norm, *k_norm; /* fp32 copies, owned by the model */
    wmat q, k, v, o;
    int is_moe;
    moe_layer moe;  /* when is_moe */
    expert_w mlp;   /* dense SwiGLU MLP otherwise */
} decoder_layer;

typedef struct {
    const text_config *cfg; /* the model's */
    wmat embed, lm_head;
    float *final_norm;
    decoder_layer *layers;  /* [cfg->n_layers] */
} decoder;

/* Binds the checkpoint's tensors `prefix`embed_tokens.weight, `prefix`layers.N...., `prefix`norm.weight
 * and lm_head (tied to the embedding when the config says so and the file has none), with the
 * experts fused (released or v5 layout) or one tensor per expert; sets the model's MoE layer map. */
int decoder_bind(modes_model *m, const char *prefix, const char *lm_head, decoder *d, modes_error *err);
void decoder_free(decoder *d);

/* Replaces (add = 0) or adds to the rows of x whose id is the model's image token, in order, from
 * feat [rows][hidden] (docs/qwen3-vl-moe.md sections 5 and 7.3). */
typedef void (*decoder_inject_fn)(void *user, int after_layer, const int32_t *ids, int n, float *x);

typedef struct {
    const int32_t *ids;
    int n;
    const float *rope;         /* [n][head_dim]: cos[head_dim/2] then sin[head_dim/2] per token */
    decoder_inject_fn inject;  /* called with after_layer -1 after the embedding, then after each layer */
    void *inject_user;
    /* Calibration re-runs only the layers from start_layer on, from the hidden state that entered it
     * in the original pass (layers below a removed one are unchanged, docs/modes-method.md 2). */
    int start_layer;
    const float *start_x;      /* [n][hidden] when start_layer > 0 */
    float **capture;           /* when set: capture[l] receives layer l's input, [n][hidden] */
} decoder_input;

/* Runs n tokens after the context's cached ones, appends their keys and values to its cache and
 * writes the logits of the last n_logits tokens. Scratch comes from the context's arena. */
int decoder_forward(modes_ctx *c, const decoder *d, const decoder_input *in, float *logits, int n_logits,
                    modes_error *err);

/* 1-D rotary tables (rotate-half, inv_freq in fp32 as the reference computes it) for positions pos. */
void decoder_rope_1d(const text_config *c, const int32_t *pos, int n, float *cs);

/* Cache floats per token per layer, and the cost model of the bench (model.h). */
void decoder_kv_width(const text_config *c, int *k, int *v);
void decoder_costs(const decoder *d, model_costs *out);

/* Random bf16 weights of cfg's shapes (synthetic.c), for speed runs: the routed experts come from as
 * many distinct layer blocks as expert_budget bytes hold (*n_blocks), shared round-robin. */
int decoder_random(modes_model *m, decoder *d, size_t expert_budget, uint64_t seed, int *n_blocks, modes_error *err);

#endif
