/* The model-family interface (docs/design.md section 2): what a family file provides so that the
 * generic model code (model.c: loading, contexts, positions, evaluation) can run it. A family is one
 * file that fills one of these and one line in the registration table (family.c). */
#ifndef MODES_MODELS_FAMILY_H
#define MODES_MODELS_FAMILY_H

#include "core/json.h"
#include "models/model.h"

struct model_family {
    const char *model_type;   /* config.json's "model_type" it loads */
    /* Reads config.json's root object into cfg (path for messages); refuses what it cannot run. */
    int (*parse_config)(const json_node *root, const char *path, model_config *cfg, modes_error *err);
    /* Binds and validates every tensor (m->check_only: views only, nothing copied or transposed) and
     * sets m->impl, the n_layers / moe_index layer map and, with a vision tower, m->has_vision. */
    int (*bind)(modes_model *m, modes_error *err);
    void (*free_impl)(modes_model *m);
    /* Positions: n_pos_axes rows of n each (3 for M-RoPE's t, h, w; 1 for plain RoPE). Text runs count
     * up from the context's next position on every axis; image_positions (NULL without vision)
     * places an image's tokens, starting at *cur, and moves *cur past them. */
    int n_pos_axes;
    int (*image_positions)(const modes_model *m, const modes_image *img, int n_tokens, int32_t *cur, int32_t *pos,
                           int stride);
    /* Vision features of n images, one packed sequence (NULL without vision). */
    int (*encode_images)(modes_ctx *c, const modes_image *images, int n_images, vit_output *out, modes_error *err);
    /* One step of the text model: logits of the last n_logits tokens. */
    int (*forward)(modes_ctx *c, const model_batch *b, float *logits, int n_logits, modes_error *err);
    /* Floats per token per layer the KV cache holds for keys and for values. */
    void (*kv_width)(const model_config *cfg, int *k, int *v);
    void (*costs)(const modes_model *m, model_costs *out);
    /* A model of the given released name with random weights (NULL: the family has none). Returns 1
     * when the name is not this family's. */
    int (*synthetic)(modes_model *m, const char *name, int layers, size_t expert_budget, uint64_t seed, int *n_blocks,
                     modes_error *err);
    const char *synthetic_names; /* for messages: "qwen3-vl-30b-a3b" */
};

/* The family of a model_type (len bytes), or NULL. */
const model_family *family_find(const char *model_type, size_t len);
/* "qwen3_vl_moe, qwen3_moe": the supported model types, for messages. */
void family_known(char *list, size_t cap);
/* config_load with the family that model_type names reading the file (*family may be NULL). */
int model_config_load(const char *dir, model_config *cfg, const model_family **family, modes_error *err);
/* The registration table, NULL-terminated. */
extern const model_family *const model_families[];

#endif
