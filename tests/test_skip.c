/* Expert skipping on the golden tiny model (ref/qwen3vlmoe-tiny-a, text and image cases):
 * - thresholds of zero give logits bit-identical to no policy;
 * - every policy equals a plain pass in which the skipped slots' routing weights are zero (the
 *   authors' simulated skipping), so a real skip changes nothing but the work done. Equal up to
 *   float rounding (1e-5 of the largest logit): the SIMD kernels tile an expert's rows by how many
 *   tokens it has, so dropping one token can change the summation order of another's;
 * - topk:1 equals the model configured with one expert per token on a prompt without special tokens
 *   (which are never skipped), and skips exactly (k-1)/k of the slots of text and vision tokens and
 *   none of the special tokens';
 * - the counters show that skipped experts cost nothing (rows and bytes go down with the ratio);
 * - --skip specs and policy files are validated;
 * - a policy is bound to the architecture, tensors and sampled weights, not config.json's bytes. */
#define _XOPEN_SOURCE 700 /* realpath */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "io/file.h"
#include "io/safetensors.h"
#include "models/model.h"
#include "skip/policy.h"

static const char *TINY = "ref/qwen3vlmoe-tiny-a/model";

typedef struct {
    int32_t *ids;
    int n;
    float *pixels;
    modes_image img;
    int n_images;
} test_case;

static void load_case(const char *file, test_case *tc) {
    st_archive *a;
    modes_error err;
    memset(tc, 0, sizeof *tc);
    CHECK(st_open(shared_path(file), &a, &err) == 0);
    const st_tensor *ids = st_find(a, "input_ids"), *pv = st_find(a, "pixel_values"), *g = st_find(a, "image_grid_thw");
    tc->n = (int)ids->numel;
    tc->ids = malloc(sizeof(int32_t) * tc->n);
    for (int i = 0; i < tc->n; i++) {
        int64_t v;
        memcpy(&v, (const char *)ids->data + 8 * i, 8);
        tc->ids[i] = (int32_t)v;
    }
    if (pv) {
        tc->pixels = malloc(pv->nbytes);
        memcpy(tc->pixels, pv->data, pv->nbytes);
        int64_t thw[3];
        memcpy(thw, g->data, sizeof thw);
        tc->img = (modes_image){tc->pixels, (int)thw[0], (int)thw[1], (int)thw[2]};
        tc->n_images = 1;
    }
    st_close(a);
}

static float *run(const modes_model *m, const test_case *tc, const modes_policy *p, modes_stats *stats_out) {
    modes_ctx *c;
    modes_error err;
    const int V = modes_model_vocab(m);
    float *logits = malloc(sizeof(float) * tc->n * V);
    CHECK(modes_ctx_new(m, NULL, &c, &err) == 0);
    modes_ctx_set_policy(c, p);
    CHECKF(modes_eval_images(c, tc->ids, tc->n, &tc->img, tc->n_images, logits, tc->n, &err) == 0, "%s", err.msg);
    if (stats_out) {
        const modes_stats *s = modes_ctx_stats(c);
        *stats_out = *s;
        stats_out->layer = NULL;
    }
    modes_ctx_free(c);
    return logits;
}

static modes_policy *spec(const modes_model *m, const char *s, const modes_policy *alphas) {
    modes_policy *p = NULL;
    modes_error err;
    CHECKF(modes_policy_from_spec(m, s, alphas, &p, &err) == 0, "%s: %s", s, err.msg);
    return p;
}

