#include "calib/tune.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "calib/scores.h"

typedef struct {
    calib_session *s;
    const tune_options *o;
    modes_policy *p;       /* scratch policy whose thresholds each evaluation sets */
    double cap[2];         /* the grid caps in use */
    long evals;
} tune_ctx;

static int is_2d(skip_method m) { return m == SKIP_MODES || m == SKIP_DMT; }

/* Grid point -> policy parameters: taus on the mapped grid, NAEE beta on a linear one. */
static void set_point(tune_ctx *t, int q, int p) {
    const int D = t->o->grid;
    if (t->o->method == SKIP_NAEE) {
        for (int l = 0; l < t->p->n_layers; l++) t->p->beta[l] = (float)q / (float)(D - 1);
        return;
    }
    t->p->tau[0] = (float)search_tau(q, D, t->cap[0]);
    t->p->tau[1] = (float)search_tau(is_2d(t->o->method) ? p : q, D, is_2d(t->o->method) ? t->cap[1] : t->cap[0]);
}

static int real_eval(void *user, int q, int p, double *f, double *g, modes_error *err) {
    tune_ctx *t = user;
    set_point(t, q, p);
    modes_skip_count c[3];
    int rc = calib_eval(t->s, t->p, f, c, err);
    *g = modes_skip_ratio(c, 3);
    t->evals++;
    if (t->s->progress) t->s->progress(t->s->progress_user, "search passes", t->evals, 0);
    return rc;
}

/* ---- Frozen routing: g from the scores of one unskipped pass ------------------------------ */

static int log_scores(tune_ctx *t, slot_scores *sc, modes_error *err) {
    memset(sc, 0, sizeof *sc);
    int rc = 0;
    for (int i = 0; !rc && i < t->s->n_ex; i++)
        rc = slot_scores_record(t->s->ctx, &t->s->ex[i].in, t->p, t->o->method == SKIP_MODES, sc, err);
    slot_scores_sort(sc);
    return rc;
}

/* The frontier under the estimate, then one real pass per frontier point for f (and the true g). */
static int frozen_search(tune_ctx *t, search_state *st, modes_error *err) {
    slot_scores lg;
    int rc = log_scores(t, &lg, err);
    const int D = t->o->grid;
    int p = D - 1;
    for (int q = 0; !rc && q < D; q++) {
        for (; p >= 0; p--) {
            set_point(t, q, p);
            const double g = lg.total ? (double)(slot_scores_below(&lg, 0, t->p->tau[0]) +
                                                 slot_scores_below(&lg, 1, t->p->tau[1])) / (double)lg.total : 0;
            st->g_evals++;
            if (g < t->o->target) break;
        }
        if (p + 1 > D - 1) continue;
        double f, g;
        rc = real_eval(t, q, p + 1, &f, &g, err);
        st->f_evals++;
        st->passes++;
        if (!rc && st->n_trace < st->cap_trace) st->trace[st->n_trace++] = (search_point){q, p + 1, NAN, NAN, f, g};
        if (!rc && g >= t->o->target && (st->best_q < 0 || f < st->best_f)) { /* the real g decides */
            st->best_q = q;
            st->best_p = p + 1;
            st->best_f = f;
            st->best_g = g;
        }
    }
    if (!rc && st->best_q < 0)
        rc = modes_fail(err, MODES_E_INPUT, "target skip ratio %.3f not reached by any frontier point (estimated from "
                        "frozen routing); try the exact search", t->o->target);
    slot_scores_free(&lg);
    return rc;
}

/* ---- Caps ------------------------------------------------------------------------------------ */

static float max_alpha(const modes_policy *p, int c) {
    float m = 0;
    for (int l = 0; l < p->n_layers; l++)
        if (p->alpha[c][l] > m) m = p->alpha[c][l];
    return m;
}

void tune_default_caps(skip_method m, const modes_policy *alphas, double cap[2]) {
    for (int c = 0; c < 2; c++) {
        double bound = 1; /* a routing weight is at most 1 */
        if (alphas && alphas->alpha[0] && (m == SKIP_MODES || m == SKIP_THRESHOLD_GMLG)) {
            const float a = max_alpha(alphas, c), other = max_alpha(alphas, 1 - c);
            bound = m == SKIP_MODES || a > other ? a : other; /* one tau covers both modalities */
        }
        /* A margin above the bound so the float tau and a weight of exactly 1 still fall below it. */
        cap[c] = bound > 0 ? search_cap_for_tau(bound * 1.001) : 1;
    }
}

/* The search found no point reaching the target with the caps in use: tell whether the default caps
 * would (one more pass at their corner) or that no caps can, with the most this method can skip. */
