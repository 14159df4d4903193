/* modes run: answer a prompt (optionally about images) with the model's chat template, streaming
 * the answer as it is generated. --stats adds a line of speed and skip statistics; --json prints one
 * JSON object instead of the streamed text. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char *HELP =
    "usage: modes run -m DIR (-p TEXT | -f FILE) [--image FILE]... [--system TEXT] [-c N] [-n MAX_NEW] [--temp T]\n"
    "                 [--top-k K] [--top-p P] [--seed S] [-t THREADS]\n"
    "                 [--policy FILE | --skip SPEC [--alphas FILE]] [--stats] [--json]\n"
    "  Answers TEXT (about the images, in order) with the model's chat template. Greedy unless --temp > 0.\n"
    "  -c/--ctx-size N: tokens the context holds, prompt included (default: the prompt and -n, up to the\n"
    "  model's maximum; 0: the model's maximum). The answer stops when it is full, with a note on stderr;\n"
    "  --json reports why it stopped (\"stop_reason\": eos, length or context) and \"n_ctx\".\n"
    "  -p - reads the prompt from stdin, -f FILE from a file (a final line break is dropped).\n"
    "  Long forms: -m/--model, -p/--prompt, -f/--file, -n/--n-predict, -s/--seed, -t/--threads; --NAME=VALUE works.\n"
    "  Defaults: -n 256, --temp 0 (greedy), --top-k 0 (off), --top-p 1 (off), --seed 0 (-1: random, reported by\n"
    "  --stats and --json), -t {cores} (the physical cores).\n"
    "  Pictures (PNG, JPEG, WebP) of any size are resized into the model's pixel budget as the reference\n"
    "  processor does (only over 100 megapixels or an aspect ratio over 200 is refused); --stats and\n"
    "  --json say how each was resized.\n"
    "  --skip SPEC: none, topk:K, naee:BETA, threshold:TAU, dmt:TT,TV, gmlg-threshold:TAU, modes:TT,TV\n"
    "  --policy FILE applies a complete skip policy (from modes search); modes: and gmlg-threshold: specs\n"
    "  take their layer importances from --alphas FILE (from modes calibrate, or a policy file).\n";

typedef struct {
    cli_gen_opts g; /* n_ctx -1: not given */
    const char *prompt, *file;
    int stats, json;
} run_opts;

static int parse(int argc, char **argv, run_opts *o) {
    *o = (run_opts){.g = {.n_new = 256, .n_ctx = -1, .top_p = 1.0}};
    for (int i = 1; i < argc; i++) {
        int r;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            cli_print_help(HELP);
            return 2;
        }
        if (!strcmp(argv[i], "--stats")) { o->stats = 1; continue; }
        if (!strcmp(argv[i], "--json")) { o->json = 1; continue; }
        if ((r = opt_generation(argc, argv, &i, &o->g, "run")) <= 0 ||
            (r = opt_str(argc, argv, &i, "-p|--prompt", &o->prompt, "run")) <= 0 ||
            (r = opt_str(argc, argv, &i, "-f|--file", &o->file, "run")) <= 0) {
            if (r < 0) return -1;
            continue;
        }
        return cli_usage("run", "unknown option '%s'", argv[i]), -1;
    }
    if (!o->g.dir || !(o->prompt || o->file)) return cli_usage("run", "-m DIR and -p TEXT (or -f FILE) are required"), -1;
    if (o->prompt && o->file) return cli_usage("run", "-p/--prompt and -f/--file both give the prompt: use one"), -1;
    return cli_gen_opts_finish(&o->g, "run") ? -1 : 0;
}

typedef struct {
    int prompt_tokens, new_tokens, n_ctx;
    double prefill_s, decode_s;
    modes_stop_reason stop;
} run_timing;

static void print_stats(FILE *f, const modes_stats *s, const run_timing *t, long seed) {
    const modes_skip_count *pre = s->phase[0], *dec = s->phase[1];
    /* the first new token comes out of the prefill: a decode rate needs at least two */
    char rate[48] = "";
    if (t->new_tokens > 1 && t->decode_s > 0) snprintf(rate, sizeof rate, ", %.1f tok/s", (t->new_tokens - 1) / t->decode_s);
    fprintf(f, "prompt %d tokens, %.1f tok/s (%.1f ms) | %d new token%s%s | skipped: prefill %.1f%% (text %.1f%%, "
               "vision %.1f%%), decode %.1f%%\n",
            t->prompt_tokens, t->prefill_s > 0 ? t->prompt_tokens / t->prefill_s : 0.0, 1e3 * t->prefill_s,
            t->new_tokens, t->new_tokens == 1 ? "" : "s", rate,
            100 * modes_skip_ratio(pre, 3), 100 * modes_skip_ratio(&pre[MODES_TOKEN_TEXT], 1),
            100 * modes_skip_ratio(&pre[MODES_TOKEN_VISION], 1), 100 * modes_skip_ratio(dec, 3));
    if (modes_skip_ratio(pre, 3) > 0 || modes_skip_ratio(dec, 3) > 0) {
        fprintf(f, "skipped per layer (%%):");
        for (int l = 0; l < s->n_layers; l++) fprintf(f, " %.0f", 100 * modes_skip_ratio(&s->layer[(size_t)l * 3], 3));
        fprintf(f, "\n");
    }
    if (seed >= 0) fprintf(f, "seed %ld\n", seed); /* greedy answers use none */
}

