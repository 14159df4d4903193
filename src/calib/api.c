/* The calibration and search workflows behind include/modes.h: a data file checked, then the passes,
 * then the policy written with its provenance. What `modes calibrate` and `modes search` run. */
#include <math.h>
#include <string.h>

#include "calib/calibrate.h"
#include "calib/data_check.h"
#include "calib/tune.h"
#include "core/error.h"
#include "io/data.h"
#include "models/model.h"

/* The data file, loaded and checked for teacher-forced passes (prompt, answer and end of turn). */
static int load_checked(const modes_model *m, const modes_data_options *o, data_set *d, modes_error *err) {
    if (!o->path) return modes_fail(err, MODES_E_INPUT, "no data file given");
    if (o->limit < 0) return modes_fail(err, MODES_E_INPUT, "the example limit is %d", o->limit);
    int rc = data_load(o->path, o->limit, d, err);
    const data_check_options check = {.with_answer = 1};
    if (!rc) rc = data_check_usable(m, d, &check, o, NULL, err);
    return rc;
}

/* The policy file: the policy and the provenance fields meta holds, bound to m. */
static int save_policy(const modes_model *m, const char *path, const modes_policy *p, policy_meta *meta,
                       modes_error *err) {
    policy_binding bind;
    int rc = model_binding(m, &bind, err);
    meta->binding = &bind;
    meta->experts = m->cfg.text.n_experts;
    meta->top_k = m->cfg.text.top_k;
    if (!rc) rc = policy_save(path, p, meta, err);
    policy_binding_free(&bind);
    return rc;
}

int modes_calibrate(const modes_model *m, const modes_calibrate_options *o, const char *output,
                    modes_calibrate_result *res, modes_error *err) {
    MODES_REQUIRE(err, res);
    memset(res, 0, sizeof *res);
    MODES_REQUIRE(err, m);
    MODES_REQUIRE(err, o);
    MODES_REQUIRE(err, output);
    data_set d = {0};
    calib_session s = {0};
    modes_policy *p = NULL;
    int rc = load_checked(m, &o->data, &d, err);
    if (!rc) rc = calib_session_open(m, &d, o->data.progress, o->data.user, &s, err);
    if (!rc && !(p = policy_new(SKIP_MODES, m->n_moe_layers))) rc = modes_fail(err, MODES_E_INTERNAL, "out of memory");
    const calib_options co = {.per_modality = !o->per_layer, .identity = o->identity != 0};
    if (!rc) rc = calibrate_alpha(&s, &co, p, NULL, err);
    if (!rc) {
        policy_meta meta = {.target_skip = -1, .data = o->data.path, .examples = d.n, .answer_tokens = s.answer_tokens,
                            .removal = co.identity ? "identity" : "zero",
                            .granularity = co.per_modality ? "layer-modality" : "layer", .layer_evals = s.layer_evals,
                            .naive_layer_evals = s.naive_layer_evals};
        rc = save_policy(m, output, p, &meta, err);
    }
    if (!rc)
        *res = (modes_calibrate_result){.examples = d.n, .moe_layers = m->n_moe_layers, .answer_tokens = s.answer_tokens,
                                        .layer_evals = s.layer_evals, .naive_layer_evals = s.naive_layer_evals};
    modes_policy_free(p);
    calib_session_close(&s);
    data_free(&d);
    return rc;
}

static const struct {
    const char *name;
    skip_method method;
    int needs_alphas;
} SEARCH_METHODS[] = {{"modes", SKIP_MODES, 1}, {"dmt", SKIP_DMT, 0}, {"threshold", SKIP_THRESHOLD, 0},
                      {"gmlg-threshold", SKIP_THRESHOLD_GMLG, 1}, {"naee", SKIP_NAEE, 0}};

static int search_method(const char *name) {
    for (int i = 0; name && i < (int)(sizeof SEARCH_METHODS / sizeof *SEARCH_METHODS); i++)
        if (!strcmp(name, SEARCH_METHODS[i].name)) return i;
    return -1;
}

int modes_search_method_needs_alphas(const char *method) {
    const int i = search_method(method);
    return i < 0 ? -1 : SEARCH_METHODS[i].needs_alphas;
}

modes_search_options modes_search_defaults(void) {
    return (modes_search_options){.method = "modes", .grid = 100, .cap_text = NAN, .cap_vision = NAN};
}

int modes_search(const modes_model *m, const modes_search_options *o, const char *output, modes_search_result *res,
                 modes_error *err) {
    MODES_REQUIRE(err, res);
    memset(res, 0, sizeof *res);
    MODES_REQUIRE(err, m);
    MODES_REQUIRE(err, o);
    MODES_REQUIRE(err, output);
    const int k = search_method(o->method);
    if (k < 0)
        return modes_fail(err, MODES_E_INPUT, "modes_search: unknown method '%s' (modes, dmt, threshold, gmlg-threshold "
                          "or naee)", o->method ? o->method : "(null)");
    if (SEARCH_METHODS[k].needs_alphas && !o->alphas)
        return modes_fail(err, MODES_E_INPUT, "modes_search: method %s needs alphas", o->method);
    if (!(o->target >= 0 && o->target <= 1))
        return modes_fail(err, MODES_E_INPUT, "modes_search: the target skip ratio %g is outside [0, 1]", o->target);
    if (o->grid < 2) return modes_fail(err, MODES_E_INPUT, "modes_search: a grid of %d points per side", o->grid);
    const skip_method method = SEARCH_METHODS[k].method;
    const tune_options to = {.method = method, .grid = o->grid, .cap = {o->cap_text, o->cap_vision},
                             .target = o->target, .exhaustive = o->exhaustive, .frozen = o->frozen};
    data_set d = {0};
    calib_session s = {0};
    tune_result t = {0};
    int rc = load_checked(m, &o->data, &d, err);
    if (!rc) rc = calib_session_open(m, &d, o->data.progress, o->data.user, &s, err);
    if (!rc) rc = tune_policy(&s, o->alphas, &to, &t, err);
    if (!rc) {
        const int two_d = method == SKIP_MODES || method == SKIP_DMT;
        policy_meta meta = {.target_skip = o->target, .has_achieved = 1, .skip = t.skip, .skip_text = t.skip_text,
                            .skip_vision = t.skip_vision, .kl = t.kl, .tokens = t.tokens, .per_layer = t.per_layer,
                            .data = o->data.path, .examples = d.n, .answer_tokens = s.answer_tokens, .grid = o->grid,
                            .cap_t = t.cap[0], .cap_v = t.cap[1], .real_passes = t.real_passes, .trace = t.trace,
                            .n_trace = t.n_trace,
                            .search_mode = two_d ? (o->frozen ? "frozen" : o->exhaustive ? "exhaustive" : "frontier")
                                                 : "bisection"};
        rc = save_policy(m, output, t.policy, &meta, err);
    }
    if (!rc)
        *res = (modes_search_result){.tau = {t.policy->tau[0], t.policy->tau[1]},
                                     .beta = t.policy->beta ? t.policy->beta[0] : 0.0, .skip = t.skip,
                                     .skip_text = t.skip_text, .skip_vision = t.skip_vision, .kl = t.kl,
                                     .real_passes = t.real_passes};
    else if (t.unreachable && t.caps_reach)
        *res = (modes_search_result){.caps_reach = 1, .suggest_cap = {t.suggest_cap[0], t.suggest_cap[1]}};
    tune_result_free(&t);
    calib_session_close(&s);
    data_free(&d);
    return rc;
}
