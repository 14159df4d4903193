/* modes bench: prefill and decode speed under several skip policies in one process, on a model
 * folder or on a synthetic model with the real dimensions of Qwen3-VL-30B-A3B, with the machine's
 * measured limits: a table, JSON, and a plot of speed-up against skip ratio (measured and ideal). */
#include <math.h>
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
    char label[160];  /* the --skip spec, or the policy file's name (with folders only to tell two apart) */
    char method[160]; /* the plot's line: a policy file, or a family of specs (topk:4 and topk:2: topk) */
    const char *path; /* the policy file, if any */
    modes_policy *policy;
    bench_result r;
} bench_run;

/* A family of specs shares a line: the name before ':' ("topk"), or before '@' with "@R" ("modes@R"). */
static void spec_method(const char *spec, char *buf, size_t size) {
    const size_t n = strcspn(spec, ":@");
    snprintf(buf, size, "%.*s%s", (int)n, spec, spec[n] == '@' ? "@R" : "");
}

/* Policy files by file name without extension; where two names collide, each of them takes folder
 * names before it until they differ (or the path runs out). */
static void file_labels(bench_run *runs, int n) {
    int parents[MAX_RUNS + 1] = {0}, more[MAX_RUNS + 1];
    for (int i = 0; i < n; i++)
        if (runs[i].path) more[i] = path_tail(runs[i].path, 0, 1, runs[i].label, sizeof runs[i].label);
    for (int changed = 1; changed;) {
        int collides[MAX_RUNS + 1] = {0};
        for (int i = 0; i < n; i++)
            for (int j = i + 1; runs[i].path && j < n; j++)
                if (runs[j].path && !strcmp(runs[i].label, runs[j].label)) collides[i] = collides[j] = 1;
        changed = 0;
        for (int i = 0; i < n; i++)
            if (collides[i] && more[i]) {
                more[i] = path_tail(runs[i].path, ++parents[i], 1, runs[i].label, sizeof runs[i].label);
                changed = 1;
            }
    }
    for (int i = 0; i < n; i++)
        if (runs[i].path) memcpy(runs[i].method, runs[i].label, sizeof runs[i].method); /* same size */
}

/* Resolves the specs (modes@R needs the prompt) into policies; run 0 is always the unskipped one. */
static int make_runs(modes_ctx *c, const prepared_input *in, const bench_opts *o, const modes_policy *alphas,
                     bench_run *runs, int *n_runs, modes_error *err) {
    const modes_model *m = c->model;
    snprintf(runs[0].label, sizeof runs[0].label, "none");
    *n_runs = 1;
    for (int i = 0; i < o->n_specs; i++) {
        bench_run *r = &runs[(*n_runs)++];
        snprintf(r->label, sizeof r->label, "%s", o->specs[i]);
        spec_method(o->specs[i], r->method, sizeof r->method);
        int rc;
        float tau;
        if (o->is_file[i]) {
            r->path = o->specs[i];
            rc = modes_policy_load(m, o->specs[i], &r->policy, err);
        } else if ((rc = bench_ratio_policy(c, in, alphas, o->specs[i], &r->policy, &tau, err)) >= 0) {
            if (!rc) snprintf(r->label, sizeof r->label, "%s (tau %.4g)", o->specs[i], tau);
        } else {
            rc = modes_policy_from_spec(m, o->specs[i], alphas, &r->policy, err);
        }
        if (rc) return rc;
    }
    file_labels(runs, *n_runs);
    return 0;
}

/* A ratio of two measurements; NAN (not measured) when the divisor is not. */
static double ratio(double num, double den) { return den > 0 ? num / den : NAN; }

/* Decode bytes per second over a bandwidth limit. */
static double decode_fraction(const bench_result *r, double limit) {
    return limit > 0 ? ratio((r->decode_weight_bytes + r->decode_kv_bytes) / 1e9 / limit, r->decode_s) : NAN;
}

/* What the table and the JSON report of a run, in the JSON's order; NAN: not measured. */
enum {
    PREFILL_TPS, DECODE_TPS, PREFILL_SPEEDUP, DECODE_SPEEDUP, IDEAL_PREFILL, IDEAL_DECODE, SKIP, SKIP_TEXT, SKIP_VISION,
    SKIP_DECODE, WEIGHT_BYTES, KV_BYTES, PREFILL_FLOPS, READ_GBS, BW_FRACTION, READ_GBS_SUSTAINED,
    BW_FRACTION_SUSTAINED, BW_FRACTION_PAIRED, FLOPS_FRACTION, N_VALUES
};
static const char *const KEYS[N_VALUES] = {
    "prefill_tokens_per_s", "decode_tokens_per_s", "prefill_speedup", "decode_speedup", "ideal_prefill_speedup",
    "ideal_decode_speedup", "skip_ratio", "skip_ratio_text", "skip_ratio_vision", "skip_ratio_decode",
    "weight_bytes_per_decoded_token", "kv_bytes_per_decoded_token", "prefill_flops", "read_bandwidth_gbs",
    "bandwidth_fraction", "read_bandwidth_sustained_gbs", "bandwidth_fraction_sustained",
    "bandwidth_fraction_paired", "flops_fraction"};

