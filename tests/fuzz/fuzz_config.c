/* A model folder's JSON configuration (src/io/config.c, src/vision/preprocess.c). The first byte
 * picks the file the rest of the input becomes:
 *   0: config.json                       (model_config_load: every family's reader)
 *   1: generation_config.json            (model_config_load, beside a valid config.json)
 *   2: preprocessor_config.json          (preproc_config_load, then smart_resize on a few sizes)
 * anything else: config.json, with the first byte kept (so plain JSON seeds work as they are).
 * Loaded values are checked against the documented ranges. */
#include <math.h>

#include "fuzz.h"
#include "models/family.h"
#include "vision/preprocess.h"

static const char VALID_CONFIG[] =
    "{\"model_type\": \"qwen3_vl_moe\", \"image_token_id\": 508, \"video_token_id\": 509,"
    " \"vision_start_token_id\": 506, \"vision_end_token_id\": 507,"
    " \"text_config\": {\"hidden_size\": 64, \"num_hidden_layers\": 3, \"num_attention_heads\": 4,"
    " \"num_key_value_heads\": 2, \"head_dim\": 32, \"vocab_size\": 512, \"moe_intermediate_size\": 48,"
    " \"num_experts\": 8, \"num_experts_per_tok\": 2, \"eos_token_id\": 2,"
    " \"rope_scaling\": {\"mrope_section\": [6, 5, 5], \"rope_type\": \"default\", \"mrope_interleaved\": true}},"
    " \"vision_config\": {\"depth\": 3, \"hidden_size\": 32, \"num_heads\": 2, \"intermediate_size\": 64,"
    " \"num_position_embeddings\": 64, \"out_hidden_size\": 64, \"deepstack_visual_indexes\": [0, 1]}}";

static char *dir, *config, *genconfig, *preconfig;

static void check_config(const model_config *c) {
    const text_config *t = &c->text;
    FUZZ_CHECK(t->n_layers >= 1 && t->n_layers <= CFG_MAX_LAYERS, "n_layers %d", t->n_layers);
    FUZZ_CHECK(t->hidden >= 1 && t->n_heads >= 1 && t->n_kv_heads >= 1 && t->n_heads % t->n_kv_heads == 0, "heads");
    FUZZ_CHECK(t->head_dim % 2 == 0 && t->head_dim >= 0, "head_dim %d", t->head_dim);
    FUZZ_CHECK(t->top_k >= 1 && t->top_k <= t->n_experts, "top_k %d of %d", t->top_k, t->n_experts);
    FUZZ_CHECK(t->vocab >= 1 && t->decoder_sparse_step >= 1, "vocab / sparse step");
    FUZZ_CHECK(t->mrope_section[0] + t->mrope_section[1] + t->mrope_section[2] == t->head_dim / 2, "mrope_section");
    FUZZ_CHECK(c->n_eos >= 0 && c->n_eos <= CFG_MAX_EOS, "n_eos %d", c->n_eos);
    FUZZ_CHECK(memchr(c->model_type, 0, sizeof c->model_type), "model_type not terminated");
    if (c->vision.present) {
        const vision_config *v = &c->vision;
        FUZZ_CHECK(v->n_heads >= 1 && v->hidden % v->n_heads == 0, "vision heads");
        FUZZ_CHECK(v->n_deepstack >= 0 && v->n_deepstack <= CFG_MAX_DEEPSTACK, "deepstack");
        for (int i = 0; i < v->n_deepstack; i++) FUZZ_CHECK(v->deepstack[i] >= 0 && v->deepstack[i] < v->depth, "index");
        FUZZ_CHECK(c->image_token_id < t->vocab, "image token");
    }
}

static void check_preproc(const preproc_config *p) {
    FUZZ_CHECK(p->patch >= 1 && p->merge >= 1 && p->temporal_patch >= 1 && p->patch * p->merge <= 4096, "patch");
    FUZZ_CHECK(p->min_pixels >= 1 && p->min_pixels <= p->max_pixels, "pixels");
    static const int sizes[][2] = {{1, 1}, {37, 53}, {480, 640}, {1, 200}, {201, 1}, {100000, 1000}, {46340, 46341}};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        int oh = -1, ow = -1;
        modes_error err = {0};
        int rc = smart_resize(p, sizes[i][0], sizes[i][1], &oh, &ow, &err);
        if (rc) {
            fuzz_check_error(rc, &err, NULL);
            continue;
        }
        const int f = p->patch * p->merge;
        FUZZ_CHECK(oh > 0 && ow > 0 && oh % f == 0 && ow % f == 0, "smart_resize gave %d x %d", ow, oh);
        /* The reference may pass max_pixels by a strip one factor wide (see preprocess.h). */
        FUZZ_CHECK((double)oh * ow <= (double)p->max_pixels + 16.0 * f * sqrt((double)p->max_pixels) + (double)f * f,
                   "smart_resize over max_pixels");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!dir) {
        dir = fuzz_path("cfg");
        config = fuzz_path("cfg/config.json");
        genconfig = fuzz_path("cfg/generation_config.json");
        preconfig = fuzz_path("cfg/preprocessor_config.json");
    }
    const unsigned sel = size ? data[0] : 0;
    if (size && sel <= 2) {
        data++;
        size--;
    }
    modes_error err = {0};
    if (sel == 2) {
        fuzz_write(preconfig, data, size);
        preproc_config p;
        int rc = preproc_config_load(dir, &p, &err);
        if (rc) fuzz_check_error(rc, &err, preconfig);
        else check_preproc(&p);
        return 0;
    }
    if (sel == 1) {
        fuzz_write(config, VALID_CONFIG, sizeof VALID_CONFIG - 1);
        fuzz_write(genconfig, data, size);
    } else {
        unlink(genconfig);
        fuzz_write(config, data, size);
    }
    model_config *c = malloc(sizeof *c);
    FUZZ_CHECK(c, "out of memory");
    int rc = model_config_load(dir, c, NULL, &err);
    if (rc) fuzz_check_error(rc, &err, sel == 1 ? genconfig : config);
    else check_config(c);
    free(c);
    return 0;
}
