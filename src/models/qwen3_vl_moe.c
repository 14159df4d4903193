/* Qwen3-VL-MoE (docs/qwen3-vl-moe.md): the Qwen3 decoder (decoder.c) with interleaved M-RoPE, the
 * Qwen3-VL vision tower (vision/qwen3_vl_vit.c) whose features replace the image tokens' embeddings,
 * and DeepStack features added to those rows after the first text layers. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "models/decoder.h"
#include "models/family.h"

typedef struct {
    decoder text;
    qwen3_vit vit;
} qwen3vl;

/* ---- Config ---------------------------------------------------------------------------------- */

static int parse_config(const json_node *root, const char *path, model_config *c, modes_error *err) {
    const json_node *tc = json_get(root, "text_config"), *vc = json_get(root, "vision_config");
    if (!tc || tc->type != JSON_OBJECT)
        return modes_fail(err, MODES_E_INPUT, "%s: \"text_config\" is missing or not an object", path);
    cfg_reader r = {tc, path, "text_config.", err};
    int rc = config_parse_text(&r, 1, &c->text);
    if (rc) return rc;
    c->text.norm_topk_prob = 1; /* Qwen3-VL-MoE always renormalises (docs/qwen3-vl-moe.md section 7.4) */
    int tie;
    if (json_get(root, "tie_word_embeddings")) { /* the top-level key wins in the reference */
        if ((rc = json_get_bool(root, "tie_word_embeddings", 0, &tie, path, err))) return rc;
        c->text.tie_embeddings = tie;
    }
    if (vc && vc->type == JSON_OBJECT) {
        cfg_reader rv = {vc, path, "vision_config.", err};
        if ((rc = config_parse_qwen3vl_vision(&rv, &c->vision))) return rc;
    } else if (vc && vc->type != JSON_NULL) {
        return modes_fail(err, MODES_E_INPUT, "%s: \"vision_config\" must be an object", path);
    }
    cfg_reader rt = {root, path, "", err};
    const int V = c->text.vocab - 1;
    if ((rc = cfg_int(&rt, "image_token_id", 151655, 0, 0, 1 << 30, &c->image_token_id)) ||
        (rc = cfg_int(&rt, "video_token_id", 151656, 0, 0, 1 << 30, &c->video_token_id)) ||
        (rc = cfg_int(&rt, "vision_start_token_id", 151652, 0, 0, 1 << 30, &c->vision_start_id)) ||
        (rc = cfg_int(&rt, "vision_end_token_id", 151653, 0, 0, 1 << 30, &c->vision_end_id)))
        return rc;
    if (c->vision.present && (c->image_token_id > V || c->vision_start_id > V || c->vision_end_id > V))
        return modes_fail(err, MODES_E_INPUT, "%s: image/vision token ids must be below vocab_size %d", path, V + 1);
    cfg_reader rtc = {tc, path, "text_config.", err};
    if ((rc = cfg_int(&rtc, "bos_token_id", -1, 0, -1, V, &c->bos_id))) return rc;
    if ((rc = config_add_eos(c, json_get(tc, "eos_token_id"), path, err))) return rc;
    return config_add_eos(c, json_get(root, "eos_token_id"), path, err);
}

/* ---- Weights --------------------------------------------------------------------------------- */

static int bind(modes_model *m, modes_error *err) {
    qwen3vl *q = calloc(1, sizeof *q);
    if (!q) return modes_fail(err, MODES_E_INTERNAL, "out of memory");
    m->impl = q;
    int rc = decoder_bind(m, "model.language_model.", "lm_head.weight", &q->text, err);
    if (!rc && m->cfg.vision.present) {
        m->has_vision = 1;
        q->vit.cfg = m->cfg.vision;
        rc = qwen3_vit_bind(&m->w, &q->vit, err);
    }
    return rc;
}

static void free_impl(modes_model *m) {
    qwen3vl *q = m->impl;
    if (!q) return;
    decoder_free(&q->text);
    qwen3_vit_free(&q->vit);
    free(q);
    m->impl = NULL;
}

/* ---- Positions ------------------------------------------------------------------------------- */

/* get_rope_index (docs/qwen3-vl-moe.md section 6): an image's tokens sit at (cur + frame, cur + row,
 * cur + column) of the merged grid, and the text after it continues from cur + max(frames, rows,
 * columns). */
