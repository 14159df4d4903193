/* The model against the reference (ref/qwen3vlmoe-tiny-a: cases text, image_small, image_default),
 * through the CLI: `modes forward` must reproduce logits, every text-layer tap and every vision tap
 * within 1e-4 of the largest |value| of each tensor, M-RoPE positions and deltas exactly, router
 * choices as identical sets; `modes generate` must reproduce the greedy continuations token for token
 * and the logits that chose each token within the same bound. Inputs are the stored input_ids and
 * pixel_values, so the model is tested apart from image preprocessing. */
#define _XOPEN_SOURCE 700 /* realpath */
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/json.h"
#include "golden.h"

static void check_exact_i64(const st_archive *ref, const st_archive *got, const char *name) {
    const st_tensor *r = st_find(ref, name), *g = st_find(got, name);
    CHECKF(r && g && r->numel == g->numel && g->dtype == ST_I64, "tensor %s: missing or of another size", name);
    if (!(r && g && r->numel == g->numel && g->dtype == ST_I64)) return;
    int64_t bad = 0;
    for (int64_t i = 0; i < r->numel; i++) bad += golden_i64(r, i) != golden_i64(g, i);
    CHECKF(bad == 0, "tensor %s: %lld values differ", name, (long long)bad);
}

/* model: the folder to run; image: a PNG to preprocess ourselves instead of the stored pixel_values. */
static void test_forward(const char *tmp, const char *case_name, const char *model, const char *image) {
    char cmd[4096], out[1024], ref_path[1024], extra[1100] = "";
    snprintf(out, sizeof out, "%s/%s%s_out.safetensors", tmp, case_name, image ? "_png" : "");
    snprintf(ref_path, sizeof ref_path, "ref/qwen3vlmoe-tiny-a/%s.safetensors", case_name);
    if (image) snprintf(extra, sizeof extra, " --image '%s'", image);
    snprintf(cmd, sizeof cmd, "'%s' forward -m '%s' --input '%s' -o '%s'%s", golden_bin(), model, shared_path(ref_path), out, extra);
    CHECKF(system(cmd) == 0, "command failed: %s", cmd);
    st_archive *ref = NULL, *got = NULL;
    modes_error err = {0};
    CHECKF(st_open(shared_path(ref_path), &ref, &err) == 0, "%s", err.msg);
    CHECKF(st_open(out, &got, &err) == 0, "%s", err.msg);
    if (!ref || !got) goto done;
    double worst = 0;
    int compared = 0;
    for (size_t i = 0; i < st_count(ref); i++) {
        const char *name = st_tensor_at(ref, i)->name;
        if (!strncmp(name, "mrope_", 6)) {
            compared++;
            check_exact_i64(ref, got, name);
            continue;
        }
        /* hf_* repeat the text taps; input_ids, pixel_values and grids are inputs. */
        if (strncmp(name, "text.", 5) && strncmp(name, "vision.", 7) && strcmp(name, "logits")) continue;
        compared++;
        if (strstr(name, "router_topk_idx")) golden_check_topk(ref, got, name);
        else if (strstr(name, "router_topk_weights")) golden_check_f32(ref, got, name, 0, 1e-5, NULL);
        else if (strstr(name, "router_logits") || strstr(name, "rope_")) golden_check_f32(ref, got, name, 0, 1e-5, NULL);
        else golden_check_f32(ref, got, name, 1e-4, 0, &worst);
    }
    CHECKF(compared >= 30, "only %d reference tensors compared", compared);
    printf("forward %s%s: %d tensors compared, worst relative difference %.2g\n", case_name,
           image ? " (from the PNG)" : "", compared, worst);
done:
    st_close(ref);
    st_close(got);
}

