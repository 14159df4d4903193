/* Model loading and the decoder on configurations other than the golden model's:
 * - malformed folders (bad config values, missing/misshapen/mistyped tensors) are refused with a
 *   message naming the file and the tensor or key;
 * - a random model with other sizes, v5 key names, a dense layer and per-expert tensors runs;
 * - the released and the v5 expert layouts of the same weights give the same logits;
 * - prefill + cached decode steps equal one teacher-forced pass over the same ids, also when two
 *   sequences take turns in one context. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "io/file.h"
#include "io/safetensors.h"
#include "models/model.h"
#include "tensor/tensor.h"
#include "text/tokenizer.h"

static char tmp_root[] = "/tmp/modes-model-XXXXXX";

static char *tmp_dir(const char *name) {
    char *d = path_join(tmp_root, name);
    mkdir(d, 0755);
    return d;
}

static void write_text(const char *dir, const char *file, const char *text) {
    char *p = path_join(dir, file);
    modes_error err;
    CHECK(write_file_atomic(p, text, strlen(text), &err) == 0);
    free(p);
}

static const char *TINY = "ref/qwen3vlmoe-tiny-a/model";

/* Copies the golden model's safetensors into dir, transforming tensors through `edit`. */
typedef int (*edit_fn)(const st_tensor *t, st_dtype *dt, int *ndim, int64_t *shape, void *user);
static void copy_weights(const char *dir, edit_fn edit, void *user) {
    st_archive *a;
    modes_error err;
    CHECK(st_open(shared_path(TINY), &a, &err) == 0);
    st_writer *w = st_writer_new();
    for (size_t i = 0; i < st_count(a); i++) {
        const st_tensor *t = st_tensor_at(a, i);
        st_dtype dt = t->dtype;
        int ndim = t->ndim;
        int64_t shape[ST_MAX_DIMS];
        memcpy(shape, t->shape, sizeof shape);
        if (edit && !edit(t, &dt, &ndim, shape, user)) continue;
        CHECK(st_writer_add(w, t->name, dt, ndim, shape, t->data, &err) == 0);
    }
    char *p = path_join(dir, "model.safetensors");
    CHECK(st_writer_save(w, p, &err) == 0);
    free(p);
    st_writer_free(w);
    st_close(a);
}

static char *read_tiny_config(void) {
    char *text, *p = path_join(shared_path(TINY), "config.json");
    size_t len;
    modes_error err;
    CHECK(read_file(p, 1 << 20, &text, &len, &err) == 0);
    free(p);
    return text;
}

/* Replaces the first occurrence of `from` in the golden config by `to`. */
static void write_config_edit(const char *dir, const char *from, const char *to) {
    char *cfg = read_tiny_config();
    char *at = strstr(cfg, from);
    CHECKF(at != NULL, "config has no '%s'", from);
    if (at) {
        size_t a = (size_t)(at - cfg), fl = strlen(from), tl = strlen(to), n = strlen(cfg);
        char *out = malloc(n - fl + tl + 1);
        memcpy(out, cfg, a);
        memcpy(out + a, to, tl);
        memcpy(out + a + tl, at + fl, n - a - fl + 1);
        write_text(dir, "config.json", out);
        free(out);
    }
    free(cfg);
}

static void expect_load_error(const char *dir, const char *needle) {
    modes_model *m = NULL;
    modes_error err = {0};
    int rc = modes_model_load(dir, &m, &err);
    CHECKF(rc == MODES_E_INPUT && !m, "%s: loaded, expected an error mentioning '%s'", dir, needle);
    CHECKF(strstr(err.msg, needle) != NULL, "error '%s' does not mention '%s'", err.msg, needle);
    modes_model_free(m);
}

