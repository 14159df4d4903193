#include "eval/bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/error.h"
#include "skip/scores.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double wbytes(const wmat *w) { return (double)w->rows * w->cols * dtype_size(w->dtype); }
static double wparams(const wmat *w) { return (double)w->rows * w->cols; }

/* Weights every token reads whatever the policy: attention, routers, dense MLPs, lm_head. */
static void fixed_costs(const modes_model *m, double *bytes, double *params) {
    *bytes = wbytes(&m->lm_head);
    *params = wparams(&m->lm_head);
    for (int l = 0; l < m->cfg.text.n_layers; l++) {
        const text_layer *L = &m->layers[l];
        const wmat *ws[] = {&L->q, &L->k, &L->v, &L->o, L->is_moe ? &L->moe.router : &L->mlp.gate,
                            L->is_moe ? NULL : &L->mlp.up, L->is_moe ? NULL : &L->mlp.down};
        for (int i = 0; i < 7; i++)
            if (ws[i]) *bytes += wbytes(ws[i]), *params += wparams(ws[i]);
    }
}

/* KV cache bytes one decoded token reads per cached token (K and V of every layer, fp32). */
static double kv_bytes_per_cached_token(const text_config *tc) {
    return 2.0 * tc->n_kv_heads * tc->head_dim * sizeof(float) * tc->n_layers;
}

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Attention multiply-adds x 2 of n tokens after `past` cached ones, over all layers. */
static double attention_flops(const text_config *c, double past, double n) {
    const double pairs = n * past + n * (n + 1) / 2; /* causal (query, key) pairs */
    return 2.0 * 2.0 * pairs * c->head_dim * c->n_heads * c->n_layers;
}

typedef struct {
    double prefill_s, decode_s;
    double paired_fraction; /* median over the decode steps of step GB/s over the probe right after it */
    modes_stats pre, dec;
} rep_result;

/* The paired yardstick: after each decode step, a read of as many bytes as that step moved. */
typedef struct {
    modes_pool *pool;
    const void *mem;
    size_t bytes;
    double fixed_bytes, kv_row_bytes; /* weights every step reads; KV cache bytes per cached token */
} step_probe;

static int one_rep(modes_ctx *c, const prepared_input *in, int gen, float *logits, const step_probe *sp, rep_result *r,
                   modes_error *err) {
    const int V = c->model->cfg.text.vocab;
    modes_ctx_reset(c);
    modes_ctx_reset_stats(c);
    double t0 = now_s();
    int rc = model_run_prepared(c, in, 0, NULL, NULL, logits, 1, err);
    r->prefill_s = now_s() - t0;
    r->pre = *modes_ctx_stats(c);
    r->pre.layer = NULL;
    modes_ctx_reset_stats(c);
    double *ratio = sp && gen > 0 ? malloc((size_t)gen * sizeof *ratio) : NULL;
    if (sp && gen > 0 && !ratio && !rc) rc = modes_fail(err, MODES_E_INTERNAL, "out of memory");
    double total = 0;
    int steps = 0;
    for (int t = 0; !rc && t < gen; t++, steps++) {
        const int32_t next = modes_sample(logits, V, NULL, NULL);
        const uint64_t expert_before = modes_ctx_stats(c)->expert_bytes;
        t0 = now_s();
        rc = modes_eval(c, &next, 1, logits, 1, err);
        const double dt = now_s() - t0;
        total += dt;
        if (ratio) {
            /* probed right after the step on the same number of bytes, so that what the neighbours
             * take from the memory over seconds and minutes weighs on both sides alike */
            const double bytes = sp->fixed_bytes + (double)(modes_ctx_stats(c)->expert_bytes - expert_before) +
                                 sp->kv_row_bytes * (in->n + t + 1);
            const double gbs = probe_read_bandwidth_sustained(sp->pool, sp->mem, sp->bytes, bytes);
            ratio[t] = gbs > 0 && dt > 0 ? bytes / dt / 1e9 / gbs : 0;
        }
    }
    r->decode_s = steps ? total / steps : 0;
    r->paired_fraction = ratio && steps ? bench_median(ratio, steps) : 0;
    free(ratio);
    r->dec = *modes_ctx_stats(c);
    r->dec.layer = NULL;
    return rc;
}

