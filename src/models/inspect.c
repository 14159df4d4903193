/* What a model folder holds, read from its files without running anything (`modes inspect`):
 * architecture, shapes, parameter and byte counts by part, dtypes, tokenizer. The folder is validated
 * exactly as loading it for a run does (model_check), so a folder this accepts loads, and one it
 * refuses gets the message loading would give. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/json.h"
#include "core/sha256.h"
#include "io/safetensors.h"
#include "models/model.h"
#include "text/tokenizer.h"

enum { G_VISION, G_EMBED, G_HEAD, G_ATTN, G_ROUTER, G_EXPERTS, G_NORM, G_OTHER, G_N };
static const char *GROUP_NAMES[G_N] = {"vision tower", "embeddings", "lm_head", "attention", "routers",
                                       "experts", "norms", "other"};
static const char *GROUP_KEYS[G_N] = {"vision_tower", "embeddings", "lm_head", "attention", "routers",
                                      "experts", "norms", "other"};

static int group_of(const char *name) {
    if (strstr(name, "visual.")) return G_VISION;
    if (strstr(name, "embed_tokens")) return G_EMBED;
    if (strstr(name, "lm_head")) return G_HEAD;
    if (strstr(name, "mlp.experts")) return G_EXPERTS;
    if (strstr(name, "mlp.gate.weight")) return G_ROUTER;
    if (strstr(name, "norm")) return G_NORM;
    if (strstr(name, "self_attn")) return G_ATTN;
    return G_OTHER;
}

/* What the report says, gathered once for both the text and the JSON form. */
typedef struct {
    double params[G_N], bytes[G_N], total, total_bytes, per_token;
    int dtypes[ST_BOOL + 1];
    size_t n_tensors;
    int n_moe;
    size_t tok_vocab;
    int tok_special, has_tok;
    char hex[65];
} inspect_report;

static void gather(const modes_model *m, inspect_report *r) {
    const model_config *c = &m->cfg;
    memset(r, 0, sizeof *r);
    sha256_hex(c->sha256, r->hex);
    for (int l = 0; l < c->text.n_layers; l++) r->n_moe += c->text.is_moe[l];
    r->n_tensors = st_count(m->w.st);
    for (size_t i = 0; i < r->n_tensors; i++) {
        const st_tensor *t = st_tensor_at(m->w.st, i);
        const int g = group_of(t->name);
        r->params[g] += (double)t->numel;
        r->bytes[g] += (double)t->nbytes;
        r->dtypes[t->dtype]++;
    }
    for (int g = 0; g < G_N; g++) {
        r->total += r->params[g];
        r->total_bytes += r->bytes[g];
    }
    r->per_token = r->params[G_EMBED] / c->text.vocab + r->params[G_HEAD] + r->params[G_ATTN] + r->params[G_ROUTER] +
                   r->params[G_NORM] + r->params[G_EXPERTS] * c->text.top_k / c->text.n_experts;
    if ((r->has_tok = m->tok != NULL)) {
        r->tok_vocab = tok_vocab_size(m->tok);
        for (int32_t id = 0; (size_t)id < r->tok_vocab; id++) r->tok_special += tok_is_special(m->tok, id);
    }
}

static void print_text(strbuf *sb, const char *dir, const modes_model *m, const inspect_report *r) {
    const model_config *c = &m->cfg;
    const text_config *t = &c->text;
    sb_printf(sb, "folder         %s\n", dir);
    sb_printf(sb, "architecture   %s (config sha256 %.16s...)\n", c->model_type, r->hex);
    sb_printf(sb, "text           %d layers (%d MoE), hidden %d, heads %d/%d kv, head_dim %d, vocab %d\n", t->n_layers,
           r->n_moe, t->hidden, t->n_heads, t->n_kv_heads, t->head_dim, t->vocab);
    sb_printf(sb, "experts        %d per layer, top-%d, width %d\n", t->n_experts, t->top_k, t->moe_intermediate);
    if (t->mrope_section[0] + t->mrope_section[1] + t->mrope_section[2])
        sb_printf(sb, "rope           theta %g, mrope_section [%d, %d, %d] interleaved\n", t->rope_theta,
                  t->mrope_section[0], t->mrope_section[1], t->mrope_section[2]);
    else
        sb_printf(sb, "rope           theta %g, 1-D\n", t->rope_theta);
    if (c->vision.present) {
        const vision_config *v = &c->vision;
        sb_printf(sb, "vision         depth %d, hidden %d, heads %d, patch %d, merge %d, out %d, deepstack [", v->depth,
               v->hidden, v->n_heads, v->patch, v->merge, v->out_hidden);
        for (int i = 0; i < v->n_deepstack; i++) sb_printf(sb, i ? ", %d" : "%d", v->deepstack[i]);
        sb_printf(sb, "]\n");
    }
    sb_printf(sb, "special ids    image %d, vision_start %d, vision_end %d, eos", c->image_token_id, c->vision_start_id,
           c->vision_end_id);
    for (int i = 0; i < c->n_eos; i++) sb_printf(sb, " %d", c->eos[i]);
    sb_printf(sb, "\n");
    sb_printf(sb, "\n%-14s %14s %12s\n", "part", "parameters", "MiB");
    for (int g = 0; g < G_N; g++)
        if (r->params[g]) sb_printf(sb, "%-14s %14.0f %12.1f\n", GROUP_NAMES[g], r->params[g], r->bytes[g] / 1048576.0);
    sb_printf(sb, "%-14s %14.0f %12.1f\n", "total", r->total, r->total_bytes / 1048576.0);
    sb_printf(sb, "active per text token (without vision): %.0f parameters\n", r->per_token);
    sb_printf(sb, "tensors        %zu:", r->n_tensors);
    for (int d = 0; d <= ST_BOOL; d++)
        if (r->dtypes[d]) sb_printf(sb, " %d %s", r->dtypes[d], st_dtype_name((st_dtype)d));
    sb_printf(sb, "\n");
    if (r->has_tok) sb_printf(sb, "tokenizer      %zu tokens, %d special\n", r->tok_vocab, r->tok_special);
    else sb_printf(sb, "tokenizer      none (no tokenizer.json: forward only)\n");
}

