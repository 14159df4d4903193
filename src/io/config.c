#include "io/config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/json.h"
#include "core/sha256.h"
#include "io/file.h"

#define CONFIG_MAX_BYTES (4u << 20)

/* An integer key within [lo, hi]; `required` keys have no HF default. */
int cfg_int(const cfg_reader *r, const char *key, int def, int required, int lo, int hi, int *out) {
    const json_node *v = json_get(r->obj, key);
    if (!v || v->type == JSON_NULL) {
        if (required)
            return modes_fail(r->err, MODES_E_INPUT, "%s: %s\"%s\" is missing", r->what, r->section, key);
        *out = def;
        return 0;
    }
    if (!json_is_int(v) || v->u.num < lo || v->u.num > hi)
        return modes_fail(r->err, MODES_E_INPUT, "%s: %s\"%s\" must be an integer in [%d, %d]", r->what, r->section,
                          key, lo, hi);
    *out = (int)v->u.num;
    return 0;
}

int cfg_double(const cfg_reader *r, const json_node *obj, const char *key, double def, double lo, double hi,
                      double *out) {
    const json_node *v = json_get(obj, key);
    if (!v || v->type == JSON_NULL) {
        *out = def;
        return 0;
    }
    if (v->type != JSON_NUMBER || !(v->u.num >= lo && v->u.num <= hi))
        return modes_fail(r->err, MODES_E_INPUT, "%s: %s\"%s\" must be a number in [%g, %g]", r->what, r->section, key,
                          lo, hi);
    *out = v->u.num;
    return 0;
}

int cfg_str_is(const json_node *v, const char *s) {
    return v && v->type == JSON_STRING && v->n == strlen(s) && !memcmp(v->u.str, s, v->n);
}

/* An int list such as mlp_only_layers or deepstack_visual_indexes. */
int cfg_int_list(const cfg_reader *r, const char *key, int *out, int cap, int *n, int lo, int hi) {
    *n = 0;
    const json_node *v = json_get(r->obj, key);
    if (!v || v->type == JSON_NULL) return 0;
    if (v->type != JSON_ARRAY || v->n > (size_t)cap)
        return modes_fail(r->err, MODES_E_INPUT, "%s: %s\"%s\" must be a list of at most %d integers", r->what,
                          r->section, key, cap);
    for (size_t i = 0; i < v->n; i++) {
        const json_node *e = json_at(v, i);
        if (!json_is_int(e) || e->u.num < lo || e->u.num > hi)
            return modes_fail(r->err, MODES_E_INPUT, "%s: %s\"%s\"[%zu] must be an integer in [%d, %d]", r->what,
                              r->section, key, i, lo, hi);
        out[i] = (int)e->u.num;
    }
    *n = (int)v->n;
    return 0;
}