static int image_positions(const modes_model *m, const modes_image *g, int n_tokens, int32_t *cur, int32_t *pos,
                           int stride) {
    const int mg = m->cfg.vision.merge, gh = g->grid_h / mg, gw = g->grid_w / mg;
    for (int j = 0; j < n_tokens; j++) {
        const int f = j / (gh * gw), r = (j / gw) % gh, col = j % gw;
        pos[j] = *cur + f;
        pos[stride + j] = *cur + r;
        pos[2 * stride + j] = *cur + col;
    }
    *cur += g->grid_t > gh ? (g->grid_t > gw ? g->grid_t : gw) : (gh > gw ? gh : gw);
    return 0;
}

/* Interleaved M-RoPE (docs/qwen3-vl-moe.md section 6.1): angle slot j takes its position from H when
 * j % 3 == 1 and j < 3 * section[1], from W when j % 3 == 2 and j < 3 * section[2], else from T.
 * Writes, per token, cos[hd/2] then sin[hd/2]. inv_freq is computed in float32 as the reference does. */
static void mrope_tables(const text_config *c, const int32_t *pos, int n, float *cs) {
    const int half = c->head_dim / 2;
    for (int i = 0; i < n; i++) {
        float *cos_ = cs + (size_t)i * c->head_dim, *sin_ = cos_ + half;
        for (int j = 0; j < half; j++) {
            const float inv_freq = 1.0f / powf((float)c->rope_theta, (float)(2 * j) / (float)c->head_dim);
            int axis = 0;
            if (j % 3 == 1 && j < 3 * c->mrope_section[1]) axis = 1;
            else if (j % 3 == 2 && j < 3 * c->mrope_section[2]) axis = 2;
            const float theta = (float)pos[(size_t)axis * n + i] * inv_freq;
            cos_[j] = cosf(theta);
            sin_[j] = sinf(theta);
        }
    }
}

/* ---- Vision ---------------------------------------------------------------------------------- */

static int encode_images(modes_ctx *c, const modes_image *images, int n_images, vit_output *out, modes_error *err) {
    const modes_model *m = c->model;
    const qwen3vl *q = m->impl;
    const vision_config *v = &m->cfg.vision;
    const size_t row = (size_t)v->in_channels * v->temporal_patch * v->patch * v->patch;
    vit_grid *grids = malloc((size_t)n_images * sizeof *grids);
    if (!grids) return modes_fail(err, MODES_E_INTERNAL, "out of memory");
    size_t total = 0;
    for (int i = 0; i < n_images; i++) {
        grids[i] = (vit_grid){images[i].grid_t, images[i].grid_h, images[i].grid_w};
        total += (size_t)grids[i].t * grids[i].h * grids[i].w;
    }
    /* The tower takes one packed sequence: images one after another. */
    float *pixels = malloc(total * row * sizeof *pixels);
    int rc = pixels ? 0 : modes_fail(err, MODES_E_INTERNAL, "out of memory");
    for (int i = 0, at = 0; !rc && i < n_images; i++) {
        const size_t rows = (size_t)grids[i].t * grids[i].h * grids[i].w;
        memcpy(pixels + (size_t)at * row, images[i].pixels, rows * row * sizeof *pixels);
        at += (int)rows;
    }
    if (!rc) rc = qwen3_vit_forward(&q->vit, pixels, grids, n_images, c->pool, c->tap, c->tap_user, out, err);
    free(pixels);
    free(grids);
    return rc;
}

/* Image rows take the vision features (docs/qwen3-vl-moe.md section 5); after text layer j,
 * DeepStack feature j is added to them (section 7.3). */
static void inject_vision(void *user, int after_layer, const int32_t *ids, int n, float *x) {
    const model_batch *b = ((void **)user)[0];
    const modes_model *m = ((void **)user)[1];
    if (!b->vision || after_layer >= b->n_deepstack) return;
    const float *feat = after_layer < 0 ? b->vision : b->deepstack[after_layer];
    const int H = m->cfg.text.hidden;
    for (int i = 0, r = 0; i < n && r < b->n_vision; i++) {
        if (ids[i] != m->cfg.image_token_id) continue;
        float *xi = x + (size_t)i * H;
        const float *f = feat + (size_t)r++ * H;
        if (after_layer >= 0)
            for (int d = 0; d < H; d++) xi[d] += f[d];
        else
            memcpy(xi, f, (size_t)H * sizeof *xi);
    }
}

