/* A model's policy binding (skip/policy.h): what determines its computation, taken from the parsed
 * config and the weights' index, never from config.json's bytes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/sha256.h"
#include "models/model.h"

static void add_field(policy_binding *b, const char *name, double v) {
    if (b->n_fields < BIND_MAX_FIELDS) {
        b->field[b->n_fields] = name;
        b->value[b->n_fields++] = v;
    }
}

/* The architecture fields, by their config.json names (text_config's without prefix, as users know
 * them); floats as the float the model computes with. */
static void add_fields(policy_binding *b, const model_config *c) {
    const text_config *t = &c->text;
    add_field(b, "hidden_size", t->hidden);
    add_field(b, "num_hidden_layers", t->n_layers);
    add_field(b, "num_attention_heads", t->n_heads);
    add_field(b, "num_key_value_heads", t->n_kv_heads);
    add_field(b, "head_dim", t->head_dim);
    add_field(b, "vocab_size", t->vocab);
    add_field(b, "intermediate_size", t->intermediate);
    add_field(b, "moe_intermediate_size", t->moe_intermediate);
    add_field(b, "num_experts", t->n_experts);
    add_field(b, "num_experts_per_tok", t->top_k);
    add_field(b, "decoder_sparse_step", t->decoder_sparse_step);
    add_field(b, "rms_norm_eps", t->rms_eps);
    add_field(b, "rope_theta", t->rope_theta);
    static const char *const mrope[3] = {"mrope_section[0]", "mrope_section[1]", "mrope_section[2]"};
    for (int i = 0; i < 3; i++) add_field(b, mrope[i], t->mrope_section[i]);
    add_field(b, "tie_word_embeddings", t->tie_embeddings);
    add_field(b, "image_token_id", c->image_token_id);
    add_field(b, "video_token_id", c->video_token_id);
    add_field(b, "vision_start_token_id", c->vision_start_id);
    add_field(b, "vision_end_token_id", c->vision_end_id);
    if (!c->vision.present) return;
    const vision_config *v = &c->vision;
    add_field(b, "vision_config.depth", v->depth);
    add_field(b, "vision_config.hidden_size", v->hidden);
    add_field(b, "vision_config.num_heads", v->n_heads);
    add_field(b, "vision_config.intermediate_size", v->intermediate);
    add_field(b, "vision_config.patch_size", v->patch);
    add_field(b, "vision_config.temporal_patch_size", v->temporal_patch);
    add_field(b, "vision_config.spatial_merge_size", v->merge);
    add_field(b, "vision_config.in_channels", v->in_channels);
    add_field(b, "vision_config.out_hidden_size", v->out_hidden);
    add_field(b, "vision_config.num_position_embeddings", v->num_position_embeddings);
    /* the deepstack taps as one number: index i sets bit i */
    double taps = 0;
    for (int i = 0; i < v->n_deepstack; i++) taps += (double)(1ull << (v->deepstack[i] & 63));
    add_field(b, "vision_config.deepstack_visual_indexes_mask", taps);
}

static uint32_t hash16(const char *s, size_t n) {
    uint8_t d[32];
    sha256(s, n, d);
    return (uint32_t)d[0] << 8 | d[1];
}

/* High 16 bits: the name; low 16: name, dtype and shape (policy_file.c tells the two apart). */
static uint32_t tensor_entry(const st_tensor *t) {
    char buf[512];
    int n = snprintf(buf, sizeof buf, "%s", st_dtype_name(t->dtype));
    for (int d = 0; d < t->ndim && n < (int)sizeof buf - 24; d++) n += snprintf(buf + n, sizeof buf - (size_t)n, " %lld", (long long)t->shape[d]);
    const size_t ln = strlen(t->name);
    char *s = malloc(ln + 1 + (size_t)n);
    if (!s) return hash16(t->name, ln) << 16;
    memcpy(s, t->name, ln);
    s[ln] = 0;
    memcpy(s + ln + 1, buf, (size_t)n);
    const uint32_t h = hash16(t->name, ln) << 16 | hash16(s, ln + 1 + (size_t)n);
    free(s);
    return h;
}

/* Sampled, not full: hashing every byte of a 60 GB checkpoint would take minutes at each load, while
 * SAMPLE bytes at the start, middle and end of every tensor tell checkpoints of one shape apart. */
#define SAMPLE 64
static int hash_weights(const st_archive *a, char hex[65], modes_error *err) {
    const size_t n = st_count(a);
    uint8_t *buf = malloc(n * 3 * SAMPLE + 1), d[32];
    if (!buf) return modes_fail(err, MODES_E_INTERNAL, "out of memory");
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        const st_tensor *t = st_tensor_at(a, i);
        const size_t take = t->nbytes < SAMPLE ? t->nbytes : SAMPLE;
        const size_t at[3] = {0, (t->nbytes - take) / 2, t->nbytes - take};
        for (int k = 0; k < 3 && take; k++) {
            memcpy(buf + len, (const uint8_t *)t->data + at[k], take);
            len += take;
        }
    }
    sha256(buf, len, d);
    sha256_hex(d, hex);
    free(buf);
    return 0;
}

int model_binding(const modes_model *m, policy_binding *b, modes_error *err) {
    memset(b, 0, sizeof *b);
    b->architecture = m->cfg.model_type;
    uint8_t zero[32] = {0};
    if (memcmp(m->cfg.sha256, zero, sizeof zero)) sha256_hex(m->cfg.sha256, b->config_sha256);
    add_fields(b, &m->cfg);
    if (!m->w.st) return 0; /* a synthetic model: its shapes are its config */
    const size_t n = st_count(m->w.st);
    b->tensor = malloc((n ? n : 1) * sizeof *b->tensor);
    b->tensor_name = malloc((n ? n : 1) * sizeof *b->tensor_name);
    if (!b->tensor || !b->tensor_name) {
        policy_binding_free(b);
        return modes_fail(err, MODES_E_INTERNAL, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        const st_tensor *t = st_tensor_at(m->w.st, i);
        b->tensor[i] = tensor_entry(t);
        b->tensor_name[i] = t->name;
    }
    b->n_tensors = n;
    int rc = hash_weights(m->w.st, b->weights, err);
    if (rc) policy_binding_free(b);
    return rc;
}
