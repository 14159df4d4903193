/* modes eval: accuracy on a benchmark file with and without skipping, for several policies in one
 * run over the same examples; a table on stdout, JSON results, and a plot of accuracy retained
 * against the achieved skip ratio (one line per method, as the paper's Figure 1). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_check.h"
#include "core/error.h"
#include "core/json.h"
#include "eval/eval.h"
#include "eval/plot.h"
#include "io/file.h"

static const char *HELP =
    "usage: modes eval -m DIR --bench FILE.jsonl [--policy FILE | --skip SPEC]... [--alphas FILE]\n"
    "                  [-o RESULTS.json] [--plot FILE.svg] [--json] [--limit N] [-n MAX_NEW] [--skip-bad]\n"
    "  Answers every example greedily without skipping and under each policy, and scores the answers\n"
    "  (metrics exact, choice, yesno). --policy FILE applies a complete skip policy; modes: and\n"
    "  gmlg-threshold: specs take their layer importances from --alphas FILE (an alphas or policy file).\n"
    "  Before the first pass, -o and --plot must be writable and every example usable (its images decode,\n"
    "  its prompt and answer, and its prompt and MAX_NEW tokens, fit the context); all unusable examples\n"
    "  are listed at once and nothing runs, unless --skip-bad leaves them out (the results count them).\n"
    "  Long forms: -m/--model, -n/--n-predict, -o/--output. Defaults: -n 16, --limit 0 (every example).\n";

#define MAX_RUNS 64

typedef struct {
    const char *dir, *bench, *out, *plot, *alphas;
    const char *labels[MAX_RUNS];
    int is_file[MAX_RUNS], n_runs, json, skip_bad;
    long limit, max_new;
} eval_opts;

static int parse(int argc, char **argv, eval_opts *o) {
    *o = (eval_opts){.max_new = 16, .n_runs = 1};
    o->labels[0] = "none";
    for (int i = 1; i < argc; i++) {
        int r;
        const char *v;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return fputs(HELP, stdout), 2;
        if (!strcmp(argv[i], "--json")) { o->json = 1; continue; }
        if (!strcmp(argv[i], "--skip-bad")) { o->skip_bad = 1; continue; }
        const int file = !strcmp(argv[i], "--policy");
        if ((r = opt_multi(argc, argv, &i, file ? "--policy" : "--skip", &v, "eval")) == 0) {
            if (!file && !strcmp(v, "none")) continue; /* the unskipped run is always there */
            if (o->n_runs == MAX_RUNS) return cli_usage("eval", "at most %d runs", MAX_RUNS), -1;
            o->is_file[o->n_runs] = file;
            o->labels[o->n_runs++] = v;
            continue;
        }
        if (r < 0) return -1;
        if ((r = opt_str(argc, argv, &i, "-m|--model", &o->dir, "eval")) <= 0 ||
            (r = opt_str(argc, argv, &i, "--bench", &o->bench, "eval")) <= 0 ||
            (r = opt_str(argc, argv, &i, "-o|--output", &o->out, "eval")) <= 0 ||
            (r = opt_str(argc, argv, &i, "--plot", &o->plot, "eval")) <= 0 ||
            (r = opt_str(argc, argv, &i, "--alphas", &o->alphas, "eval")) <= 0 ||
            (r = opt_int(argc, argv, &i, "--limit", 0, 1 << 30, &o->limit, "eval")) <= 0 ||
            (r = opt_int(argc, argv, &i, "-n|--n-predict", 1, 4096, &o->max_new, "eval")) <= 0) {
            if (r < 0) return -1;
            continue;
        }
        return cli_usage("eval", "unknown option '%s'", argv[i]), -1;
    }
    if (!o->dir || !o->bench) return cli_usage("eval", "-m DIR and --bench FILE are required"), -1;
    return 0;
}