static int parse_rope(const cfg_reader *r, int mrope, text_config *t) {
    /* v4 keeps rope_theta beside rope_scaling; v5 moves both into rope_parameters. */
    const json_node *rp = json_get(r->obj, "rope_parameters");
    if (!rp || rp->type == JSON_NULL) rp = json_get(r->obj, "rope_scaling");
    int rc = cfg_double(r, r->obj, "rope_theta", 10000.0, 1.0, 1e12, &t->rope_theta);
    if (rc) return rc;
    if ((!rp || rp->type == JSON_NULL) && !mrope) return 0;
    if (!rp || rp->type == JSON_NULL)
        return modes_fail(r->err, MODES_E_INPUT, "%s: %s\"rope_scaling\" with \"mrope_section\" is missing", r->what,
                          r->section);
    if (rp->type != JSON_OBJECT)
        return modes_fail(r->err, MODES_E_INPUT, "%s: %s\"rope_scaling\" must be an object", r->what, r->section);
    if (json_get(rp, "rope_theta") && (rc = cfg_double(r, rp, "rope_theta", t->rope_theta, 1.0, 1e12, &t->rope_theta)))
        return rc;
    const json_node *type = json_get(rp, "rope_type");
    if (!type) type = json_get(rp, "type");
    if (type && !cfg_str_is(type, "default"))
        return modes_fail(r->err, MODES_E_INPUT, "%s: %srope_type %.*s is not supported (only \"default\")", r->what,
                          r->section, type->type == JSON_STRING ? (int)type->n : 1,
                          type->type == JSON_STRING ? type->u.str : "?");
    if (!mrope) {
        if (json_get(rp, "mrope_section"))
            return modes_fail(r->err, MODES_E_INPUT, "%s: %s\"mrope_section\" is not supported by this model type (plain RoPE)",
                              r->what, r->section);
        return 0;
    }
    const json_node *inter = json_get(rp, "mrope_interleaved");
    if (inter && inter->type == JSON_FALSE)
        return modes_fail(r->err, MODES_E_INPUT,
                          "%s: %s\"mrope_interleaved\": false is not supported (Qwen3-VL interleaves M-RoPE)", r->what,
                          r->section);
    cfg_reader rr = *r;
    rr.obj = rp;
    int n;
    if ((rc = cfg_int_list(&rr, "mrope_section", t->mrope_section, 3, &n, 0, 4096))) return rc;
    if (n != 3 || t->mrope_section[0] + t->mrope_section[1] + t->mrope_section[2] != t->head_dim / 2)
        return modes_fail(r->err, MODES_E_INPUT, "%s: %s\"mrope_section\" must be 3 integers summing to head_dim/2 = %d",
                          r->what, r->section, t->head_dim / 2);
    /* The interleaved layout (docs/qwen3-vl-moe.md section 6.1) gives H and W every third slot up to
     * 3*section; that must fit. */
    if (3 * t->mrope_section[1] > t->head_dim / 2 || 3 * t->mrope_section[2] > t->head_dim / 2)
        return modes_fail(r->err, MODES_E_INPUT, "%s: %s\"mrope_section\" too large for interleaving", r->what,
                          r->section);
    return 0;
}

