/* Text-only Qwen3-MoE (the architecture of Qwen3-30B-A3B), the second family behind the model-family
 * interface, against the text case of ref/internvl35moe-tiny-a, whose language model is a Qwen3-MoE with
 * a dense layer (mlp_only_layers) and plain 1-D RoPE.
 *
 * The test makes, in a temporary folder, the folder Qwen3-30B-A3B is released as: a flat config.json of
 * model_type "qwen3_moe" (the reference's text_config, which already uses Qwen3-MoE's key names), its
 * generation_config.json and tokenizer, and a model.safetensors holding the language model's tensors
 * under the released names (language_model.model.X -> model.X, language_model.lm_head.weight ->
 * lm_head.weight; vision tower and projector left out). Through the public API it must then reproduce
 * the reference's logits at every position within 1e-4 (absolute, and of the largest |logit|: the
 * README's tolerance) with the same argmax, every text tap it reports that the reference also has,
 * and the greedy continuation (ids exactly, the logits that chose them within the same bound); and
 * `modes forward` and `modes generate` likewise. Without norm_topk_prob in config.json the logits must
 * change (transformers' default for qwen3_moe is not to renormalise). */
#define _XOPEN_SOURCE 700 /* realpath */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/json.h"
#include "golden.h"
#include "io/file.h"
#include "io/safetensors.h"
#include "modes.h"

#define REF "ref/internvl35moe-tiny-a"
#define N_GENERATE 8

/* ---- Making the released-style folder ---------------------------------------------------------- */

static void write_json_node(strbuf *sb, const json_node *v) {
    switch (v->type) {
    case JSON_NULL: sb_puts(sb, "null"); break;
    case JSON_FALSE: sb_puts(sb, "false"); break;
    case JSON_TRUE: sb_puts(sb, "true"); break;
    case JSON_NUMBER: sb_json_number(sb, v->u.num); break;
    case JSON_STRING: sb_json_string(sb, v->u.str, v->n); break;
    case JSON_ARRAY:
        sb_puts(sb, "[");
        for (size_t i = 0; i < v->n; i++) {
            if (i) sb_puts(sb, ", ");
            write_json_node(sb, json_at(v, i));
        }
        sb_puts(sb, "]");
        break;
    case JSON_OBJECT:
        sb_puts(sb, "{\n");
        for (size_t i = 0; i < v->n; i++) {
            const json_node *k = json_key_at(v, i);
            sb_puts(sb, i ? ",\n  " : "  ");
            sb_json_string(sb, k->u.str, k->n);
            sb_puts(sb, ": ");
            write_json_node(sb, json_val_at(v, i));
        }
        sb_puts(sb, "\n}");
        break;
    }
}

static json_doc *read_json(const char *path) {
    char *text = NULL;
    size_t len;
    json_doc *doc = NULL;
    modes_error err = {0};
    CHECKF(read_file(path, 1 << 20, &text, &len, &err) == 0 && json_parse(text, len, NULL, path, &doc, &err) == 0,
           "%s", err.msg);
    free(text);
    return doc;
}

/* Qwen3-30B-A3B's config.json is flat: the reference's text_config is that object (it keeps
 * Qwen3-MoE's names: num_experts, mlp_only_layers, rope_theta...). The top-level tie_word_embeddings,
 * which the composite model honours, replaces the text_config's own. */
