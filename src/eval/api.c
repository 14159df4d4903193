/* The evaluation workflow behind include/modes.h (`modes eval`): a data file checked, every example
 * answered under each run, and the report: a table, JSON results, and a plot of accuracy retained
 * against the achieved skip ratio (one line per method, as the paper's Figure 1). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calib/data_check.h"
#include "core/error.h"
#include "core/json.h"
#include "eval/eval.h"
#include "eval/plot.h"
#include "io/data.h"
#include "io/file.h"
#include "skip/policy.h"

#define MAX_RUNS 64

struct modes_eval_report {
    int n_runs;
    char *labels[MAX_RUNS];  /* copies of the runs' labels */
    char *methods[MAX_RUNS]; /* the plot's lines: "none", or the policy's method */
    data_set data;
    data_problems skipped;
    eval_results res;
};

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

static void print_table(strbuf *sb, const modes_eval_report *rep) {
    const eval_results *res = &rep->res;
    const double base = accuracy(&res->runs[0]);
    sb_printf(sb, "%-36s %9s %9s %7s %7s %7s %8s\n", "run", "accuracy", "retained", "skip", "text", "vision", "examples");
    for (int r = 0; r < res->n_runs; r++) {
        const eval_result *e = &res->runs[r];
        sb_printf(sb, "%-36.36s %9.4f %9.4f %7.4f %7.4f %7.4f %8ld\n", table_label(rep->labels[r]), accuracy(e),
               base > 0 ? accuracy(e) / base : 0, ratio(e, -1), ratio(e, MODES_TOKEN_TEXT), ratio(e, MODES_TOKEN_VISION),
               e->total);
    }
    if (res->n_families > 1) {
        sb_printf(sb, "\nper family (accuracy):\n%-36s", "run");
        for (int f = 0; f < res->n_families; f++) sb_printf(sb, " %10.10s", res->families[f]);
        sb_printf(sb, "\n");
        for (int r = 0; r < res->n_runs; r++) {
            sb_printf(sb, "%-36.36s", table_label(rep->labels[r]));
            for (int f = 0; f < res->n_families; f++)
                sb_printf(sb, " %10.4f", res->runs[r].fam_total[f] ? (double)res->runs[r].fam_correct[f] / res->runs[r].fam_total[f] : 0);
            sb_printf(sb, "\n");
        }
    }
}

static void json_runs(strbuf *sb, const modes_eval_report *rep) {
    const eval_results *res = &rep->res;
    const char *const *methods = (const char *const *)rep->methods;
    const double base = accuracy(&res->runs[0]);
    sb_puts(sb, "{\"runs\": [");
    for (int r = 0; r < res->n_runs; r++) {
        const eval_result *e = &res->runs[r];
        sb_puts(sb, r ? ",\n  {\"skip\": " : "\n  {\"skip\": ");
        sb_json_string(sb, rep->labels[r], strlen(rep->labels[r]));
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
static int write_plot(const char *path, const char *model_dir, const modes_eval_report *rep, modes_error *err) {
    const eval_results *res = &rep->res;
    const char *const *methods = (const char *const *)rep->methods;
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

void modes_eval_report_free(modes_eval_report *r) {
    if (!r) return;
    for (int i = 0; i < r->n_runs; i++) {
        free(r->labels[i]);
        free(r->methods[i]);
    }
    eval_results_free(&r->res);
    data_problems_free(&r->skipped);
    data_free(&r->data);
    free(r);
}

/* Run 0 is the unskipped model; the caller's runs follow. */
static int add_runs(modes_eval_report *r, const modes_eval_run *runs, int n_runs, eval_run *out, modes_error *err) {
    for (int i = 0; i <= n_runs; i++) {
        const modes_eval_run run = i ? runs[i - 1] : (modes_eval_run){"none", NULL};
        if (!run.label) return modes_fail(err, MODES_E_INPUT, "modes_eval_data: run %d has no label", i - 1);
        r->labels[i] = strdup(run.label);
        r->methods[i] = strdup(run.policy ? policy_method_name(run.policy->method) : "none");
        r->n_runs = i + 1;
        if (!r->labels[i] || !r->methods[i]) return modes_fail(err, MODES_E_INTERNAL, "out of memory");
        out[i] = (eval_run){r->labels[i], run.policy};
    }
    return 0;
}

int modes_eval_data(const modes_model *m, const modes_eval_options *o, const modes_eval_run *runs, int n_runs,
                    modes_eval_report **out, modes_error *err) {
    MODES_REQUIRE(err, out);
    *out = NULL;
    MODES_REQUIRE(err, m);
    MODES_REQUIRE(err, o);
    if (n_runs) MODES_REQUIRE(err, runs);
    if (n_runs < 0 || n_runs >= MAX_RUNS)
        return modes_fail(err, MODES_E_INPUT, "modes_eval_data: %d runs (0 to %d)", n_runs, MAX_RUNS - 1);
    if (!o->data.path) return modes_fail(err, MODES_E_INPUT, "modes_eval_data: no data file given");
    if (o->data.limit < 0 || o->max_new < 0)
        return modes_fail(err, MODES_E_INPUT, "modes_eval_data: a negative limit or max_new");
    modes_eval_report *r = calloc(1, sizeof *r);
    if (!r) return modes_fail(err, MODES_E_INTERNAL, "out of memory");
    eval_run er[MAX_RUNS];
    const int max_new = o->max_new ? o->max_new : 16;
    int rc = add_runs(r, runs, n_runs, er, err);
    if (!rc) rc = data_load(o->data.path, o->data.limit, &r->data, err);
    const data_check_options check = {.with_answer = 1, .max_new = max_new};
    if (!rc) rc = data_check_usable(m, &r->data, &check, &o->data, &r->skipped, err);
    if (!rc) rc = eval_bench(m, &r->data, er, r->n_runs, max_new, o->data.progress, o->data.user, &r->res, err);
    if (rc) modes_eval_report_free(r);
    else *out = r;
    return rc;
}

int modes_eval_report_format(const modes_eval_report *r, modes_report_format format, int with_records, char **out,
                             modes_error *err) {
    MODES_REQUIRE(err, out);
    *out = NULL;
    MODES_REQUIRE(err, r);
    strbuf sb = {0};
    if (format == MODES_REPORT_TEXT) {
        print_table(&sb, r);
    } else if (format == MODES_REPORT_JSON) {
        json_runs(&sb, r);
        json_skipped(&sb, &r->skipped);
        if (with_records) json_records(&sb, &r->data, &r->res);
        sb_puts(&sb, "}\n");
    } else {
        return modes_fail(err, MODES_E_INPUT, "modes_eval_report_format: unknown format %d", (int)format);
    }
    return sb_take(&sb, out, err);
}

int modes_eval_report_plot(const modes_eval_report *r, const char *path, const char *model, modes_error *err) {
    MODES_REQUIRE(err, r);
    MODES_REQUIRE(err, path);
    MODES_REQUIRE(err, model);
    return write_plot(path, model, r, err);
}

int modes_eval_report_skipped(const modes_eval_report *r) { return r ? r->skipped.n : -1; }