static void test_generate(const char *tmp, const char *case_name) {
    char cmd[4096], steps[1024], input[1024], key[128];
    snprintf(steps, sizeof steps, "%s/%s_steps.safetensors", tmp, case_name);
    snprintf(input, sizeof input, "ref/qwen3vlmoe-tiny-a/%s.safetensors", case_name);
    snprintf(cmd, sizeof cmd, "'%s' generate -m '%s' --input '%s' -n 8 --step-logits '%s'", golden_bin(),
             shared_path("ref/qwen3vlmoe-tiny-a/model"), shared_path(input), steps);
    char line[4096];
    const long got_n = golden_read_cmd(cmd, line, sizeof line);
    CHECKF(got_n >= 0, "command failed: %s", cmd);
    if (got_n < 0) return;
    json_doc *doc = NULL;
    modes_error err = {0};
    CHECKF(json_parse(line, (size_t)got_n, NULL, "generate output", &doc, &err) == 0, "%s", err.msg);
    st_archive *ref = NULL, *mine = NULL;
    CHECKF(st_open(shared_path("ref/qwen3vlmoe-tiny-a/generate.safetensors"), &ref, &err) == 0, "%s", err.msg);
    if (doc && ref) {
        const json_node *ids = json_get(json_root(doc), "ids");
        snprintf(key, sizeof key, "%s.new_ids", case_name);
        const st_tensor *want = st_find(ref, key);
        CHECKF(ids && want && ids->n == (size_t)want->numel, "expected %lld new ids", want ? (long long)want->numel : 0);
        for (size_t i = 0; ids && want && i < ids->n && i < (size_t)want->numel; i++)
            CHECKF(json_at(ids, i)->u.num == (double)golden_i64(want, (int64_t)i), "new id %zu: got %.0f, want %lld", i,
                   json_at(ids, i)->u.num, (long long)golden_i64(want, (int64_t)i));
    }
    CHECKF(st_open(steps, &mine, &err) == 0, "%s", err.msg);
    if (ref && mine) {
        snprintf(key, sizeof key, "%s.step_logits", case_name);
        const st_tensor *r = st_find(ref, key), *g = st_find(mine, "step_logits");
        CHECK(r && g && r->numel == g->numel);
        if (r && g && r->numel == g->numel) {
            double d, mx;
            golden_diff(r, g, &d, &mx);
            CHECKF(d <= 1e-4 * mx, "step logits differ by %.3g (max |ref| %.3g)", d, mx);
            printf("generate %s: step logits max diff %.2g of %.2g\n", case_name, d, mx);
        }
    }
    st_close(mine);
    st_close(ref);
    json_free(doc);
}

int main(void) {
    require_shared();
    char tmp[] = "/tmp/modes-golden-XXXXXX";
    if (!mkdtemp(tmp)) return 2;
    char model[1024], png[1024]; /* shared_path's buffers are reused: keep copies, absolute for symlinks */
    if (!realpath(shared_path("ref/qwen3vlmoe-tiny-a/model"), model) ||
        !realpath(shared_path("ref/qwen3vlmoe-tiny-a/image_64x96.png"), png))
        return 2;
    test_forward(tmp, "text", model, NULL);
    test_forward(tmp, "image_small", model, NULL);
    test_forward(tmp, "image_default", model, NULL);
    /* The PNG through our own preprocessing. It reproduces the reference's pixel values exactly
     * (test_preprocess), so the same tolerance holds. image_default uses the default processor
     * settings (the model folder has no preprocessor_config.json); image_small needs the case's own
     * (min_pixels 1024: no resize), given in a folder that links the model's files. */
    test_forward(tmp, "image_default", model, png);
    char small_model[1024], link[1200], target[1200];
    snprintf(small_model, sizeof small_model, "%s/small_model", tmp);
    mkdir(small_model, 0755);
    const char *files[] = {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"};
    for (int i = 0; i < 4; i++) {
        snprintf(link, sizeof link, "%s/%s", small_model, files[i]);
        snprintf(target, sizeof target, "%s/%s", model, files[i]);
        CHECK(symlink(target, link) == 0);
    }
    snprintf(link, sizeof link, "%s/preprocessor_config.json", small_model);
    if (realpath(shared_path("ref/qwen3vlmoe-tiny-a/preprocessor_config.json"), target)) CHECK(symlink(target, link) == 0);
    test_forward(tmp, "image_small", small_model, png);
    test_generate(tmp, "text");
    test_generate(tmp, "image_small");
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp);
    return check_done();
}
