/* modes forward: one teacher-forced pass over a case file's input_ids, writing logits at every
 * position and the intermediate taps under the reference's tensor names (fp32), so golden-file
 * tests can compare everything the reference dumped. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char *HELP =
    "usage: modes forward -m DIR --input CASE.safetensors -o OUT.safetensors [-t THREADS]\n"
    "                     [--policy FILE | --skip SPEC [--alphas FILE]] [--image FILE]...\n"
    "  Runs one teacher-forced pass over input_ids and writes logits for every position plus the\n"
    "  reference taps (text.layerN.in/attn_out/moe_out/out, router_topk_idx/weights, ...), fp32.\n"
    "  --image files replace the case's pixel_values: they are preprocessed with the model's settings.\n"
    "  Long forms: -m/--model, -o/--output, -t/--threads. Defaults: -t {cores} (the physical cores).\n";

typedef struct {
    modes_tensor_writer *w;
    int failed;
    modes_error err;
} collector;

/* Integer taps (router choices) are written as I64, the reference's dtype. */
static void collect(void *user, const char *name, int is_int, const void *data, int ndim, const int64_t *shape) {
    collector *c = user;
    if (c->failed) return;
    if (!is_int) {
        c->failed = modes_tensor_writer_add(c->w, name, MODES_VALUES_F32, ndim, shape, data, &c->err) != 0;
        return;
    }
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    int64_t *wide = malloc((size_t)(n ? n : 1) * sizeof *wide);
    if (!wide) {
        c->failed = 1;
        modes_fail(&c->err, MODES_E_INTERNAL, "out of memory");
        return;
    }
    for (int64_t i = 0; i < n; i++) wide[i] = ((const int32_t *)data)[i];
    c->failed = modes_tensor_writer_add(c->w, name, MODES_VALUES_I64, ndim, shape, wide, &c->err) != 0;
    free(wide);
}

int cmd_forward(int argc, char **argv) {
    const char *policy_path = NULL, *alphas_path = NULL, *skip = NULL, *images[64];
    int n_images = 0;
    const char *dir = NULL, *input = NULL, *out = NULL;
    long threads = 0;
    for (int i = 1; i < argc; i++) {
        int r;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            cli_print_help(HELP);
            return 0;
        }
        const char *img;
        if ((r = opt_multi(argc, argv, &i, "--image", &img, "forward")) == 0) {
            if (n_images == 64) return cli_usage("forward", "at most 64 images");
            images[n_images++] = img;
            continue;
        }
        if (r < 0) return 1;
        if ((r = opt_str(argc, argv, &i, "-m|--model", &dir, "forward")) <= 0 ||
            (r = opt_str(argc, argv, &i, "--policy", &policy_path, "forward")) <= 0 ||
            (r = opt_str(argc, argv, &i, "--alphas", &alphas_path, "forward")) <= 0 ||
            (r = opt_str(argc, argv, &i, "--skip", &skip, "forward")) <= 0 ||
            (r = opt_str(argc, argv, &i, "--input", &input, "forward")) <= 0 ||
            (r = opt_str(argc, argv, &i, "-o|--output", &out, "forward")) <= 0 ||
            (r = opt_int(argc, argv, &i, "-t|--threads", 0, 1024, &threads, "forward")) <= 0) {
            if (r < 0) return 1;
            continue;
        }
        return cli_usage("forward", "unknown option '%s'", argv[i]);
    }
    if (!dir || !input || !out) return cli_usage("forward", "-m, --input and -o are required");

    modes_error err = {0};
    modes_case *in = NULL;
    modes_model *m = NULL;
    modes_ctx *ctx = NULL;
    float *logits = NULL;
    collector col = {0};
    int rc = modes_tensor_writer_new(&col.w, &err);
    if (!rc) rc = modes_model_load(dir, &m, &err);
    if (!rc) rc = modes_case_load(m, input, &in, &err);
    modes_policy *policy = NULL;
    if (!rc) rc = cli_load_policy(m, policy_path, alphas_path, skip, &policy, &err);
    if (!rc && n_images) rc = modes_case_set_images(in, m, images, n_images, &err);
    int n = 0, n_case_images = 0;
    const int32_t *ids = modes_case_ids(in, &n);
    const modes_image *case_images = modes_case_images(in, &n_case_images);
    modes_ctx_params cp = {.n_ctx = n, .threads = (int)threads};
    if (!rc) rc = modes_ctx_new(m, &cp, &ctx, &err);
    if (!rc) modes_ctx_set_policy(ctx, policy);
    if (!rc && !(logits = malloc((size_t)n * modes_model_vocab(m) * sizeof *logits)))
        rc = modes_fail(&err, MODES_E_INTERNAL, "out of memory for %d x %d logits", n, modes_model_vocab(m));
    if (!rc) {
        modes_ctx_set_tap(ctx, collect, &col);
        rc = modes_eval_images(ctx, ids, n, case_images, n_case_images, logits, n, &err);
        if (!rc && col.failed) {
            err = col.err;
            rc = err.code ? err.code : MODES_E_INTERNAL;
        }
    }
    if (!rc) rc = modes_tensor_writer_save(col.w, out, &err);
    free(logits);
    modes_case_free(in);
    modes_tensor_writer_free(col.w);
    modes_ctx_free(ctx);
    modes_policy_free(policy);
    modes_model_free(m);
    return rc ? cli_fail("forward", &err) : 0;
}