/* ---- Forward --------------------------------------------------------------------------------- */

static int forward(modes_ctx *c, const model_batch *b, float *logits, int n_logits, modes_error *err) {
    const modes_model *m = c->model;
    const qwen3vl *q = m->impl;
    const size_t mark = arena_mark(&c->scratch);
    float *rope = arena_array(&c->scratch, (size_t)b->n * m->cfg.text.head_dim, sizeof *rope);
    if (!rope) return modes_fail(err, MODES_E_INTERNAL, "out of memory for a batch of %d tokens", b->n);
    mrope_tables(&m->cfg.text, b->pos, b->n, rope);
    const void *user[2] = {b, m};
    const decoder_input in = {.ids = b->ids, .n = b->n, .rope = rope, .inject = inject_vision, .inject_user = (void *)user,
                              .start_layer = b->start_layer, .start_x = b->start_x, .capture = b->capture};
    const int rc = decoder_forward(c, &q->text, &in, logits, n_logits, err);
    arena_release(&c->scratch, mark);
    return rc;
}

static void kv_width(const model_config *cfg, int *k, int *v) { decoder_kv_width(&cfg->text, k, v); }

static void costs(const modes_model *m, model_costs *out) { decoder_costs(&((const qwen3vl *)m->impl)->text, out); }

/* ---- Synthetic ------------------------------------------------------------------------------- */

/* Qwen3-VL-30B-A3B-Instruct's text model as released (its config.json). */
static void qwen3_vl_30b_a3b(model_config *c, int layers) {
    text_config *t = &c->text;
    *t = (text_config){.hidden = 2048, .n_layers = layers, .n_heads = 32, .n_kv_heads = 4, .head_dim = 128,
                       .vocab = 151936, .intermediate = 6144, .moe_intermediate = 768, .n_experts = 128, .top_k = 8,
                       .decoder_sparse_step = 1, .norm_topk_prob = 1, .rms_eps = 1e-6f, .rope_theta = 5e6,
                       .mrope_section = {24, 20, 20}, .max_position = 262144};
    for (int l = 0; l < layers; l++) t->is_moe[l] = 1;
    c->image_token_id = 151655;
    c->video_token_id = 151656;
    c->vision_start_id = 151652;
    c->vision_end_id = 151653;
    c->bos_id = 151643;
    c->n_eos = 2;
    c->eos[0] = 151645;
    c->eos[1] = 151643;
}

static int synthetic(modes_model *m, const char *name, int layers, size_t expert_budget, uint64_t seed, int *n_blocks,
                     modes_error *err) {
    if (strcmp(name, "qwen3-vl-30b-a3b")) return 1;
    if (layers < 1 || layers > 48) return modes_fail(err, MODES_E_INPUT, "synthetic model: %d layers, must be between 1 and 48", layers);
    qwen3_vl_30b_a3b(&m->cfg, layers);
    qwen3vl *q = calloc(1, sizeof *q);
    if (!q) return modes_fail(err, MODES_E_INTERNAL, "out of memory");
    m->impl = q;
    if (!(m->token_class = calloc((size_t)m->cfg.text.vocab, 1))) return modes_fail(err, MODES_E_INTERNAL, "out of memory");
    m->token_class[m->cfg.image_token_id] = MODES_TOKEN_VISION;
    for (int id = 151643; id <= 151654; id++) m->token_class[id] = MODES_TOKEN_SPECIAL; /* the chat and vision markers */
    return decoder_random(m, &q->text, expert_budget, seed, n_blocks, err);
}

const model_family family_qwen3_vl_moe = {
    .model_type = "qwen3_vl_moe",
    .parse_config = parse_config,
    .bind = bind,
    .free_impl = free_impl,
    .n_pos_axes = 3,
    .image_positions = image_positions,
    .encode_images = encode_images,
    .forward = forward,
    .kv_width = kv_width,
    .costs = costs,
    .synthetic = synthetic,
    .synthetic_names = "qwen3-vl-30b-a3b",
};