static void test_equivalences(const modes_model *m, const test_case *tc) {
    const size_t N = (size_t)tc->n * modes_model_vocab(m);
    modes_stats s_none, s_pol;
    float *base = run(m, tc, NULL, &s_none);
    /* alphas that are not uniform, to exercise GMLG */
    modes_policy *alphas = policy_new(SKIP_MODES, m->n_moe_layers);
    for (int l = 0; l < m->n_moe_layers; l++) {
        alphas->alpha[0][l] = (float)(l + 1) / 6.0f;
        alphas->alpha[1][l] = (float)(3 - l) / 6.0f;
    }
    const char *zero[] = {"threshold:0", "modes:0,0", "dmt:0,0", "gmlg-threshold:0", "naee:0"};
    for (size_t i = 0; i < sizeof zero / sizeof *zero; i++) {
        modes_policy *p = spec(m, zero[i], alphas);
        float *got = run(m, tc, p, &s_pol);
        CHECKF(!memcmp(got, base, N * sizeof *got), "%s is not bit-identical to no policy", zero[i]);
        CHECK(s_pol.expert_rows == s_none.expert_rows);
        free(got);
        modes_policy_free(p);
    }
    const char *some[] = {"threshold:0.4", "modes:0.12,0.2", "dmt:0.45,0.3", "gmlg-threshold:0.15", "naee:0.4", "topk:1",
                          "threshold:0.99"};
    for (size_t i = 0; i < sizeof some / sizeof *some; i++) {
        modes_policy *p = spec(m, some[i], alphas);
        float *got = run(m, tc, p, &s_pol);
        p->simulate = 1;
        modes_stats s_sim;
        float *sim = run(m, tc, p, &s_sim);
        double d = 0, mx = 0;
        for (size_t j = 0; j < N; j++) {
            d = fmax(d, fabs((double)got[j] - sim[j]));
            mx = fmax(mx, fabs((double)sim[j]));
        }
        CHECKF(d <= 1e-5 * mx, "%s: skipping differs from zero-weight simulation by %g (max |logit| %g)", some[i], d, mx);
        const double ratio = modes_skip_ratio(&s_pol.phase[0][0], 3);
        CHECKF(ratio > 0, "%s skipped nothing", some[i]);
        CHECKF(s_pol.expert_rows < s_sim.expert_rows, "%s: %llu expert rows, simulation %llu", some[i],
               (unsigned long long)s_pol.expert_rows, (unsigned long long)s_sim.expert_rows);
        /* Every kept slot is one row: rows = slots - skipped. */
        uint64_t slots = 0, skipped = 0;
        for (int c = 0; c < 3; c++) {
            slots += s_pol.phase[0][c].slots;
            skipped += s_pol.phase[0][c].skipped;
        }
        CHECKF(s_pol.expert_rows == slots - skipped, "%s: rows %llu != kept slots %llu", some[i],
               (unsigned long long)s_pol.expert_rows, (unsigned long long)(slots - skipped));
        CHECK(s_pol.expert_bytes <= s_none.expert_bytes);
        CHECK(s_pol.phase[0][MODES_TOKEN_SPECIAL].skipped == 0);
        free(got);
        free(sim);
        modes_policy_free(p);
    }
    modes_policy_free(alphas);
    free(base);
}

/* topk:1 against the same checkpoint configured with num_experts_per_tok = 1. */
static void test_topk(const modes_model *m, const test_case *tc, const test_case *plain, const char *tmp) {
    char *cfg_path = path_join(shared_path(TINY), "config.json"), *text;
    size_t len;
    modes_error err;
    CHECK(read_file(cfg_path, 1 << 20, &text, &len, &err) == 0);
    char *at = strstr(text, "\"num_experts_per_tok\": 2");
    CHECK(at != NULL);
    if (at) at[strlen("\"num_experts_per_tok\": ")] = '1';
    char *dir = path_join(tmp, "top1"), *dst = path_join(dir, "config.json");
    mkdir(dir, 0755);
    CHECK(write_file_atomic(dst, text, len, &err) == 0);
    free(dst);
    const char *files[] = {"model.safetensors", "preprocessor_config.json"};
    for (int i = 0; i < 2; i++) {
        char abs_dir[PATH_MAX];
        if (!realpath(shared_path(i ? "ref/qwen3vlmoe-tiny-a" : TINY), abs_dir)) continue; /* symlinks need absolute targets */
        char *src = path_join(abs_dir, files[i]);
        dst = path_join(dir, files[i]);
        CHECK(symlink(src, dst) == 0);
        free(src);
        free(dst);
    }
    modes_model *m1 = NULL;
    CHECKF(modes_model_load(dir, &m1, &err) == 0, "%s", err.msg);
    if (m1) {
        modes_policy *p = spec(m, "topk:1", NULL);
        modes_stats st;
        float *a = run(m, plain, p, NULL), *b = run(m1, plain, NULL, NULL);
        double d = 0;
        for (size_t j = 0; j < (size_t)plain->n * modes_model_vocab(m); j++) d = fmax(d, fabs((double)a[j] - b[j]));
        CHECKF(d < 1e-5, "topk:1 differs from the top-1 configuration by %g", d);
        free(a);
        free(b);
        a = run(m, tc, p, &st);
        b = NULL;
        for (int c = 0; c < 2; c++)
            if (st.phase[0][c].slots)
                CHECKF(st.phase[0][c].skipped * 2 == st.phase[0][c].slots, "class %d: %llu of %llu skipped", c,
                       (unsigned long long)st.phase[0][c].skipped, (unsigned long long)st.phase[0][c].slots);
        CHECK(st.phase[0][MODES_TOKEN_SPECIAL].slots > 0 && st.phase[0][MODES_TOKEN_SPECIAL].skipped == 0);
        free(a);
        free(b);
        modes_policy_free(p);
    }
    modes_model_free(m1);
    free(text);
    free(cfg_path);
    free(dir);
}

