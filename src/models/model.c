/* The public model and context API: loading a folder, the KV-cache context, and evaluation steps. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "core/sha256.h"
#include "io/file.h"
#include "models/family.h"
#include "text/tokenizer.h"

int model_set_layers(modes_model *m, int n_layers, const uint8_t *is_moe, modes_error *err) {
    free(m->moe_index);
    if (!(m->moe_index = malloc((size_t)n_layers * sizeof *m->moe_index))) return modes_fail(err, MODES_E_INTERNAL, "out of memory");
    m->n_layers = n_layers;
    m->n_moe_layers = 0;
    for (int l = 0; l < n_layers; l++) m->moe_index[l] = is_moe[l] ? m->n_moe_layers++ : -1;
    return 0;
}

void model_costs_of(const modes_model *m, model_costs *out) { m->family->costs(m, out); }

static int classify_tokens(modes_model *m, modes_error *err) {
    const int V = m->cfg.text.vocab;
    m->token_class = calloc((size_t)V, 1);
    if (!m->token_class) return modes_fail(err, MODES_E_INTERNAL, "out of memory");
    for (int id = 0; id < V; id++) {
        if (id == m->cfg.image_token_id || id == m->cfg.video_token_id) m->token_class[id] = MODES_TOKEN_VISION;
        else if (id == m->cfg.vision_start_id || id == m->cfg.vision_end_id) m->token_class[id] = MODES_TOKEN_SPECIAL;
        else if (m->tok && (size_t)id < tok_vocab_size(m->tok) && tok_is_special(m->tok, id)) m->token_class[id] = MODES_TOKEN_SPECIAL;
    }
    for (int i = 0; i < m->cfg.n_eos; i++)
        if (m->cfg.eos[i] < V) m->token_class[m->cfg.eos[i]] = MODES_TOKEN_SPECIAL;
    return 0;
}

static void add_placeholder(modes_model *m, int32_t id) {
    if (id < 0 || id >= m->cfg.text.vocab) return;
    for (int i = 0; i < m->n_placeholders; i++)
        if (m->placeholders[i] == id) return;
    if (m->n_placeholders < (int)(sizeof m->placeholders / sizeof *m->placeholders)) m->placeholders[m->n_placeholders++] = id;
}

void model_find_placeholders(modes_model *m) {
    /* The tokenizer names <|vision_pad|>, which the config does not; the others are in both. */
    static const char *const names[] = {"<|image_pad|>", "<|video_pad|>", "<|vision_pad|>", "<|vision_start|>",
                                        "<|vision_end|>"};
    m->n_placeholders = 0;
    add_placeholder(m, m->cfg.image_token_id);
    add_placeholder(m, m->cfg.video_token_id);
    add_placeholder(m, m->cfg.vision_start_id);
    add_placeholder(m, m->cfg.vision_end_id);
    for (size_t i = 0; m->tok && i < sizeof names / sizeof *names; i++) add_placeholder(m, tok_token_to_id(m->tok, names[i]));
}

static int load_tokenizer(modes_model *m, modes_error *err) {
    char *path = path_join(m->dir, "tokenizer.json");
    if (!path) return modes_fail(err, MODES_E_INTERNAL, "out of memory");
    int rc = 0;
    if (access(path, F_OK) == 0) rc = tok_load(path, &m->tok, err); /* optional: forward needs only ids */
    free(path);
    return rc;
}

