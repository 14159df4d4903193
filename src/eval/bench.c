#include "eval/bench.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/error.h"
#include "calib/scores.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Attention FLOPs of n tokens after `past` cached ones, over all layers. */
static double attention_flops(const model_costs *k, double past, double n) {
    const double pairs = n * past + n * (n + 1) / 2; /* causal (query, key) pairs */
    return 2.0 * pairs * k->attn_macs_per_pair;
}

/* The paired yardstick: after each decode step, a read of as many bytes as that step moved. */
typedef struct {
    modes_pool *pool;
    const void *mem;
    size_t bytes;
    double fixed_bytes, kv_row_bytes; /* weights every step reads; KV cache bytes per cached token */
} step_probe;

/* One policy's sequence and what the current repetition measured of it. */
typedef struct {
    ctx_sequence seq; /* lane 0 uses the context's own */
    int32_t next;     /* the token its next decode step takes */
    double prefill_s, decode_total_s;
    int steps;
    double *paired;   /* [gen]: step GB/s over the probe right after it */
    modes_stats pre, dec;
} lane;

static void lane_swap(modes_ctx *c, lane *l, int k) {
    if (k) ctx_sequence_swap(c, &l->seq);
}

static void lanes_free(lane *l, int n) {
    for (int k = 0; l && k < n; k++) {
        ctx_sequence_free(&l[k].seq);
        free(l[k].paired);
    }
    free(l);
}

static lane *lanes_new(modes_ctx *c, int n, int gen, modes_error *err) {
    lane *l = calloc((size_t)n, sizeof *l);
    int rc = l ? 0 : modes_fail(err, MODES_E_INTERNAL, "out of memory");
    for (int k = 0; !rc && k < n; k++) {
        if (k) rc = ctx_sequence_new(c, &l[k].seq, err);
        if (!rc && !(l[k].paired = malloc((size_t)(gen > 0 ? gen : 1) * sizeof *l[k].paired)))
            rc = modes_fail(err, MODES_E_INTERNAL, "out of memory");
    }
    if (rc) lanes_free(l, n);
    return rc ? NULL : l;
}

/* Policy k's prefill from an empty cache; leaves the token its decode starts from. */
static int lane_prefill(modes_ctx *c, const prepared_input *in, lane *l, int k, float *logits, modes_error *err) {
    lane_swap(c, l, k);
    modes_ctx_reset(c);
    modes_ctx_reset_stats(c);
    const double t0 = now_s();
    const int rc = model_run_prepared(c, in, 0, NULL, NULL, logits, 1, err);
    l->prefill_s = now_s() - t0;
    l->pre = *modes_ctx_stats(c);
    l->pre.layer = NULL;
    modes_ctx_reset_stats(c);
    l->next = model_sample(c->model, logits, NULL, NULL, NULL);
    l->decode_total_s = 0;
    l->steps = 0;
    lane_swap(c, l, k);
    return rc;
}

/* Policy k's next decode step, then (sp set) a probe of as many bytes as the step read. */
static int lane_step(modes_ctx *c, const prepared_input *in, lane *l, int k, float *logits, const step_probe *sp,
                     modes_error *err) {
    lane_swap(c, l, k);
    const uint64_t expert_before = modes_ctx_stats(c)->expert_bytes;
    const double t0 = now_s();
    const int rc = modes_eval(c, &l->next, 1, logits, 1, err);
    const double dt = now_s() - t0;
    const double expert_bytes = (double)(modes_ctx_stats(c)->expert_bytes - expert_before);
    l->dec = *modes_ctx_stats(c);
    l->dec.layer = NULL;
    lane_swap(c, l, k);
    if (rc) return rc;
    l->next = model_sample(c->model, logits, NULL, NULL, NULL);
    if (sp) {
        /* probed right after the step on the same number of bytes, so that what the neighbours take
         * from the memory over seconds and minutes weighs on both sides alike */
        const double bytes = sp->fixed_bytes + expert_bytes + sp->kv_row_bytes * (in->n + l->steps + 1);
        const double gbs = probe_read_bandwidth_sustained(sp->pool, sp->mem, sp->bytes, bytes);
        l->paired[l->steps] = gbs > 0 && dt > 0 ? bytes / dt / 1e9 / gbs : 0;
    }
    l->decode_total_s += dt;
    l->steps++;
    return 0;
}