static int drop_tensor(const st_tensor *t, st_dtype *dt, int *ndim, int64_t *shape, void *user) {
    return strcmp(t->name, user) != 0;
}
static int reshape_tensor(const st_tensor *t, st_dtype *dt, int *ndim, int64_t *shape, void *user) {
    if (!strcmp(t->name, user)) { /* same bytes, other shape */
        shape[0] = t->shape[0] * t->shape[1];
        *ndim = 1;
    }
    return 1;
}
static int retype_tensor(const st_tensor *t, st_dtype *dt, int *ndim, int64_t *shape, void *user) {
    if (!strcmp(t->name, user)) *dt = ST_I32;
    return 1;
}

static void test_malformed(void) {
    struct { const char *from, *to, *needle; } cfgs[] = {
        {"\"num_experts_per_tok\": 2", "\"num_experts_per_tok\": 9", "num_experts_per_tok"},
        {"\"hidden_size\": 64", "\"hidden_size\": \"64\"", "hidden_size"},
        {"\"rope_type\": \"default\"", "\"rope_type\": \"yarn\"", "rope_type"},
        {"\"mrope_interleaved\": true", "\"mrope_interleaved\": false", "mrope_interleaved"},
        {"\"num_key_value_heads\": 2", "\"num_key_value_heads\": 3", "num_key_value_heads"},
        {"\"model_type\": \"qwen3_vl_moe\"", "\"model_type\": \"llama\"", "llama"},
        {"\"hidden_act\": \"silu\"", "\"hidden_act\": \"relu\"", "hidden_act"},
        {"\"hidden_size\": 64,", "\"hidden_size\": 64,,", "config.json"},
        {"6,\n        5,\n        5", "6, 5, 6", "mrope_section"},
        {"\"num_hidden_layers\": 3", "\"num_hidden_layers\": 4", "layers.3"},
        {"\"hidden_size\": 64", "\"hidden_size\": 1e400", "config.json"},
    };
    for (size_t i = 0; i < sizeof cfgs / sizeof *cfgs; i++) {
        char name[32];
        snprintf(name, sizeof name, "cfg%zu", i);
        char *d = tmp_dir(name);
        write_config_edit(d, cfgs[i].from, cfgs[i].to);
        char *src = path_join(shared_path(TINY), "model.safetensors"), *dst = path_join(d, "model.safetensors");
        CHECK(symlink(src, dst) == 0);
        expect_load_error(d, cfgs[i].needle);
        free(src);
        free(dst);
        free(d);
    }
    const char *victim = "model.language_model.layers.1.self_attn.k_proj.weight";
    struct { edit_fn fn; const char *needle; } edits[] = {
        {drop_tensor, "missing"}, {reshape_tensor, "shape"}, {retype_tensor, "dtype"}};
    for (size_t i = 0; i < 3; i++) {
        char name[32];
        snprintf(name, sizeof name, "weights%zu", i);
        char *d = tmp_dir(name);
        write_config_edit(d, "\"dtype\"", "\"dtype\"");
        copy_weights(d, edits[i].fn, (void *)victim);
        expect_load_error(d, edits[i].needle);
        expect_load_error(d, "k_proj");
        free(d);
    }
    /* The expert tensors too: a down_proj that fits neither layout. */
    char *d = tmp_dir("experts");
    write_config_edit(d, "\"dtype\"", "\"dtype\"");
    copy_weights(d, reshape_tensor, "model.language_model.layers.2.mlp.experts.down_proj");
    expect_load_error(d, "down_proj");
    free(d);
    expect_load_error("/nonexistent/model", "/nonexistent/model");
}

/* ---- A random model of another shape ----------------------------------------------------- */

typedef struct {
    uint64_t s;
} rng;
static float frand(rng *r) {
    r->s = r->s * 6364136223846793005ull + 1442695040888963407ull;
    return ((float)(r->s >> 40) / 16777216.0f - 0.5f) * 0.5f;
}