/* How each picture was resized into the model's pixel budget: one --stats line each. */
static void print_image_sizes(FILE *f, const modes_prompt *p, const run_opts *o) {
    modes_image_info in;
    for (int i = 0; i < o->g.n_images; i++)
        if (!modes_prompt_image_info(p, i, &in, NULL))
            fprintf(f, "image %d (%s): %dx%d -> %dx%d pixels (%dx%d merged tokens = %d vision tokens)\n", i + 1,
                    o->g.images[i], in.width, in.height, in.resized_width, in.resized_height, in.tokens_w, in.tokens_h,
                    in.tokens);
}

/* The same for --json: an "images" array. */
static void json_image_sizes(FILE *j, const modes_prompt *p, const run_opts *o) {
    modes_image_info in;
    fputs(", \"images\": [", j);
    for (int i = 0; i < o->g.n_images; i++) {
        if (modes_prompt_image_info(p, i, &in, NULL)) continue;
        fputs(i ? ", {\"path\": " : "{\"path\": ", j);
        cli_json_string(j, o->g.images[i], strlen(o->g.images[i]));
        fprintf(j, ", \"width\": %d, \"height\": %d, \"resized_width\": %d, \"resized_height\": %d, "
                   "\"tokens_w\": %d, \"tokens_h\": %d, \"tokens\": %d}",
                in.width, in.height, in.resized_width, in.resized_height, in.tokens_w, in.tokens_h, in.tokens);
    }
    fputs("]", j);
}

static void print_json(const cli_stream *text, const int32_t *ids, int n, const modes_stats *s, const run_timing *t,
                       long seed, const modes_prompt *p, const run_opts *o) {
    char *data = NULL;
    size_t size = 0;
    FILE *j = open_memstream(&data, &size); /* printed whole or not at all */
    if (!j) return;
    fputs("{\"text\": ", j);
    cli_json_string(j, text->text ? text->text : "", text->len);
    fputs(", \"ids\": [", j);
    for (int i = 0; i < n; i++) fprintf(j, i ? ", %d" : "%d", ids[i]);
    fprintf(j, "], \"prompt_tokens\": %d, \"new_tokens\": %d, \"n_ctx\": %d, \"stop_reason\": \"%s\", \"prefill_s\": ",
            t->prompt_tokens, t->new_tokens, t->n_ctx, modes_stop_reason_name(t->stop));
    cli_json_number(j, t->prefill_s);
    fputs(", \"decode_s\": ", j);
    cli_json_number(j, t->decode_s);
    const char *keys[3] = {"skip_ratio", "skip_ratio_text", "skip_ratio_vision"};
    const modes_skip_count *pre = s->phase[0];
    modes_skip_count all[6];
    memcpy(all, s->phase, sizeof all);
    const double vals[3] = {modes_skip_ratio(all, 6), modes_skip_ratio(&pre[0], 1), modes_skip_ratio(&pre[1], 1)};
    for (int k = 0; k < 3; k++) {
        fprintf(j, ", \"%s\": ", keys[k]);
        cli_json_number(j, vals[k]);
    }
    fputs(", \"skip_ratio_decode\": ", j);
    cli_json_number(j, modes_skip_ratio(s->phase[1], 3));
    uint64_t all_skipped = 0;
    for (int p = 0; p < 2; p++)
        for (int c = 0; c < 3; c++) all_skipped += s->phase[p][c].tokens_all_skipped;
    fprintf(j, ", \"token_layers_all_skipped\": %llu, \"skip_ratio_per_layer\": [", (unsigned long long)all_skipped);
    for (int l = 0; l < s->n_layers; l++) {
        if (l) fputs(", ", j);
        cli_json_number(j, modes_skip_ratio(&s->layer[(size_t)l * 3], 3));
    }
    fputs("]", j);
    json_image_sizes(j, p, o);
    fprintf(j, ", \"expert_bytes\": %llu, \"seed\": %ld}\n", (unsigned long long)s->expert_bytes, seed);
    if (!fclose(j) && data) fputs(data, stdout);
    free(data);
}

