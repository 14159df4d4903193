#include "eval/eval.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/error.h"
#include "eval/score.h"
#include "text/tokenizer.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int eval_family_index(const eval_results *r, const char *family) {
    for (int i = 0; i < r->n_families; i++)
        if (!strcmp(r->families[i], family)) return i;
    return -1;
}

static int family_of(eval_results *r, const data_example *e) {
    const char *f = e->family ? e->family : "all";
    int i = eval_family_index(r, f);
    if (i < 0 && r->n_families < EVAL_MAX_FAMILIES) r->families[i = r->n_families++] = f;
    return i < 0 ? EVAL_MAX_FAMILIES - 1 : i; /* past the limit, the last family collects the rest */
}

static void add_counts(eval_result *res, const modes_stats *s) {
    for (int p = 0; p < 2; p++)
        for (int c = 0; c < 3; c++) {
            res->counts[p][c].slots += s->phase[p][c].slots;
            res->counts[p][c].skipped += s->phase[p][c].skipped;
            res->counts[p][c].tokens += s->phase[p][c].tokens;
            res->counts[p][c].tokens_all_skipped += s->phase[p][c].tokens_all_skipped;
        }
}

/* One example under one run: generate, decode, score. */
static int run_one(modes_ctx *ctx, const modes_model *m, const data_example *e, const prepared_input *in,
                   const eval_run *run, int max_new, int32_t *ids, char **pred, int *ok, eval_result *res,
                   modes_error *err) {
    modes_ctx_reset(ctx);
    modes_ctx_reset_stats(ctx);
    modes_ctx_set_policy(ctx, run->policy);
    int n = 0;
    const double t0 = now_s();
    int rc = generate_prepared(ctx, in, max_new, NULL, NULL, NULL, ids, &n, NULL, err);
    res->seconds += now_s() - t0;
    size_t len;
    if (!rc) rc = tok_decode(modes_model_tokenizer(m), ids, (size_t)n, 1, pred, &len, err);
    if (!rc) {
        *ok = score_answer(e, *pred);
        add_counts(res, modes_ctx_stats(ctx));
    }
    return rc;
}

static int alloc_results(eval_results *r, int n_runs, int n_ex, modes_error *err) {
    memset(r, 0, sizeof *r);
    r->n_runs = n_runs;
    r->n_examples = n_ex;
    r->runs = calloc((size_t)n_runs, sizeof *r->runs);
    r->predictions = calloc((size_t)n_ex * n_runs, sizeof *r->predictions);
    r->correct = calloc((size_t)n_ex * n_runs, 1);
    return r->runs && r->predictions && r->correct ? 0 : modes_fail(err, MODES_E_INTERNAL, "out of memory");
}

int eval_bench(const modes_model *m, const data_set *d, const eval_run *runs, int n_runs, int max_new,
               progress_fn progress, void *user, eval_results *out, modes_error *err) {
    if (!modes_model_tokenizer(m)) return modes_fail(err, MODES_E_INPUT, "the model folder has no tokenizer.json");
    int rc = alloc_results(out, n_runs, d->n, err);
    int32_t *ids = malloc((size_t)(max_new > 0 ? max_new : 1) * sizeof *ids);
    modes_ctx *ctx = NULL;
    if (!rc && !ids) rc = modes_fail(err, MODES_E_INTERNAL, "out of memory");
    int ctx_len = 0;
    for (int i = 0; !rc && i < d->n; i++) {
        const data_example *e = &d->ex[i];
        modes_prompt *p = NULL;
        prepared_input in = {0};
        rc = modes_prompt_new(m, NULL, e->question, (const char *const *)e->images, e->n_images, NULL, &p, err);
        if (rc) {
            modes_error_prefix(err, "%s: example %s", d->path, e->id ? e->id : "?");
            break;
        }
        int n;
        modes_prompt_ids(p, &n);
        if (n + max_new > ctx_len) { /* grow the context to the longest example seen */
            modes_ctx_free(ctx);
            ctx_len = 2 * (n + max_new);
            modes_ctx_params cp = {.n_ctx = ctx_len};
            rc = modes_ctx_new(m, &cp, &ctx, err);
        }
        if (!rc) {
            modes_ctx_reset(ctx);
            rc = prompt_prepare(ctx, p, &in, err);
        }
        const int fam = family_of(out, e);
        for (int r = 0; !rc && r < n_runs; r++) {
            int ok = 0;
            const size_t k = (size_t)i * n_runs + r;
            rc = run_one(ctx, m, e, &in, &runs[r], max_new, ids, &out->predictions[k], &ok, &out->runs[r], err);
            out->correct[k] = (uint8_t)ok;
            out->runs[r].correct += ok;
            out->runs[r].total++;
            out->runs[r].fam_correct[fam] += ok;
            out->runs[r].fam_total[fam]++;
        }
        prepared_free(&in);
        modes_prompt_free(p);
        if (progress) progress(user, "evaluating", i + 1, d->n);
    }
    modes_ctx_free(ctx);
    free(ids);
    if (rc) eval_results_free(out);
    return rc;
}

void eval_results_free(eval_results *r) {
    for (long i = 0; r->predictions && i < (long)r->n_examples * r->n_runs; i++) free(r->predictions[i]);
    free(r->predictions);
    free(r->correct);
    free(r->runs);
    memset(r, 0, sizeof *r);
}