/* One loading path for running and for checking, so both accept and refuse exactly the same folders. */
static int model_load(const char *dir, int check_only, modes_model **out, modes_error *err) {
    *out = NULL;
    if (!path_is_dir(dir)) return modes_fail(err, MODES_E_INPUT, "%s: not a model folder", dir);
    modes_model *m = calloc(1, sizeof *m);
    if (!m || !(m->dir = strdup(dir))) {
        free(m);
        return modes_fail(err, MODES_E_INTERNAL, "out of memory");
    }
    m->w.check_only = check_only;
    m->w.dir = m->dir;
    int rc = model_config_load(dir, &m->cfg, &m->family, err);
    if (!rc) rc = st_open(dir, &m->w.st, err);
    if (!rc) rc = m->family->bind(m, err);
    if (!rc && m->has_vision) {
        rc = preproc_config_load(dir, &m->preproc, err);
        if (!rc && (m->preproc.patch != m->cfg.vision.patch || m->preproc.merge != m->cfg.vision.merge ||
                    m->preproc.temporal_patch != m->cfg.vision.temporal_patch))
            rc = modes_fail(err, MODES_E_INPUT, "%s: preprocessor_config.json patch/merge sizes differ from config.json", dir);
    }
    if (!rc) rc = load_tokenizer(m, err);
    if (!rc) rc = classify_tokens(m, err);
    if (!rc) model_find_placeholders(m);
    if (rc) {
        modes_model_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

int modes_model_load(const char *dir, modes_model **out, modes_error *err) {
    MODES_REQUIRE(err, out);
    *out = NULL;
    MODES_REQUIRE(err, dir);
    return model_load(dir, 0, out, err);
}
int model_check(const char *dir, modes_model **out, modes_error *err) { return model_load(dir, 1, out, err); }

void modes_model_free(modes_model *m) {
    if (!m) return;
    if (m->family && m->family->free_impl) m->family->free_impl(m);
    free(m->moe_index);
    free(m->token_class);
    tok_free(m->tok);
    weight_src_free(&m->w);
    free(m->dir);
    free(m);
}

const modes_tokenizer *modes_model_tokenizer(const modes_model *m) { return m ? m->tok : NULL; }
int modes_model_vocab(const modes_model *m) { return m ? m->cfg.text.vocab : -1; }

int modes_model_is_stop(const modes_model *m, int32_t id) {
    if (!m) return 0;
    for (int i = 0; i < m->cfg.n_eos; i++)
        if (m->cfg.eos[i] == id) return 1;
    return 0;
}

int modes_model_token_class(const modes_model *m, int32_t id) {
    if (!m) return -1;
    return id >= 0 && id < m->cfg.text.vocab ? m->token_class[id] : MODES_TOKEN_TEXT;
}

/* A cache of n_ctx tokens and fresh counts for m. */
static int sequence_alloc(const modes_model *m, int n_ctx, ctx_sequence *s, modes_error *err) {
    memset(s, 0, sizeof *s);
    int kw, vw;
    m->family->kv_width(&m->cfg, &kw, &vw);
    const size_t rows = (size_t)m->n_layers * n_ctx;
    s->k_cache = malloc((rows * kw + 1) * sizeof(float)); /* + 1: a family may cache no values (MLA) */
    s->v_cache = malloc((rows * vw + 1) * sizeof(float));
    if (!s->k_cache || !s->v_cache) {
        ctx_sequence_free(s);
        return modes_fail(err, MODES_E_INTERNAL, "out of memory for a KV cache of %d tokens (%.1f MiB)", n_ctx,
                          (double)rows * (kw + vw) * sizeof(float) / 1048576.0);
    }
    if (skip_stats_init(&s->stats, m->n_moe_layers)) {
        ctx_sequence_free(s);
        return modes_fail(err, MODES_E_INTERNAL, "out of memory");
    }
    return 0;
}

int ctx_sequence_new(const modes_ctx *c, ctx_sequence *s, modes_error *err) {
    return sequence_alloc(c->model, c->n_ctx, s, err);
}

void ctx_sequence_free(ctx_sequence *s) {
    free(s->k_cache);
    free(s->v_cache);
    skip_stats_free(&s->stats);
    memset(s, 0, sizeof *s);
}

void ctx_sequence_swap(modes_ctx *c, ctx_sequence *s) {
    const ctx_sequence mine = {c->k_cache, c->v_cache, c->n_past, c->next_pos, c->stats};
    c->k_cache = s->k_cache;
    c->v_cache = s->v_cache;
    c->n_past = s->n_past;
    c->next_pos = s->next_pos;
    c->stats = s->stats;
    *s = mine;
}

int modes_ctx_new(const modes_model *m, const modes_ctx_params *p, modes_ctx **out, modes_error *err) {
    MODES_REQUIRE(err, out);
    *out = NULL;
    MODES_REQUIRE(err, m);
    int n_ctx = p && p->n_ctx > 0 ? p->n_ctx : 4096;
    if (n_ctx > m->cfg.text.max_position) n_ctx = m->cfg.text.max_position;
    modes_ctx *x = calloc(1, sizeof *x);
    if (!x) return modes_fail(err, MODES_E_INTERNAL, "out of memory");
    ctx_sequence s;
    const int rc = sequence_alloc(m, n_ctx, &s, err);
    if (rc) {
        free(x);
        return rc;
    }
    ctx_sequence_swap(x, &s); /* takes the new cache and counts in, leaves zeroes in s */
    x->model = m;
    x->n_ctx = n_ctx;
    m->family->kv_width(&m->cfg, &x->k_width, &x->v_width);
    if (!(x->pool = pool_new(p ? p->threads : 0))) {
        modes_ctx_free(x);
        return modes_fail(err, MODES_E_INTERNAL, "out of memory for the thread pool");
    }
    *out = x;
    return 0;
}

void modes_ctx_free(modes_ctx *c) {
    if (!c) return;
    free(c->k_cache);
    free(c->v_cache);
    skip_stats_free(&c->stats);
    pool_free(c->pool);
    arena_free(&c->scratch);
    free(c->pos_buf);
    free(c);
}

void modes_ctx_reset(modes_ctx *c) {
    if (!c) return;
    c->n_past = 0;
    c->next_pos = 0;
    c->stop = MODES_STOP_NONE;
}

int modes_ctx_n_past(const modes_ctx *c) { return c ? c->n_past : -1; }
int modes_ctx_n_ctx(const modes_ctx *c) { return c ? c->n_ctx : -1; }
int modes_model_max_ctx(const modes_model *m) { return m ? m->cfg.text.max_position : -1; }

void modes_ctx_set_policy(modes_ctx *c, const modes_policy *p) {
    if (c) c->policy = p;
}
const modes_stats *modes_ctx_stats(const modes_ctx *c) { return c ? &c->stats : NULL; }
void modes_ctx_reset_stats(modes_ctx *c) {
    if (c) skip_stats_clear(&c->stats);
}

int modes_policy_load(const modes_model *m, const char *path, modes_policy **out, modes_error *err) {
    MODES_REQUIRE(err, out);
    *out = NULL;
    MODES_REQUIRE(err, m);
    MODES_REQUIRE(err, path);
    policy_binding b;
    int rc = model_binding(m, &b, err);
    if (!rc) rc = policy_load(path, m->n_moe_layers, &b, out, err);
    policy_binding_free(&b);
    return rc;
}

int modes_policy_from_spec(const modes_model *m, const char *spec, const modes_policy *alphas, modes_policy **out,
                           modes_error *err) {
    MODES_REQUIRE(err, out);
    *out = NULL;
    MODES_REQUIRE(err, m);
    MODES_REQUIRE(err, spec);
    return policy_from_spec(spec, alphas, m->n_moe_layers, out, err);
}

void modes_ctx_set_tap(modes_ctx *c, modes_tap_fn fn, void *user) {
    if (!c) return;
    c->tap = fn;
    c->tap_user = user;
}

static int check_ids(const modes_ctx *c, const int32_t *ids, int n, int n_logits, modes_error *err) {
    const modes_model *m = c->model;
    if (n <= 0) return modes_fail(err, MODES_E_INPUT, "nothing to evaluate");
    if (n_logits < 0 || n_logits > n) return modes_fail(err, MODES_E_INPUT, "n_logits must be in [0, %d]", n);
    if (n > c->n_ctx - c->n_past)
        return modes_fail(err, MODES_E_INPUT, "%d more tokens do not fit in the context: %d of %d already used", n,
                          c->n_past, c->n_ctx);
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= m->cfg.text.vocab)
            return modes_fail(err, MODES_E_INPUT, "token id %d at position %d is outside the vocabulary of %d", ids[i],
                              i, m->cfg.text.vocab);
    return 0;
}

/* Runs the batch and moves the context on; the next position follows the largest one used
 * (docs/qwen3-vl-moe.md section 6).
 * Every evaluation passes here, so this is where the KV cache's capacity is enforced. */
static int run_batch(modes_ctx *c, model_batch *b, float *logits, int n_logits, modes_error *err) {
    int rc = check_ids(c, b->ids, b->n, n_logits, err);
    if (rc) return rc;
    const int axes = c->model->family->n_pos_axes;
    if (c->tap && axes == 3) {
        const int64_t shape[3] = {3, 1, b->n};
        c->tap(c->tap_user, "mrope_position_ids", 1, b->pos, 3, shape);
    }
    arena_reset(&c->scratch); /* grows it to the largest pass so far: no overflow is left to free */
    if ((rc = c->model->family->forward(c, b, logits, n_logits, err))) return rc;
    int32_t mx = b->pos[0];
    for (int i = 1; i < axes * b->n; i++) mx = b->pos[i] > mx ? b->pos[i] : mx;
    c->n_past += b->n;
    c->next_pos = mx + 1;
    if (c->tap && axes == 3) {
        const int64_t shape[2] = {1, 1};
        const int32_t delta = c->next_pos - c->n_past;
        c->tap(c->tap_user, "mrope_deltas", 1, &delta, 2, shape);
    }
    return 0;
}

static int count_image_tokens(const modes_model *m, const int32_t *ids, int n) {
    int k = 0;
    for (int i = 0; i < n; i++) k += ids[i] == m->cfg.image_token_id;
    return k;
}

int modes_eval(modes_ctx *c, const int32_t *ids, int n, float *logits, int n_logits, modes_error *err) {
    MODES_REQUIRE(err, c);
    MODES_REQUIRE(err, ids);
    return modes_eval_images(c, ids, n, NULL, 0, logits, n_logits, err);
}

int modes_image_tokens(const modes_model *m, const modes_image *img) {
    if (!m || !img) return -1;
    const int mg = m->cfg.vision.merge;
    if (!m->has_vision || img->grid_t < 1 || img->grid_h < 1 || img->grid_w < 1 || img->grid_h % mg ||
        img->grid_w % mg || (int64_t)img->grid_t * img->grid_h * img->grid_w > (1 << 24))
        return -1;
    return img->grid_t * (img->grid_h / mg) * (img->grid_w / mg);
}

/* Text counts up from the context's next position on every axis; each image's run of tokens is
 * placed by the family (docs/qwen3-vl-moe.md section 6 for M-RoPE). */
static int positions(const modes_ctx *c, const int32_t *ids, int n, const modes_image *images, int n_images,
                     int32_t *pos, modes_error *err) {
    const modes_model *m = c->model;
    const int axes = m->family->n_pos_axes;
    int32_t cur = c->next_pos;
    int im = 0;
    for (int i = 0; i < n;) {
        if (!n_images || ids[i] != m->cfg.image_token_id) {
            for (int a = 0; a < axes; a++) pos[(size_t)a * n + i] = cur;
            cur++, i++;
            continue;
        }
        if (im == n_images) return modes_fail(err, MODES_E_INPUT, "the prompt holds more image tokens than the images give");
        const int k = modes_image_tokens(m, &images[im++]);
        if (i + k > n) return modes_fail(err, MODES_E_INPUT, "image %d needs %d image tokens in a row", im - 1, k);
        for (int j = 0; j < k; j++)
            if (ids[i + j] != m->cfg.image_token_id)
                return modes_fail(err, MODES_E_INPUT, "image %d needs %d image tokens in a row, found %d", im - 1, k, j);
        m->family->image_positions(m, &images[im - 1], k, &cur, pos + i, n);
        i += k;
    }
    if (im != n_images)
        return modes_fail(err, MODES_E_INPUT, "%d images given but the prompt has image tokens for %d", n_images, im);
    return 0;
}

void prepared_free(prepared_input *in) {
    vit_output_free(&in->vo);
    free(in->pos);
    memset(in, 0, sizeof *in);
}

int model_prepare(modes_ctx *c, const int32_t *ids, int n, const modes_image *images, int n_images, prepared_input *out,
                  modes_error *err) {
    const modes_model *m = c->model;
    memset(out, 0, sizeof *out);
    if (n_images && !m->has_vision) return modes_fail(err, MODES_E_INPUT, "%s: this model has no vision tower", m->dir);
    if (!n_images && m->has_vision && count_image_tokens(m, ids, n))
        return modes_fail(err, MODES_E_INPUT, "the prompt holds image tokens but no image was given");
    out->ids = ids;
    out->n = n;
    if (!(out->pos = malloc((size_t)m->family->n_pos_axes * n * sizeof *out->pos)))
        return modes_fail(err, MODES_E_INTERNAL, "out of memory");
    int rc = 0;
    for (int i = 0; !rc && i < n_images; i++)
        if (modes_image_tokens(m, &images[i]) < 0)
            rc = modes_fail(err, MODES_E_INPUT, "image %d: grid (%d, %d, %d) does not fit the model (merge size %d)", i,
                            images[i].grid_t, images[i].grid_h, images[i].grid_w, m->cfg.vision.merge);
    if (!rc) rc = positions(c, ids, n, images, n_images, out->pos, err);
    if (!rc && n_images) rc = m->family->encode_images(c, images, n_images, &out->vo, err);
    if (rc) prepared_free(out);
    return rc;
}

static void batch_of(const prepared_input *in, model_batch *b) {
    *b = (model_batch){.ids = in->ids, .n = in->n, .pos = in->pos, .vision = in->vo.embeds, .n_vision = in->vo.n_tokens,
                       .n_deepstack = in->vo.n_deepstack, .deepstack = in->vo.deepstack};
}

int model_run_prepared(modes_ctx *c, const prepared_input *in, int start_layer, const float *start_x, float **capture,
                       float *logits, int n_logits, modes_error *err) {
    model_batch b;
    batch_of(in, &b);
    b.start_layer = start_layer;
    b.start_x = start_x;
    b.capture = capture;
    return run_batch(c, &b, logits, n_logits, err);
}

/* Text alone needs no preparation that outlives the pass: its positions go to a buffer the context
 * keeps, so a decoded token allocates nothing. */
static int eval_text(modes_ctx *c, const int32_t *ids, int n, float *logits, int n_logits, modes_error *err) {
    const size_t need = (size_t)c->model->family->n_pos_axes * n;
    if (need > c->pos_cap) {
        int32_t *p = realloc(c->pos_buf, need * sizeof *p);
        if (!p) return modes_fail(err, MODES_E_INTERNAL, "out of memory");
        c->pos_buf = p;
        c->pos_cap = need;
    }
    int rc = positions(c, ids, n, NULL, 0, c->pos_buf, err);
    prepared_input in = {.ids = ids, .n = n, .pos = c->pos_buf};
    model_batch b;
    batch_of(&in, &b);
    return rc ? rc : run_batch(c, &b, logits, n_logits, err);
}

int modes_eval_images(modes_ctx *c, const int32_t *ids, int n, const modes_image *images, int n_images, float *logits,
                      int n_logits, modes_error *err) {
    MODES_REQUIRE(err, c);
    MODES_REQUIRE(err, ids);
    if (n_logits > 0) MODES_REQUIRE(err, logits);
    if (n_images > 0) MODES_REQUIRE(err, images);
    for (int i = 0; i < n_images; i++)
        if (!images[i].pixels) return modes_fail(err, MODES_E_INPUT, "%s: images[%d].pixels is NULL", __func__, i);
    int rc = check_ids(c, ids, n, n_logits, err);
    if (rc) return rc;
    if (!n_images && !(c->model->has_vision && count_image_tokens(c->model, ids, n)))
        return eval_text(c, ids, n, logits, n_logits, err);
    prepared_input in;
    if ((rc = model_prepare(c, ids, n, images, n_images, &in, err))) return rc;
    rc = model_run_prepared(c, &in, 0, NULL, NULL, logits, n_logits, err);
    prepared_free(&in);
    return rc;
}
