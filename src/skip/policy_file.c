/* The policy file (docs/modes-method.md section 9): reading with full validation. Unknown keys are
 * ignored; a wrong layer count, a non-finite number or a binding to another model (architecture fields,
 * tensors, sampled weights; or, in files written before those, the config.json hash) is an error. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/json.h"
#include "io/file.h"
#include "skip/policy.h"

#define POLICY_MAX_BYTES (64u << 20)

static int str_eq(const json_node *v, const char *s) {
    return v && v->type == JSON_STRING && v->n == strlen(s) && !memcmp(v->u.str, s, v->n);
}

static int read_float(const json_node *v, float *out) {
    if (!v || v->type != JSON_NUMBER || !isfinite(v->u.num) || v->u.num < 0 || v->u.num > 1e6) return -1;
    *out = (float)v->u.num;
    return 0;
}

/* A list of L non-negative numbers, normalised to sum to 1 (alpha~ of docs/modes-method.md section 2). */
static int read_alpha(const char *path, const json_node *arr, const char *key, int L, float *out, modes_error *err) {
    if (!arr || arr->type != JSON_ARRAY || arr->n != (size_t)L)
        return modes_fail(err, MODES_E_INPUT, "%s: alpha.%s must be a list of %d numbers (one per MoE layer)", path, key, L);
    double sum = 0;
    for (int l = 0; l < L; l++) {
        if (read_float(json_at(arr, (size_t)l), &out[l]))
            return modes_fail(err, MODES_E_INPUT, "%s: alpha.%s[%d] must be a finite number >= 0", path, key, l);
        sum += out[l];
    }
    if (!(sum > 0)) return modes_fail(err, MODES_E_INPUT, "%s: alpha.%s sums to zero", path, key);
    for (int l = 0; l < L; l++) out[l] = (float)(out[l] / sum);
    return 0;
}

static int read_pair(const char *path, const json_node *v, const char *key, float *a, float *b, modes_error *err) {
    if (v && v->type == JSON_NUMBER) {
        if (read_float(v, a)) return modes_fail(err, MODES_E_INPUT, "%s: %s must be a finite number >= 0", path, key);
        *b = *a;
        return 0;
    }
    if (!v || v->type != JSON_OBJECT || read_float(json_get(v, "text"), a) || read_float(json_get(v, "vision"), b))
        return modes_fail(err, MODES_E_INPUT, "%s: %s must be a number or {\"text\": x, \"vision\": y} of finite numbers >= 0",
                          path, key);
    return 0;
}

void policy_binding_free(policy_binding *b) {
    free(b->tensor);
    free((void *)b->tensor_name);
    memset(b, 0, sizeof *b);
}

/* A tensor's entry: a 16-bit hash of its name, then one of its name, dtype and shape, so a refusal can
 * tell a renamed tensor from a reshaped one. */
static int read_hex32(const json_node *v, uint32_t *out) {
    if (!v || v->type != JSON_STRING || v->n != 8) return -1;
    uint32_t x = 0;
    for (int i = 0; i < 8; i++) {
        const char c = v->u.str[i];
        const int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0) return -1;
        x = x << 4 | (uint32_t)d;
    }
    *out = x;
    return 0;
}

static int check_fields(const char *path, const json_node *cfg, const policy_binding *b, modes_error *err) {
    if (cfg->type != JSON_OBJECT) return modes_fail(err, MODES_E_INPUT, "%s: model.config must be an object", path);
    for (int i = 0; i < b->n_fields; i++) { /* fields the policy does not name are not held against it */
        const json_node *v = json_get(cfg, b->field[i]);
        if (v && v->type != JSON_NUMBER)
            return modes_fail(err, MODES_E_INPUT, "%s: model.config.%s must be a number", path, b->field[i]);
        if (v && v->u.num != b->value[i])
            return modes_fail(err, MODES_E_INPUT, "%s: made for a model with %s=%.9g, this model has %.9g", path,
                              b->field[i], v->u.num, b->value[i]);
    }
    return 0;
}

static int check_tensors(const char *path, const json_node *t, const policy_binding *b, modes_error *err) {
    if (t->type != JSON_ARRAY) return modes_fail(err, MODES_E_INPUT, "%s: model.tensors must be a list", path);
    for (size_t i = 0; i < t->n && i < b->n_tensors; i++) {
        uint32_t h;
        if (read_hex32(json_at(t, i), &h))
            return modes_fail(err, MODES_E_INPUT, "%s: model.tensors[%zu] must be 8 lowercase hex digits", path, i);
        if (h == b->tensor[i]) continue;
        if (h >> 16 != b->tensor[i] >> 16)
            return modes_fail(err, MODES_E_INPUT, "%s: made for a model whose tensor names differ (this model's "
                              "tensor %zu is %s)", path, i, b->tensor_name[i]);
        return modes_fail(err, MODES_E_INPUT, "%s: tensor %s: its dtype or shape differs from the model the policy was "
                          "made for", path, b->tensor_name[i]);
    }
    if (t->n != b->n_tensors)
        return modes_fail(err, MODES_E_INPUT, "%s: made for a model with %zu tensors, this model has %zu", path, t->n,
                          b->n_tensors);
    return 0;
}