static void write_config(const char *ref_model, const char *dir, const char *drop) {
    char *src = path_join(ref_model, "config.json");
    json_doc *doc = read_json(src);
    free(src);
    if (!doc) return;
    const json_node *root = json_root(doc), *tc = json_get(root, "text_config");
    const json_node *tie = json_get(root, "tie_word_embeddings"), *mt = tc ? json_get(tc, "model_type") : NULL;
    CHECKF(tc && mt && mt->type == JSON_STRING && !strcmp(mt->u.str, "qwen3_moe"),
           "%s: text_config of model_type qwen3_moe expected", REF);
    strbuf sb = {0};
    sb_puts(&sb, "{\n  ");
    for (size_t i = 0, first = 1; tc && i < tc->n; i++) {
        const json_node *k = json_key_at(tc, i), *v = json_val_at(tc, i);
        if (drop && !strcmp(k->u.str, drop)) continue;
        if (tie && !strcmp(k->u.str, "tie_word_embeddings")) v = tie;
        if (!first) sb_puts(&sb, ",\n  ");
        first = 0;
        sb_json_string(&sb, k->u.str, k->n);
        sb_puts(&sb, ": ");
        write_json_node(&sb, v);
    }
    sb_puts(&sb, "\n}\n");
    char *dst = path_join(dir, "config.json");
    modes_error err = {0};
    CHECKF(!sb.failed && write_file_atomic(dst, sb.data, sb.len, &err) == 0, "%s: %s", dst, err.msg);
    free(dst);
    sb_free(&sb);
    json_free(doc);
}

static void copy_file(const char *from_dir, const char *to_dir, const char *name) {
    char *src = path_join(from_dir, name), *dst = path_join(to_dir, name), *data = NULL;
    size_t len;
    modes_error err = {0};
    CHECKF(read_file(src, 64 << 20, &data, &len, &err) == 0 && write_file_atomic(dst, data, len, &err) == 0, "%s",
           err.msg);
    free(data);
    free(src);
    free(dst);
}

/* The released name of a reference tensor, or NULL for one the text model does not have. */
static const char *released_name(const char *ref_name, char *buf, size_t size) {
    static const char model[] = "language_model.model.", head[] = "language_model.lm_head.";
    if (!strncmp(ref_name, model, sizeof model - 1)) {
        snprintf(buf, size, "model.%s", ref_name + sizeof model - 1);
        return buf;
    }
    if (!strncmp(ref_name, head, sizeof head - 1)) {
        snprintf(buf, size, "lm_head.%s", ref_name + sizeof head - 1);
        return buf;
    }
    return NULL;
}

/* Returns the number of tensors written; *total gets the reference's count. */
static int write_weights(const char *ref_model, const char *dir, int *total) {
    st_archive *a = NULL;
    modes_error err = {0};
    CHECKF(st_open(ref_model, &a, &err) == 0, "%s", err.msg);
    if (!a) return 0;
    *total = (int)st_count(a);
    st_writer *w = st_writer_new();
    int n = 0;
    char name[512];
    for (size_t i = 0; w && i < st_count(a); i++) {
        const st_tensor *t = st_tensor_at(a, i);
        if (!released_name(t->name, name, sizeof name)) continue;
        CHECKF(st_writer_add(w, name, t->dtype, t->ndim, t->shape, t->data, &err) == 0, "%s", err.msg);
        n++;
    }
    char *dst = path_join(dir, "model.safetensors");
    CHECKF(w && st_writer_save(w, dst, &err) == 0, "%s: %s", dst, err.msg);
    free(dst);
    st_writer_free(w);
    st_close(a);
    return n;
}

static void make_folder(const char *ref_model, const char *dir) {
    write_config(ref_model, dir, NULL);
    copy_file(ref_model, dir, "generation_config.json");
    copy_file(ref_model, dir, "tokenizer.json");
    copy_file(ref_model, dir, "tokenizer_config.json");
    int total = 0;
    const int n = write_weights(ref_model, dir, &total);
    CHECKF(n > 0 && n < total, "%d of the reference's %d tensors kept: the vision tower and projector must go", n, total);
    printf("folder: %d of %d tensors kept, under released Qwen3-MoE names\n", n, total);
}

/* ---- Running it -------------------------------------------------------------------------------- */

/* Taps collected into a safetensors archive, so the golden comparisons apply (int taps widened to
 * int64, the reference's type). */