static const char *OTHER_CONFIG =
    "{\"architectures\": [\"Qwen3VLMoeForConditionalGeneration\"], \"model_type\": \"qwen3_vl_moe\",\n"
    " \"image_token_id\": 290, \"video_token_id\": 291, \"vision_start_token_id\": 288, \"vision_end_token_id\": 289,\n"
    " \"text_config\": {\"hidden_size\": 48, \"num_hidden_layers\": 3, \"num_attention_heads\": 6,\n"
    "   \"num_key_value_heads\": 3, \"head_dim\": 16, \"vocab_size\": 300, \"intermediate_size\": 40,\n"
    "   \"moe_intermediate_size\": 20, \"num_local_experts\": 6, \"num_experts_per_tok\": 3,\n"
    "   \"mlp_only_layers\": [1], \"rms_norm_eps\": 1e-5, \"eos_token_id\": 7, \"max_position_embeddings\": 512,\n"
    "   \"rope_parameters\": {\"rope_type\": \"default\", \"rope_theta\": 10000.0, \"mrope_section\": [4, 2, 2],\n"
    "   \"mrope_interleaved\": true}}}\n";

/* Writes the random weights; layout 0: released [E, H, 2I] / [E, I, H]; 1: v5 [E, 2I, H] / [E, H, I];
 * 2: per-expert tensors. The same values in every layout. */
static void write_other_model(const char *dir, int layout) {
    const int H = 48, L = 3, nh = 6, nkv = 3, hd = 16, V = 300, Idense = 40, I = 20, E = 6;
    rng r = {12345};
    st_writer *w = st_writer_new();
    modes_error err;
    char name[256];
    float *buf = malloc(sizeof(float) * V * H * 2);
#define ADD(nm, nd, ...)                                                            \
    do {                                                                            \
        const int64_t sh[] = {__VA_ARGS__};                                         \
        int64_t cnt = 1;                                                            \
        for (int q = 0; q < nd; q++) cnt *= sh[q];                                  \
        for (int64_t q = 0; q < cnt; q++) buf[q] = frand(&r);                       \
        CHECK(st_writer_add(w, nm, ST_F32, nd, sh, buf, &err) == 0);                \
    } while (0)
    ADD("model.language_model.embed_tokens.weight", 2, V, H);
    ADD("model.language_model.norm.weight", 1, H);
    ADD("lm_head.weight", 2, V, H);
    for (int l = 0; l < L; l++) {
#define LN(s) (snprintf(name, sizeof name, "model.language_model.layers.%d.%s", l, s), name)
        ADD(LN("input_layernorm.weight"), 1, H);
        ADD(LN("post_attention_layernorm.weight"), 1, H);
        ADD(LN("self_attn.q_norm.weight"), 1, hd);
        ADD(LN("self_attn.k_norm.weight"), 1, hd);
        ADD(LN("self_attn.q_proj.weight"), 2, nh * hd, H);
        ADD(LN("self_attn.k_proj.weight"), 2, nkv * hd, H);
        ADD(LN("self_attn.v_proj.weight"), 2, nkv * hd, H);
        ADD(LN("self_attn.o_proj.weight"), 2, H, nh * hd);
        if (l == 1) {
            ADD(LN("mlp.gate_proj.weight"), 2, Idense, H);
            ADD(LN("mlp.up_proj.weight"), 2, Idense, H);
            ADD(LN("mlp.down_proj.weight"), 2, H, Idense);
            continue;
        }
        ADD(LN("mlp.gate.weight"), 2, E, H);
        /* Canonical values: gu[e][j][h] (j < 2I: gate rows then up rows), dn[e][h][i]. */
        float *gu = malloc(sizeof(float) * E * 2 * I * H), *dn = malloc(sizeof(float) * E * H * I);
        for (int q = 0; q < E * 2 * I * H; q++) gu[q] = frand(&r);
        for (int q = 0; q < E * H * I; q++) dn[q] = frand(&r);
        if (layout == 2) {
            for (int e = 0; e < E; e++) {
                const int64_t s1[2] = {I, H}, s2[2] = {H, I};
                snprintf(name, sizeof name, "model.language_model.layers.%d.mlp.experts.%d.gate_proj.weight", l, e);
                CHECK(st_writer_add(w, name, ST_F32, 2, s1, gu + (size_t)e * 2 * I * H, &err) == 0);
                snprintf(name, sizeof name, "model.language_model.layers.%d.mlp.experts.%d.up_proj.weight", l, e);
                CHECK(st_writer_add(w, name, ST_F32, 2, s1, gu + (size_t)e * 2 * I * H + I * H, &err) == 0);
                snprintf(name, sizeof name, "model.language_model.layers.%d.mlp.experts.%d.down_proj.weight", l, e);
                CHECK(st_writer_add(w, name, ST_F32, 2, s2, dn + (size_t)e * H * I, &err) == 0);
            }
        } else {
            float *a = malloc(sizeof(float) * E * 2 * I * H), *b = malloc(sizeof(float) * E * H * I);
            for (int e = 0; e < E; e++)
                for (int j = 0; j < 2 * I; j++)
                    for (int h = 0; h < H; h++) {
                        const float v = gu[((size_t)e * 2 * I + j) * H + h];
                        if (layout == 0) a[((size_t)e * H + h) * 2 * I + j] = v;
                        else a[((size_t)e * 2 * I + j) * H + h] = v;
                    }
            for (int e = 0; e < E; e++)
                for (int h = 0; h < H; h++)
                    for (int i = 0; i < I; i++) {
                        const float v = dn[((size_t)e * H + h) * I + i];
                        if (layout == 0) b[((size_t)e * I + i) * H + h] = v;
                        else b[((size_t)e * H + h) * I + i] = v;
                    }
            const int64_t sgu0[3] = {E, H, 2 * I}, sgu1[3] = {E, 2 * I, H}, sdn0[3] = {E, I, H}, sdn1[3] = {E, H, I};
            CHECK(st_writer_add(w, LN("mlp.experts.gate_up_proj"), ST_F32, 3, layout ? sgu1 : sgu0, a, &err) == 0);
            CHECK(st_writer_add(w, LN("mlp.experts.down_proj"), ST_F32, 3, layout ? sdn1 : sdn0, b, &err) == 0);
            free(a);
            free(b);
        }
        free(gu);
        free(dn);
#undef LN
    }
#undef ADD
    char *p = path_join(dir, "model.safetensors");
    CHECK(st_writer_save(w, p, &err) == 0);
    free(p);
    free(buf);
    st_writer_free(w);
    write_text(dir, "config.json", OTHER_CONFIG);
}