/* The ideal speed-ups are the work of the unskipped run over this run's: FLOPs for prefill, bytes
 * read (weights and KV cache) for decode. */
static void run_values(const bench_result *b, const bench_result *r, int prompt, double bw, double peak, double *v) {
    const double read = r->read_gbs > 0 ? r->read_gbs : bw; /* the best slice probed right after the run */
    v[PREFILL_TPS] = ratio(prompt, r->prefill_s);
    v[DECODE_TPS] = ratio(1, r->decode_s);
    v[PREFILL_SPEEDUP] = ratio(b->prefill_s, r->prefill_s);
    v[DECODE_SPEEDUP] = ratio(b->decode_s, r->decode_s);
    v[IDEAL_PREFILL] = ratio(b->prefill_flops, r->prefill_flops);
    v[IDEAL_DECODE] = ratio(b->decode_weight_bytes + b->decode_kv_bytes, r->decode_weight_bytes + r->decode_kv_bytes);
    v[SKIP] = r->skip, v[SKIP_TEXT] = r->skip_text, v[SKIP_VISION] = r->skip_vision, v[SKIP_DECODE] = r->skip_decode;
    v[WEIGHT_BYTES] = r->decode_weight_bytes, v[KV_BYTES] = r->decode_kv_bytes, v[PREFILL_FLOPS] = r->prefill_flops;
    v[READ_GBS] = read;
    v[BW_FRACTION] = decode_fraction(r, read);
    v[READ_GBS_SUSTAINED] = r->read_gbs_sustained;
    v[BW_FRACTION_SUSTAINED] = decode_fraction(r, r->read_gbs_sustained);
    v[BW_FRACTION_PAIRED] = r->paired_fraction;
    v[FLOPS_FRACTION] = peak > 0 ? ratio(r->prefill_flops / 1e9 / peak, r->prefill_s) : NAN;
}

static void print_table(const bench_run *runs, int n, int prompt, double bw, double peak) {
    static const struct { int value, width, prec; double scale; const char *head[2]; } COLS[] = {
        {PREFILL_TPS, 9, 1, 1, {"prefill", "tok/s"}}, {DECODE_TPS, 9, 2, 1, {"decode", "tok/s"}},
        {PREFILL_SPEEDUP, 8, 2, 1, {"speedup", "prefill"}}, {IDEAL_PREFILL, 8, 2, 1, {"ideal", "prefill"}},
        {DECODE_SPEEDUP, 8, 2, 1, {"speedup", "decode"}}, {IDEAL_DECODE, 8, 2, 1, {"ideal", "decode"}},
        {SKIP, 6, 3, 1, {"skip", "ratio"}}, {WEIGHT_BYTES, 8, 3, 1e-9, {"GB/tok", "weights"}},
        {READ_GBS, 6, 1, 1, {"peak", "GB/s"}}, {BW_FRACTION, 6, 2, 1, {"BW", "frac"}},
        {READ_GBS_SUSTAINED, 6, 1, 1, {"sust.", "GB/s"}}, {BW_FRACTION_SUSTAINED, 6, 2, 1, {"BW", "frac"}},
        {BW_FRACTION_PAIRED, 6, 2, 1, {"paired", "BW frac"}}, {FLOPS_FRACTION, 6, 2, 1, {"FLOP", "frac"}}};
    const int nc = (int)(sizeof COLS / sizeof *COLS);
    int w = 4; /* labels are never cut: the column is as wide as the longest */
    for (int i = 0; i < n; i++) w = (int)strlen(runs[i].label) > w ? (int)strlen(runs[i].label) : w;
    for (int h = 0; h < 2; h++) {
        printf("%-*s", w, h ? "" : "skip");
        for (int c = 0; c < nc; c++) printf(" %*s", COLS[c].width, COLS[c].head[h]);
        putchar('\n');
    }
    for (int i = 0; i < n; i++) {
        double v[N_VALUES];
        run_values(&runs[0].r, &runs[i].r, prompt, bw, peak, v);
        printf("%-*s", w, runs[i].label);
        for (int c = 0; c < nc; c++) {
            const double x = v[COLS[c].value] * COLS[c].scale;
            if (isfinite(x)) printf(" %*.*f", COLS[c].width, COLS[c].prec, x);
            else printf(" %*s", COLS[c].width, "-");
        }
        putchar('\n');
    }
}

