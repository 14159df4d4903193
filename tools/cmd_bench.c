/* modes bench: prefill and decode speed under several skip policies in one process, on a model
 * folder or on a synthetic model with the real dimensions of Qwen3-VL-30B-A3B, with the machine's
 * measured limits (modes_bench): a table, JSON, and a plot of speed-up against skip ratio. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char *HELP =
    "usage: modes bench (-m DIR | --synthetic qwen3-vl-30b-a3b [--layers N] [--expert-gb G])\n"
    "                   [--policy FILE | --skip SPEC]... [--prompt-tokens N] [--image FILE] [--gen-tokens N]\n"
    "                   [-r REPS] [-t THREADS] [-o RESULTS.json] [--plot FILE.svg] [--json]\n"
    "  Measures prefill (N prompt tokens, default 1024, three quarters of them vision tokens on the synthetic\n"
    "  model) and decode (--gen-tokens, default 32) for the unskipped model and each policy: median of REPS\n"
    "  (default 3) after a warm-up. In each repetition the policies prefill in turn, then decode step by step,\n"
    "  taking turns, each in a KV cache of its own (memory: one cache per policy). Each decode is judged\n"
    "  against three bandwidth probes: after each repetition, the best 64 MiB slice of a 512 MiB read (peak)\n"
    "  and a read as long as one decode step (sustained); and after every decode step, a read of the bytes\n"
    "  that step moved (paired: median of the step-by-step ratios).\n"
    "  --skip SPEC as in run, plus modes@RATIO: one threshold for both modalities chosen to skip RATIO of\n"
    "  the prompt's slots (alphas from --policy, else uniform).\n"
    "  The synthetic model keeps --expert-gb (default 4) of distinct expert weights, shared by the layers.\n"
    "  Long forms: -m/--model, -r/--repetitions, -t/--threads, -o/--output. Defaults: --layers 48,\n"
    "  --prompt-tokens 1024, --gen-tokens 32, -r 3, --expert-gb 4, -t {cores} (the physical cores).\n"
    "  ideal: the speed-up if time were proportional to the work left, prefill to its FLOPs and decode to\n"
    "  the bytes it reads (weights and KV cache): skipped experts save exactly their share, attention,\n"
    "  routers and lm_head cost as before. Measured over ideal is how much of the saving the kernels keep.\n"
    "  Runs are labelled by their --skip spec or the policy file's name; with --gen-tokens 0 nothing is\n"
    "  decoded and the decode columns read \"-\" (null in JSON).\n";

#define MAX_RUNS 32

typedef struct {
    const char *dir, *synthetic, *out, *plot, *image, *alphas_path;
    const char *specs[MAX_RUNS];
    int is_file[MAX_RUNS], n_specs, json;
    long layers, prompt_tokens, gen_tokens, reps, threads;
    double expert_gb;
} bench_opts;

static int parse(int argc, char **argv, bench_opts *o) {
    *o = (bench_opts){.layers = 48, .prompt_tokens = 1024, .gen_tokens = 32, .reps = 3, .expert_gb = 4};
    for (int i = 1; i < argc; i++) {
        int r;
        const char *v;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return cli_print_help(HELP), 2;
        if (!strcmp(argv[i], "--json")) { o->json = 1; continue; }
        const int file = !strcmp(argv[i], "--policy");
        if ((r = opt_multi(argc, argv, &i, file ? "--policy" : "--skip", &v, "bench")) == 0) {
            if (o->n_specs == MAX_RUNS) return cli_usage("bench", "at most %d policies", MAX_RUNS), -1;
            if (file && !o->alphas_path) o->alphas_path = v;
            o->is_file[o->n_specs] = file;
            o->specs[o->n_specs++] = v;
            continue;
        }
        if (r < 0) return -1;
        if ((r = opt_str(argc, argv, &i, "-m|--model", &o->dir, "bench")) <= 0 ||
            (r = opt_str(argc, argv, &i, "--synthetic", &o->synthetic, "bench")) <= 0 ||
            (r = opt_str(argc, argv, &i, "-o|--output", &o->out, "bench")) <= 0 ||
            (r = opt_str(argc, argv, &i, "--plot", &o->plot, "bench")) <= 0 ||
            (r = opt_str(argc, argv, &i, "--image", &o->image, "bench")) <= 0 ||
            (r = opt_int(argc, argv, &i, "--layers", 1, 48, &o->layers, "bench")) <= 0 ||
            (r = opt_int(argc, argv, &i, "--prompt-tokens", 8, 1 << 20, &o->prompt_tokens, "bench")) <= 0 ||
            (r = opt_int(argc, argv, &i, "--gen-tokens", 0, 1 << 16, &o->gen_tokens, "bench")) <= 0 ||
            (r = opt_int(argc, argv, &i, "-r|--repetitions", 1, 1000, &o->reps, "bench")) <= 0 ||
            (r = opt_int(argc, argv, &i, "-t|--threads", 0, 1024, &o->threads, "bench")) <= 0 ||
            (r = opt_float(argc, argv, &i, "--expert-gb", 0.01, 1024, &o->expert_gb, "bench")) <= 0) {
            if (r < 0) return -1;
            continue;
        }
        return cli_usage("bench", "unknown option '%s'", argv[i]), -1;
    }
    if (!o->dir == !o->synthetic) return cli_usage("bench", "give either -m DIR or --synthetic NAME"), -1;
    if (o->synthetic && o->image) return cli_usage("bench", "--image needs a model folder"), -1;
    return 0;
}

int cmd_bench(int argc, char **argv) {
    bench_opts o;
    const int pr = parse(argc, argv, &o);
    if (pr) return pr == 2 ? 0 : 1;
    modes_bench_options bo = modes_bench_defaults();
    bo.model = o.dir;
    bo.synthetic = o.synthetic;
    bo.layers = (int)o.layers;
    bo.expert_gb = o.expert_gb;
    bo.policies = o.specs;
    bo.is_file = o.is_file;
    bo.n_policies = o.n_specs;
    bo.image = o.image;
    bo.prompt_tokens = (int)o.prompt_tokens;
    bo.gen_tokens = (int)o.gen_tokens;
    bo.reps = (int)o.reps;
    bo.threads = (int)o.threads;
    bo.progress = cli_progress;
    modes_error err = {0};
    modes_bench_report *r = NULL;
    char *json = NULL, *text = NULL;
    int rc = modes_bench(&bo, &r, &err);
    cli_progress_end();
    if (!rc) rc = modes_bench_report_format(r, MODES_REPORT_JSON, &json, &err);
    if (!rc && !o.json) rc = modes_bench_report_format(r, MODES_REPORT_TEXT, &text, &err);
    if (!rc) fputs(o.json ? json : text, stdout);
    if (!rc && o.out) rc = modes_write_file_atomic(o.out, json, strlen(json), &err);
    if (!rc && o.plot) rc = modes_bench_report_plot(r, o.plot, &err);
    free(json);
    free(text);
    modes_bench_report_free(r);
    return rc ? cli_fail("bench", &err) : 0;
}