static double ratio(const eval_result *r, int cls) { /* cls < 0: every class, both phases */
    modes_skip_count c[6];
    memcpy(c, r->counts, sizeof c);
    if (cls < 0) return modes_skip_ratio(c, 6);
    modes_skip_count one[2] = {r->counts[0][cls], r->counts[1][cls]};
    return modes_skip_ratio(one, 2);
}

static double accuracy(const eval_result *r) { return r->total ? (double)r->correct / r->total : 0; }

/* A policy file is named by its file name in the table (the JSON keeps the path): paths of a
 * results folder share a long prefix and would all be cut to the same 36 characters. */
static const char *table_label(const char *label) {
    const size_t n = strlen(label);
    const char *slash = strrchr(label, '/');
    return n > 5 && !strcmp(label + n - 5, ".json") && slash ? slash + 1 : label;
}

static void print_table(const eval_opts *o, const eval_results *res) {
    const double base = accuracy(&res->runs[0]);
    printf("%-36s %9s %9s %7s %7s %7s %8s\n", "run", "accuracy", "retained", "skip", "text", "vision", "examples");
    for (int r = 0; r < res->n_runs; r++) {
        const eval_result *e = &res->runs[r];
        printf("%-36.36s %9.4f %9.4f %7.4f %7.4f %7.4f %8ld\n", table_label(o->labels[r]), accuracy(e),
               base > 0 ? accuracy(e) / base : 0, ratio(e, -1), ratio(e, MODES_TOKEN_TEXT), ratio(e, MODES_TOKEN_VISION),
               e->total);
    }
    if (res->n_families > 1) {
        printf("\nper family (accuracy):\n%-36s", "run");
        for (int f = 0; f < res->n_families; f++) printf(" %10.10s", res->families[f]);
        printf("\n");
        for (int r = 0; r < res->n_runs; r++) {
            printf("%-36.36s", table_label(o->labels[r]));
            for (int f = 0; f < res->n_families; f++)
                printf(" %10.4f", res->runs[r].fam_total[f] ? (double)res->runs[r].fam_correct[f] / res->runs[r].fam_total[f] : 0);
            printf("\n");
        }
    }
}

static void json_runs(strbuf *sb, const eval_opts *o, const eval_results *res, const char *const *methods) {
    const double base = accuracy(&res->runs[0]);
    sb_puts(sb, "{\"runs\": [");
    for (int r = 0; r < res->n_runs; r++) {
        const eval_result *e = &res->runs[r];
        sb_puts(sb, r ? ",\n  {\"skip\": " : "\n  {\"skip\": ");
        sb_json_string(sb, o->labels[r], strlen(o->labels[r]));
        sb_puts(sb, ", \"method\": ");
        sb_json_string(sb, methods[r], strlen(methods[r]));
        const char *keys[] = {"accuracy", "retained", "skip_ratio", "skip_ratio_text", "skip_ratio_vision", "seconds"};
        const double vals[] = {accuracy(e), base > 0 ? accuracy(e) / base : 0, ratio(e, -1), ratio(e, MODES_TOKEN_TEXT),
                               ratio(e, MODES_TOKEN_VISION), e->seconds};
        for (int k = 0; k < 6; k++) {
            sb_printf(sb, ", \"%s\": ", keys[k]);
            sb_json_number(sb, vals[k]);
        }
        sb_printf(sb, ", \"examples\": %ld, \"per_family\": {", e->total);
        for (int f = 0; f < res->n_families; f++) {
            if (f) sb_puts(sb, ", ");
            sb_json_string(sb, res->families[f], strlen(res->families[f]));
            sb_printf(sb, ": {\"accuracy\": ");
            sb_json_number(sb, e->fam_total[f] ? (double)e->fam_correct[f] / e->fam_total[f] : 0);
            sb_printf(sb, ", \"examples\": %ld}", e->fam_total[f]);
        }
        sb_puts(sb, "}}");
    }
    sb_puts(sb, "\n]");
}