int config_parse_text(const cfg_reader *r, int mrope, text_config *t) {
    int rc;
    const json_node *act = json_get(r->obj, "hidden_act");
    if (act && !cfg_str_is(act, "silu"))
        return modes_fail(r->err, MODES_E_INPUT, "%s: %shidden_act must be \"silu\"", r->what, r->section);
    const json_node *bias = json_get(r->obj, "attention_bias");
    if (bias && bias->type == JSON_TRUE)
        return modes_fail(r->err, MODES_E_INPUT, "%s: %s\"attention_bias\": true is not supported", r->what,
                          r->section);
    if ((rc = cfg_int(r, "hidden_size", 0, 1, 1, 1 << 16, &t->hidden)) ||
        (rc = cfg_int(r, "num_hidden_layers", 0, 1, 1, CFG_MAX_LAYERS, &t->n_layers)) ||
        (rc = cfg_int(r, "num_attention_heads", 0, 1, 1, 1024, &t->n_heads)) ||
        (rc = cfg_int(r, "num_key_value_heads", t->n_heads, 0, 1, 1024, &t->n_kv_heads)) ||
        (rc = cfg_int(r, "head_dim", t->hidden / t->n_heads, 0, 2, 1024, &t->head_dim)) ||
        (rc = cfg_int(r, "vocab_size", 0, 1, 1, 1 << 24, &t->vocab)) ||
        (rc = cfg_int(r, "intermediate_size", 0, 0, 0, 1 << 20, &t->intermediate)) ||
        (rc = cfg_int(r, "moe_intermediate_size", 0, 1, 1, 1 << 20, &t->moe_intermediate)) ||
        (rc = cfg_int(r, "num_experts_per_tok", 0, 1, 1, 1024, &t->top_k)) ||
        (rc = cfg_int(r, "decoder_sparse_step", 1, 0, 1, CFG_MAX_LAYERS, &t->decoder_sparse_step)) ||
        (rc = cfg_int(r, "max_position_embeddings", 128000, 0, 1, 1 << 30, &t->max_position)))
        return rc;
    if (json_get(r->obj, "num_experts"))
        rc = cfg_int(r, "num_experts", 0, 1, 1, 1 << 16, &t->n_experts);
    else
        rc = cfg_int(r, "num_local_experts", 0, 1, 1, 1 << 16, &t->n_experts);
    if (rc) return rc;
    if (t->n_heads % t->n_kv_heads)
        return modes_fail(r->err, MODES_E_INPUT, "%s: %snum_attention_heads (%d) is not a multiple of num_key_value_heads (%d)",
                          r->what, r->section, t->n_heads, t->n_kv_heads);
    if (t->head_dim % 2)
        return modes_fail(r->err, MODES_E_INPUT, "%s: %shead_dim must be even", r->what, r->section);
    if (t->top_k > t->n_experts)
        return modes_fail(r->err, MODES_E_INPUT, "%s: %snum_experts_per_tok (%d) exceeds the number of experts (%d)",
                          r->what, r->section, t->top_k, t->n_experts);
    double eps;
    if ((rc = cfg_double(r, r->obj, "rms_norm_eps", 1e-6, 0.0, 1.0, &eps))) return rc;
    t->rms_eps = (float)eps;
    int b;
    modes_error *e = r->err;
    if ((rc = json_get_bool(r->obj, "norm_topk_prob", 1, &b, r->what, e))) return rc;
    t->norm_topk_prob = b;
    if ((rc = json_get_bool(r->obj, "tie_word_embeddings", 0, &b, r->what, e))) return rc;
    t->tie_embeddings = b;
    int dense[CFG_MAX_LAYERS], n_dense;
    if ((rc = cfg_int_list(r, "mlp_only_layers", dense, CFG_MAX_LAYERS, &n_dense, 0, t->n_layers - 1))) return rc;
    for (int l = 0; l < t->n_layers; l++) t->is_moe[l] = (l + 1) % t->decoder_sparse_step == 0;
    for (int i = 0; i < n_dense; i++) t->is_moe[dense[i]] = 0;
    for (int l = 0; l < t->n_layers; l++)
        if (!t->is_moe[l] && t->intermediate <= 0)
            return modes_fail(r->err, MODES_E_INPUT, "%s: %slayer %d is dense but \"intermediate_size\" is missing",
                              r->what, r->section, l);
    return parse_rope(r, mrope, t);
}

int config_parse_qwen3vl_vision(const cfg_reader *r, vision_config *v) {
    int rc;
    const json_node *act = json_get(r->obj, "hidden_act");
    if (act && !cfg_str_is(act, "gelu_pytorch_tanh"))
        return modes_fail(r->err, MODES_E_INPUT, "%s: %shidden_act must be \"gelu_pytorch_tanh\"", r->what, r->section);
    /* Defaults are those of the reference's Qwen3VLMoeVisionConfig. */
    if ((rc = cfg_int(r, "depth", 27, 0, 1, 1024, &v->depth)) ||
        (rc = cfg_int(r, "hidden_size", 1152, 0, 1, 1 << 16, &v->hidden)) ||
        (rc = cfg_int(r, "num_heads", 16, 0, 1, 1024, &v->n_heads)) ||
        (rc = cfg_int(r, "intermediate_size", 4304, 0, 1, 1 << 20, &v->intermediate)) ||
        (rc = cfg_int(r, "patch_size", 16, 0, 1, 1024, &v->patch)) ||
        (rc = cfg_int(r, "temporal_patch_size", 2, 0, 1, 64, &v->temporal_patch)) ||
        (rc = cfg_int(r, "spatial_merge_size", 2, 0, 1, 64, &v->merge)) ||
        (rc = cfg_int(r, "in_channels", 3, 0, 1, 16, &v->in_channels)) ||
        (rc = cfg_int(r, "out_hidden_size", 3584, 0, 1, 1 << 16, &v->out_hidden)) ||
        (rc = cfg_int(r, "num_position_embeddings", 2304, 0, 1, 1 << 24, &v->num_position_embeddings)))
        return rc;
    if (v->hidden % v->n_heads)
        return modes_fail(r->err, MODES_E_INPUT, "%s: %shidden_size is not a multiple of num_heads", r->what, r->section);
    int side = 1;
    while (side * side < v->num_position_embeddings) side++;
    if (side * side != v->num_position_embeddings)
        return modes_fail(r->err, MODES_E_INPUT, "%s: %snum_position_embeddings must be a square", r->what, r->section);
    if ((rc = cfg_int_list(r, "deepstack_visual_indexes", v->deepstack, CFG_MAX_DEEPSTACK, &v->n_deepstack, 0,
                           v->depth - 1)))
        return rc;
    v->present = 1;
    return 0;
}