static void json_ints(strbuf *sb, const char *key, const int *v, int n) {
    sb_printf(sb, "\"%s\": [", key);
    for (int i = 0; i < n; i++) sb_printf(sb, i ? ", %d" : "%d", v[i]);
    sb_puts(sb, "]");
}

static void print_json(strbuf *sb, const char *dir, const modes_model *m, const inspect_report *r) {
    const model_config *c = &m->cfg;
    const text_config *t = &c->text;
    sb_puts(sb, "{\"folder\": ");
    sb_json_string(sb, dir, strlen(dir));
    sb_puts(sb, ", \"architecture\": ");
    sb_json_string(sb, c->model_type, strlen(c->model_type));
    sb_printf(sb, ", \"config_sha256\": \"%s\", ", r->hex);
    sb_printf(sb, "\"text\": {\"layers\": %d, \"moe_layers\": %d, \"hidden\": %d, \"heads\": %d, \"kv_heads\": %d, "
                   "\"head_dim\": %d, \"vocab\": %d, \"experts\": %d, \"top_k\": %d, \"moe_intermediate\": %d, "
                   "\"rope_theta\": ",
              t->n_layers, r->n_moe, t->hidden, t->n_heads, t->n_kv_heads, t->head_dim, t->vocab, t->n_experts,
              t->top_k, t->moe_intermediate);
    sb_json_number(sb, t->rope_theta);
    sb_puts(sb, ", ");
    json_ints(sb, "mrope_section", t->mrope_section, 3);
    sb_puts(sb, "}, \"vision\": ");
    if (c->vision.present) {
        const vision_config *v = &c->vision;
        sb_printf(sb, "{\"depth\": %d, \"hidden\": %d, \"heads\": %d, \"patch\": %d, \"merge\": %d, \"out_hidden\": %d, ",
                  v->depth, v->hidden, v->n_heads, v->patch, v->merge, v->out_hidden);
        json_ints(sb, "deepstack", v->deepstack, v->n_deepstack);
        sb_puts(sb, "}");
    } else {
        sb_puts(sb, "null");
    }
    sb_printf(sb, ", \"special_ids\": {\"image\": %d, \"vision_start\": %d, \"vision_end\": %d, ", c->image_token_id,
              c->vision_start_id, c->vision_end_id);
    json_ints(sb, "eos", c->eos, c->n_eos);
    sb_puts(sb, "}, \"parts\": {");
    for (int g = 0, first = 1; g < G_N; g++) {
        if (!r->params[g]) continue;
        sb_printf(sb, "%s\"%s\": {\"parameters\": %.0f, \"bytes\": %.0f}", first ? "" : ", ", GROUP_KEYS[g],
                  r->params[g], r->bytes[g]);
        first = 0;
    }
    sb_printf(sb, "}, \"parameters\": %.0f, \"bytes\": %.0f, \"active_per_text_token\": %.0f, \"tensors\": %zu, "
                   "\"dtypes\": {",
              r->total, r->total_bytes, r->per_token, r->n_tensors);
    for (int d = 0, first = 1; d <= ST_BOOL; d++) {
        if (!r->dtypes[d]) continue;
        sb_printf(sb, "%s\"%s\": %d", first ? "" : ", ", st_dtype_name((st_dtype)d), r->dtypes[d]);
        first = 0;
    }
    sb_puts(sb, "}, \"tokenizer\": ");
    if (r->has_tok) sb_printf(sb, "{\"tokens\": %zu, \"special\": %d}", r->tok_vocab, r->tok_special);
    else sb_puts(sb, "null");
    sb_puts(sb, "}\n");
}

int modes_model_inspect(const char *dir, modes_report_format format, char **report, modes_error *err) {
    MODES_REQUIRE(err, report);
    *report = NULL;
    MODES_REQUIRE(err, dir);
    if (format != MODES_REPORT_TEXT && format != MODES_REPORT_JSON)
        return modes_fail(err, MODES_E_INPUT, "modes_model_inspect: unknown format %d", (int)format);
    modes_model *m = NULL;
    int rc = model_check(dir, &m, err);
    if (rc) return rc;
    inspect_report r;
    gather(m, &r);
    strbuf sb = {0};
    if (format == MODES_REPORT_JSON) print_json(&sb, dir, m, &r);
    else print_text(&sb, dir, m, &r);
    modes_model_free(m);
    return sb_take(&sb, report, err);
}
