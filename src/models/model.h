/* Internal layout of modes_model and modes_ctx, shared by the model-family files. */
#ifndef MODES_MODELS_MODEL_H
#define MODES_MODELS_MODEL_H

#include "core/pool.h"
#include "io/config.h"
#include "io/safetensors.h"
#include "io/weights.h"
#include "core/arena.h"
#include "models/moe.h"
#include "modes.h"
#include "skip/policy.h"
#include "skip/stats.h"
#include "tensor/tensor.h"
#include "vision/preprocess.h"
#include "vision/qwen3_vl_vit.h" /* vit_output */

typedef struct model_family model_family; /* family.h */

struct modes_model {
    const model_family *family;
    void *impl;                 /* the family's weights and state, freed by its free_impl */
    model_config cfg;
    char *dir;
    weight_src w;               /* the checkpoint and the buffers made from it */
    modes_tokenizer *tok;
    int n_layers, n_moe_layers;
    int *moe_index;             /* [n_layers]: the layer's index among MoE layers, -1 for dense */
    int has_vision;
    preproc_config preproc;     /* preprocessor_config.json, or the Qwen3-VL defaults */
    uint8_t *token_class;       /* [vocab] MODES_TOKEN_* */
    int32_t placeholders[8];    /* image/video pads and vision markers: input only, never sampled */
    int n_placeholders;
};

struct modes_ctx {
    const modes_model *model;
    int n_ctx, n_past;
    int next_pos;               /* the position the next text token takes: M-RoPE moves it past an
                                   image by less than the image's tokens (docs/qwen3-vl-moe.md section 6) */
    modes_pool *pool;           /* the context's threads (docs/design.md section 4) */
    arena scratch;              /* the forward pass's memory, reset before each pass */
    float *k_cache, *v_cache;   /* [layers][n_ctx][k or v width] */
    int k_width, v_width;
    modes_tap_fn tap;
    void *tap_user;
    const moe_observer *observer; /* calibration's view of the routing */
    const modes_policy *policy;
    modes_stats stats;
    modes_stop_reason stop;     /* of the last generation */
    int32_t *pos_buf;           /* positions of a text-only pass (a decoded token) */
    size_t pos_cap;
};

/* What one sequence leaves in a context: its KV cache, position and counts. A context can advance
 * several sequences in turn by swapping them in and out (ctx_sequence_swap), without the copy of a
 * cache or a second pool of threads: the bench decodes every policy one step at a time. */
typedef struct {
    float *k_cache, *v_cache;
    int n_past, next_pos;
    modes_stats stats;
} ctx_sequence;
/* An empty sequence sized for c (its n_ctx); free with ctx_sequence_free (which accepts zeroes). */
int ctx_sequence_new(const modes_ctx *c, ctx_sequence *s, modes_error *err);
/* Exchanges the context's sequence with *s: call again with the same s to swap back. */
void ctx_sequence_swap(modes_ctx *c, ctx_sequence *s);
void ctx_sequence_free(ctx_sequence *s);

/* One step of the text model. Rows whose id is the image token take the vision features in order;
 * deepstack[j] is added to those rows after layer j (docs/qwen3-vl-moe.md sections 5, 7.3). */
typedef struct {
    const int32_t *ids;
    int n;
    const int32_t *pos;            /* [n_pos_axes][n] positions (model_family) */
    const float *vision;           /* [n_vision][hidden] or NULL */
    int n_vision, n_deepstack;
    float *const *deepstack;       /* n_deepstack arrays of [n_vision][hidden] */
    /* Calibration re-runs only the layers from start_layer on, from the hidden state that entered it
     * in the original pass (layers below a removed one are unchanged, docs/modes-method.md 2). */
    int start_layer;
    const float *start_x;          /* [n][hidden] when start_layer > 0 */
    float **capture;               /* when set: capture[l] receives layer l's input, [n][hidden] */
} model_batch;

/* What the bench's cost model needs to know of a model (docs/design.md section 5). */
typedef struct {
    double fixed_bytes, fixed_params; /* weights every token reads whatever the policy: attention,
                                         routers, dense MLPs, the output head */
    double head_params;               /* of those, the output head's: run for one token per pass */
    double kv_bytes_per_token;        /* cache bytes one decoded token reads per cached token */
    double attn_macs_per_pair;        /* multiply-adds per causal (query, key) pair, all layers */
    double expert_macs_per_row;       /* multiply-adds of one routed expert on one token */
} model_costs;
void model_costs_of(const modes_model *m, model_costs *out);

/* Sets the model's layer map: n_layers, and which are MoE layers (is_moe[l]). */
int model_set_layers(modes_model *m, int n_layers, const uint8_t *is_moe, modes_error *err);

/* An input made ready once (positions, vision features) and run as often as needed: calibration and
 * the threshold search evaluate the same examples under many policies. ids are not copied. */
typedef struct {
    const int32_t *ids;
    int n;
    int32_t *pos;
    vit_output vo;
} prepared_input;
int model_prepare(modes_ctx *c, const int32_t *ids, int n, const modes_image *images, int n_images,
                  prepared_input *out, modes_error *err);
/* Runs a prepared input at the context's current position (reset the context first to re-run). */
int model_run_prepared(modes_ctx *c, const prepared_input *in, int start_layer, const float *start_x, float **capture,
                       float *logits, int n_logits, modes_error *err);
void prepared_free(prepared_input *in);
/* modes_generate from a prepared prompt (generate.c): evaluation reuses one preparation per example. */
int generate_prepared(modes_ctx *c, const prepared_input *in, int max_new, const modes_sampling *s,
                      modes_token_fn on_token, void *user, int32_t *out, int *n_out, double *times, modes_error *err);
/* model_prepare over a prompt's ids and images (prompt.c). */
int prompt_prepare(modes_ctx *c, const modes_prompt *p, prepared_input *out, modes_error *err);

/* Loads dir as modes_model_load does, with every check it makes (config, each tensor's presence,
 * dtype and shape, vision and preprocessor settings, tokenizer) and the same messages, but without
 * the expensive work (expert transposes, copies of misaligned tensors): for `modes inspect`. The
 * model's cfg, weights and tok may be read; it must not be run. Free with modes_model_free. */
int model_check(const char *dir, modes_model **out, modes_error *err);

/* A model of a released architecture with random bf16 weights in memory (family.c asks each family):
 * name "qwen3-vl-30b-a3b". Expert weights come from as many distinct layer blocks as expert_budget
 * bytes hold (*n_blocks), shared round-robin by the layers. */
int model_synthetic(const char *name, int layers, size_t expert_budget, uint64_t seed, modes_model **out, int *n_blocks,
                    modes_error *err);

/* Finds the placeholder ids (m->placeholders) from the config and the tokenizer's names for them. */
void model_find_placeholders(modes_model *m);
/* modes_sample over the ids the model may answer with: never a vision placeholder (a sampled image
 * pad would need an image) nor an embedding row past the tokenizer's ids (padding, not printable),
 * greedy included. logits holds the model's vocab and is modified. work: sample_work_bytes of
 * memory, so a decoding loop allocates once, or NULL. */
int32_t model_sample(const modes_model *m, float *logits, const modes_sampling *s, uint64_t *state, void *work);
/* Bytes of the work model_sample needs for vocab candidates (NULL work: it allocates its own). */
size_t sample_work_bytes(int vocab);

/* What a policy made on this model is bound to (binding.c); free with policy_binding_free. */
int model_binding(const modes_model *m, policy_binding *b, modes_error *err);

#endif