int config_add_eos(model_config *c, const json_node *v, const char *what, modes_error *err) {
    if (!v || v->type == JSON_NULL) return 0;
    size_t n = v->type == JSON_ARRAY ? v->n : 1;
    for (size_t i = 0; i < n; i++) {
        const json_node *e = v->type == JSON_ARRAY ? json_at(v, i) : v;
        if (!json_is_int(e) || e->u.num < 0 || e->u.num > INT32_MAX)
            return modes_fail(err, MODES_E_INPUT,
                              "%s: \"eos_token_id\" must be a token id (0 to %d) or a list of them", what, INT32_MAX);
        int id = (int)e->u.num, seen = 0;
        for (int j = 0; j < c->n_eos; j++) seen |= c->eos[j] == id;
        if (!seen && c->n_eos < CFG_MAX_EOS) c->eos[c->n_eos++] = id;
    }
    return 0;
}

static int load_generation_config(const char *dir, model_config *c, modes_error *err) {
    char *path = path_join(dir, "generation_config.json"), *text = NULL;
    size_t len;
    json_doc *doc = NULL;
    int rc = 0;
    if (!path) return modes_fail(err, MODES_E_INTERNAL, "out of memory");
    modes_error ignored;
    if (read_file(path, CONFIG_MAX_BYTES, &text, &len, &ignored) == 0) { /* the file is optional */
        json_limits lim = {.max_bytes = CONFIG_MAX_BYTES, .max_depth = 16};
        rc = json_parse(text, len, &lim, path, &doc, err);
        if (!rc && json_root(doc)->type != JSON_OBJECT) rc = modes_fail(err, MODES_E_INPUT, "%s: not a JSON object", path);
        if (!rc) rc = config_add_eos(c, json_get(json_root(doc), "eos_token_id"), path, err);
    }
    json_free(doc);
    free(text);
    free(path);
    return rc;
}

int config_load(const char *dir, config_parse_fn parse, void *user, model_config *cfg, modes_error *err) {
    memset(cfg, 0, sizeof *cfg);
    char *path = path_join(dir, "config.json"), *text = NULL;
    if (!path) return modes_fail(err, MODES_E_INTERNAL, "out of memory");
    size_t len;
    json_doc *doc = NULL;
    int rc = read_file(path, CONFIG_MAX_BYTES, &text, &len, err);
    if (!rc) {
        json_limits lim = {.max_bytes = CONFIG_MAX_BYTES, .max_depth = 16, .max_nodes = 1 << 20};
        rc = json_parse(text, len, &lim, path, &doc, err);
    }
    if (!rc && json_root(doc)->type != JSON_OBJECT) rc = modes_fail(err, MODES_E_INPUT, "%s: not a JSON object", path);
    if (!rc) rc = parse(json_root(doc), path, cfg, user, err);
    if (!rc) sha256(text, len, cfg->sha256);
    if (!rc) rc = load_generation_config(dir, cfg, err);
    json_free(doc);
    free(text);
    free(path);
    return rc;
}