/* Policies written before the architecture binding hold config_sha256 only: checked where it is all
 * there is (a reformatted config.json refuses those; search or calibrate again to bind them anew). */
static int check_binding(const char *path, const json_node *model, const policy_binding *b, modes_error *err) {
    const json_node *arch = json_get(model, "architecture"), *cfg = json_get(model, "config");
    const json_node *tensors = json_get(model, "tensors"), *weights = json_get(model, "weights_sampled_sha256");
    if (arch && b->architecture && arch->type == JSON_STRING && !str_eq(arch, b->architecture))
        return modes_fail(err, MODES_E_INPUT, "%s: made for a %.*s model, this one is %s", path, (int)(arch->n > 64 ? 64 : arch->n),
                          arch->u.str, b->architecture);
    if (!cfg && !tensors && !weights) {
        const json_node *hash = json_get(model, "config_sha256");
        if (b->config_sha256[0] && hash && !str_eq(hash, b->config_sha256))
            return modes_fail(err, MODES_E_INPUT, "%s: made for another model (config_sha256 differs from this config.json)",
                              path);
        return 0;
    }
    int rc = cfg ? check_fields(path, cfg, b, err) : 0;
    if (!rc && tensors) rc = check_tensors(path, tensors, b, err);
    if (!rc && weights && b->weights[0] && !str_eq(weights, b->weights))
        rc = modes_fail(err, MODES_E_INPUT, "%s: made for a model with the same architecture and tensors but other "
                        "weights (the sampled weight hash differs)", path);
    return rc;
}

static int read_model(const char *path, const json_node *root, int L, const policy_binding *b, modes_error *err) {
    const json_node *model = json_get(root, "model");
    if (!model || model->type != JSON_OBJECT) return modes_fail(err, MODES_E_INPUT, "%s: \"model\" is missing", path);
    const json_node *layers = json_get(model, "moe_layers");
    if (!json_is_int(layers) || layers->u.num != L)
        return modes_fail(err, MODES_E_INPUT, "%s: made for a model with %s MoE layers, this one has %d", path,
                          json_is_int(layers) ? "a different number of" : "an unknown number of", L);
    return b ? check_binding(path, model, b, err) : 0;
}

static int read_method(const char *path, const json_node *root, skip_method *m, modes_error *err) {
    const json_node *v = json_get(root, "method");
    for (int i = SKIP_NONE; i <= SKIP_NAEE; i++)
        if (str_eq(v, policy_method_name((skip_method)i))) {
            *m = (skip_method)i;
            return 0;
        }
    return modes_fail(err, MODES_E_INPUT,
                      "%s: \"method\" must be one of none, modes, threshold, gmlg-threshold, dmt, topk, naee", path);
}