/* Prefills and decode steps done of all the repetitions', for the progress line. */
typedef struct {
    const bench_options *o;
    char what[48];
    long done, total;
} tally;

static void tally_step(tally *t) {
    if (t->o->progress) t->o->progress(t->o->progress_user, t->what, ++t->done, t->total);
}

/* One repetition: every policy's prefill in turn, then their decodes step by step, each step taken
 * by the policies in an order that rotates. The memory of this machine switches between a slow and
 * a fast regime within seconds; a policy's whole decode in one of them and the next policy's in
 * the other moved a decode speed-up by a fifth from one run to the next. Step by step, all decode
 * in the same regimes. */
static int one_rep(modes_ctx *c, const prepared_input *in, const modes_policy *const *p, int n, lane *l, int gen,
                   float *logits, const step_probe *sp, tally *done, modes_error *err) {
    int rc = 0;
    for (int k = 0; !rc && k < n; k++) {
        modes_ctx_set_policy(c, p[k]);
        rc = lane_prefill(c, in, &l[k], k, logits, err);
        tally_step(done);
    }
    for (int t = 0; !rc && t < gen; t++)
        for (int j = 0; !rc && j < n; j++) {
            const int k = (t + j) % n;
            modes_ctx_set_policy(c, p[k]);
            rc = lane_step(c, in, &l[k], k, logits, sp, err);
            tally_step(done);
        }
    return rc;
}

/* Weights one decoded token reads: the fixed part and its share of the experts the decode touched. */
static double step_weight_bytes(double fixed_bytes, const modes_stats *dec, int gen_tokens) {
    return fixed_bytes + (double)dec->expert_bytes / (gen_tokens > 0 ? gen_tokens : 1);
}

static void summarise(const modes_model *m, const prepared_input *in, const bench_options *o, const lane *rr,
                      bench_result *r) {
    model_costs k;
    model_costs_of(m, &k);
    modes_skip_count all[6];
    memcpy(all, rr->pre.phase[0], 3 * sizeof *all);
    memcpy(all + 3, rr->dec.phase[1], 3 * sizeof *all);
    r->skip = modes_skip_ratio(all, 6);
    r->skip_text = modes_skip_ratio(&rr->pre.phase[0][MODES_TOKEN_TEXT], 1);
    r->skip_vision = modes_skip_ratio(&rr->pre.phase[0][MODES_TOKEN_VISION], 1);
    r->skip_decode = modes_skip_ratio(rr->dec.phase[1], 3);
    const int gen = o->gen_tokens > 0 ? o->gen_tokens : 1;
    r->decode_weight_bytes = step_weight_bytes(k.fixed_bytes, &rr->dec, gen);
    r->decode_kv_bytes = k.kv_bytes_per_token * (in->n + (gen + 1) / 2.0);
    const double expert_flops = (double)rr->pre.expert_rows * 2.0 * k.expert_macs_per_row;
    r->prefill_flops = 2.0 * (k.fixed_params - k.head_params) * in->n + 2.0 * k.head_params + expert_flops +
                       attention_flops(&k, 0, in->n);
    r->prefill_weight_bytes = k.fixed_bytes + (double)rr->pre.expert_bytes;
}

