#include "calib/calibrate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

/* log-softmax of a row, in double for the sums: KL differences are small. */
static void log_softmax(const float *x, int n, float *out) {
    float mx = x[0];
    for (int i = 1; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    double s = 0;
    for (int i = 0; i < n; i++) s += exp((double)x[i] - mx);
    const double lse = mx + log(s);
    for (int i = 0; i < n; i++) out[i] = (float)((double)x[i] - lse);
}

/* KL(P || Q) summed over the answer positions, with P given as log-probabilities and Q as logits. */
static double answer_kl(const calib_example *e, const float *logits, int vocab, float *tmp) {
    double total = 0;
    for (int a = 0; a < e->n_answer; a++) {
        const float *lp = e->logp + (size_t)a * vocab;
        log_softmax(logits + (size_t)a * vocab, vocab, tmp);
        double kl = 0;
        for (int v = 0; v < vocab; v++) kl += exp((double)lp[v]) * ((double)lp[v] - tmp[v]);
        total += kl > 0 ? kl : 0; /* rounding can make a zero divergence slightly negative */
    }
    return total;
}

/* Logits at positions answer_start - 1 .. n - 2 predict the answer tokens. */
static int run_example(calib_session *s, calib_example *e, int start_layer, const float *start_x, float **capture,
                       modes_error *err) {
    modes_ctx_reset(s->ctx);
    return model_run_prepared(s->ctx, &e->in, start_layer, start_x, capture, s->logits, e->n_answer + 1, err);
}

int calib_session_open(const modes_model *m, const data_set *d, progress_fn progress, void *user, calib_session *s,
                       modes_error *err) {
    memset(s, 0, sizeof *s);
    s->m = m;
    s->vocab = modes_model_vocab(m);
    s->progress = progress;
    s->progress_user = user;
    int max_n = 1, max_answer = 1, rc = 0;
    if (!(s->ex = calloc((size_t)d->n, sizeof *s->ex))) return modes_fail(err, MODES_E_INTERNAL, "out of memory");
    s->n_ex = d->n;
    /* One context sized for the longest example; examples are tokenised first to find it. */
    for (int i = 0; !rc && i < d->n; i++) {
        rc = modes_prompt_new(m, NULL, d->ex[i].question, (const char *const *)d->ex[i].images, d->ex[i].n_images,
                              d->ex[i].answer, &s->ex[i].prompt, err);
        if (rc) modes_error_prefix(err, "%s: example %s", d->path, d->ex[i].id ? d->ex[i].id : "?");
        int n = 0;
        if (!rc) modes_prompt_ids(s->ex[i].prompt, &n);
        max_n = n > max_n ? n : max_n;
        const int na = rc ? 0 : n - modes_prompt_answer_start(s->ex[i].prompt);
        max_answer = na > max_answer ? na : max_answer;
        if (progress) progress(user, "tokenising", i + 1, d->n);
    }
    modes_ctx_params cp = {.n_ctx = max_n};
    if (!rc) rc = modes_ctx_new(m, &cp, &s->ctx, err);
    if (!rc && !(s->logits = malloc((size_t)(max_answer + 1) * s->vocab * sizeof *s->logits)))
        rc = modes_fail(err, MODES_E_INTERNAL, "out of memory");
    for (int i = 0; !rc && i < d->n; i++) {
        calib_example *e = &s->ex[i];
        e->answer_start = modes_prompt_answer_start(e->prompt);
        int n;
        modes_prompt_ids(e->prompt, &n);
        e->n_answer = n - e->answer_start;
        modes_ctx_reset(s->ctx);
        rc = prompt_prepare(s->ctx, e->prompt, &e->in, err);
        if (!rc && !(e->logp = malloc((size_t)e->n_answer * s->vocab * sizeof *e->logp)))
            rc = modes_fail(err, MODES_E_INTERNAL, "out of memory");
        if (!rc) rc = run_example(s, e, 0, NULL, NULL, err);
        for (int a = 0; !rc && a < e->n_answer; a++)
            log_softmax(s->logits + (size_t)a * s->vocab, s->vocab, e->logp + (size_t)a * s->vocab);
        s->answer_tokens += e->n_answer;
        if (progress) progress(user, "original passes", i + 1, d->n);
    }
    if (rc) calib_session_close(s);
    return rc;
}

void calib_session_close(calib_session *s) {
    for (int i = 0; i < s->n_ex; i++) {
        modes_prompt_free(s->ex[i].prompt);
        prepared_free(&s->ex[i].in);
        free(s->ex[i].logp);
    }
    free(s->ex);
    free(s->logits);
    modes_ctx_free(s->ctx);
    memset(s, 0, sizeof *s);
}

int calib_eval(calib_session *s, const modes_policy *p, double *kl, modes_skip_count counts[3], modes_error *err) {
    float *tmp = malloc((size_t)s->vocab * sizeof *tmp);
    if (!tmp) return modes_fail(err, MODES_E_INTERNAL, "out of memory");
    modes_ctx_set_policy(s->ctx, p);
    modes_ctx_reset_stats(s->ctx);
    double total = 0;
    int rc = 0;
    for (int i = 0; !rc && i < s->n_ex; i++) {
        rc = run_example(s, &s->ex[i], 0, NULL, NULL, err);
        if (!rc) total += answer_kl(&s->ex[i], s->logits, s->vocab, tmp);
    }
    const modes_stats *st = modes_ctx_stats(s->ctx);
    for (int c = 0; c < 3; c++) { /* teacher-forced passes are prefill: decode counts stay empty */
        counts[c] = st->phase[0][c];
        counts[c].slots += st->phase[1][c].slots;
        counts[c].skipped += st->phase[1][c].skipped;
    }
    modes_ctx_set_policy(s->ctx, NULL);
    *kl = s->answer_tokens ? total / (double)s->answer_tokens : 0;
    free(tmp);
    return rc;
}

void calib_layer_ratios(const calib_session *s, double *out) {
    const modes_stats *st = modes_ctx_stats(s->ctx);
    for (int l = 0; l < st->n_layers; l++) out[l] = modes_skip_ratio(&st->layer[(size_t)l * 3], 3);
}

/* Removal passes for one example: the original pass captures every layer's input, then each
 * (layer, modality) removal re-runs the layers from the removed one up. */
static int alpha_example(calib_session *s, calib_example *e, const calib_options *o, modes_policy *rm, double *sum,
                         float **capture, float *tmp, modes_error *err) {
    const modes_model *m = s->m;
    int rc = run_example(s, e, 0, NULL, capture, err);
    const long long NL = m->cfg.text.n_layers, n = e->in.n;
    s->layer_evals += NL * n;
    s->naive_layer_evals += NL * n;
    int has[2] = {0, 0};
    for (int i = 0; i < e->in.n; i++) {
        const int c = modes_model_token_class(m, e->in.ids[i]);
        if (c < 2) has[c] = 1;
    }
    const int n_mod = o->per_modality ? 2 : 1;
    for (int tl = 0; !rc && tl < m->cfg.text.n_layers; tl++) {
        const int l = m->moe_index[tl];
        if (l < 0) continue;
        for (int mod = 0; !rc && mod < n_mod; mod++) {
            if (o->per_modality && !has[mod]) continue; /* nothing removed: the divergence is exactly 0 */
            rm->remove_layer = l;
            rm->remove_class = o->per_modality ? mod : -1;
            modes_ctx_set_policy(s->ctx, rm);
            rc = run_example(s, e, tl, capture[tl], NULL, err);
            modes_ctx_set_policy(s->ctx, NULL);
            s->layer_evals += (NL - tl) * n; /* layers below tl come from the original pass */
            s->naive_layer_evals += NL * n;
            if (!rc) sum[mod * m->n_moe_layers + l] += answer_kl(e, s->logits, s->vocab, tmp);
        }
    }
    return rc;
}

int calibrate_alpha(calib_session *s, const calib_options *o, modes_policy *out, double *raw, modes_error *err) {
    const modes_model *m = s->m;
    const int L = m->n_moe_layers, NL = m->cfg.text.n_layers, H = m->cfg.text.hidden;
    int max_n = 1;
    for (int i = 0; i < s->n_ex; i++) max_n = s->ex[i].in.n > max_n ? s->ex[i].in.n : max_n;
    double *sum = calloc((size_t)2 * L, sizeof *sum);
    float **capture = calloc((size_t)NL, sizeof *capture), *tmp = malloc((size_t)s->vocab * sizeof *tmp);
    modes_policy *rm = policy_new(SKIP_REMOVE_LAYER, L);
    int rc = sum && capture && tmp && rm ? 0 : modes_fail(err, MODES_E_INTERNAL, "out of memory");
    for (int l = 0; !rc && l < NL; l++)
        if (!(capture[l] = malloc((size_t)max_n * H * sizeof **capture))) rc = modes_fail(err, MODES_E_INTERNAL, "out of memory");
    if (rm) rm->remove_identity = o->identity;
    for (int i = 0; !rc && i < s->n_ex; i++) {
        rc = alpha_example(s, &s->ex[i], o, rm, sum, capture, tmp, err);
        if (s->progress) s->progress(s->progress_user, "removal passes", i + 1, s->n_ex);
    }
    for (int mod = 0; !rc && mod < 2; mod++) {
        const double *a = sum + (o->per_modality ? mod : 0) * L;
        double total = 0;
        for (int l = 0; l < L; l++) total += a[l];
        for (int l = 0; l < L; l++) {
            /* With no tokens of a modality in the data, its alphas fall back to uniform. */
            out->alpha[mod][l] = total > 0 ? (float)(a[l] / total) : 1.0f / (float)L;
            if (raw) raw[mod * L + l] = s->answer_tokens ? a[l] / (double)s->answer_tokens : 0;
        }
    }
    for (int l = 0; capture && l < NL; l++) free(capture[l]);
    free(capture);
    free(sum);
    free(tmp);
    modes_policy_free(rm);
    return rc;
}