typedef struct {
    st_writer *w;
    int n;
} tap_sink;

static void collect_tap(void *user, const char *name, int is_int, const void *data, int ndim, const int64_t *shape) {
    tap_sink *s = user;
    int64_t numel = 1;
    for (int i = 0; i < ndim; i++) numel *= shape[i];
    modes_error err = {0};
    if (!is_int) {
        if (st_writer_add(s->w, name, ST_F32, ndim, shape, data, &err) == 0) s->n++;
        return;
    }
    int64_t *wide = malloc((size_t)(numel ? numel : 1) * sizeof *wide);
    for (int64_t i = 0; wide && i < numel; i++) wide[i] = ((const int32_t *)data)[i];
    if (wide && st_writer_add(s->w, name, ST_I64, ndim, shape, wide, &err) == 0) s->n++;
    free(wide);
}

static int32_t *ids_of(const st_tensor *t, int *n) {
    *n = t && t->dtype == ST_I64 ? (int)t->numel : 0;
    int32_t *ids = malloc((size_t)(*n ? *n : 1) * sizeof *ids);
    for (int i = 0; ids && i < *n; i++) ids[i] = (int32_t)golden_i64(t, i);
    return ids;
}

static int argmax(const float *v, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

/* Logits [T][V] against the reference's [1, T, V]: max |diff| <= 1e-4 * max |ref|, same argmax. */
static void compare_logits(const st_tensor *ref, const float *got, int T, int V, const char *what) {
    CHECKF(ref && ref->dtype == ST_F32 && ref->numel == (int64_t)T * V, "%s: reference logits of another size", what);
    if (!(ref && ref->dtype == ST_F32 && ref->numel == (int64_t)T * V)) return;
    const float *r = ref->data;
    double max_diff = 0, max_ref = 0;
    int argmax_bad = 0;
    for (int64_t i = 0; i < (int64_t)T * V; i++) {
        const double d = fabs((double)r[i] - got[i]);
        if (!(d <= max_diff)) max_diff = d; /* NaN propagates as a failure */
        if (fabs(r[i]) > max_ref) max_ref = fabs(r[i]);
    }
    for (int t = 0; t < T; t++) argmax_bad += argmax(r + (size_t)t * V, V) != argmax(got + (size_t)t * V, V);
    /* The bound is 1e-4 absolute, the README's 1e-4 of the largest |logit| (about 8 here). */
    CHECKF(max_diff <= 1e-4 && max_diff <= 1e-4 * max_ref, "%s: logits differ by %.3g (max |ref| %.3g)", what,
           max_diff, max_ref);
    CHECKF(argmax_bad == 0, "%s: argmax differs at %d of %d positions", what, argmax_bad, T);
    printf("%s: %d x %d logits, max abs diff %.3g (max |ref| %.3g, %.2g relative)\n", what, T, V, max_diff, max_ref,
           max_diff / (max_ref > 0 ? max_ref : 1));
}

/* Every reference text tap (and the logits) the model reported: router choices as sets, router
 * weights and logits and RoPE tables 1e-5 absolute, activations and logits 1e-4 relative (the README's
 * tolerances). Returns the number compared. */
static int compare_taps(const st_archive *ref, const char *taps_path, const char *what) {
    st_archive *got = NULL;
    modes_error err = {0};
    CHECKF(st_open(taps_path, &got, &err) == 0, "%s", err.msg);
    if (!got) return 0;
    int compared = 0;
    double worst = 0;
    for (size_t i = 0; i < st_count(ref); i++) {
        const char *name = st_tensor_at(ref, i)->name;
        if ((strncmp(name, "text.", 5) && strcmp(name, "logits")) || !st_find(got, name)) continue;
        compared++;
        if (strstr(name, "router_topk_idx")) golden_check_topk(ref, got, name);
        else if (strstr(name, "router_") || strstr(name, "rope_")) golden_check_f32(ref, got, name, 0, 1e-5, NULL);
        else golden_check_f32(ref, got, name, 1e-4, 0, &worst);
    }
    printf("%s: %d of the reference's tensors reported and compared, worst relative difference %.2g\n", what,
           compared, worst);
    st_close(got);
    return compared;
}

static void test_forward(const modes_model *m, const char *tmp) {
    st_archive *ref = NULL;
    modes_error err = {0};
    CHECKF(st_open(shared_path(REF "/text.safetensors"), &ref, &err) == 0, "%s", err.msg);
    if (!ref) return;
    int T = 0;
    int32_t *ids = ids_of(st_find(ref, "input_ids"), &T);
    const int V = modes_model_vocab(m);
    float *logits = malloc((size_t)(T ? T : 1) * (size_t)V * sizeof *logits);
    modes_ctx *c = NULL;
    tap_sink sink = {st_writer_new(), 0};
    CHECKF(T > 0 && ids && logits && sink.w, "%s/text.safetensors: no input_ids", REF);
    CHECKF(modes_ctx_new(m, NULL, &c, &err) == 0, "%s", err.msg);
    if (c && ids && logits && sink.w && T > 0) {
        modes_ctx_set_tap(c, collect_tap, &sink);
        CHECKF(modes_eval(c, ids, T, logits, T, &err) == 0, "modes_eval: %s", err.msg);
        if (!err.msg[0]) compare_logits(st_find(ref, "logits"), logits, T, V, "forward text");
        char *taps = path_join(tmp, "taps.safetensors");
        CHECKF(st_writer_save(sink.w, taps, &err) == 0, "%s", err.msg);
        compare_taps(ref, taps, "taps");
        free(taps);
    }
    st_writer_free(sink.w);
    modes_ctx_free(c);
    free(logits);
    free(ids);
    st_close(ref);
}

/* Greedy decoding with the KV cache, as the reference's generate: the prompt, then one id at a time. */
static void test_generate(const modes_model *m) {
    st_archive *ref = NULL;
    modes_error err = {0};
    CHECKF(st_open(shared_path(REF "/generate.safetensors"), &ref, &err) == 0, "%s", err.msg);
    if (!ref) return;
    int T = 0, n_new = 0;
    int32_t *prompt = ids_of(st_find(ref, "text.prompt_ids"), &T), *want = ids_of(st_find(ref, "text.new_ids"), &n_new);
    const st_tensor *steps = st_find(ref, "text.step_logits");
    const int V = modes_model_vocab(m);
    CHECKF(T > 0 && n_new == N_GENERATE && steps && steps->dtype == ST_F32 && steps->numel == (int64_t)N_GENERATE * V,
           "%s/generate.safetensors: text.prompt_ids, text.new_ids [%d] and text.step_logits [%d, %d] expected", REF,
           N_GENERATE, N_GENERATE, V);
    float *logits = malloc((size_t)N_GENERATE * (size_t)V * sizeof *logits);
    modes_ctx *c = NULL;
    CHECKF(modes_ctx_new(m, NULL, &c, &err) == 0, "%s", err.msg);
    if (c && logits && T > 0 && n_new == N_GENERATE && steps && steps->numel == (int64_t)N_GENERATE * V) {
        int rc = modes_eval(c, prompt, T, logits, 1, &err);
        int wrong = 0;
        for (int i = 0; !rc && i < N_GENERATE; i++) {
            const int32_t id = argmax(logits + (size_t)i * V, V);
            wrong += id != want[i];
            CHECKF(id == want[i], "greedy id %d: got %d, want %d", i, id, want[i]);
            if (i + 1 < N_GENERATE) rc = modes_eval(c, &want[i], 1, logits + (size_t)(i + 1) * V, 1, &err);
        }
        CHECKF(rc == 0, "modes_eval: %s", err.msg);
        if (!rc) compare_logits(steps, logits, N_GENERATE, V, "generate text (step logits)");
        printf("generate text: %d of %d greedy ids as the reference's\n", N_GENERATE - wrong, N_GENERATE);
    }
    modes_ctx_free(c);
    free(logits);
    free(prompt);
    free(want);
    st_close(ref);
}

/* ---- The CLI on the same folder ---------------------------------------------------------------- */

/* `modes forward`: the logits and taps it writes. */
static void test_cli_forward(const char *dir, const char *tmp) {
    char cmd[4096], out[1024];
    snprintf(out, sizeof out, "%s/forward.safetensors", tmp);
    snprintf(cmd, sizeof cmd, "'%s' forward -m '%s' --input '%s' -o '%s'", golden_bin(), dir,
             shared_path(REF "/text.safetensors"), out);
    CHECKF(system(cmd) == 0, "command failed: %s", cmd);
    st_archive *ref = NULL;
    modes_error err = {0};
    CHECKF(st_open(shared_path(REF "/text.safetensors"), &ref, &err) == 0, "%s", err.msg);
    if (!ref) return;
    st_archive *got = NULL;
    if (st_open(out, &got, &err) == 0) CHECKF(st_find(got, "logits") != NULL, "%s: no logits", out);
    st_close(got);
    compare_taps(ref, out, "modes forward");
    st_close(ref);
}

/* `modes generate`: the greedy ids it prints and the step logits it writes. */
static void test_cli_generate(const char *dir, const char *tmp) {
    char cmd[4096], steps[1024], line[4096];
    snprintf(steps, sizeof steps, "%s/steps.safetensors", tmp);
    snprintf(cmd, sizeof cmd, "'%s' generate -m '%s' --input '%s' -n %d --step-logits '%s'", golden_bin(), dir,
             shared_path(REF "/text.safetensors"), N_GENERATE, steps);
    const long len = golden_read_cmd(cmd, line, sizeof line);
    CHECKF(len >= 0, "command failed: %s", cmd);
    if (len < 0) return;
    json_doc *doc = NULL;
    st_archive *ref = NULL, *mine = NULL;
    modes_error err = {0};
    CHECKF(json_parse(line, (size_t)len, NULL, "generate output", &doc, &err) == 0, "%s", err.msg);
    CHECKF(st_open(shared_path(REF "/generate.safetensors"), &ref, &err) == 0, "%s", err.msg);
    CHECKF(st_open(steps, &mine, &err) == 0, "%s", err.msg);
    if (doc && ref && mine) {
        const json_node *ids = json_get(json_root(doc), "ids");
        const st_tensor *want = st_find(ref, "text.new_ids");
        CHECKF(ids && want && ids->n == (size_t)want->numel, "modes generate: %d new ids expected", N_GENERATE);
        for (size_t i = 0; ids && want && i < ids->n && i < (size_t)want->numel; i++)
            CHECKF(json_at(ids, i)->u.num == (double)golden_i64(want, (int64_t)i), "modes generate: id %zu is %.0f, want %lld",
                   i, json_at(ids, i)->u.num, (long long)golden_i64(want, (int64_t)i));
        const st_tensor *r = st_find(ref, "text.step_logits"), *g = st_find(mine, "step_logits");
        CHECKF(r && g && r->numel == g->numel && g->dtype == ST_F32, "%s: step_logits missing or of another size", steps);
        if (r && g && r->numel == g->numel && g->dtype == ST_F32) {
            double d, mx;
            golden_diff(r, g, &d, &mx);
            CHECKF(d <= 1e-4 * mx, "modes generate: step logits differ by %.3g (max |ref| %.3g)", d, mx);
            printf("modes generate: %zu ids, step logits max abs diff %.3g (max |ref| %.3g)\n", ids ? ids->n : 0, d, mx);
        }
    }
    st_close(mine);
    st_close(ref);
    json_free(doc);
}

/* Without norm_topk_prob the family must take Qwen3MoeConfig's default (false: top-k weights not
 * renormalised), which gives other logits: the key is read, not assumed. */
static void test_norm_topk_default(const char *ref_model, const char *dir) {
    write_config(ref_model, dir, "norm_topk_prob");
    modes_model *m = NULL;
    modes_ctx *c = NULL;
    st_archive *ref = NULL;
    modes_error err = {0};
    CHECKF(modes_model_load(dir, &m, &err) == 0, "without norm_topk_prob: %s", err.msg);
    CHECKF(st_open(shared_path(REF "/text.safetensors"), &ref, &err) == 0, "%s", err.msg);
    if (m && ref && modes_ctx_new(m, NULL, &c, &err) == 0) {
        int T = 0;
        int32_t *ids = ids_of(st_find(ref, "input_ids"), &T);
        const st_tensor *want = st_find(ref, "logits");
        const int V = modes_model_vocab(m);
        float *logits = malloc((size_t)(T ? T : 1) * (size_t)V * sizeof *logits);
        if (ids && logits && want && want->numel == (int64_t)T * V && modes_eval(c, ids, T, logits, T, &err) == 0) {
            double d = 0;
            for (int64_t i = 0; i < want->numel; i++) d = fmax(d, fabs((double)((const float *)want->data)[i] - logits[i]));
            CHECKF(d > 1e-2, "without norm_topk_prob the logits still match the reference (max diff %.3g)", d);
            printf("without norm_topk_prob (default false): logits differ from the renormalised reference by %.3g\n", d);
        } else {
            CHECKF(0, "without norm_topk_prob: %s", err.msg[0] ? err.msg : "no logits");
        }
        free(logits);
        free(ids);
    }
    modes_ctx_free(c);
    modes_model_free(m);
    st_close(ref);
}

/* `modes run` renders the chat template a text-only Qwen3 uses, and `modes inspect` says its RoPE is 1-D. */
static void test_cli_run_inspect(const char *dir) {
    char cmd[4096], out[8192];
    snprintf(cmd, sizeof cmd, "'%s' run -m '%s' -p 'Hello' -n 3 2>&1", golden_bin(), dir);
    CHECKF(golden_read_cmd(cmd, out, sizeof out) >= 0, "command failed: %s", cmd);
    snprintf(cmd, sizeof cmd, "'%s' inspect -m '%s'", golden_bin(), dir);
    CHECKF(golden_read_cmd(cmd, out, sizeof out) >= 0, "command failed: %s", cmd);
    CHECKF(strstr(out, "architecture   qwen3_moe") && strstr(out, ", 1-D\n"), "modes inspect: %s", out);
}

int main(void) {
    require_shared();
    char tmp[] = "/tmp/modes-qwen3moe-XXXXXX", ref_model[1024];
    if (!mkdtemp(tmp)) return perror("mkdtemp"), 2;
    if (!realpath(shared_path(REF "/model"), ref_model)) {
        fprintf(stderr, "%s: not found\n", shared_path(REF "/model"));
        return 1;
    }
    char *dir = path_join(tmp, "qwen3-moe");
    CHECK(dir && mkdir(dir, 0755) == 0);
    make_folder(ref_model, dir);

    modes_model *m = NULL;
    modes_error err = {0};
    CHECKF(modes_model_load(dir, &m, &err) == 0, "loading a released-style qwen3_moe folder: %s", err.msg);
    if (m) {
        CHECK(modes_model_tokenizer(m) != NULL);
        CHECKF(modes_model_is_stop(m, 2), "eos 2 (generation_config.json) is not a stop id");
        test_forward(m, tmp);
        test_generate(m);
        test_cli_forward(dir, tmp);
        test_cli_generate(dir, tmp);
        test_cli_run_inspect(dir);
    }
    modes_model_free(m);
    test_norm_topk_default(ref_model, dir);
    free(dir);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp);
    return check_done();
}
