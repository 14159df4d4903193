/* config.json (+ generation_config.json) of a model folder, for the families modes runs.
 * Keys follow the Hub's released files; the transformers v5 names are accepted too
 * (rope_parameters for rope_scaling, num_local_experts for num_experts). Optional keys take the
 * Hugging Face defaults; values we do not support are refused with a message naming the key. */
#ifndef MODES_IO_CONFIG_H
#define MODES_IO_CONFIG_H

#include <stdint.h>

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
    int mrope_section[3];
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

/* dir: a model folder holding config.json (generation_config.json optional). */
int config_load(const char *dir, model_config *cfg, modes_error *err);

#endif