/* The examples --skip-bad left out, so results on part of a data set say so. */
static void json_skipped(strbuf *sb, const data_problems *skipped) {
    sb_printf(sb, ",\n\"skipped\": %d, \"skipped_examples\": [", skipped->n);
    for (int i = 0; i < skipped->n; i++) {
        const data_problem *p = &skipped->items[i];
        sb_printf(sb, "%s\n  {\"line\": %d, \"id\": ", i ? "," : "", p->line);
        if (p->id) sb_json_string(sb, p->id, strlen(p->id));
        else sb_puts(sb, "null");
        sb_puts(sb, ", \"problem\": ");
        sb_json_string(sb, p->why, strlen(p->why));
        sb_puts(sb, "}");
    }
    sb_puts(sb, skipped->n ? "\n]" : "]");
}

static void json_records(strbuf *sb, const data_set *d, const eval_results *res) {
    sb_puts(sb, ",\n\"records\": [");
    for (int i = 0; i < res->n_examples; i++) {
        const data_example *e = &d->ex[i];
        sb_puts(sb, i ? ",\n  {\"id\": " : "\n  {\"id\": ");
        sb_json_string(sb, e->id ? e->id : "", e->id ? strlen(e->id) : 0);
        sb_puts(sb, ", \"answer\": ");
        sb_json_string(sb, e->answer, strlen(e->answer));
        sb_puts(sb, ", \"predictions\": [");
        for (int r = 0; r < res->n_runs; r++) {
            const char *p = res->predictions[(size_t)i * res->n_runs + r];
            if (r) sb_puts(sb, ", ");
            sb_json_string(sb, p ? p : "", p ? strlen(p) : 0);
        }
        sb_puts(sb, "], \"correct\": [");
        for (int r = 0; r < res->n_runs; r++) sb_printf(sb, r ? ", %d" : "%d", res->correct[(size_t)i * res->n_runs + r]);
        sb_puts(sb, "]}");
    }
    sb_puts(sb, "\n]");
}

/* One line per method: its runs sorted by skip ratio, starting from the unskipped model at (0, 1). */
static int write_plot(const char *path, const char *model_dir, const eval_results *res, const char *const *methods,
                      modes_error *err) {
    const char *names[MAX_RUNS];
    int n_names = 0;
    for (int r = 1; r < res->n_runs; r++) {
        int seen = 0;
        for (int k = 0; k < n_names; k++) seen |= !strcmp(names[k], methods[r]);
        if (!seen) names[n_names++] = methods[r];
    }
    static double xs[MAX_RUNS][MAX_RUNS + 1], ys[MAX_RUNS][MAX_RUNS + 1];
    plot_series s[MAX_RUNS];
    const double base = accuracy(&res->runs[0]);
    for (int k = 0; k < n_names; k++) {
        int n = 0;
        xs[k][n] = 0;
        ys[k][n++] = 100;
        for (int r = 1; r < res->n_runs; r++) {
            if (strcmp(methods[r], names[k])) continue;
            int at = n++; /* insertion sort by skip ratio */
            const eval_result *e = &res->runs[r]; /* no examples answered: not measured, a gap */
            const double x = 100 * ratio(e, -1), y = base > 0 && e->total ? 100 * accuracy(e) / base : NAN;
            while (at > 0 && xs[k][at - 1] > x) {
                xs[k][at] = xs[k][at - 1];
                ys[k][at] = ys[k][at - 1];
                at--;
            }
            xs[k][at] = x;
            ys[k][at] = y;
        }
        s[k] = (plot_series){.label = names[k], .x = xs[k], .y = ys[k], .n = n, .style = k};
    }
    /* The y axis starts at the lowest point's multiple of ten: the differences that matter are
     * a few points, and a 0-100 axis flattens them into one line. */
    double lowest = 100, highest = 100;
    for (int k = 0; k < n_names; k++)
        for (int i = 0; i < s[k].n; i++) {
            if (!isfinite(ys[k][i])) continue;
            lowest = ys[k][i] < lowest ? ys[k][i] : lowest;
            highest = ys[k][i] > highest ? ys[k][i] : highest;
        }
    const double ymin = lowest > 0 ? 10 * floor(lowest / 10 - 1e-9) : 0;
    plot_panel ax = {.xlabel = "routed expert slots skipped (%)", .ylabel = "accuracy retained (% of unskipped)",
                     .xmin = 0, .xmax = 100, .ymin = ymin < 90 ? ymin : 90, .ymax = 5 * ceil(highest / 5) + 2,
                     .series = s, .n_series = n_names};
    char model[128], title[256];
    path_tail(model_dir, 0, 0, model, sizeof model);
    snprintf(title, sizeof title, "%s: accuracy vs skip ratio, %d example%s", model, res->n_examples,
             res->n_examples == 1 ? "" : "s");
    return plot_svg(path, title, &ax, 1, NULL, err);
}

