#include "skip/policy.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

static const char *NAMES[] = {"none", "modes", "threshold", "gmlg-threshold", "dmt", "topk", "naee", "remove-layer"};

const char *policy_method_name(skip_method m) { return (unsigned)m < sizeof NAMES / sizeof *NAMES ? NAMES[m] : "?"; }

modes_policy *policy_new(skip_method method, int n_layers) {
    modes_policy *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->method = method;
    p->n_layers = n_layers;
    p->remove_layer = -1;
    if (n_layers > 0) {
        p->alpha[0] = calloc((size_t)n_layers, sizeof(float));
        p->alpha[1] = calloc((size_t)n_layers, sizeof(float));
        p->beta = calloc((size_t)n_layers, sizeof(float));
        if (!p->alpha[0] || !p->alpha[1] || !p->beta) {
            modes_policy_free(p);
            return NULL;
        }
        for (int l = 0; l < n_layers; l++) p->alpha[0][l] = p->alpha[1][l] = 1.0f / (float)n_layers;
    }
    return p;
}

void modes_policy_free(modes_policy *p) {
    if (!p) return;
    free(p->alpha[0]);
    free(p->alpha[1]);
    free(p->beta);
    free(p->json);
    free(p);
}

/* Score of a slot for thresholding methods: the routing weight, times alpha~ under GMLG. */
static float slot_score(const modes_policy *p, int layer, int m, float w) {
    const int gmlg = p->method == SKIP_MODES || p->method == SKIP_THRESHOLD_GMLG;
    return gmlg ? p->alpha[m][layer] * w : w;
}

static float slot_tau(const modes_policy *p, int m) {
    const int dual = p->method == SKIP_MODES || p->method == SKIP_DMT;
    return dual ? p->tau[m] : p->tau[0];
}

/* Slots are in descending weight order, so "keep at least min_experts" protects the first ones. */
static int decide_token(const modes_policy *p, int layer, int k, int m, int32_t *idx, float *w) {
    int skipped = 0;
    switch (p->method) {
    case SKIP_MODES: case SKIP_THRESHOLD: case SKIP_THRESHOLD_GMLG: case SKIP_DMT: {
        const float tau = slot_tau(p, m);
        for (int j = p->min_experts; j < k; j++)
            if (slot_score(p, layer, m, w[j]) < tau) {
                idx[j] = MOE_SKIPPED;
                skipped++;
            }
        break;
    }
    case SKIP_TOPK: {
        const int keep = p->k[m] < 1 ? 1 : p->k[m];
        double sum = 0;
        for (int j = 0; j < k && j < keep; j++) sum += w[j];
        for (int j = 0; j < k; j++) {
            if (j < keep) w[j] = (float)(w[j] / sum);
            else {
                idx[j] = MOE_SKIPPED;
                skipped++;
            }
        }
        break;
    }
    case SKIP_NAEE: { /* the largest tail i..k-1 (i >= 1: the top expert always stays) under beta of the total */
        double total = 0, tail = 0;
        for (int j = 0; j < k; j++) total += w[j];
        int first = k;
        const int floor_ = p->min_experts > 1 ? p->min_experts : 1;
        for (int j = k - 1; j >= floor_; j--) {
            tail += w[j];
            if (tail < p->beta[layer] * total) first = j;
        }
        for (int j = first; j < k; j++) {
            idx[j] = MOE_SKIPPED;
            skipped++;
        }
        break;
    }
    case SKIP_REMOVE_LAYER:
        if (layer == p->remove_layer && (p->remove_class < 0 || p->remove_class == m))
            for (int j = 0; j < k; j++) {
                idx[j] = MOE_SKIPPED;
                skipped++;
            }
        break;
    default: break;
    }
    return skipped;
}

int skip_removes_to_identity(const modes_policy *p, int layer, int cls) {
    return p && p->method == SKIP_REMOVE_LAYER && p->remove_identity && p->remove_layer == layer &&
           (cls == p->remove_class || (p->remove_class < 0 && cls != MODES_TOKEN_SPECIAL));
}

/* Simulation keeps the expert but gives it no weight: the reference a real skip must equal. */
static void simulate_skips(int32_t *idx, const int32_t *orig, float *w, int k) {
    for (int j = 0; j < k; j++)
        if (idx[j] == MOE_SKIPPED) {
            idx[j] = orig[j];
            w[j] = 0.0f;
        }
}

