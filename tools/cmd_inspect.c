/* modes inspect DIR: what a model folder holds, read from its files without running anything:
 * architecture, shapes, parameter and byte counts by part, dtypes, tokenizer. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "core/sha256.h"
#include "io/config.h"
#include "io/safetensors.h"
#include "text/tokenizer.h"

static const char *HELP = "usage: modes inspect DIR\n  Architecture, shapes, parameter and byte counts, dtypes and tokenizer of a model folder.\n";

enum { G_VISION, G_EMBED, G_HEAD, G_ATTN, G_ROUTER, G_EXPERTS, G_NORM, G_OTHER, G_N };
static const char *GROUP_NAMES[G_N] = {"vision tower", "embeddings", "lm_head", "attention", "routers",
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

static void print_config(const model_config *c) {
    const text_config *t = &c->text;
    char hex[65];
    sha256_hex(c->sha256, hex);
    int n_moe = 0;
    for (int l = 0; l < t->n_layers; l++) n_moe += t->is_moe[l];
    printf("architecture   %s (config sha256 %.16s...)\n", c->model_type, hex);
    printf("text           %d layers (%d MoE), hidden %d, heads %d/%d kv, head_dim %d, vocab %d\n", t->n_layers,
           n_moe, t->hidden, t->n_heads, t->n_kv_heads, t->head_dim, t->vocab);
    printf("experts        %d per layer, top-%d, width %d\n", t->n_experts, t->top_k, t->moe_intermediate);
    printf("rope           theta %g, mrope_section [%d, %d, %d] interleaved\n", t->rope_theta, t->mrope_section[0],
           t->mrope_section[1], t->mrope_section[2]);
    if (c->vision.present) {
        const vision_config *v = &c->vision;
        printf("vision         depth %d, hidden %d, heads %d, patch %d, merge %d, out %d, deepstack [", v->depth,
               v->hidden, v->n_heads, v->patch, v->merge, v->out_hidden);
        for (int i = 0; i < v->n_deepstack; i++) printf(i ? ", %d" : "%d", v->deepstack[i]);
        printf("]\n");
    }
    printf("special ids    image %d, vision_start %d, vision_end %d, eos", c->image_token_id, c->vision_start_id,
           c->vision_end_id);
    for (int i = 0; i < c->n_eos; i++) printf(" %d", c->eos[i]);
    printf("\n");
}

static void print_weights(const st_archive *a, const model_config *c) {
    double params[G_N] = {0}, bytes[G_N] = {0};
    int dtypes[ST_BOOL + 1] = {0};
    for (size_t i = 0; i < st_count(a); i++) {
        const st_tensor *t = st_tensor_at(a, i);
        const int g = group_of(t->name);
        params[g] += (double)t->numel;
        bytes[g] += (double)t->nbytes;
        dtypes[t->dtype]++;
    }
    double total = 0, total_bytes = 0;
    printf("\n%-14s %14s %12s\n", "part", "parameters", "MiB");
    for (int g = 0; g < G_N; g++) {
        if (!params[g]) continue;
        printf("%-14s %14.0f %12.1f\n", GROUP_NAMES[g], params[g], bytes[g] / 1048576.0);
        total += params[g];
        total_bytes += bytes[g];
    }
    printf("%-14s %14.0f %12.1f\n", "total", total, total_bytes / 1048576.0);
    const double per_token = params[G_EMBED] / c->text.vocab + params[G_HEAD] + params[G_ATTN] + params[G_ROUTER] +
                             params[G_NORM] + params[G_EXPERTS] * c->text.top_k / c->text.n_experts;
    printf("active per text token (without vision): %.0f parameters\n", per_token);
    printf("tensors        %zu:", st_count(a));
    for (int d = 0; d <= ST_BOOL; d++)
        if (dtypes[d]) printf(" %d %s", dtypes[d], st_dtype_name((st_dtype)d));
    printf("\n");
}

int cmd_inspect(int argc, char **argv) {
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        fputs(HELP, stdout);
        return 0;
    }
    if (argc != 2) return cli_usage("inspect", "expected exactly one model folder");
    const char *dir = argv[1];
    modes_error err = {0};
    model_config cfg;
    st_archive *a = NULL;
    modes_tokenizer *tok = NULL;
    int rc = config_load(dir, &cfg, &err);
    if (!rc) rc = st_open(dir, &a, &err);
    if (!rc) {
        printf("folder         %s\n", dir);
        print_config(&cfg);
        print_weights(a, &cfg);
        if (tok_load(dir, &tok, &err) == 0) {
            int special = 0;
            for (int32_t id = 0; (size_t)id < tok_vocab_size(tok); id++) special += tok_is_special(tok, id);
            printf("tokenizer      %zu tokens, %d special\n", tok_vocab_size(tok), special);
        } else {
            printf("tokenizer      none usable: %s\n", err.msg);
            err.msg[0] = 0;
        }
    }
    tok_free(tok);
    st_close(a);
    return rc ? cli_fail("inspect", &err) : 0;
}