static void json_out(strbuf *sb, const bench_run *runs, int n, int prompt, int gen, const char *model, int threads,
                     double bw, double peak_f32, double peak_bf16, long rss_kb, int blocks) {
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
        sb_puts(sb, i ? ",\n  {\"skip\": " : "\n  {\"skip\": ");
        sb_json_string(sb, runs[i].label, strlen(runs[i].label));
        if (runs[i].path) {
            sb_puts(sb, ", \"policy\": ");
            sb_json_string(sb, runs[i].path, strlen(runs[i].path));
        }
        double v[N_VALUES];
        run_values(&runs[0].r, &runs[i].r, prompt, bw, peak_f32, v);
        for (int k = 0; k < N_VALUES; k++) {
            sb_printf(sb, ", \"%s\": ", KEYS[k]);
            sb_json_number(sb, v[k]);
        }
        sb_puts(sb, "}");
    }
    sb_puts(sb, "\n]}\n");
}

/* The plot's points of one method: the unskipped run (its origin, speed-up 1) and the method's runs,
 * by skip ratio; v[run][value] as run_values gives. */
static int method_points(const bench_run *runs, int n, const char *method, const double (*v)[N_VALUES], int *order) {
    int np = 0;
    for (int i = 0; i < n; i++) {
        if (i && strcmp(runs[i].method, method)) continue;
        int at = np++;
        for (; at > 0 && v[order[at - 1]][SKIP] > v[i][SKIP]; at--) order[at] = order[at - 1];
        order[at] = i;
    }
    return np;
}

/* Two panels (prefill, decode; decode only when measured), one line, marker and colour per method
 * with its ideal dashed beside it. */
static int write_plot(const char *path, const char *title, const bench_run *runs, int n, int prompt, int decoded,
                      modes_error *err) {
    enum { Q_PREFILL, Q_IDEAL_PREFILL, Q_DECODE, Q_IDEAL_DECODE };
    static const int VALUE[] = {PREFILL_SPEEDUP, IDEAL_PREFILL, DECODE_SPEEDUP, IDEAL_DECODE};
    double v[MAX_RUNS + 1][N_VALUES], x[MAX_RUNS + 1][MAX_RUNS + 1], y[4][MAX_RUNS + 1][MAX_RUNS + 1];
    plot_series s[2][2 * (MAX_RUNS + 1) + 1];
    const char *methods[MAX_RUNS + 1];
    int nm = 0;
    for (int i = 0; i < n; i++) run_values(&runs[0].r, &runs[i].r, prompt, 0, 0, v[i]);
    for (int i = n > 1; i < n; i++) { /* alone, the unskipped run is its own method */
        int k = 0;
        while (k < nm && strcmp(methods[k], runs[i].method)) k++;
        if (k == nm) methods[nm++] = runs[i].method;
    }
    for (int k = 0; k < nm; k++) {
        int order[MAX_RUNS + 1];
        const int np = method_points(runs, n, methods[k], (const double (*)[N_VALUES])v, order);
        for (int j = 0; j < np; j++) {
            x[k][j] = 100 * v[order[j]][SKIP];
            for (int q = 0; q < 4; q++) y[q][k][j] = v[order[j]][VALUE[q]];
        }
        for (int panel = 0; panel < 2; panel++) {
            s[panel][2 * k] = (plot_series){methods[k], x[k], y[2 * panel][k], np, k, 0};
            s[panel][2 * k + 1] = (plot_series){NULL, x[k], y[2 * panel + 1][k], np, k, 1};
        }
    }
    for (int panel = 0; panel < 2; panel++) s[panel][2 * nm] = (plot_series){"ideal", NULL, NULL, 0, -1, 1};
    const plot_panel p[2] = {
        {"prefill", "routed expert slots skipped (%)", "speed-up over the unskipped model (x)", 0, 100, 0, 0, s[0], 2 * nm + 1},
        {"decode", "routed expert slots skipped (%)", "speed-up over the unskipped model (x)", 0, 100, 0, 0, s[1], 2 * nm + 1}};
    return plot_svg(path, title, p, decoded ? 2 : 1,
                    "ideal (dashed): the speed-up if time were proportional to the work left, FLOPs for prefill and bytes read\n"
                    "for decode: skipped experts save exactly their share, attention, routers and lm_head cost as before.",
                    err);
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
    bench_options bo = {.gen_tokens = (int)o.gen_tokens, .reps = (int)o.reps, .probe_bytes = (size_t)512 << 20,
                        .progress = cli_progress};
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
        cli_progress_end();
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
    if (!rc && o.plot) {
        char model[128], title[320];
        path_tail(o.synthetic ? o.synthetic : o.dir, 0, 0, model, sizeof model);
        snprintf(title, sizeof title, "%s: speed-up vs skip ratio, prompt %d tokens, %ld decoded, median of %ld repetition%s",
                 model, n, o.gen_tokens, o.reps, o.reps == 1 ? "" : "s");
        rc = write_plot(o.plot, title, runs, n_runs, n, o.gen_tokens > 0, &err);
    }
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