static const int32_t PROMPT[] = {5, 17, 250, 3, 99, 288, 290, 290, 289, 42, 7, 120};
#define NP ((int)(sizeof PROMPT / sizeof *PROMPT))

/* Teacher-forced logits at every position of PROMPT. */
static float *full_pass(const modes_model *m) {
    modes_ctx *c;
    modes_error err;
    const int V = modes_model_vocab(m);
    float *logits = malloc(sizeof(float) * NP * V);
    CHECK(modes_ctx_new(m, NULL, &c, &err) == 0);
    CHECKF(modes_eval(c, PROMPT, NP, logits, NP, &err) == 0, "%s", err.msg);
    modes_ctx_free(c);
    return logits;
}

static double max_diff(const float *a, const float *b, size_t n) {
    double d = 0;
    for (size_t i = 0; i < n; i++) d = fmax(d, fabs((double)a[i] - b[i]));
    return d;
}

static uint64_t prefill_tokens(const modes_ctx *c) {
    const modes_stats *st = modes_ctx_stats(c);
    return st->phase[0][0].tokens + st->phase[0][1].tokens + st->phase[0][2].tokens;
}

/* Two sequences advanced in turn in one context (ctx_sequence_swap, as the bench does) each give the
 * logits of a pass of their own: A is PROMPT, B is PROMPT from its second id, at other positions. */
