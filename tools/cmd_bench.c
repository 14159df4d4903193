/* modes bench: prefill and decode speed under several skip policies in one process, on a model
 * folder or on a synthetic model with the real dimensions of Qwen3-VL-30B-A3B, with the machine's
 * measured limits: a table, JSON, and a plot of speed-up against skip ratio (measured and ideal). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "cli.h"
#include "core/error.h"
#include "core/json.h"
#include "eval/bench.h"
#include "eval/plot.h"
#include "io/file.h"
#include "models/model.h"
#include "text/tokenizer.h"

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
    "  --prompt-tokens 1024, --gen-tokens 32, -r 3, --expert-gb 4, -t {cores} (the physical cores).\n";

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

/* The synthetic prompt: a chat turn whose image part holds three quarters of the tokens. */
static int32_t *synthetic_prompt(const modes_model *m, int n) {
    int32_t *ids = malloc((size_t)n * sizeof *ids);
    if (!ids) return NULL;
    uint64_t s = 12345;
    const int n_img = 3 * n / 4, img0 = 4;
    for (int i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        ids[i] = (int32_t)(1000 + (s >> 33) % 100000); /* ordinary text tokens */
    }
    ids[0] = 151644; /* <|im_start|> */
    ids[img0 - 1] = m->cfg.vision_start_id;
    for (int i = 0; i < n_img && img0 + i < n - 1; i++) ids[img0 + i] = m->cfg.image_token_id;
    if (img0 + n_img < n) ids[img0 + n_img] = m->cfg.vision_end_id;
    ids[n - 1] = 151644;
    return ids;
}

static int32_t *text_prompt(const modes_model *m, int n) {
    const modes_tokenizer *tok = modes_model_tokenizer(m);
    const int limit = tok ? (int)tok_vocab_size(tok) : modes_model_vocab(m);
    int32_t *ids = malloc((size_t)n * sizeof *ids);
    uint64_t s = 777;
    for (int i = 0; ids && i < n; i++) {
        do {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            ids[i] = (int32_t)((s >> 33) % (uint64_t)limit);
        } while (modes_model_token_class(m, ids[i]) != MODES_TOKEN_TEXT);
    }
    return ids;
}

typedef struct {
    char label[160];
    modes_policy *policy;
    bench_result r;
} bench_run;

/* Resolves the specs (modes@R needs the prompt) into policies; run 0 is always the unskipped one. */
static int make_runs(modes_ctx *c, const prepared_input *in, const bench_opts *o, const modes_policy *alphas,
                     bench_run *runs, int *n_runs, modes_error *err) {
    const modes_model *m = c->model;
    snprintf(runs[0].label, sizeof runs[0].label, "none");
    *n_runs = 1;
    for (int i = 0; i < o->n_specs; i++) {
        bench_run *r = &runs[(*n_runs)++];
        snprintf(r->label, sizeof r->label, "%s", o->specs[i]);
        int rc;
        if (o->is_file[i]) {
            rc = modes_policy_load(m, o->specs[i], &r->policy, err);
        } else if (!strncmp(o->specs[i], "modes@", 6)) {
            char *end;
            const double ratio = strtod(o->specs[i] + 6, &end);
            if (*end || !(ratio >= 0 && ratio < 1)) return modes_fail(err, MODES_E_INPUT, "--skip %s: expected modes@RATIO with 0 <= RATIO < 1", o->specs[i]);
            float tau;
            rc = bench_tau_for_ratio(c, in, alphas, ratio, &tau, err);
            char spec[64];
            snprintf(spec, sizeof spec, "modes:%.9g,%.9g", tau, tau);
            if (!rc && alphas) rc = modes_policy_from_spec(m, spec, alphas, &r->policy, err);
            else if (!rc) { /* uniform alphas: a fresh policy has them */
                r->policy = policy_new(SKIP_MODES, m->n_moe_layers);
                if (!r->policy) rc = modes_fail(err, MODES_E_INTERNAL, "out of memory");
                else r->policy->tau[0] = r->policy->tau[1] = tau;
            }
            if (!rc) snprintf(r->label, sizeof r->label, "%s (tau %.4g)", o->specs[i], tau);
        } else {
            rc = modes_policy_from_spec(m, o->specs[i], alphas, &r->policy, err);
        }
        if (rc) return rc;
    }
    return 0;
}

static double speedup(double base, double t) { return t > 0 ? base / t : 0; }

