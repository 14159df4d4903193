/* Model loading against a config.json (src/models): the input is config.json in a folder that links
 * the tiny test model's weights and tokenizer (../shared/ref/qwen3vlmoe-tiny-a/model, found through
 * MODES_SHARED as the tests find it). Loading must validate every tensor against whatever the config
 * claims; a model that loads is run: three tokens through a context, then a chat prompt with an
 * answer and a short greedy generation. */
#include "fuzz.h"

#ifndef MODES_SHARED_DEFAULT
#define MODES_SHARED_DEFAULT "../shared"
#endif

static char *dir, *cfg;

static void link_model(void) {
    const char *shared = getenv("MODES_SHARED");
    if (!shared || !*shared) shared = MODES_SHARED_DEFAULT;
    static const char *files[] = {"model.safetensors", "tokenizer.json", "tokenizer_config.json"};
    char cwd[1024] = "";
    if (shared[0] != '/') FUZZ_CHECK(getcwd(cwd, sizeof cwd), "getcwd"); /* links need an absolute target */
    for (int i = 0; i < 3; i++) {
        char src[2200], name[64];
        snprintf(src, sizeof src, "%s%s%s/ref/qwen3vlmoe-tiny-a/model/%s", cwd, cwd[0] ? "/" : "", shared, files[i]);
        if (access(src, R_OK)) { /* a clean failure, as every test that needs shared/ (tests/check.h) */
            fprintf(stderr, "shared/ not found (looked in %s%s%s)\n", cwd, cwd[0] ? "/" : "", shared);
            exit(1);
        }
        snprintf(name, sizeof name, "model/%s", files[i]);
        char *dst = fuzz_path(name);
        FUZZ_CHECK(symlink(src, dst) == 0, "cannot link %s", dst);
        free(dst);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!dir) {
        dir = fuzz_path("model");
        cfg = fuzz_path("model/config.json");
        link_model();
    }
    fuzz_write(cfg, data, size);
    modes_model *m = NULL;
    modes_error err = {0};
    int rc = modes_model_load(dir, &m, &err);
    if (rc) {
        FUZZ_CHECK(!m, "model returned on failure");
        fuzz_check_error(rc, &err, dir);
        return 0;
    }
    modes_ctx *c = NULL;
    modes_ctx_params cp = {.n_ctx = 64, .threads = 1};
    rc = modes_ctx_new(m, &cp, &c, &err);
    if (rc) {
        fuzz_check_error(rc, &err, NULL);
    } else {
        const int V = modes_model_vocab(m);
        float *logits = malloc((size_t)V * 2 * sizeof *logits);
        FUZZ_CHECK(logits, "out of memory");
        int32_t ids[3] = {1, 2, 3};
        rc = modes_eval(c, ids, 3, logits, 2, &err);
        if (rc) fuzz_check_error(rc, &err, NULL);
        modes_prompt *p = NULL;
        rc = modes_prompt_new(m, NULL, "hi", NULL, 0, "ok", &p, &err);
        if (rc) {
            fuzz_check_error(rc, &err, NULL);
        } else {
            int32_t out[4];
            int n = 0;
            modes_ctx_reset(c);
            rc = modes_generate(c, p, 3, NULL, NULL, NULL, out, &n, NULL, &err);
            if (rc) fuzz_check_error(rc, &err, NULL);
            else
                for (int i = 0; i < n; i++) FUZZ_CHECK(out[i] >= 0 && out[i] < V, "generated id %d", out[i]);
            modes_prompt_free(p);
        }
        free(logits);
    }
    modes_ctx_free(c);
    modes_model_free(m);
    return 0;
}