static void check_interleaved_sequences(const modes_model *m, const float *full_a) {
    const int V = modes_model_vocab(m), nb = NP - 1, pre_a = 5, pre_b = 3;
    modes_ctx *c;
    modes_error err;
    CHECK(modes_ctx_new(m, NULL, &c, &err) == 0);
    float *full_b = malloc(sizeof(float) * nb * V), *step = malloc(sizeof(float) * V);
    CHECK(modes_eval(c, PROMPT + 1, nb, full_b, nb, &err) == 0);
    modes_ctx_reset(c);
    modes_ctx_reset_stats(c);
    ctx_sequence b;
    CHECK(ctx_sequence_new(c, &b, &err) == 0);
    CHECK(modes_eval(c, PROMPT, pre_a, step, 1, &err) == 0);
    ctx_sequence_swap(c, &b);
    CHECK(modes_ctx_n_past(c) == 0 && prefill_tokens(c) == 0);
    CHECK(modes_eval(c, PROMPT + 1, pre_b, step, 1, &err) == 0);
    const uint64_t tokens_b = prefill_tokens(c);
    ctx_sequence_swap(c, &b);
    CHECK(modes_ctx_n_past(c) == pre_a && prefill_tokens(c) * pre_b == tokens_b * pre_a);
    double worst = 0;
    for (int i = pre_a, j = pre_b; i < NP || j < nb; i++, j++) {
        if (i < NP) {
            CHECK(modes_eval(c, PROMPT + i, 1, step, 1, &err) == 0);
            worst = fmax(worst, max_diff(step, full_a + (size_t)i * V, (size_t)V));
        }
        ctx_sequence_swap(c, &b);
        if (j < nb) {
            CHECK(modes_eval(c, PROMPT + 1 + j, 1, step, 1, &err) == 0);
            worst = fmax(worst, max_diff(step, full_b + (size_t)j * V, (size_t)V));
        }
        ctx_sequence_swap(c, &b);
    }
    CHECKF(worst < 1e-5, "interleaved sequences differ from their own passes by %g", worst);
    CHECK(modes_ctx_n_past(c) == NP);
    ctx_sequence_swap(c, &b);
    CHECK(modes_ctx_n_past(c) == nb);
    ctx_sequence_swap(c, &b);
    ctx_sequence_free(&b);
    modes_ctx_free(c);
    free(full_b);
    free(step);
}

/* The internal path the bench, calibration and evaluation take (model_run_prepared, generate_prepared)
 * refuses what does not fit in the KV cache, as the public modes_eval does, instead of writing past it:
 * one token too many from an empty cache, and one too many after some are cached. */
static void check_capacity(const modes_model *m) {
    modes_ctx *c;
    modes_error err = {0};
    modes_ctx_params small = {.n_ctx = 4};
    CHECK(modes_ctx_new(m, &small, &c, &err) == 0);
    float *logits = malloc(sizeof(float) * modes_model_vocab(m));
    prepared_input in;
    CHECK(model_prepare(c, PROMPT, 5, NULL, 0, &in, &err) == 0);
    CHECKF(model_run_prepared(c, &in, 0, NULL, NULL, logits, 1, &err) == MODES_E_INPUT && strstr(err.msg, "context"),
           "5 tokens in a context of 4: %s", err.msg);
    CHECK(modes_ctx_n_past(c) == 0);
    int32_t out[4];
    int n_out = -1;
    err.msg[0] = 0;
    CHECK(generate_prepared(c, &in, 2, NULL, NULL, NULL, out, &n_out, NULL, &err) == MODES_E_INPUT &&
          strstr(err.msg, "context") && n_out == 0);
    prepared_free(&in);
    CHECK(modes_eval(c, PROMPT, 3, logits, 1, &err) == 0);
    CHECK(model_prepare(c, PROMPT + 3, 2, NULL, 0, &in, &err) == 0);
    err.msg[0] = 0;
    CHECKF(model_run_prepared(c, &in, 0, NULL, NULL, logits, 1, &err) == MODES_E_INPUT && strstr(err.msg, "context"),
           "2 tokens after 3 in a context of 4: %s", err.msg);
    CHECK(modes_ctx_n_past(c) == 3);
    prepared_free(&in);
    CHECK(model_prepare(c, PROMPT + 3, 1, NULL, 0, &in, &err) == 0);
    CHECK(model_run_prepared(c, &in, 0, NULL, NULL, logits, 1, &err) == 0 && modes_ctx_n_past(c) == 4);
    prepared_free(&in);
    free(logits);
    modes_ctx_free(c);
}

