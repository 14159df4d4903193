/* modes generate: greedy continuation of a case file's input_ids through the KV cache (prefill, then
 * one token per step), printing {"ids": [...]} with the new tokens. --step-logits writes the logits
 * that chose each token, to check the decode path against the reference's step_logits. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char *HELP =
    "usage: modes generate -m DIR --input CASE.safetensors -n N [--stop] [--step-logits OUT.safetensors]\n"
    "                      [--policy FILE | --skip SPEC [--alphas FILE]] [--image FILE]... [-t THREADS]\n"
    "  Greedy continuation of input_ids; prints {\"ids\": [...]} (new tokens only). Generation runs N\n"
    "  steps; with --stop it ends early at the model's end-of-turn ids.\n"
    "  Long forms: -m/--model, -n/--n-predict, -t/--threads. Defaults: -n 16, -t {cores} (the physical cores).\n";

int cmd_generate(int argc, char **argv) {
    const char *policy_path = NULL, *alphas_path = NULL, *skip = NULL, *images[64];
    int n_images = 0;
    const char *dir = NULL, *input = NULL, *step_out = NULL;
    long n_new = 16, threads = 0;
    int stop = 0;
    for (int i = 1; i < argc; i++) {
        int r;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            cli_print_help(HELP);
            return 0;
        }
        if (!strcmp(argv[i], "--stop")) {
            stop = 1;
            continue;
        }
        const char *img;
        if ((r = opt_multi(argc, argv, &i, "--image", &img, "generate")) == 0) {
            if (n_images == 64) return cli_usage("generate", "at most 64 images");
            images[n_images++] = img;
            continue;
        }
        if (r < 0) return 1;
        if ((r = opt_str(argc, argv, &i, "-m|--model", &dir, "generate")) <= 0 ||
            (r = opt_str(argc, argv, &i, "--policy", &policy_path, "generate")) <= 0 ||
            (r = opt_str(argc, argv, &i, "--alphas", &alphas_path, "generate")) <= 0 ||
            (r = opt_str(argc, argv, &i, "--skip", &skip, "generate")) <= 0 ||
            (r = opt_str(argc, argv, &i, "--input", &input, "generate")) <= 0 ||
            (r = opt_str(argc, argv, &i, "--step-logits", &step_out, "generate")) <= 0 ||
            (r = opt_int(argc, argv, &i, "-n|--n-predict", 0, 1 << 20, &n_new, "generate")) <= 0 ||
            (r = opt_int(argc, argv, &i, "-t|--threads", 0, 1024, &threads, "generate")) <= 0) {
            if (r < 0) return 1;
            continue;
        }
        return cli_usage("generate", "unknown option '%s'", argv[i]);
    }
    if (!dir || !input) return cli_usage("generate", "-m and --input are required");

    modes_error err = {0};
    modes_case *in = NULL;
    int32_t *out = NULL;
    int made = 0;
    modes_model *m = NULL;
    modes_ctx *ctx = NULL;
    float *logits = NULL, *steps = NULL;
    int rc = modes_model_load(dir, &m, &err);
    if (!rc) rc = modes_case_load(m, input, &in, &err);
    modes_policy *policy = NULL;
    if (!rc) rc = cli_load_policy(m, policy_path, alphas_path, skip, &policy, &err);
    if (!rc && n_images) rc = modes_case_set_images(in, m, images, n_images, &err);
    int n = 0, n_case_images = 0;
    const int32_t *ids = modes_case_ids(in, &n);
    const modes_image *case_images = modes_case_images(in, &n_case_images);
    const int V = m ? modes_model_vocab(m) : 0;
    modes_ctx_params cp = {.n_ctx = n + (int)n_new, .threads = (int)threads};
    if (!rc) rc = modes_ctx_new(m, &cp, &ctx, &err);
    if (!rc) modes_ctx_set_policy(ctx, policy);
    if (!rc && (!(logits = malloc((size_t)V * sizeof *logits)) || !(out = malloc(((size_t)n_new + 1) * sizeof *out)) ||
                (step_out && !(steps = malloc(((size_t)n_new + 1) * V * sizeof *steps)))))
        rc = modes_fail(&err, MODES_E_INTERNAL, "out of memory");
    if (!rc && n_new > 0) rc = modes_eval_images(ctx, ids, n, case_images, n_case_images, logits, 1, &err);
    while (!rc && made < n_new) {
        if (steps) memcpy(steps + (size_t)made * V, logits, (size_t)V * sizeof *logits);
        int32_t next = modes_sample(logits, V, NULL, NULL);
        out[made++] = next;
        if ((stop && modes_model_is_stop(m, next)) || made == n_new) break;
        rc = modes_eval(ctx, &next, 1, logits, 1, &err);
    }
    if (!rc && step_out) {
        modes_tensor_writer *w = NULL;
        const int64_t shape[2] = {made, V};
        rc = modes_tensor_writer_new(&w, &err);
        if (!rc) rc = modes_tensor_writer_add(w, "step_logits", MODES_VALUES_F32, 2, shape, steps, &err);
        if (!rc) rc = modes_tensor_writer_save(w, step_out, &err);
        modes_tensor_writer_free(w);
    }
    if (!rc) {
        printf("{\"ids\": [");
        for (int i = 0; i < made; i++) printf(i ? ", %d" : "%d", out[i]);
        printf("]}\n");
    }
    modes_case_free(in);
    free(out);
    free(logits);
    free(steps);
    modes_ctx_free(ctx);
    modes_policy_free(policy);
    modes_model_free(m);
    return rc ? cli_fail("generate", &err) : 0;
}