int skip_decide(const modes_policy *p, int layer, int k, const uint8_t *cls, int n, int32_t *idx, float *w) {
    if (!p || p->method == SKIP_NONE) return 0;
    int skipped = 0;
    int32_t orig[64];
    for (int i = 0; i < n; i++) {
        const int m = cls[i];
        if (m != MODES_TOKEN_TEXT && m != MODES_TOKEN_VISION) continue; /* special tokens are never skipped */
        int32_t *ti = idx + (size_t)i * k;
        const int sim = p->simulate && k <= 64;
        if (sim) memcpy(orig, ti, (size_t)k * sizeof *ti);
        skipped += decide_token(p, layer, k, m, ti, w + (size_t)i * k);
        if (sim) simulate_skips(ti, orig, w + (size_t)i * k, k);
    }
    return skipped;
}

/* ---- --skip SPEC ------------------------------------------------------------------------- */

/* Parses "A" or "A,B" into two numbers (B = A when absent). */
static int parse_pair(const char *s, double *a, double *b) {
    char *end;
    *a = strtod(s, &end);
    if (end == s) return -1;
    if (*end == ',') {
        const char *t = end + 1;
        *b = strtod(t, &end);
        if (end == t) return -1;
    } else {
        *b = *a;
    }
    return *end || !isfinite(*a) || !isfinite(*b) ? -1 : 0;
}

int policy_from_spec(const char *spec, const modes_policy *alphas, int n_layers, modes_policy **out, modes_error *err) {
    *out = NULL;
    static const struct {
        const char *name;
        skip_method m;
    } kinds[] = {{"none", SKIP_NONE}, {"topk", SKIP_TOPK}, {"naee", SKIP_NAEE}, {"threshold", SKIP_THRESHOLD},
                 {"dmt", SKIP_DMT}, {"gmlg-threshold", SKIP_THRESHOLD_GMLG}, {"modes", SKIP_MODES}};
    const char *colon = strchr(spec, ':');
    const size_t nl = colon ? (size_t)(colon - spec) : strlen(spec);
    int kind = -1;
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++)
        if (strlen(kinds[i].name) == nl && !strncmp(spec, kinds[i].name, nl)) kind = (int)i;
    if (kind < 0)
        return modes_fail(err, MODES_E_INPUT,
                          "skip spec '%s': unknown method (none, topk:K, naee:BETA, threshold:TAU, dmt:TT,TV, "
                          "gmlg-threshold:TAU, modes:TT,TV)", spec);
    const skip_method m = kinds[kind].m;
    double a = 0, b = 0;
    if (m != SKIP_NONE && (!colon || parse_pair(colon + 1, &a, &b)))
        return modes_fail(err, MODES_E_INPUT, "skip spec '%s': expected %s:VALUE or %s:TEXT,VISION", spec, kinds[kind].name,
                          kinds[kind].name);
    if ((m == SKIP_MODES || m == SKIP_THRESHOLD_GMLG) && (!alphas || !alphas->alpha[0]))
        return modes_fail(err, MODES_E_INPUT, "skip spec '%s' needs layer importances (alphas)",
                          spec);
    if (m == SKIP_TOPK && (a < 1 || b < 1 || a != floor(a) || b != floor(b) || a > 1024 || b > 1024))
        return modes_fail(err, MODES_E_INPUT, "skip spec '%s': k must be a whole number of at least 1", spec);
    if (m != SKIP_TOPK && (a < 0 || b < 0 || (m == SKIP_NAEE && a > 1)))
        return modes_fail(err, MODES_E_INPUT, "skip spec '%s': thresholds must be >= 0 (and beta <= 1)", spec);
    modes_policy *p = policy_new(m, n_layers);
    if (!p) return modes_fail(err, MODES_E_INTERNAL, "out of memory");
    p->tau[0] = (float)a;
    p->tau[1] = (float)b;
    if (m == SKIP_TOPK) { /* checked above; other methods' values may not fit an int */
        p->k[0] = (int)a;
        p->k[1] = (int)b;
    }
    for (int l = 0; l < n_layers; l++) p->beta[l] = (float)a;
    if (alphas && alphas->alpha[0] && alphas->n_layers == n_layers)
        for (int c = 0; c < 2; c++) memcpy(p->alpha[c], alphas->alpha[c], (size_t)n_layers * sizeof(float));
    *out = p;
    return 0;
}
