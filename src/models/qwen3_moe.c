/* Qwen3-MoE (docs/qwen3-moe.md): the text-only Qwen3 decoder (decoder.c) with plain 1-D RoPE, as
 * Qwen3-30B-A3B is released (a flat config.json of model_type "qwen3_moe", tensors model.* and
 * lm_head.weight, one tensor per expert) and as InternVL3.5-MoE's language model is built. Dense
 * layers sit where mlp_only_layers and decoder_sparse_step say; the router renormalises its top-k
 * weights only when norm_topk_prob says so. */
#include <stdlib.h>

#include "core/error.h"
#include "models/decoder.h"
#include "models/family.h"

/* ---- Config ---------------------------------------------------------------------------------- */

static int parse_config(const json_node *root, const char *path, model_config *c, modes_error *err) {
    cfg_reader r = {root, path, "", err};
    int rc = config_parse_text(&r, 0, &c->text);
    if (rc) return rc;
    /* Qwen3MoeConfig's default is false; the released checkpoints set it true. */
    if (!json_get(root, "norm_topk_prob")) c->text.norm_topk_prob = 0;
    /* No vision: no id is an image token or a vision marker. */
    c->image_token_id = c->video_token_id = c->vision_start_id = c->vision_end_id = -1;
    if ((rc = cfg_int(&r, "bos_token_id", -1, 0, -1, c->text.vocab - 1, &c->bos_id))) return rc;
    return config_add_eos(c, json_get(root, "eos_token_id"), path, err);
}

/* ---- Weights --------------------------------------------------------------------------------- */

static int bind(modes_model *m, modes_error *err) {
    decoder *d = calloc(1, sizeof *d);
    if (!d) return modes_fail(err, MODES_E_INTERNAL, "out of memory");
    m->impl = d;
    return decoder_bind(m, "model.", "lm_head.weight", d, err);
}

static void free_impl(modes_model *m) {
    if (!m->impl) return;
    decoder_free(m->impl);
    free(m->impl);
    m->impl = NULL;
}

/* ---- Forward --------------------------------------------------------------------------------- */

static int forward(modes_ctx *c, const model_batch *b, float *logits, int n_logits, modes_error *err) {
    const modes_model *m = c->model;
    const size_t mark = arena_mark(&c->scratch);
    float *rope = arena_array(&c->scratch, (size_t)b->n * m->cfg.text.head_dim, sizeof *rope);
    if (!rope) return modes_fail(err, MODES_E_INTERNAL, "out of memory for a batch of %d tokens", b->n);
    decoder_rope_1d(&m->cfg.text, b->pos, b->n, rope);
    const decoder_input in = {.ids = b->ids, .n = b->n, .rope = rope, .start_layer = b->start_layer,
                              .start_x = b->start_x, .capture = b->capture};
    const int rc = decoder_forward(c, m->impl, &in, logits, n_logits, err);
    arena_release(&c->scratch, mark);
    return rc;
}

static void kv_width(const model_config *cfg, int *k, int *v) { decoder_kv_width(&cfg->text, k, v); }

static void costs(const modes_model *m, model_costs *out) { decoder_costs(m->impl, out); }

const model_family family_qwen3_moe = {
    .model_type = "qwen3_moe",
    .parse_config = parse_config,
    .bind = bind,
    .free_impl = free_impl,
    .n_pos_axes = 1,
    .forward = forward,
    .kv_width = kv_width,
    .costs = costs,
};
