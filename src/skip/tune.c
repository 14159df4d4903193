#include "skip/tune.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

typedef struct {
    calib_session *s;
    const tune_options *o;
    modes_policy *p;       /* scratch policy whose thresholds each evaluation sets */
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
    t->p->tau[0] = (float)search_tau(q, D, t->o->cap[0]);
    t->p->tau[1] = (float)search_tau(is_2d(t->o->method) ? p : q, D, is_2d(t->o->method) ? t->o->cap[1] : t->o->cap[0]);
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

typedef struct {
    const modes_model *m;
    const modes_policy *alphas;
    skip_method method;
    const uint8_t *cls;   /* classes of the example being recorded */
    float *s[2];          /* scores per modality */
    size_t n[2], cap[2];
    uint64_t total;       /* every slot, special tokens included */
    int failed;
} score_log;

static void record_scores(void *user, const char *name, int is_int, const void *data, int ndim, const int64_t *shape) {
    score_log *lg = user;
    int tl;
    char tail[32];
    if (is_int || ndim != 2 || sscanf(name, "text.layer%d.%31s", &tl, tail) != 2 || strcmp(tail, "router_topk_weights"))
        return;
    const int l = lg->m->moe_index[tl], k = (int)shape[1];
    const float *w = data;
    for (int64_t i = 0; i < shape[0]; i++) {
        const int c = lg->cls[i];
        lg->total += (uint64_t)k;
        if (c > 1) continue;
        if (lg->n[c] + (size_t)k > lg->cap[c]) {
            size_t cap = lg->cap[c] ? 2 * lg->cap[c] : 4096;
            while (cap < lg->n[c] + (size_t)k) cap *= 2;
            float *g = realloc(lg->s[c], cap * sizeof *g);
            if (!g) {
                lg->failed = 1;
                return;
            }
            lg->s[c] = g;
            lg->cap[c] = cap;
        }
        const float a = lg->method == SKIP_MODES ? lg->alphas->alpha[c][l] : 1.0f;
        for (int j = 0; j < k; j++) lg->s[c][lg->n[c]++] = a * w[i * k + j];
    }
}

static int cmp_float(const void *a, const void *b) {
    const float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static size_t count_below(const float *v, size_t n, float tau) { /* v sorted ascending */
    size_t lo = 0, hi = n;
    while (lo < hi) {
        const size_t mid = lo + (hi - lo) / 2;
        if (v[mid] < tau) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

static int log_scores(tune_ctx *t, score_log *lg, modes_error *err) {
    calib_session *s = t->s;
    *lg = (score_log){.m = s->m, .alphas = t->p, .method = t->o->method};
    modes_ctx_set_tap(s->ctx, record_scores, lg);
    modes_ctx_set_policy(s->ctx, NULL);
    uint8_t *cls = NULL;
    int rc = 0;
    for (int i = 0; !rc && i < s->n_ex; i++) {
        const calib_example *e = &s->ex[i];
        free(cls);
        if (!(cls = malloc((size_t)e->in.n))) {
            rc = modes_fail(err, MODES_E_INTERNAL, "out of memory");
            break;
        }
        for (int j = 0; j < e->in.n; j++) cls[j] = (uint8_t)modes_model_token_class(s->m, e->in.ids[j]);
        lg->cls = cls;
        modes_ctx_reset(s->ctx);
        rc = model_run_prepared(s->ctx, &e->in, 0, NULL, NULL, s->logits, 1, err);
    }
    modes_ctx_set_tap(s->ctx, NULL, NULL);
    free(cls);
    if (!rc && lg->failed) rc = modes_fail(err, MODES_E_INTERNAL, "out of memory");
    for (int c = 0; !rc && c < 2; c++) qsort(lg->s[c], lg->n[c], sizeof(float), cmp_float);
    return rc;
}

/* The frontier under the estimate, then one real pass per frontier point for f (and the true g). */
static int frozen_search(tune_ctx *t, search_state *st, modes_error *err) {
    score_log lg;
    int rc = log_scores(t, &lg, err);
    const int D = t->o->grid;
    int p = D - 1;
    for (int q = 0; !rc && q < D; q++) {
        for (; p >= 0; p--) {
            set_point(t, q, p);
            const double g = lg.total ? (double)(count_below(lg.s[0], lg.n[0], t->p->tau[0]) +
                                                 count_below(lg.s[1], lg.n[1], t->p->tau[1])) / (double)lg.total : 0;
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
    free(lg.s[0]);
    free(lg.s[1]);
    return rc;
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
    tune_ctx t = {.s = s, .o = o, .p = policy_new(o->method, L)};
    if (!t.p) return modes_fail(err, MODES_E_INTERNAL, "out of memory");
    if (alphas && alphas->alpha[0] && alphas->n_layers == L)
        for (int c = 0; c < 2; c++) memcpy(t.p->alpha[c], alphas->alpha[c], (size_t)L * sizeof(float));
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