/* Decode bytes per second over a bandwidth limit. */
static double decode_fraction(const bench_result *r, double limit) {
    return r->decode_s > 0 && limit > 0 ? (r->decode_weight_bytes + r->decode_kv_bytes) / r->decode_s / 1e9 / limit : 0;
}

/* Against the best slice probed right after the run (else the one probe at the end). */
static double bandwidth_fraction(const bench_result *r, double bw) {
    return decode_fraction(r, r->read_gbs > 0 ? r->read_gbs : bw);
}

static void print_table(const bench_run *runs, int n, int prompt, double bw, double peak) {
    const bench_result *b = &runs[0].r;
    printf("%-30s %9s %9s %8s %8s %8s %8s %6s %8s %6s %6s %6s %6s %6s %6s\n", "skip", "prefill", "decode", "speedup",
           "ideal", "speedup", "ideal", "skip", "GB/tok", "peak", "BW", "sust.", "BW", "paired", "FLOP");
    printf("%-30s %9s %9s %8s %8s %8s %8s %6s %8s %6s %6s %6s %6s %6s %6s\n", "", "tok/s", "tok/s", "prefill", "prefill",
           "decode", "decode", "ratio", "weights", "GB/s", "frac", "GB/s", "frac", "BW frac", "frac");
    for (int i = 0; i < n; i++) {
        const bench_result *r = &runs[i].r;
        printf("%-30.30s %9.1f %9.2f %8.2f %8.2f %8.2f %8.2f %6.3f %8.3f %6.1f %6.2f %6.1f %6.2f %6.2f %6.2f\n", runs[i].label,
               prompt / r->prefill_s, r->decode_s > 0 ? 1 / r->decode_s : 0, speedup(b->prefill_s, r->prefill_s),
               r->prefill_flops > 0 ? b->prefill_flops / r->prefill_flops : 0, speedup(b->decode_s, r->decode_s),
               (b->decode_weight_bytes + b->decode_kv_bytes) / (r->decode_weight_bytes + r->decode_kv_bytes), r->skip,
               r->decode_weight_bytes / 1e9, r->read_gbs > 0 ? r->read_gbs : bw, bandwidth_fraction(r, bw),
               r->read_gbs_sustained, decode_fraction(r, r->read_gbs_sustained), r->paired_fraction,
               peak > 0 ? r->prefill_flops / r->prefill_s / 1e9 / peak : 0);
    }
}

static void json_out(strbuf *sb, const bench_run *runs, int n, int prompt, int gen, const char *model, int threads,
                     double bw, double peak_f32, double peak_bf16, long rss_kb, int blocks) {
    const bench_result *b = &runs[0].r;
    sb_puts(sb, "{\"machine\": {\"threads\": ");
    sb_printf(sb, "%d, \"read_bandwidth_gbs\": ", threads);
    sb_json_number(sb, bw);
    sb_puts(sb, ", \"peak_gflops_f32_fma\": ");
    sb_json_number(sb, peak_f32);
    sb_puts(sb, ", \"peak_gflops_bf16_dot\": ");
    sb_json_number(sb, peak_bf16);
    sb_printf(sb, ", \"simd\": \"%s\", \"peak_rss_mb\": %.1f}, \"model\": ", kernels_default()->name, rss_kb / 1024.0);
    sb_json_string(sb, model, strlen(model));
    sb_printf(sb, ", \"expert_blocks\": %d, \"prompt_tokens\": %d, \"gen_tokens\": %d, \"runs\": [", blocks, prompt, gen);
    for (int i = 0; i < n; i++) {
        const bench_result *r = &runs[i].r;
        sb_puts(sb, i ? ",\n  {\"skip\": " : "\n  {\"skip\": ");
        sb_json_string(sb, runs[i].label, strlen(runs[i].label));
        const char *keys[] = {"prefill_tokens_per_s", "decode_tokens_per_s", "prefill_speedup", "decode_speedup",
                              "ideal_prefill_speedup", "ideal_decode_speedup", "skip_ratio", "skip_ratio_text",
                              "skip_ratio_vision", "skip_ratio_decode", "weight_bytes_per_decoded_token",
                              "kv_bytes_per_decoded_token", "prefill_flops", "read_bandwidth_gbs",
                              "bandwidth_fraction", "read_bandwidth_sustained_gbs", "bandwidth_fraction_sustained",
                              "bandwidth_fraction_paired", "flops_fraction"};
        const double vals[] = {prompt / r->prefill_s, r->decode_s > 0 ? 1 / r->decode_s : 0,
                               speedup(b->prefill_s, r->prefill_s), speedup(b->decode_s, r->decode_s),
                               r->prefill_flops > 0 ? b->prefill_flops / r->prefill_flops : 0,
                               (b->decode_weight_bytes + b->decode_kv_bytes) / (r->decode_weight_bytes + r->decode_kv_bytes),
                               r->skip, r->skip_text, r->skip_vision, r->skip_decode, r->decode_weight_bytes,
                               r->decode_kv_bytes, r->prefill_flops, r->read_gbs > 0 ? r->read_gbs : bw,
                               bandwidth_fraction(r, bw), r->read_gbs_sustained,
                               decode_fraction(r, r->read_gbs_sustained), r->paired_fraction,
                               peak_f32 > 0 ? r->prefill_flops / r->prefill_s / 1e9 / peak_f32 : 0};
        for (size_t k = 0; k < sizeof vals / sizeof *vals; k++) {
            sb_printf(sb, "%s\"%s\": ", k ? ", " : ", ", keys[k]);
            sb_json_number(sb, vals[k]);
        }
        sb_puts(sb, "}");
    }
    sb_puts(sb, "\n]}\n");
}