static int read_policy(const char *path, const json_node *root, int L, const policy_binding *b, modes_policy **out,
                       modes_error *err) {
    if (root->type != JSON_OBJECT || !str_eq(json_get(root, "format"), "modes-policy"))
        return modes_fail(err, MODES_E_INPUT, "%s: not a modes policy (\"format\": \"modes-policy\" missing)", path);
    const json_node *ver = json_get(root, "version");
    if (!json_is_int(ver) || ver->u.num != 1)
        return modes_fail(err, MODES_E_INPUT, "%s: policy version must be 1", path);
    skip_method m = SKIP_NONE;
    int rc = read_model(path, root, L, b, err);
    if (!rc) rc = read_method(path, root, &m, err);
    if (rc) return rc;
    modes_policy *p = policy_new(m, L);
    if (!p) return modes_fail(err, MODES_E_INTERNAL, "out of memory");
    const json_node *alpha = json_get(root, "alpha"), *tau = json_get(root, "tau"), *beta = json_get(root, "beta");
    const json_node *k = json_get(root, "k");
    if (alpha) {
        rc = read_alpha(path, json_get(alpha, "text"), "text", L, p->alpha[0], err);
        if (!rc) rc = read_alpha(path, json_get(alpha, "vision"), "vision", L, p->alpha[1], err);
    } else if (m == SKIP_MODES || m == SKIP_THRESHOLD_GMLG) {
        rc = modes_fail(err, MODES_E_INPUT, "%s: method %s needs \"alpha\"", path, policy_method_name(m));
    }
    if (!rc && (tau || m == SKIP_MODES || m == SKIP_THRESHOLD || m == SKIP_DMT || m == SKIP_THRESHOLD_GMLG))
        rc = read_pair(path, tau, "tau", &p->tau[0], &p->tau[1], err);
    if (!rc && (k || m == SKIP_TOPK)) {
        float a, b;
        rc = read_pair(path, k, "k", &a, &b, err);
        if (!rc && (a < 1 || b < 1 || a != floorf(a) || b != floorf(b) || a > 1024 || b > 1024))
            rc = modes_fail(err, MODES_E_INPUT, "%s: k must be whole numbers from 1 to 1024", path);
        if (!rc) { /* a and b are unset when read_pair failed */
            p->k[0] = (int)a;
            p->k[1] = (int)b;
        }
    }
    if (!rc && (beta || m == SKIP_NAEE)) {
        if (beta && beta->type == JSON_ARRAY && beta->n == (size_t)L) {
            for (int l = 0; l < L && !rc; l++)
                if (read_float(json_at(beta, (size_t)l), &p->beta[l]) || p->beta[l] > 1)
                    rc = modes_fail(err, MODES_E_INPUT, "%s: beta[%d] must be in [0, 1]", path, l);
        } else {
            float b1 = 0;
            if (read_float(beta, &b1) || b1 > 1)
                rc = modes_fail(err, MODES_E_INPUT, "%s: beta must be a number in [0, 1] or a list of %d", path, L);
            for (int l = 0; l < L && !rc; l++) p->beta[l] = b1;
        }
    }
    if (rc) {
        modes_policy_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

int policy_load(const char *path, int n_layers, const policy_binding *bind, modes_policy **out, modes_error *err) {
    *out = NULL;
    char *text;
    size_t len;
    int rc = read_file(path, POLICY_MAX_BYTES, &text, &len, err);
    if (rc) return rc;
    json_doc *doc = NULL;
    json_limits lim = {.max_bytes = POLICY_MAX_BYTES, .max_depth = 16};
    rc = json_parse(text, len, &lim, path, &doc, err);
    if (!rc) rc = read_policy(path, json_root(doc), n_layers, bind, out, err);
    if (!rc && !((*out)->json = malloc(len + 1))) {
        modes_policy_free(*out);
        *out = NULL;
        rc = modes_fail(err, MODES_E_INTERNAL, "out of memory");
    }
    if (!rc) memcpy((*out)->json, text, len + 1);
    json_free(doc);
    free(text);
    return rc;
}

static void put_floats(strbuf *sb, const float *v, int n) {
    sb_puts(sb, "[");
    for (int i = 0; i < n; i++) {
        if (i) sb_puts(sb, ", ");
        sb_json_number(sb, v[i]);
    }
    sb_puts(sb, "]");
}

static void put_key_num(strbuf *sb, const char *key, double v) {
    sb_printf(sb, "\"%s\": ", key);
    sb_json_number(sb, v);
}

static void put_key_str(strbuf *sb, const char *key, const char *v) {
    sb_printf(sb, "\"%s\": ", key);
    sb_json_string(sb, v, strlen(v));
}

static void put_method_fields(strbuf *sb, const modes_policy *p) {
    const int L = p->n_layers;
    if (L > 0) {
        sb_puts(sb, ",\n  \"alpha\": {\"text\": ");
        put_floats(sb, p->alpha[0], L);
        sb_puts(sb, ", \"vision\": ");
        put_floats(sb, p->alpha[1], L);
        sb_puts(sb, "}");
    }
    sb_puts(sb, ",\n  \"tau\": {");
    put_key_num(sb, "text", p->tau[0]);
    sb_puts(sb, ", ");
    put_key_num(sb, "vision", p->tau[1]);
    sb_puts(sb, "}");
    if (p->method == SKIP_TOPK) sb_printf(sb, ",\n  \"k\": {\"text\": %d, \"vision\": %d}", p->k[0], p->k[1]);
    if (p->method == SKIP_NAEE && L > 0) {
        sb_puts(sb, ",\n  \"beta\": ");
        put_floats(sb, p->beta, L);
    }
}

static void put_meta(strbuf *sb, const policy_meta *m) {
    if (m->target_skip >= 0) {
        sb_puts(sb, ",\n  ");
        put_key_num(sb, "target_skip", m->target_skip);
    }
    if (m->has_achieved) {
        sb_puts(sb, ",\n  \"achieved\": {");
        put_key_num(sb, "skip", m->skip);
        sb_puts(sb, ", ");
        put_key_num(sb, "skip_text", m->skip_text);
        sb_puts(sb, ", ");
        put_key_num(sb, "skip_vision", m->skip_vision);
        sb_puts(sb, ", ");
        put_key_num(sb, "kl", m->kl);
        sb_printf(sb, ", \"tokens\": %lld", m->tokens);
        if (m->per_layer) {
            sb_puts(sb, ", \"per_layer\": [");
            for (int l = 0; l < m->moe_layers; l++) {
                if (l) sb_puts(sb, ", ");
                sb_json_number(sb, m->per_layer[l]);
            }
            sb_puts(sb, "]");
        }
        sb_puts(sb, "}");
    }
    if (m->data) {
        sb_puts(sb, ",\n  \"calibration\": {");
        put_key_str(sb, "data", m->data);
        sb_printf(sb, ", \"examples\": %d, \"answer_tokens\": %lld", m->examples, m->answer_tokens);
        if (m->removal) sb_puts(sb, ", "), put_key_str(sb, "removal", m->removal);
        if (m->granularity) sb_puts(sb, ", "), put_key_str(sb, "granularity", m->granularity);
        if (m->layer_evals)
            sb_printf(sb, ", \"layer_evaluations\": %lld, \"naive_layer_evaluations\": %lld", m->layer_evals,
                      m->naive_layer_evals);
        sb_puts(sb, "}");
    }
    if (m->grid > 0) {
        sb_printf(sb, ",\n  \"search\": {\"grid\": %d, \"caps\": {", m->grid);
        put_key_num(sb, "text", m->cap_t);
        sb_puts(sb, ", ");
        put_key_num(sb, "vision", m->cap_v);
        sb_printf(sb, "}, \"real_passes\": %d", m->real_passes);
        if (m->search_mode) sb_puts(sb, ", "), put_key_str(sb, "mode", m->search_mode);
        sb_puts(sb, ",\n    \"trace\": [");
        for (int i = 0; i < m->n_trace; i++) {
            const search_point *t = &m->trace[i];
            const double v[6] = {t->q, t->p, t->tau_t, t->tau_v, t->f, t->g};
            sb_puts(sb, i ? ",\n      [" : "\n      [");
            for (int k = 0; k < 6; k++) {
                if (k) sb_puts(sb, ", ");
                sb_json_number(sb, v[k]);
            }
            sb_puts(sb, "]");
        }
        sb_puts(sb, "]}");
    }
}

/* The binding fields of the "model" object (see check_binding). */
static void put_binding(strbuf *sb, const policy_binding *b) {
    sb_puts(sb, ",\n    \"config\": {");
    for (int i = 0; i < b->n_fields; i++) {
        if (i) sb_puts(sb, ", ");
        put_key_num(sb, b->field[i], b->value[i]);
    }
    sb_puts(sb, "},\n    \"tensors\": [");
    for (size_t i = 0; i < b->n_tensors; i++) sb_printf(sb, i ? ", \"%08x\"" : "\"%08x\"", (unsigned)b->tensor[i]);
    sb_puts(sb, "]");
    if (b->weights[0]) sb_puts(sb, ",\n    "), put_key_str(sb, "weights_sampled_sha256", b->weights);
}

int policy_save(const char *path, const modes_policy *p, const policy_meta *meta, modes_error *err) {
    strbuf sb = {0};
    sb_puts(&sb, "{\n  \"format\": \"modes-policy\", \"version\": 1,\n  \"model\": {");
    put_key_str(&sb, "architecture", meta->architecture ? meta->architecture : "qwen3_vl_moe");
    policy_meta mm = *meta;
    mm.moe_layers = p->n_layers;
    meta = &mm;
    sb_printf(&sb, ", \"moe_layers\": %d, \"experts\": %d, \"top_k\": %d", p->n_layers, meta->experts, meta->top_k);
    if (meta->binding) put_binding(&sb, meta->binding);
    else if (meta->config_sha256) sb_puts(&sb, ", "), put_key_str(&sb, "config_sha256", meta->config_sha256);
    sb_puts(&sb, "},\n  ");
    put_key_str(&sb, "method", policy_method_name(p->method));
    put_method_fields(&sb, p);
    put_meta(&sb, meta);
    sb_printf(&sb, ",\n  \"created_by\": \"modes %s\"\n}\n", MODES_VERSION);
    int rc = sb.failed ? modes_fail(err, MODES_E_INTERNAL, "out of memory") : write_file_atomic(path, sb.data, sb.len, err);
    sb_free(&sb);
    return rc;
}
