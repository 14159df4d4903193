/* Expert-skipping policies (docs/modes-method.md sections 2, 3 and 6) and the one decision function
 * every MoE layer of every model family calls between routing and dispatch.
 *
 * A policy only marks slots: a skipped (token, slot) gets the expert index MOE_SKIPPED, and dispatch
 * drops it before any expert work. Kept slots keep their routing weight (no renormalisation), except
 * for top-k reduction, which by definition runs the model as if the config said k'. Special tokens
 * (chat-template and vision delimiters) are never skipped. */
#ifndef MODES_SKIP_POLICY_H
#define MODES_SKIP_POLICY_H

#include <stdint.h>

#include "modes.h"

#define MOE_SKIPPED (-1) /* the sentinel a policy writes into a skipped slot's expert index */

typedef enum {
    SKIP_NONE,
    SKIP_MODES,          /* DMT + GMLG: s = alpha~(l, m) * pi, tau per modality */
    SKIP_THRESHOLD,      /* one tau on s = pi */
    SKIP_THRESHOLD_GMLG, /* one tau on s = alpha~(l, m) * pi */
    SKIP_DMT,            /* tau per modality on s = pi (DMT without GMLG) */
    SKIP_TOPK,           /* k' experts per token, weights renormalised over the k' */
    SKIP_NAEE,           /* drop the largest tail whose weight is below beta(l) of the total */
    SKIP_REMOVE_LAYER,   /* calibration: every routed expert of one layer removed for one modality */
} skip_method;

#define SKIP_CLASSES 3 /* MODES_TOKEN_TEXT, MODES_TOKEN_VISION, MODES_TOKEN_SPECIAL */

struct modes_policy {
    skip_method method;
    int n_layers;             /* MoE layers the alphas and betas cover (0: none given) */
    float *alpha[2];          /* [n_layers] alpha~ for text and vision, each summing to 1 */
    float tau[2];             /* text, vision thresholds */
    int k[2];                 /* top-k reduction per modality */
    float *beta;              /* [n_layers] NAEE */
    int min_experts;          /* never keep fewer than this many slots (0: none) */
    int simulate;             /* zero skipped slots' weights but still run them, as the authors' code does */
    int remove_layer, remove_class, remove_identity; /* SKIP_REMOVE_LAYER */
    char *json;               /* the policy file's provenance fields, kept to write back */
};

/* Marks skipped slots of n tokens at MoE layer `layer`. idx/w are [n][k] in descending weight order
 * (moe_route's output); cls[i] is the token's class. Returns the number of slots skipped. */
int skip_decide(const modes_policy *p, int layer, int k, const uint8_t *cls, int n, int32_t *idx, float *w);

/* Whether token class cls gets its routed output replaced by the identity at MoE layer `layer`:
 * the authors' layer removal for calibration (docs/modes-method.md section 2), where the removed
 * layer passes its input through instead of adding nothing. */
int skip_removes_to_identity(const modes_policy *p, int layer, int cls);

/* Parses a --skip SPEC: none, topk:K (or topk:KT,KV), naee:BETA, threshold:TAU, dmt:TT,TV,
 * gmlg-threshold:TAU, modes:TT,TV (the last two need alphas: pass the policy whose alphas to use, or
 * NULL). */
int policy_from_spec(const char *spec, const modes_policy *alphas, int n_layers, modes_policy **out, modes_error *err);
/* What a policy is bound to: what determines the model's computation, so that a policy made for one
 * model is refused on another and still loads after config.json is merely reformatted. */
#define BIND_MAX_FIELDS 64
typedef struct {
    const char *architecture;        /* model_type */
    int n_fields;                    /* architecture fields, parsed values by their config.json names */
    const char *field[BIND_MAX_FIELDS];
    double value[BIND_MAX_FIELDS];
    size_t n_tensors;
    uint32_t *tensor;                /* [n_tensors] hash of name, dtype and shape, in name order (owned) */
    const char **tensor_name;        /* [n_tensors] for messages (owned array, borrowed names) */
    char weights[65];                /* sha256 of sampled weight bytes (hex); "" without weights */
    char config_sha256[65];          /* of config.json's bytes: the old binding, checked when a policy has
                                      * nothing newer; "" to skip */
} policy_binding;
void policy_binding_free(policy_binding *b);

/* Reads a policy JSON file (section 9); n_layers must match, and the binding when bind is not NULL
 * (the refusal names the first field, tensor or weights that differ). */
int policy_load(const char *path, int n_layers, const policy_binding *bind, modes_policy **out, modes_error *err);
modes_policy *policy_new(skip_method method, int n_layers);

/* Provenance written beside the policy (section 9); negative numbers and NULL strings are left out. */
typedef struct {
    double q, p, tau_t, tau_v, f, g;
} search_point;

typedef struct {
    const char *architecture, *config_sha256; /* config_sha256: written only without a binding */
    const policy_binding *binding;            /* NULL: none written */
    int moe_layers, experts, top_k;
    double target_skip;
    int has_achieved;
    double skip, skip_text, skip_vision, kl;
    long long tokens;
    const double *per_layer;  /* [moe_layers] or NULL */
    const char *data, *removal, *granularity;
    int examples;
    long long answer_tokens, layer_evals, naive_layer_evals;
    int grid, real_passes;
    double cap_t, cap_v;
    const search_point *trace;
    int n_trace;
    const char *search_mode; /* frontier | exhaustive | frozen | bisection */
} policy_meta;

/* Writes the policy JSON atomically (a temporary file renamed over path). */
int policy_save(const char *path, const modes_policy *p, const policy_meta *meta, modes_error *err);
const char *policy_method_name(skip_method m);

#endif
