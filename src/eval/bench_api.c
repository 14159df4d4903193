/* The speed workflow behind include/modes.h (`modes bench`): prefill and decode under several skip
 * policies in one process, on a model folder or on a synthetic model with the real dimensions of
 * Qwen3-VL-30B-A3B, with the machine's measured limits; the report is a table, JSON, and a plot of
 * speed-up against skip ratio (measured and ideal). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "core/error.h"
#include "core/json.h"
#include "core/pool.h"
#include "eval/bench.h"
#include "eval/plot.h"
#include "io/file.h"
#include "models/model.h"
#include "tensor/tensor.h"

#define MAX_RUNS 32

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
    const int limit = tok ? modes_tokenizer_vocab(tok) : modes_model_vocab(m);
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
    char *path;       /* the policy file, if any (a copy) */
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
static int make_runs(modes_ctx *c, const prepared_input *in, const modes_bench_options *o, const modes_policy *alphas,
                     bench_run *runs, int *n_runs, modes_error *err) {
    const modes_model *m = c->model;
    snprintf(runs[0].label, sizeof runs[0].label, "none");
    *n_runs = 1;
    for (int i = 0; i < o->n_policies; i++) {
        bench_run *r = &runs[(*n_runs)++];
        snprintf(r->label, sizeof r->label, "%s", o->policies[i]);
        spec_method(o->policies[i], r->method, sizeof r->method);
        int rc;
        float tau;
        if (o->is_file && o->is_file[i]) {
            rc = (r->path = strdup(o->policies[i])) ? modes_policy_load(m, o->policies[i], &r->policy, err)
                                                      : modes_fail(err, MODES_E_INTERNAL, "out of memory");
        } else if ((rc = bench_ratio_policy(c, in, alphas, o->policies[i], &r->policy, &tau, err)) >= 0) {
            if (!rc) snprintf(r->label, sizeof r->label, "%s (tau %.4g)", o->policies[i], tau);
        } else {
            rc = modes_policy_from_spec(m, o->policies[i], alphas, &r->policy, err);
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

static void print_table(strbuf *sb, const bench_run *runs, int n, int prompt, double bw, double peak) {
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
        sb_printf(sb, "%-*s", w, h ? "" : "skip");
        for (int c = 0; c < nc; c++) sb_printf(sb, " %*s", COLS[c].width, COLS[c].head[h]);
        sb_puts(sb, "\n");
    }
    for (int i = 0; i < n; i++) {
        double v[N_VALUES];
        run_values(&runs[0].r, &runs[i].r, prompt, bw, peak, v);
        sb_printf(sb, "%-*s", w, runs[i].label);
        for (int c = 0; c < nc; c++) {
            const double x = v[COLS[c].value] * COLS[c].scale;
            if (isfinite(x)) sb_printf(sb, " %*.*f", COLS[c].width, COLS[c].prec, x);
            else sb_printf(sb, " %*s", COLS[c].width, "-");
        }
        sb_puts(sb, "\n");
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

struct modes_bench_report {
    bench_run runs[MAX_RUNS + 1];
    int n_runs, prompt, gen, reps, threads, layers, blocks, synthetic;
    char *model;
    double bw, peak, peak_bf16;
    long rss_kb;
};

modes_bench_options modes_bench_defaults(void) {
    return (modes_bench_options){.layers = 48, .expert_gb = 4, .prompt_tokens = 1024, .gen_tokens = 32, .reps = 3};
}

void modes_bench_report_free(modes_bench_report *r) {
    if (!r) return;
    for (int i = 0; i < r->n_runs; i++) {
        modes_policy_free(r->runs[i].policy);
        free(r->runs[i].path);
    }
    free(r->model);
    free(r);
}

static int check_options(const modes_bench_options *o, modes_error *err) {
    if (!o->model == !o->synthetic) return modes_fail(err, MODES_E_INPUT, "modes_bench: give either a model or a synthetic name");
    if (o->synthetic && o->image) return modes_fail(err, MODES_E_INPUT, "modes_bench: an image needs a model folder");
    if (o->n_policies < 0 || o->n_policies > MAX_RUNS)
        return modes_fail(err, MODES_E_INPUT, "modes_bench: %d policies (0 to %d)", o->n_policies, MAX_RUNS);
    if (o->n_policies && !o->policies) return modes_fail(err, MODES_E_INPUT, "modes_bench: policies is NULL");
    if (o->prompt_tokens < 8 || o->gen_tokens < 0 || o->reps < 1 || o->threads < 0 || o->layers < 1 || o->layers > 48 ||
        !(o->expert_gb > 0))
        return modes_fail(err, MODES_E_INPUT, "modes_bench: a size out of range (prompt_tokens >= 8, gen_tokens >= 0, "
                          "reps >= 1, threads >= 0, layers 1 to 48, expert_gb > 0)");
    return 0;
}

/* The layer importances modes@RATIO and the GMLG specs take: the first policy file's. */
static const char *alphas_path(const modes_bench_options *o) {
    for (int i = 0; o->is_file && i < o->n_policies; i++)
        if (o->is_file[i]) return o->policies[i];
    return NULL;
}

int modes_bench(const modes_bench_options *o, modes_bench_report **out, modes_error *err) {
    MODES_REQUIRE(err, out);
    *out = NULL;
    MODES_REQUIRE(err, o);
    int rc = check_options(o, err);
    if (rc) return rc;
    modes_bench_report *rep = calloc(1, sizeof *rep);
    if (!rep || !(rep->model = strdup(o->synthetic ? o->synthetic : o->model))) {
        free(rep);
        return modes_fail(err, MODES_E_INTERNAL, "out of memory");
    }
    modes_model *m = NULL;
    modes_ctx *ctx = NULL;
    modes_policy *alphas = NULL;
    modes_prompt *prompt = NULL;
    prepared_input in = {0};
    int32_t *ids = NULL;
    const char *alphas_file = alphas_path(o);
    rc = o->synthetic ? model_synthetic(o->synthetic, o->layers, (size_t)(o->expert_gb * 1e9), 1, &m, &rep->blocks, err)
                      : modes_model_load(o->model, &m, err);
    if (!rc && alphas_file) rc = modes_policy_load(m, alphas_file, &alphas, err);
    int n = o->prompt_tokens;
    if (!rc && o->image) {
        const char *imgs[1] = {o->image};
        rc = modes_prompt_new(m, NULL, "Describe the picture in detail.", imgs, 1, NULL, &prompt, err);
        if (!rc) modes_prompt_ids(prompt, &n);
    } else if (!rc && !(ids = o->synthetic ? synthetic_prompt(m, n) : text_prompt(m, n))) {
        rc = modes_fail(err, MODES_E_INTERNAL, "out of memory");
    }
    if (!rc && (long)n + o->gen_tokens > m->cfg.text.max_position) /* refused before any pass, not at the cache's end */
        rc = modes_fail(err, MODES_E_INPUT,
                        "a prompt of %d tokens and %d generated tokens do not fit in the model's context of %d tokens",
                        n, o->gen_tokens, m->cfg.text.max_position);
    modes_ctx_params cp = {.n_ctx = n + o->gen_tokens + 8, .threads = o->threads};
    if (!rc) rc = modes_ctx_new(m, &cp, &ctx, err);
    if (!rc && prompt) rc = prompt_prepare(ctx, prompt, &in, err);
    if (!rc && !prompt) { /* the text decoder alone: image tokens keep their embedding rows */
        in.ids = ids;
        in.n = n;
        if (!(in.pos = malloc((size_t)3 * n * sizeof *in.pos))) rc = modes_fail(err, MODES_E_INTERNAL, "out of memory");
        for (int i = 0; !rc && i < n; i++) in.pos[i] = in.pos[n + i] = in.pos[2 * n + i] = i;
    }
    if (!rc) rc = make_runs(ctx, &in, o, alphas, rep->runs, &rep->n_runs, err);
    bench_options bo = {.gen_tokens = o->gen_tokens, .reps = o->reps, .probe_bytes = (size_t)512 << 20,
                        .progress = o->progress, .progress_user = o->progress_user};
    /* The peak rates are probed before and after the runs and the higher kept: a probe taken while
     * the host lends one of the VM's cores elsewhere reads half the machine (seen once: 118 of 236
     * GFLOP/s after an 18-minute run). */
    if (!rc) probe_peaks(ctx->pool, &rep->peak, &rep->peak_bf16);
    if (!rc) {
        const modes_policy *pols[MAX_RUNS + 1];
        bench_result res[MAX_RUNS + 1];
        for (int i = 0; i < rep->n_runs; i++) pols[i] = rep->runs[i].policy;
        rc = bench_policies(ctx, &in, pols, rep->n_runs, &bo, res, err);
        for (int i = 0; !rc && i < rep->n_runs; i++) rep->runs[i].r = res[i];
    }
    if (!rc) {
        rep->bw = probe_read_bandwidth(ctx->pool, (size_t)1 << 30);
        probe_peaks(ctx->pool, &rep->peak, &rep->peak_bf16);
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        rep->rss_kb = ru.ru_maxrss;
        rep->prompt = n;
        rep->gen = o->gen_tokens;
        rep->reps = o->reps;
        rep->threads = pool_size(ctx->pool);
        rep->layers = m->cfg.text.n_layers;
        rep->synthetic = o->synthetic != NULL;
    }
    if (prompt) prepared_free(&in);
    else free(in.pos);
    free(ids);
    modes_prompt_free(prompt);
    modes_policy_free(alphas);
    modes_ctx_free(ctx);
    modes_model_free(m);
    if (rc) modes_bench_report_free(rep);
    else *out = rep;
    return rc;
}

int modes_bench_report_format(const modes_bench_report *r, modes_report_format format, char **out, modes_error *err) {
    MODES_REQUIRE(err, out);
    *out = NULL;
    MODES_REQUIRE(err, r);
    strbuf sb = {0};
    if (format == MODES_REPORT_JSON) {
        json_out(&sb, r->runs, r->n_runs, r->prompt, r->gen, r->model, r->threads, r->bw, r->peak, r->peak_bf16,
                 r->rss_kb, r->blocks);
    } else if (format == MODES_REPORT_TEXT) {
        sb_printf(&sb, "model %s (%d layers%s), prompt %d tokens, %d generated, %d threads, %s kernels\n", r->model,
                  r->layers, r->synthetic ? ", random bf16 weights" : "", r->prompt, r->gen, r->threads,
                  kernels_default()->name);
        sb_printf(&sb, "machine: read bandwidth %.1f GB/s, peak FMA %.1f GFLOP/s (f32), %.1f (bf16 dot); peak RSS %.0f MB\n\n",
                  r->bw, r->peak, r->peak_bf16, r->rss_kb / 1024.0);
        print_table(&sb, r->runs, r->n_runs, r->prompt, r->bw, r->peak);
    } else {
        return modes_fail(err, MODES_E_INPUT, "modes_bench_report_format: unknown format %d", (int)format);
    }
    return sb_take(&sb, out, err);
}

int modes_bench_report_plot(const modes_bench_report *r, const char *path, modes_error *err) {
    MODES_REQUIRE(err, r);
    MODES_REQUIRE(err, path);
    char model[128], title[320];
    path_tail(r->model, 0, 0, model, sizeof model);
    snprintf(title, sizeof title, "%s: speed-up vs skip ratio, prompt %d tokens, %d decoded, median of %d repetition%s",
             model, r->prompt, r->gen, r->reps, r->reps == 1 ? "" : "s");
    return write_plot(path, title, r->runs, r->n_runs, r->prompt, r->gen > 0, err);
}
