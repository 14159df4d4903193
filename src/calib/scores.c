#include "calib/scores.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

typedef struct {
    const modes_model *m;
    const prepared_input *in;
    const modes_policy *alphas;
    int gmlg, failed;
    slot_scores *out;
} recorder;

static int push(slot_scores *s, int c, float v) {
    if (s->n[c] == s->cap[c]) {
        const size_t cap = s->cap[c] ? 2 * s->cap[c] : 4096;
        float *g = realloc(s->s[c], cap * sizeof *g);
        if (!g) return -1;
        s->s[c] = g;
        s->cap[c] = cap;
    }
    s->s[c][s->n[c]++] = v;
    return 0;
}

/* The router's top-k weights of each MoE layer, after routing and before any skipping. */
static void record(void *user, int layer, const uint8_t *cls, int n, int k, const int32_t *idx, const float *w) {
    recorder *r = user;
    if (r->failed) return;
    for (int i = 0; i < n; i++) {
        const int c = cls[i];
        r->out->total += (uint64_t)k;
        if (c > MODES_TOKEN_VISION) continue; /* special tokens are never skipped */
        const float a = r->gmlg && r->alphas ? r->alphas->alpha[c][layer] : 1.0f;
        for (int j = 0; j < k; j++)
            if (push(r->out, c, a * w[(size_t)i * k + j])) r->failed = 1;
    }
    (void)idx;
}

int slot_scores_record(modes_ctx *c, const prepared_input *in, const modes_policy *alphas, int gmlg, slot_scores *out,
                       modes_error *err) {
    recorder r = {.m = c->model, .in = in, .alphas = alphas, .gmlg = gmlg, .out = out};
    const moe_observer watch = {record, &r};
    float *logits = malloc((size_t)c->model->cfg.text.vocab * sizeof *logits);
    if (!logits) return modes_fail(err, MODES_E_INTERNAL, "out of memory");
    const modes_policy *saved = c->policy;
    modes_ctx_reset(c);
    modes_ctx_set_policy(c, NULL);
    c->observer = &watch;
    int rc = model_run_prepared(c, in, 0, NULL, NULL, logits, 1, err);
    c->observer = NULL;
    modes_ctx_set_policy(c, saved);
    free(logits);
    if (!rc && r.failed) rc = modes_fail(err, MODES_E_INTERNAL, "out of memory recording routing scores");
    return rc;
}

static int cmp_float(const void *a, const void *b) {
    const float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

void slot_scores_sort(slot_scores *s) {
    for (int c = 0; c < 2; c++) /* a class without scores has no array: qsort takes no NULL */
        if (s->n[c] > 1) qsort(s->s[c], s->n[c], sizeof(float), cmp_float);
}

size_t slot_scores_below(const slot_scores *s, int m, float tau) {
    size_t lo = 0, hi = s->n[m];
    while (lo < hi) {
        const size_t mid = lo + (hi - lo) / 2;
        if (s->s[m][mid] < tau) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

void slot_scores_free(slot_scores *s) {
    free(s->s[0]);
    free(s->s[1]);
    memset(s, 0, sizeof *s);
}