static int explain_unreachable(tune_ctx *t, const search_state *st, tune_result *out, modes_error *err) {
    const int two = is_2d(t->o->method), D = t->o->grid;
    double dc[2], used[2] = {t->cap[0], t->cap[1]};
    tune_default_caps(t->o->method, t->p, dc);
    out->unreachable = 1;
    out->cap_skip = out->max_skip = st->max_g;
    int wider = 0;
    for (int c = 0; c < (two ? 2 : 1); c++) {
        out->suggest_cap[c] = dc[c] > used[c] ? dc[c] : used[c];
        wider |= t->o->method != SKIP_NAEE && out->suggest_cap[c] > used[c];
    }
    if (!two) out->suggest_cap[1] = out->suggest_cap[0];
    if (wider) {
        double f;
        t->cap[0] = out->suggest_cap[0];
        t->cap[1] = out->suggest_cap[1];
        int rc = real_eval(t, D - 1, D - 1, &f, &out->max_skip, err);
        t->cap[0] = used[0];
        t->cap[1] = used[1];
        if (rc) return rc;
        out->caps_reach = out->max_skip >= t->o->target;
    }
    if (out->caps_reach && two)
        return modes_fail(err, MODES_E_INPUT, "target skip ratio %.3f is unreachable with threshold caps %.4g (text) and "
                          "%.4g (vision), whose largest thresholds give %.3f; caps %.4g and %.4g reach %.3f", t->o->target,
                          used[0], used[1], out->cap_skip, out->suggest_cap[0], out->suggest_cap[1], out->max_skip);
    if (out->caps_reach)
        return modes_fail(err, MODES_E_INPUT, "target skip ratio %.3f is unreachable with threshold cap %.4g, whose largest "
                          "threshold gives %.3f; cap %.4g reaches %.3f", t->o->target, used[0], out->cap_skip,
                          out->suggest_cap[0], out->max_skip);
    return modes_fail(err, MODES_E_INPUT, "target skip ratio %.3f is unreachable at any %s: at most %.3f of the routed "
                      "slots can be skipped on this data by %s (special tokens are never skipped)", t->o->target,
                      t->o->method == SKIP_NAEE ? "beta" : "thresholds", out->max_skip, policy_method_name(t->o->method));
}

/* ---- Driver --------------------------------------------------------------------------------- */

static int final_pass(tune_ctx *t, int q, int p, tune_result *out, modes_error *err) {
    set_point(t, q, p);
    modes_skip_count c[3];
    int rc = calib_eval(t->s, t->p, &out->kl, c, err);
    out->skip = modes_skip_ratio(c, 3);
    out->skip_text = modes_skip_ratio(&c[MODES_TOKEN_TEXT], 1);
    out->skip_vision = modes_skip_ratio(&c[MODES_TOKEN_VISION], 1);
    out->tokens = 0;
    for (int k = 0; k < 3; k++) out->tokens += (long long)(c[k].slots / (uint64_t)t->s->m->cfg.text.top_k);
    if (!rc && !(out->per_layer = malloc((size_t)t->s->m->n_moe_layers * sizeof *out->per_layer)))
        rc = modes_fail(err, MODES_E_INTERNAL, "out of memory");
    if (!rc) calib_layer_ratios(t->s, out->per_layer);
    return rc;
}

int tune_policy(calib_session *s, const modes_policy *alphas, const tune_options *o, tune_result *out, modes_error *err) {
    memset(out, 0, sizeof *out);
    const int L = s->m->n_moe_layers;
    tune_ctx t = {.s = s, .o = o, .p = policy_new(o->method, L), .cap = {o->cap[0], o->cap[1]}};
    if (!t.p) return modes_fail(err, MODES_E_INTERNAL, "out of memory");
    if (alphas && alphas->alpha[0] && alphas->n_layers == L)
        for (int c = 0; c < 2; c++) memcpy(t.p->alpha[c], alphas->alpha[c], (size_t)L * sizeof(float));
    double dc[2];
    tune_default_caps(o->method, t.p, dc);
    for (int c = 0; c < 2; c++) {
        if (isnan(t.cap[c])) t.cap[c] = dc[c];
        out->cap[c] = t.cap[c];
    }
    search_state st;
    int rc = search_init(&st, o->grid, real_eval, &t, err), q = 0, p = 0;
    if (!rc) {
        if (!is_2d(o->method)) {
            rc = search_bisect(&st, o->target, &q, err);
            p = q;
        } else if (o->frozen) {
            rc = frozen_search(&t, &st, err);
        } else {
            rc = o->exhaustive ? search_exhaustive(&st, o->target, err) : search_frontier(&st, o->target, err);
        }
    }
    if (rc == MODES_E_INPUT && st.unreachable) rc = explain_unreachable(&t, &st, out, err);
    if (!rc && is_2d(o->method)) {
        q = st.best_q;
        p = st.best_p;
    }
    if (!rc) rc = final_pass(&t, q, p, out, err);
    if (!rc) {
        for (int i = 0; i < st.n_trace; i++) { /* the trace records thresholds, not only grid indices */
            set_point(&t, (int)st.trace[i].q, (int)st.trace[i].p);
            st.trace[i].tau_t = o->method == SKIP_NAEE ? t.p->beta[0] : t.p->tau[0];
            st.trace[i].tau_v = o->method == SKIP_NAEE ? t.p->beta[0] : t.p->tau[1];
        }
        set_point(&t, q, p);
        out->policy = t.p;
        out->real_passes = (int)t.evals + 1;
        out->trace = st.trace;
        out->n_trace = st.n_trace;
        st.trace = NULL;
    } else {
        modes_policy_free(t.p);
    }
    search_free(&st);
    return rc;
}

void tune_result_free(tune_result *r) {
    modes_policy_free(r->policy);
    free(r->trace);
    free(r->per_layer);
    memset(r, 0, sizeof *r);
}