int bench_policies(modes_ctx *c, const prepared_input *in, const modes_policy *const *p, int n, const bench_options *o,
                   bench_result *r, modes_error *err) {
    const modes_model *m = c->model;
    const int reps = o->reps > 0 ? o->reps : 1, gen = o->gen_tokens > 0 ? o->gen_tokens : 0;
    float *logits = malloc((size_t)m->cfg.text.vocab * sizeof *logits);
    double *pre = malloc((size_t)reps * n * sizeof *pre), *dec = malloc((size_t)reps * n * sizeof *dec);
    double *bw = calloc((size_t)reps * n, sizeof *bw), *bws = calloc((size_t)reps * n, sizeof *bws);
    double *bwp = calloc((size_t)reps * n, sizeof *bwp);
    /* The bandwidth other tenants leave to this machine moves by 2x from minute to minute, so each
     * decode step is judged against a probe taken right after it rather than one at the start. */
    const size_t pb = o->probe_bytes / 64 * 64;
    void *probe = pb ? aligned_alloc(64, pb) : NULL;
    if (probe) memset(probe, 1, pb);
    model_costs cost;
    model_costs_of(m, &cost);
    const step_probe sp = {c->pool, probe, pb, cost.fixed_bytes, cost.kv_bytes_per_token};
    int rc = logits && pre && dec && bw && bws && bwp && (!pb || probe) ? 0 : modes_fail(err, MODES_E_INTERNAL, "out of memory");
    lane *l = rc ? NULL : lanes_new(c, n, gen, err);
    if (!rc && !l) rc = MODES_E_INTERNAL;
    const int warm_gen = gen < 4 ? gen : 4;
    tally done = {.o = o, .total = (long)n * (1 + warm_gen) + (long)reps * n * (1 + gen)};
    for (int rep = -1; !rc && rep < reps; rep++) { /* rep -1: the warm-up (caches, page faults, clocks) */
        if (rep < 0) snprintf(done.what, sizeof done.what, "warm-up");
        else snprintf(done.what, sizeof done.what, "repetition %d/%d", rep + 1, reps);
        rc = one_rep(c, in, p, n, l, rep < 0 ? warm_gen : gen, logits, rep >= 0 && probe ? &sp : NULL, &done, err);
        for (int k = 0; !rc && rep >= 0 && k < n; k++) {
            const size_t at = (size_t)k * reps + rep;
            pre[at] = l[k].prefill_s;
            dec[at] = l[k].steps ? l[k].decode_total_s / l[k].steps : 0;
            if (probe) {
                /* two yardsticks: the best short slice (the memory's peak) and a pass as long as one
                 * of this policy's decode steps (what the machine sustained around it) */
                bw[at] = probe_read_bandwidth_in(c->pool, probe, pb, 1);
                bws[at] = probe_read_bandwidth_sustained(c->pool, probe, pb, step_weight_bytes(cost.fixed_bytes, &l[k].dec, gen));
                bwp[at] = l[k].steps ? bench_median(l[k].paired, l[k].steps) : 0;
            }
        }
    }
    modes_ctx_set_policy(c, NULL);
    for (int k = 0; !rc && k < n; k++) {
        memset(&r[k], 0, sizeof r[k]);
        r[k].prefill_s = bench_median(pre + (size_t)k * reps, reps);
        r[k].decode_s = bench_median(dec + (size_t)k * reps, reps);
        summarise(m, in, o, &l[k], &r[k]);
        r[k].read_gbs = probe ? bench_median(bw + (size_t)k * reps, reps) : 0;
        r[k].read_gbs_sustained = probe ? bench_median(bws + (size_t)k * reps, reps) : 0;
        r[k].paired_fraction = probe ? bench_median(bwp + (size_t)k * reps, reps) : 0;
        if (!gen) /* nothing decoded: not measured rather than a zero that reads as a result */
            r[k].decode_s = r[k].decode_weight_bytes = r[k].decode_kv_bytes = r[k].skip_decode = r[k].paired_fraction = NAN;
    }
    lanes_free(l, n);
    free(probe);
    free(bw);
    free(bws);
    free(bwp);
    free(logits);
    free(pre);
    free(dec);
    return rc;
}

/* ---- A threshold for a target ratio ---------------------------------------------------------- */

static int tau_for_ratio(modes_ctx *c, const prepared_input *in, const modes_policy *alphas, double ratio, float *tau,
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

int bench_ratio_policy(modes_ctx *c, const prepared_input *in, const modes_policy *alphas, const char *spec,
                       modes_policy **out, float *tau, modes_error *err) {
    *out = NULL;
    if (strncmp(spec, "modes@", 6)) return -1;
    char *end;
    const double ratio = strtod(spec + 6, &end);
    if (end == spec + 6 || *end || !(ratio >= 0 && ratio < 1))
        return modes_fail(err, MODES_E_INPUT, "skip spec '%s': expected modes@RATIO with 0 <= RATIO < 1", spec);
    int rc = tau_for_ratio(c, in, alphas, ratio, tau, err);
    if (rc) return rc;
    if (!alphas) { /* without calibrated alphas, a fresh policy's uniform ones */
        if (!(*out = policy_new(SKIP_MODES, c->model->n_moe_layers))) return modes_fail(err, MODES_E_INTERNAL, "out of memory");
        (*out)->tau[0] = (*out)->tau[1] = *tau;
        return 0;
    }
    char modes_spec[64];
    snprintf(modes_spec, sizeof modes_spec, "modes:%.9g,%.9g", *tau, *tau);
    return policy_from_spec(modes_spec, alphas, c->model->n_moe_layers, out, err);
}