/* Weights one decoded token reads: the fixed part and its share of the experts the decode touched. */
static double step_weight_bytes(double fixed_bytes, const modes_stats *dec, int gen_tokens) {
    return fixed_bytes + (double)dec->expert_bytes / (gen_tokens > 0 ? gen_tokens : 1);
}

static void summarise(const modes_model *m, const prepared_input *in, const bench_options *o, const rep_result *rr,
                      bench_result *r) {
    const text_config *tc = &m->cfg.text;
    modes_skip_count all[6];
    memcpy(all, rr->pre.phase[0], 3 * sizeof *all);
    memcpy(all + 3, rr->dec.phase[1], 3 * sizeof *all);
    r->skip = modes_skip_ratio(all, 6);
    r->skip_text = modes_skip_ratio(&rr->pre.phase[0][MODES_TOKEN_TEXT], 1);
    r->skip_vision = modes_skip_ratio(&rr->pre.phase[0][MODES_TOKEN_VISION], 1);
    r->skip_decode = modes_skip_ratio(rr->dec.phase[1], 3);
    double fixed_bytes, fixed_params;
    fixed_costs(m, &fixed_bytes, &fixed_params);
    const int gen = o->gen_tokens > 0 ? o->gen_tokens : 1;
    r->decode_weight_bytes = step_weight_bytes(fixed_bytes, &rr->dec, gen);
    r->decode_kv_bytes = kv_bytes_per_cached_token(tc) * (in->n + (gen + 1) / 2.0);
    const double expert_flops = (double)rr->pre.expert_rows * 2.0 * 3.0 * tc->hidden * tc->moe_intermediate;
    r->prefill_flops = 2.0 * (fixed_params - wparams(&m->lm_head)) * in->n + 2.0 * wparams(&m->lm_head) +
                       expert_flops + attention_flops(tc, 0, in->n);
    r->prefill_weight_bytes = fixed_bytes + (double)rr->pre.expert_bytes;
}