static void test_other_model(void) {
    modes_model *m[3] = {0};
    float *full[3] = {0};
    for (int layout = 0; layout < 3; layout++) {
        char name[32];
        snprintf(name, sizeof name, "other%d", layout);
        char *d = tmp_dir(name);
        write_other_model(d, layout);
        modes_error err = {0};
        CHECKF(modes_model_load(d, &m[layout], &err) == 0, "layout %d: %s", layout, err.msg);
        free(d);
        if (m[layout]) full[layout] = full_pass(m[layout]);
    }
    if (!m[0] || !m[1] || !m[2]) goto done;
    const int V = modes_model_vocab(m[0]);
    CHECK(V == 300);
    CHECK(modes_model_is_stop(m[0], 7) && !modes_model_is_stop(m[0], 8));
    CHECK(modes_model_token_class(m[0], 290) == MODES_TOKEN_VISION);
    CHECK(modes_model_token_class(m[0], 288) == MODES_TOKEN_SPECIAL);
    CHECK(modes_model_token_class(m[0], 5) == MODES_TOKEN_TEXT);
    /* Same values, three layouts: the same computation up to summation order. */
    CHECKF(max_diff(full[0], full[1], (size_t)NP * V) < 1e-5, "released vs v5 layout: %g",
           max_diff(full[0], full[1], (size_t)NP * V));
    CHECKF(max_diff(full[0], full[2], (size_t)NP * V) < 1e-5, "released vs per-expert: %g",
           max_diff(full[0], full[2], (size_t)NP * V));
    /* Prefill of a prefix, then one cached step per token, reproduces the full pass. */
    modes_ctx *c;
    modes_error err;
    CHECK(modes_ctx_new(m[0], NULL, &c, &err) == 0);
    float *step = malloc(sizeof(float) * V);
    const int pre = 5;
    float *pl = malloc(sizeof(float) * pre * V);
    CHECK(modes_eval(c, PROMPT, pre, pl, pre, &err) == 0);
    double worst = max_diff(pl, full[0], (size_t)pre * V);
    for (int i = pre; i < NP; i++) {
        CHECK(modes_eval(c, PROMPT + i, 1, step, 1, &err) == 0);
        worst = fmax(worst, max_diff(step, full[0] + (size_t)i * V, (size_t)V));
    }
    CHECKF(worst < 1e-5, "cached decode differs from the full pass by %g", worst);
    CHECK(modes_ctx_n_past(c) == NP);
    check_interleaved_sequences(m[0], full[0]);
    check_capacity(m[0]);
    /* The context refuses what does not fit, and ids outside the vocabulary. */
    const int32_t bad = 300;
    CHECK(modes_eval(c, &bad, 1, step, 1, &err) == MODES_E_INPUT && strstr(err.msg, "vocabulary"));
    modes_ctx_free(c);
    modes_ctx_params small = {.n_ctx = 4};
    CHECK(modes_ctx_new(m[0], &small, &c, &err) == 0);
    CHECK(modes_eval(c, PROMPT, NP, pl, 1, &err) == MODES_E_INPUT && strstr(err.msg, "context"));
    modes_ctx_free(c);
    free(step);
    free(pl);
done:
    for (int i = 0; i < 3; i++) {
        free(full[i]);
        modes_model_free(m[i]);
    }
}