static void test_specs(const modes_model *m) {
    const char *bad[] = {"bogus", "topk", "topk:0", "topk:1.5", "threshold:-1", "threshold:x", "naee:2", "modes:0.1,0.2",
                         "dmt:1,2,3", "threshold:nan"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        modes_policy *p = NULL;
        modes_error err = {0};
        CHECKF(modes_policy_from_spec(m, bad[i], NULL, &p, &err) == MODES_E_INPUT && !p, "accepted --skip %s", bad[i]);
        CHECKF(strstr(err.msg, bad[i]) != NULL, "message '%s' does not name the spec", err.msg);
    }
}

static void write_text(const char *path, const char *text) {
    modes_error err;
    CHECK(write_file_atomic(path, text, strlen(text), &err) == 0);
}

static void test_policy_files(const modes_model *m, const char *tmp) {
    char *path = path_join(tmp, "policy.json");
    char good[1024];
    snprintf(good, sizeof good,
             "{\"format\": \"modes-policy\", \"version\": 1, \"model\": {\"moe_layers\": 3}, \"method\": \"modes\","
             " \"alpha\": {\"text\": [1, 1, 2], \"vision\": [0.5, 0.25, 0.25]}, \"tau\": {\"text\": 0.1, \"vision\": 0.2},"
             " \"unknown\": [1, 2]}");
    write_text(path, good);
    modes_policy *p = NULL;
    modes_error err = {0};
    CHECKF(modes_policy_load(m, path, &p, &err) == 0, "%s", err.msg);
    if (p) {
        CHECK(p->method == SKIP_MODES && fabsf(p->alpha[0][2] - 0.5f) < 1e-6f && fabsf(p->tau[1] - 0.2f) < 1e-6f);
        modes_policy_free(p);
    }
    const struct { const char *text, *needle; } bad[] = {
        {"{\"format\": \"modes-policy\", \"version\": 1, \"model\": {\"moe_layers\": 4}, \"method\": \"none\"}", "MoE layers"},
        {"{\"format\": \"modes-policy\", \"version\": 2, \"model\": {\"moe_layers\": 3}, \"method\": \"none\"}", "version"},
        {"{\"format\": \"other\"}", "not a modes policy"},
        {"{\"format\": \"modes-policy\", \"version\": 1, \"model\": {\"moe_layers\": 3, \"config_sha256\": \"abc\"}, "
         "\"method\": \"none\"}", "another model"},
        {"{\"format\": \"modes-policy\", \"version\": 1, \"model\": {\"moe_layers\": 3}, \"method\": \"modes\", "
         "\"alpha\": {\"text\": [1, 1], \"vision\": [1, 1, 1]}, \"tau\": 0.1}", "alpha.text"},
        {"{\"format\": \"modes-policy\", \"version\": 1, \"model\": {\"moe_layers\": 3}, \"method\": \"modes\", "
         "\"alpha\": {\"text\": [1, 1, -1], \"vision\": [1, 1, 1]}, \"tau\": 0.1}", "alpha.text[2]"},
        {"{\"format\": \"modes-policy\", \"version\": 1, \"model\": {\"moe_layers\": 3}, \"method\": \"threshold\", "
         "\"tau\": \"x\"}", "tau"},
        {"{\"format\": \"modes-policy\", \"version\": 1, \"model\": {\"moe_layers\": 3}, \"method\": \"fast\"}", "method"},
        {"{\"format\": \"modes-policy\", \"version\": 1, \"model\": {\"moe_layers\": 3}, \"method\": \"naee\", "
         "\"beta\": [0.1, 0.2]}", "beta"},
        {"{\"format\": \"modes-policy\", \"version\": 1, \"model\": {\"moe_layers\": 3}, \"method\": \"topk\", \"k\": 0}", "k "},
        {"{\"format\": \"modes-policy\", \"version\": 1", "invalid JSON"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        write_text(path, bad[i].text);
        p = NULL;
        CHECKF(modes_policy_load(m, path, &p, &err) == MODES_E_INPUT && !p, "bad policy %zu accepted", i);
        CHECKF(strstr(err.msg, bad[i].needle) && strstr(err.msg, "policy.json"), "policy %zu: '%s' lacks '%s'", i,
               err.msg, bad[i].needle);
    }
    free(path);
}

/* A copy of the tiny model whose config.json is the original's text passed through edit(). */
static modes_model *load_copy(const char *tmp, const char *name, void (*edit)(char *text, size_t *len)) {
    char *cfg_path = path_join(shared_path(TINY), "config.json"), *text, abs_dir[PATH_MAX];
    size_t len;
    modes_error err;
    modes_model *m = NULL;
    CHECK(read_file(cfg_path, 1 << 20, &text, &len, &err) == 0);
    free(cfg_path);
    edit(text, &len);
    char *dir = path_join(tmp, name), *dst = path_join(dir, "config.json");
    mkdir(dir, 0755);
    CHECK(write_file_atomic(dst, text, len, &err) == 0);
    free(dst);
    const char *files[] = {"model.safetensors", "generation_config.json", "tokenizer.json", "tokenizer_config.json"};
    for (int i = 0; i < 4 && realpath(shared_path(TINY), abs_dir); i++) {
        char *src = path_join(abs_dir, files[i]);
        dst = path_join(dir, files[i]);
        CHECK(symlink(src, dst) == 0);
        free(src);
        free(dst);
    }
    if (realpath(shared_path("ref/qwen3vlmoe-tiny-a"), abs_dir)) {
        char *src = path_join(abs_dir, "preprocessor_config.json");
        dst = path_join(dir, "preprocessor_config.json");
        CHECK(symlink(src, dst) == 0);
        free(src);
        free(dst);
    }
    CHECKF(modes_model_load(dir, &m, &err) == 0, "%s", err.msg);
    free(text);
    free(dir);
    return m;
}

static void reformat(char *text, size_t *len) { /* one line: same values, other bytes */
    size_t o = 0;
    for (size_t i = 0; i < *len; i++) {
        if (text[i] == '\n') {
            while (i + 1 < *len && text[i + 1] == ' ') i++;
            text[o++] = ' ';
        } else {
            text[o++] = text[i];
        }
    }
    text[*len = o] = 0;
}

static void other_rope(char *text, size_t *len) {
    char *at = strstr(text, "\"rope_theta\": 5000000.0");
    CHECK(at != NULL);
    if (at) at[strlen("\"rope_theta\": ")] = '4';
    reformat(text, len);
}

/* A policy is bound to the architecture's values, tensors and sampled weights, not config.json's
 * bytes; a refusal names what differs. */
static void test_binding(const modes_model *m, const char *tmp) {
    policy_binding b;
    modes_error err = {0};
    CHECKF(model_binding(m, &b, &err) == 0, "%s", err.msg);
    CHECK(b.n_tensors > 10 && b.weights[0] && b.n_fields > 20);
    modes_policy *p = spec(m, "threshold:0.1", NULL), *q = NULL;
    char *path = path_join(tmp, "bound.json");
    policy_meta meta = {.binding = &b, .experts = 8, .top_k = 2, .target_skip = -1};
    CHECKF(policy_save(path, p, &meta, &err) == 0, "%s", err.msg);
    CHECKF(modes_policy_load(m, path, &q, &err) == 0, "%s", err.msg);
    modes_policy_free(q);

    modes_model *same = load_copy(tmp, "reformatted", reformat), *other = load_copy(tmp, "rope", other_rope);
    if (same) { /* the old binding (config.json's bytes) refused this */
        CHECKF(modes_policy_load(same, path, &q, &err) == 0, "reformatted config.json: %s", err.msg);
        modes_policy_free(q);
    }
    if (other) {
        q = NULL;
        CHECK(modes_policy_load(other, path, &q, &err) == MODES_E_INPUT && !q);
        CHECKF(strstr(err.msg, "rope_theta=5000000, this model has 4000000") && strstr(err.msg, "bound.json"), "%s", err.msg);
    }
    modes_model_free(same);
    modes_model_free(other);

    policy_binding c = b; /* the same model seen through an edited binding: each difference named */
    uint32_t *t = malloc(b.n_tensors * sizeof *t);
    CHECK(t != NULL);
    if (t) {
        c.tensor = t;
        memcpy(t, b.tensor, b.n_tensors * sizeof *t);
        t[3] ^= 1; /* same name, another dtype or shape */
        CHECK(policy_load(path, m->n_moe_layers, &c, &q, &err) == MODES_E_INPUT);
        char want[300];
        snprintf(want, sizeof want, "tensor %s: its dtype or shape differs", b.tensor_name[3]);
        CHECKF(strstr(err.msg, want), "'%s' lacks '%s'", err.msg, want);
        t[3] ^= 1u << 20; /* another name */
        CHECK(policy_load(path, m->n_moe_layers, &c, &q, &err) == MODES_E_INPUT && strstr(err.msg, "tensor names differ"));
        memcpy(t, b.tensor, b.n_tensors * sizeof *t);
        c.n_tensors--;
        CHECK(policy_load(path, m->n_moe_layers, &c, &q, &err) == MODES_E_INPUT && strstr(err.msg, "tensors, this model has"));
        free(t);
    }
    c = b;
    for (int i = 0; i < c.n_fields; i++)
        if (!strcmp(c.field[i], "num_experts")) c.value[i] = 64;
    CHECK(policy_load(path, m->n_moe_layers, &c, &q, &err) == MODES_E_INPUT);
    CHECKF(strstr(err.msg, "made for a model with num_experts=8, this model has 64"), "%s", err.msg);
    c = b;
    c.weights[0] = c.weights[0] == '0' ? '1' : '0';
    CHECK(policy_load(path, m->n_moe_layers, &c, &q, &err) == MODES_E_INPUT && strstr(err.msg, "other weights"));
    c = b;
    c.architecture = "kimi_vl";
    CHECK(policy_load(path, m->n_moe_layers, &c, &q, &err) == MODES_E_INPUT && strstr(err.msg, "qwen3_vl_moe model, this one is kimi_vl"));
    modes_policy_free(p);
    policy_binding_free(&b);
    free(path);
}

int main(void) {
    require_shared();
    char tmp[] = "/tmp/modes-skip-XXXXXX";
    if (!mkdtemp(tmp)) return 2;
    modes_model *m = NULL;
    modes_error err;
    CHECKF(modes_model_load(shared_path(TINY), &m, &err) == 0, "%s", err.msg);
    if (m) {
        test_case text, image;
        load_case("ref/qwen3vlmoe-tiny-a/text.safetensors", &text);
        load_case("ref/qwen3vlmoe-tiny-a/image_default.safetensors", &image);
        test_equivalences(m, &text);
        test_equivalences(m, &image);
        static const int32_t plain_ids[] = {17, 42, 99, 123, 256, 300, 77, 88, 131, 400, 12, 5, 460, 250};
        test_case plain = {.ids = (int32_t *)plain_ids, .n = (int)(sizeof plain_ids / sizeof *plain_ids)};
        for (int i = 0; i < plain.n; i++) CHECK(modes_model_token_class(m, plain_ids[i]) == MODES_TOKEN_TEXT);
        test_topk(m, &image, &plain, tmp);
        test_specs(m);
        test_policy_files(m, tmp);
        test_binding(m, tmp);
        free(text.ids);
        free(image.ids);
        free(image.pixels);
    }
    modes_model_free(m);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp);
    return check_done();
}