static int write_plot(const char *path, const bench_run *runs, int n, modes_error *err) {
    double x[MAX_RUNS + 1], yp[MAX_RUNS + 1], yd[MAX_RUNS + 1], ip[MAX_RUNS + 1], id[MAX_RUNS + 1];
    int order[MAX_RUNS + 1];
    for (int i = 0; i < n; i++) order[i] = i;
    for (int i = 1; i < n; i++) /* by skip ratio */
        for (int j = i; j > 0 && runs[order[j]].r.skip < runs[order[j - 1]].r.skip; j--) {
            const int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    const bench_result *b = &runs[0].r;
    for (int k = 0; k < n; k++) {
        const bench_result *r = &runs[order[k]].r;
        x[k] = 100 * r->skip;
        yp[k] = speedup(b->prefill_s, r->prefill_s);
        yd[k] = speedup(b->decode_s, r->decode_s);
        ip[k] = r->prefill_flops > 0 ? b->prefill_flops / r->prefill_flops : 0;
        id[k] = (b->decode_weight_bytes + b->decode_kv_bytes) / (r->decode_weight_bytes + r->decode_kv_bytes);
    }
    plot_series s[4] = {{"prefill (measured)", x, yp, n, 0}, {"prefill (ideal, FLOPs)", x, ip, n, 1},
                        {"decode (measured)", x, yd, n, 0}, {"decode (ideal, bytes)", x, id, n, 1}};
    plot_axes ax = {.title = "Speed-up vs. experts skipped", .xlabel = "routed expert slots skipped (%)",
                    .ylabel = "speed-up over the unskipped model (x)", .xmin = 0, .xmax = 100};
    return plot_svg(path, &ax, s, 4, err);
}

/* Raises *fma and *bf16 to this moment's peak f32 FMA and bf16 dot rates where higher. */
static void probe_peaks(modes_pool *pool, double *fma, double *bf16) {
    const double f = probe_peak_gflops(kernels_for(SIMD_AVX512) ? SIMD_AVX512 : SIMD_AVX2, pool);
    const double b = kernels_for(SIMD_AVX512BF16) ? probe_peak_gflops(SIMD_AVX512BF16, pool) : 0;
    *fma = f > *fma ? f : *fma;
    *bf16 = b > *bf16 ? b : *bf16;
}

int cmd_bench(int argc, char **argv) {
    bench_opts o;
    const int pr = parse(argc, argv, &o);
    if (pr) return pr == 2 ? 0 : 1;
    modes_error err = {0};
    modes_model *m = NULL;
    modes_ctx *ctx = NULL;
    modes_policy *alphas = NULL;
    modes_prompt *prompt = NULL;
    prepared_input in = {0};
    int32_t *ids = NULL;
    static bench_run runs[MAX_RUNS + 1]; /* large: keep it off the stack */
    int n_runs = 0, blocks = 0;
    int rc = o.synthetic ? model_synthetic(o.synthetic, (int)o.layers, (size_t)(o.expert_gb * 1e9), 1, &m, &blocks, &err)
                         : modes_model_load(o.dir, &m, &err);
    if (!rc && o.alphas_path) rc = modes_policy_load(m, o.alphas_path, &alphas, &err);
    int n = (int)o.prompt_tokens;
    if (!rc && o.image) {
        const char *imgs[1] = {o.image};
        rc = modes_prompt_new(m, NULL, "Describe the picture in detail.", imgs, 1, NULL, &prompt, &err);
        if (!rc) modes_prompt_ids(prompt, &n);
    } else if (!rc && !(ids = o.synthetic ? synthetic_prompt(m, n) : text_prompt(m, n))) {
        rc = modes_fail(&err, MODES_E_INTERNAL, "out of memory");
    }
    if (!rc && n + o.gen_tokens > m->cfg.text.max_position) /* refused before any pass, not at the cache's end */
        rc = modes_fail(&err, MODES_E_INPUT,
                        "a prompt of %d tokens and %ld generated tokens do not fit in the model's context of %d tokens",
                        n, o.gen_tokens, m->cfg.text.max_position);
    modes_ctx_params cp = {.n_ctx = n + (int)o.gen_tokens + 8, .threads = (int)o.threads};
    if (!rc) rc = modes_ctx_new(m, &cp, &ctx, &err);
    if (!rc && prompt) rc = prompt_prepare(ctx, prompt, &in, &err);
    if (!rc && !prompt) { /* the text decoder alone: image tokens keep their embedding rows */
        in.ids = ids;
        in.n = n;
        if (!(in.pos = malloc((size_t)3 * n * sizeof *in.pos))) rc = modes_fail(&err, MODES_E_INTERNAL, "out of memory");
        for (int i = 0; !rc && i < n; i++) in.pos[i] = in.pos[n + i] = in.pos[2 * n + i] = i;
    }
    if (!rc) rc = make_runs(ctx, &in, &o, alphas, runs, &n_runs, &err);
    bench_options bo = {.gen_tokens = (int)o.gen_tokens, .reps = (int)o.reps, .probe_bytes = (size_t)512 << 20};
    /* The peak rates are probed before and after the runs and the higher kept: a probe taken while
     * the host lends one of the VM's cores elsewhere reads half the machine (seen once: 118 of 236
     * GFLOP/s after an 18-minute run). */
    double peak = 0, peak_bf16 = 0;
    if (!rc) probe_peaks(ctx->pool, &peak, &peak_bf16);
    if (!rc) {
        const modes_policy *pols[MAX_RUNS + 1];
        bench_result res[MAX_RUNS + 1];
        for (int i = 0; i < n_runs; i++) pols[i] = runs[i].policy;
        rc = bench_policies(ctx, &in, pols, n_runs, &bo, res, &err);
        for (int i = 0; !rc && i < n_runs; i++) runs[i].r = res[i];
    }
    double bw = 0;
    if (!rc) {
        bw = probe_read_bandwidth(ctx->pool, (size_t)1 << 30);
        probe_peaks(ctx->pool, &peak, &peak_bf16);
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        strbuf sb = {0};
        json_out(&sb, runs, n_runs, n, (int)o.gen_tokens, o.synthetic ? o.synthetic : o.dir, pool_size(ctx->pool), bw,
                 peak, peak_bf16, ru.ru_maxrss, blocks);
        if (o.json) fputs(sb.data, stdout);
        else {
            printf("model %s (%ld layers%s), prompt %d tokens, %ld generated, %d threads, %s kernels\n",
                   o.synthetic ? o.synthetic : o.dir, (long)m->cfg.text.n_layers,
                   o.synthetic ? ", random bf16 weights" : "", n, o.gen_tokens, pool_size(ctx->pool), kernels_default()->name);
            printf("machine: read bandwidth %.1f GB/s, peak FMA %.1f GFLOP/s (f32), %.1f (bf16 dot); peak RSS %.0f MB\n\n",
                   bw, peak, peak_bf16, ru.ru_maxrss / 1024.0);
            print_table(runs, n_runs, n, bw, peak);
        }
        if (o.out) rc = sb.failed ? modes_fail(&err, MODES_E_INTERNAL, "out of memory") : write_file_atomic(o.out, sb.data, sb.len, &err);
        sb_free(&sb);
    }
    if (!rc && o.plot) rc = write_plot(o.plot, runs, n_runs, &err);
    for (int i = 0; i < n_runs; i++) modes_policy_free(runs[i].policy);
    if (prompt) prepared_free(&in);
    else free(in.pos);
    free(ids);
    modes_prompt_free(prompt);
    modes_policy_free(alphas);
    modes_ctx_free(ctx);
    modes_model_free(m);
    return rc ? cli_fail("bench", &err) : 0;
}
