/* modes eval: accuracy on a benchmark file with and without skipping, for several policies in one
 * run over the same examples (modes_eval_data); a table on stdout, JSON results, and a plot of
 * accuracy retained against the achieved skip ratio (one line per method, as the paper's Figure 1). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_check.h"

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

int cmd_eval(int argc, char **argv) {
    eval_opts o;
    const int pr = parse(argc, argv, &o);
    if (pr) return pr == 2 ? 0 : 1;
    const char *outputs[] = {o.out, o.plot};
    if (cli_check_outputs("eval", outputs, 2)) return 1;
    modes_error err = {0};
    modes_model *m = NULL;
    modes_policy *alphas = NULL, *pol[MAX_RUNS] = {0};
    modes_eval_run runs[MAX_RUNS];
    modes_eval_report *res = NULL;
    int rc = modes_model_load(o.dir, &m, &err);
    if (!rc && o.alphas) rc = modes_policy_load(m, o.alphas, &alphas, &err);
    for (int r = 1; !rc && r < o.n_runs; r++) {
        rc = o.is_file[r] ? modes_policy_load(m, o.labels[r], &pol[r], &err)
                          : cli_check_skip_alphas(o.labels[r], o.alphas, &err);
        if (!rc && !o.is_file[r]) rc = modes_policy_from_spec(m, o.labels[r], alphas, &pol[r], &err);
        runs[r - 1] = (modes_eval_run){o.labels[r], pol[r]};
    }
    modes_eval_options eo = {.data = cli_data_options("eval", o.bench, o.limit), .max_new = (int)o.max_new};
    eo.data.skip_bad = o.skip_bad;
    eo.data.skip_hint = "--skip-bad";
    if (!rc) rc = modes_eval_data(m, &eo, runs, o.n_runs - 1, &res, &err);
    cli_progress_end();
    char *text = NULL;
    if (!rc) rc = modes_eval_report_format(res, o.json ? MODES_REPORT_JSON : MODES_REPORT_TEXT, 0, &text, &err);
    if (!rc) {
        fputs(text, stdout);
        const int skipped = modes_eval_report_skipped(res);
        if (!o.json && skipped) printf("\n%d unusable examples were left out (--skip-bad)\n", skipped);
    }
    free(text);
    text = NULL;
    if (!rc && o.out) rc = modes_eval_report_format(res, MODES_REPORT_JSON, 1, &text, &err);
    if (!rc && o.out) rc = modes_write_file_atomic(o.out, text, strlen(text), &err);
    free(text);
    if (!rc && o.plot) rc = modes_eval_report_plot(res, o.plot, o.dir, &err);
    modes_eval_report_free(res);
    for (int r = 0; r < o.n_runs; r++) modes_policy_free(pol[r]);
    modes_policy_free(alphas);
    modes_model_free(m);
    return rc ? cli_fail("eval", &err) : 0;
}