static void test_sampling(void) {
    float logits[5] = {0.1f, 2.0f, 1.9f, -1.0f, 0.0f};
    float l2[5];
    CHECK(modes_sample(logits, 5, NULL, NULL) == 1);
    modes_sampling g = {.temperature = 0};
    CHECK(modes_sample(logits, 5, &g, NULL) == 1);
    modes_sampling s = {.temperature = 1.0f, .top_k = 2, .top_p = 1.0f, .seed = 7};
    uint64_t st = modes_rng_seed(s.seed);
    int counts[5] = {0};
    for (int i = 0; i < 2000; i++) {
        memcpy(l2, logits, sizeof l2);
        counts[modes_sample(l2, 5, &s, &st)]++;
    }
    CHECK(counts[0] == 0 && counts[3] == 0 && counts[4] == 0); /* top-k 2 keeps ids 1 and 2 only */
    CHECK(counts[1] > 800 && counts[2] > 800);
    s.top_k = 0;
    s.top_p = 0.3f; /* id 1 alone holds more than 30% of the mass */
    for (int i = 0; i < 100; i++) {
        memcpy(l2, logits, sizeof l2);
        CHECK(modes_sample(l2, 5, &s, &st) == 1);
    }
    /* The same seed gives the same draws. */
    uint64_t a = modes_rng_seed(99), b = modes_rng_seed(99);
    s.top_p = 1.0f;
    for (int i = 0; i < 20; i++) {
        float x[5], y[5];
        memcpy(x, logits, sizeof x);
        memcpy(y, logits, sizeof y);
        CHECK(modes_sample(x, 5, &s, &a) == modes_sample(y, 5, &s, &b));
    }
}

/* The sampler never answers with a vision placeholder, even where it has the largest logit: greedy
 * and at a temperature that makes every other id likely. ids: the placeholders of m to try. */
static void check_placeholders_unsampled(const modes_model *m, const int32_t *ids, int n_ids, const char *what) {
    const int V = modes_model_vocab(m);
    float *base = malloc(sizeof(float) * V), *l = malloc(sizeof(float) * V);
    for (int i = 0; i < V; i++) base[i] = 0;
    base[5] = 10;
    for (int k = 0; k < n_ids; k++) base[ids[k]] = 50 + k; /* far above id 5 */
    memcpy(l, base, sizeof(float) * V);
    CHECKF(modes_model_sample(m, l, NULL, NULL) == 5, "%s: greedy chose a placeholder", what);
    modes_sampling hot = {.temperature = 8, .top_p = 1, .seed = 2};
    uint64_t st = modes_rng_seed(hot.seed);
    int chosen = 0;
    for (int i = 0; i < 3000; i++) {
        memcpy(l, base, sizeof(float) * V);
        const int32_t id = modes_model_sample(m, l, &hot, &st);
        for (int k = 0; k < n_ids; k++) chosen += id == ids[k];
    }
    CHECKF(chosen == 0, "%s: temperature 8 chose a placeholder %d times in 3000", what, chosen);
    free(base);
    free(l);
}

static void test_placeholders(void) {
    modes_model *m = NULL;
    modes_error err = {0};
    char *d = tmp_dir("placeholders");
    write_other_model(d, 0);
    CHECKF(modes_model_load(d, &m, &err) == 0, "%s", err.msg);
    free(d);
    const int32_t other[] = {290, 291, 288, 289}; /* OTHER_CONFIG's image, video, start, end ids */
    if (m) check_placeholders_unsampled(m, other, 4, "config ids");
    modes_model_free(m);
    /* The embedded model's tokenizer also names <|vision_pad|>, which no config key gives. */
    CHECKF(modes_model_load(tests_path("../models/shapes-vqa"), &m, &err) == 0, "%s", err.msg);
    if (!m) return;
    const modes_tokenizer *tok = modes_model_tokenizer(m);
    const int32_t ids[] = {m->cfg.image_token_id, m->cfg.video_token_id, m->cfg.vision_start_id, m->cfg.vision_end_id,
                           tok_token_to_id(tok, "<|vision_pad|>")};
    CHECK(ids[4] >= 0);
    check_placeholders_unsampled(m, ids, 5, "shapes-vqa");
    modes_model_free(m);
}

int main(void) {
    require_shared();
    if (!mkdtemp(tmp_root)) return 2;
    test_malformed();
    test_other_model();
    test_sampling();
    test_placeholders();
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_root);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp_root);
    return check_done();
}