/* Prefill, then sample until a stop token or n_new tokens, streaming text unless --json. */
static int generate(modes_ctx *ctx, const modes_prompt *pr, const run_opts *o, int32_t *out, int *made,
                    cli_stream *text, run_timing *t, modes_error *err) {
    const modes_sampling smp = cli_sampling(&o->g, 0);
    double times[2] = {0, 0};
    int rc = modes_generate(ctx, pr, (int)o->g.n_new, &smp, cli_stream_token, text, out, made, times, err);
    const int text_rc = cli_stream_finish(text, rc ? &(modes_error){0} : err);
    if (!rc) rc = text_rc;
    t->prefill_s = times[0];
    t->decode_s = times[1];
    t->new_tokens = *made;
    t->stop = modes_ctx_stop_reason(ctx);
    return rc;
}

/* -c N; -c 0: the model's maximum; none: room for the prompt and -n, up to that maximum. A context
 * that cannot hold the prompt is refused here, before the prefill. */
static int context_size(const run_opts *o, const modes_model *m, int n_prompt, int *n_ctx, modes_error *err) {
    const int max = modes_model_max_ctx(m);
    if (o->g.n_ctx > max)
        return modes_fail(err, MODES_E_INPUT, "-c %ld is more than the model's context of %d tokens", o->g.n_ctx, max);
    const long want = o->g.n_ctx > 0 ? o->g.n_ctx : o->g.n_ctx == 0 ? max : n_prompt + o->g.n_new;
    *n_ctx = want < max ? (int)want : max;
    if (n_prompt > *n_ctx && o->g.n_ctx > 0)
        return modes_fail(err, MODES_E_INPUT, "-c %ld cannot hold the prompt of %d tokens", o->g.n_ctx, n_prompt);
    if (n_prompt > *n_ctx)
        return modes_fail(err, MODES_E_INPUT, "the prompt has %d tokens, more than the model's context of %d", n_prompt,
                          max);
    return 0;
}

int cmd_run(int argc, char **argv) {
    run_opts o;
    int pr_rc = parse(argc, argv, &o);
    if (pr_rc) return pr_rc == 2 ? 0 : 1;
    modes_error err = {0};
    modes_model *m = NULL;
    modes_ctx *ctx = NULL;
    modes_prompt *prompt = NULL;
    modes_policy *policy = NULL;
    int32_t *out = NULL;
    int made = 0, n = 0;
    cli_stream text = {0};
    run_timing t = {0};
    char *question = NULL;
    int rc = cli_prompt_text(o.prompt, o.file, &question, &err);
    if (!rc) rc = modes_model_load(o.g.dir, &m, &err);
    if (!rc && !modes_model_tokenizer(m)) rc = modes_fail(&err, MODES_E_INPUT, "%s: no tokenizer.json", o.g.dir);
    if (!rc) rc = cli_load_policy(m, o.g.policy, o.g.alphas, o.g.skip, &policy, &err);
    if (!rc) rc = modes_prompt_new(m, o.g.system, question, o.g.images, o.g.n_images, NULL, &prompt, &err);
    if (!rc) {
        modes_prompt_ids(prompt, &n);
        t.prompt_tokens = n;
        rc = context_size(&o, m, n, &t.n_ctx, &err);
    }
    if (!rc) {
        modes_ctx_params cp = {.n_ctx = t.n_ctx, .threads = (int)o.g.threads};
        rc = modes_ctx_new(m, &cp, &ctx, &err);
    }
    if (!rc && !(out = malloc(((size_t)o.g.n_new + 1) * sizeof *out))) rc = modes_fail(&err, MODES_E_INTERNAL, "out of memory");
    if (!rc) rc = cli_stream_init(&text, m, !o.json, &err);
    if (!rc) {
        modes_ctx_set_policy(ctx, policy);
        rc = generate(ctx, prompt, &o, out, &made, &text, &t, &err);
    }
    if (!rc && !o.json) fputc('\n', stdout);
    fflush(stdout); /* the answer before the statistics on stderr, also when both go to one pipe */
    if (!rc && o.json) print_json(&text, out, made, modes_ctx_stats(ctx), &t, o.g.seed, prompt, &o);
    if (!rc && t.stop == MODES_STOP_CONTEXT) fprintf(stderr, "modes run: stopped: context full (%d tokens)\n", t.n_ctx);
    if (!rc && o.stats) print_image_sizes(stderr, prompt, &o);
    if (!rc && o.stats) print_stats(stderr, modes_ctx_stats(ctx), &t, o.g.temp > 0 ? o.g.seed : -1);
    cli_stream_free(&text);
    free(question);
    free(out);
    modes_prompt_free(prompt);
    modes_policy_free(policy);
    modes_ctx_free(ctx);
    modes_model_free(m);
    return rc ? cli_fail("run", &err) : 0;
}
