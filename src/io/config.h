/* config.json (+ generation_config.json) of a model folder, for the families modes runs.
 * Keys follow the Hub's released files; the transformers v5 names are accepted too
 * (rope_parameters for rope_scaling, num_local_experts for num_experts). Optional keys take the
 * Hugging Face defaults; values we do not support are refused with a message naming the key. */
#ifndef MODES_IO_CONFIG_H
#define MODES_IO_CONFIG_H

#include <stdint.h>

#include "core/json.h"
#include "modes.h"

#define CFG_MAX_LAYERS 1024
#define CFG_MAX_EOS 8
#define CFG_MAX_DEEPSTACK 16

typedef struct {
    int hidden, n_layers, n_heads, n_kv_heads, head_dim, vocab;
    int intermediate;        /* dense MLP width (layers listed in mlp_only_layers) */
    int moe_intermediate, n_experts, top_k, decoder_sparse_step;
    uint8_t is_moe[CFG_MAX_LAYERS]; /* derived from mlp_only_layers and decoder_sparse_step */
    int norm_topk_prob;      /* read for inspect; Qwen3-VL-MoE always renormalises (docs/qwen3-vl-moe.md section 7.4) */
    float rms_eps;
    double rope_theta;
    int mrope_section[3];    /* all 0: plain 1-D RoPE */
    int max_position;
    int tie_embeddings;
} text_config;

typedef struct {
    int present;
    int depth, hidden, n_heads, intermediate, patch, temporal_patch, merge, in_channels, out_hidden;
    int num_position_embeddings;
    int n_deepstack, deepstack[CFG_MAX_DEEPSTACK];
} vision_config;

typedef struct {
    char model_type[32];
    text_config text;
    vision_config vision;
    int image_token_id, video_token_id, vision_start_id, vision_end_id;
    int bos_id;                  /* -1 when absent */
    int n_eos, eos[CFG_MAX_EOS]; /* config and generation_config together */
    uint8_t sha256[32];          /* of config.json's bytes: policies name the model they were made for */
} model_config;

/* Reads dir/config.json (generation_config.json optional), hands its root object to parse (the model
 * family's reader, which knows the file's layout), then adds generation_config.json's eos ids and
 * the hash of config.json's bytes. */
typedef int (*config_parse_fn)(const json_node *root, const char *path, model_config *cfg, void *user,
                               modes_error *err);
int config_load(const char *dir, config_parse_fn parse, void *user, model_config *cfg, modes_error *err);

/* The pieces a family's reader is made of. Messages read "PATH: SECTIONkey ...". */
typedef struct {
    const json_node *obj;
    const char *what;    /* config.json's path */
    const char *section; /* "text_config." or "" */
    modes_error *err;
} cfg_reader;
/* An integer key within [lo, hi]; `required` keys have no Hugging Face default. */
int cfg_int(const cfg_reader *r, const char *key, int def, int required, int lo, int hi, int *out);
int cfg_double(const cfg_reader *r, const json_node *obj, const char *key, double def, double lo, double hi,
               double *out);
int cfg_int_list(const cfg_reader *r, const char *key, int *out, int cap, int *n, int lo, int hi);
int cfg_str_is(const json_node *v, const char *s);
/* The Hugging Face decoder keys of a Qwen3-style text model (sizes, MoE layout, norms, RoPE);
 * mrope: M-RoPE's interleaved sections are required, else plain RoPE is (rope_scaling null or
 * "default"). */
int config_parse_text(const cfg_reader *r, int mrope, text_config *t);
/* The vision_config of Qwen3-VL's tower. */
int config_parse_qwen3vl_vision(const cfg_reader *r, vision_config *v);
/* Adds the eos id(s) of v (an id or a list of ids) to c. */
int config_add_eos(model_config *c, const json_node *v, const char *what, modes_error *err);

#endif