int cmd_eval(int argc, char **argv) {
    eval_opts o;
    const int pr = parse(argc, argv, &o);
    if (pr) return pr == 2 ? 0 : 1;
    const char *outputs[] = {o.out, o.plot};
    if (cli_check_outputs("eval", outputs, 2)) return 1;
    modes_error err = {0};
    modes_model *m = NULL;
    modes_policy *alphas = NULL, *pol[MAX_RUNS] = {0};
    const char *methods[MAX_RUNS] = {"none"};
    data_set d = {0};
    data_problems skipped = {0};
    eval_results res = {0};
    eval_run runs[MAX_RUNS] = {{"none", NULL}};
    int rc = modes_model_load(o.dir, &m, &err);
    if (!rc && o.alphas) rc = modes_policy_load(m, o.alphas, &alphas, &err);
    for (int r = 1; !rc && r < o.n_runs; r++) {
        rc = o.is_file[r] ? modes_policy_load(m, o.labels[r], &pol[r], &err)
                          : cli_check_skip_alphas(o.labels[r], o.alphas, &err);
        if (!rc && !o.is_file[r]) rc = modes_policy_from_spec(m, o.labels[r], alphas, &pol[r], &err);
        if (!rc) {
            runs[r] = (eval_run){o.labels[r], pol[r]};
            methods[r] = policy_method_name(pol[r]->method);
        }
    }
    if (!rc) rc = data_load(o.bench, (int)o.limit, &d, &err);
    const data_check_options check = {.with_answer = 1, .max_new = (int)o.max_new};
    if (!rc) rc = cli_check_data("eval", m, &d, &check, o.skip_bad, "--skip-bad", &skipped, &err);
    if (!rc) rc = eval_bench(m, &d, runs, o.n_runs, (int)o.max_new, cli_progress, NULL, &res, &err);
    cli_progress_end();
    strbuf sb = {0};
    if (!rc) {
        json_runs(&sb, &o, &res, methods);
        json_skipped(&sb, &skipped);
        if (o.json) printf("%s}\n", sb.data);
        else print_table(&o, &res);
        if (!o.json && skipped.n) printf("\n%d unusable examples were left out (--skip-bad)\n", skipped.n);
    }
    if (!rc && o.out) {
        json_records(&sb, &d, &res);
        sb_puts(&sb, "}\n");
        rc = sb.failed ? modes_fail(&err, MODES_E_INTERNAL, "out of memory") : write_file_atomic(o.out, sb.data, sb.len, &err);
    }
    if (!rc && o.plot) rc = write_plot(o.plot, o.dir, &res, methods, &err);
    sb_free(&sb);
    eval_results_free(&res);
    data_problems_free(&skipped);
    data_free(&d);
    for (int r = 0; r < o.n_runs; r++) modes_policy_free(pol[r]);
    modes_policy_free(alphas);
    modes_model_free(m);
    return rc ? cli_fail("eval", &err) : 0;
}