int bench_policies(modes_ctx *c, const prepared_input *in, const modes_policy *const *p, int n, const bench_options *o,
                   bench_result *r, modes_error *err) {
    const modes_model *m = c->model;
    const int reps = o->reps > 0 ? o->reps : 1;
    float *logits = malloc((size_t)m->cfg.text.vocab * sizeof *logits);
    double *pre = malloc((size_t)reps * n * sizeof *pre), *dec = malloc((size_t)reps * n * sizeof *dec);
    double *bw = calloc((size_t)reps * n, sizeof *bw), *bws = calloc((size_t)reps * n, sizeof *bws);
    double *bwp = calloc((size_t)reps * n, sizeof *bwp);
    rep_result *last = calloc((size_t)n, sizeof *last);
    /* The bandwidth other tenants leave to this machine moves by 2x from minute to minute, so each
     * run's decode is judged against a probe taken right after it rather than one at the start. */
    const size_t pb = o->probe_bytes / 64 * 64;
    void *probe = pb ? aligned_alloc(64, pb) : NULL;
    if (probe) memset(probe, 1, pb);
    double fixed_bytes, fixed_params;
    fixed_costs(m, &fixed_bytes, &fixed_params);
    const step_probe sp = {c->pool, probe, pb, fixed_bytes, kv_bytes_per_cached_token(&m->cfg.text)};
    int rc = logits && pre && dec && bw && bws && bwp && last && (!pb || probe) ? 0
                                                                                : modes_fail(err, MODES_E_INTERNAL, "out of memory");
    for (int rep = -1; !rc && rep < reps; rep++) /* rep -1: the warm-up (caches, page faults, clocks) */
        for (int k = 0; !rc && k < n; k++) {
            modes_ctx_set_policy(c, p[k]);
            rep_result rr;
            rc = one_rep(c, in, rep < 0 ? (o->gen_tokens < 4 ? o->gen_tokens : 4) : o->gen_tokens, logits,
                         rep >= 0 && probe ? &sp : NULL, &rr, err);
            if (rep >= 0) {
                pre[(size_t)k * reps + rep] = rr.prefill_s;
                dec[(size_t)k * reps + rep] = rr.decode_s;
                if (probe) {
                    /* two yardsticks: the best short slice (the memory's peak) and a pass as long as a
                     * decode step of this run (what the machine sustained around it) */
                    bw[(size_t)k * reps + rep] = probe_read_bandwidth_in(c->pool, probe, pb, 1);
                    bws[(size_t)k * reps + rep] = probe_read_bandwidth_sustained(
                        c->pool, probe, pb, step_weight_bytes(fixed_bytes, &rr.dec, o->gen_tokens));
                    bwp[(size_t)k * reps + rep] = rr.paired_fraction;
                }
                last[k] = rr;
            }
        }
    modes_ctx_set_policy(c, NULL);
    for (int k = 0; !rc && k < n; k++) {
        memset(&r[k], 0, sizeof r[k]);
        r[k].prefill_s = bench_median(pre + (size_t)k * reps, reps);
        r[k].decode_s = bench_median(dec + (size_t)k * reps, reps);
        summarise(m, in, o, &last[k], &r[k]);
        r[k].read_gbs = probe ? bench_median(bw + (size_t)k * reps, reps) : 0;
        r[k].read_gbs_sustained = probe ? bench_median(bws + (size_t)k * reps, reps) : 0;
        r[k].paired_fraction = probe ? bench_median(bwp + (size_t)k * reps, reps) : 0;
    }
    free(probe);
    free(bw);
    free(bws);
    free(bwp);
    free(logits);
    free(pre);
    free(dec);
    free(last);
    return rc;
}

/* ---- A threshold for a target ratio ---------------------------------------------------------- */

int bench_tau_for_ratio(modes_ctx *c, const prepared_input *in, const modes_policy *alphas, double ratio, float *tau,
                        modes_error *err) {
    slot_scores sc = {0};
    /* Without calibrated alphas, uniform ones: every layer weighs the same. */
    modes_policy *uniform = alphas ? NULL : policy_new(SKIP_MODES, c->model->n_moe_layers);
    int rc = alphas || uniform ? slot_scores_record(c, in, alphas ? alphas : uniform, 1, &sc, err)
                               : modes_fail(err, MODES_E_INTERNAL, "out of memory");
    float *all = rc ? NULL : malloc((sc.n[0] + sc.n[1] + 1) * sizeof *all);
    if (!rc && !all) rc = modes_fail(err, MODES_E_INTERNAL, "out of memory");
    if (!rc) { /* one threshold for both modalities: the quantile over all their slots */
        const size_t n = sc.n[0] + sc.n[1], want = (size_t)(ratio * (double)sc.total + 0.5);
        memcpy(all, sc.s[0], sc.n[0] * sizeof *all);
        memcpy(all + sc.n[0], sc.s[1], sc.n[1] * sizeof *all);
        slot_scores one = {.s = {all, NULL}, .n = {n, 0}};
        slot_scores_sort(&one);
        if (want > n)
            rc = modes_fail(err, MODES_E_INPUT, "a skip ratio of %.3f is out of reach: special tokens hold %.1f%% of the slots",
                            ratio, 100.0 * (double)(sc.total - n) / (double)sc.total);
        else
            *tau = want == 0 ? 0.0f : want >= n ? 2.0f : 0.5f * (all[want - 1] + all[want]);
    }
    free(all);
    slot_scores_free(&sc);
    modes_policy_free(uniform);
    return rc;
}
