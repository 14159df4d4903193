/* Calibration on the golden tiny model and the fixture set tests/data/calib-tiny:
 * - the alphas computed by re-running only the layers from the removed one up equal those of naive
 *   full passes (docs/modes-method.md section 2: "exactly the same numbers");
 * - the alphas are normalised, deterministic, and a removal that cannot reach any answer token
 *   (vision in the last layer) scores zero up to float rounding (removing rows from an expert's
 *   batch can change the kernels' summation order for the rows that stay);
 * - calib_eval with no policy has zero KL and zero skips; identity removal differs from zero removal. */
#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "calib/calibrate.h"

static double naive_kl(calib_session *s, const modes_policy *p) {
    double kl;
    modes_skip_count c[3];
    modes_error err;
    CHECK(calib_eval(s, p, &kl, c, &err) == 0);
    return kl;
}

int main(void) {
    require_shared();
    modes_model *m = NULL;
    modes_error err = {0};
    data_set d = {0};
    calib_session s = {0};
    CHECKF(modes_model_load(shared_path("ref/qwen3vlmoe-tiny-a/model"), &m, &err) == 0, "%s", err.msg);
    CHECKF(data_load(tests_path("data/calib-tiny/calib.jsonl"), 0, &d, &err) == 0, "%s", err.msg);
    if (!m || !d.n) return check_done();
    CHECKF(calib_session_open(m, &d, NULL, NULL, &s, &err) == 0, "%s", err.msg);
    CHECK(s.n_ex == 6 && s.answer_tokens > 6);
    const int L = m->n_moe_layers;

    double kl;
    modes_skip_count c[3];
    CHECK(calib_eval(&s, NULL, &kl, c, &err) == 0);
    CHECKF(kl < 1e-9, "KL of the model against itself is %g", kl);
    CHECK(c[0].skipped == 0 && c[1].skipped == 0 && c[0].slots > 0 && c[1].slots > 0);

    modes_policy *a = policy_new(SKIP_MODES, L), *b = policy_new(SKIP_MODES, L);
    double *raw = calloc((size_t)2 * L, sizeof *raw);
    calib_options o = {.per_modality = 1};
    CHECK(calibrate_alpha(&s, &o, a, raw, &err) == 0);
    s.layer_evals = s.naive_layer_evals = 0;
    CHECK(calibrate_alpha(&s, &o, b, NULL, &err) == 0);
    /* Reuse skips the layers below each removed one: with 3 layers, (3 + 2 + 1) / 3 of a pass per
     * removal instead of 3 / 3. */
    CHECKF(s.layer_evals > 0 && (double)s.layer_evals < 0.8 * (double)s.naive_layer_evals,
           "prefix reuse computed %lld token-layers, naive %lld", s.layer_evals, s.naive_layer_evals);
    printf("calibration: %lld token-layer evaluations with prefix reuse, %lld without\n", s.layer_evals,
           s.naive_layer_evals);
    for (int mod = 0; mod < 2; mod++) {
        double sum = 0;
        for (int l = 0; l < L; l++) {
            sum += a->alpha[mod][l];
            CHECK(a->alpha[mod][l] == b->alpha[mod][l]); /* deterministic */
            /* Naive: a full pass from layer 0 with the layer removed for this modality. */
            modes_policy *rm = policy_new(SKIP_REMOVE_LAYER, L);
            rm->remove_layer = l;
            rm->remove_class = mod;
            const double full = naive_kl(&s, rm);
            CHECKF(fabs(full - raw[mod * L + l]) <= 1e-6 * fmax(1.0, full), "layer %d modality %d: reused %g, full %g", l,
                   mod, raw[mod * L + l], full);
            modes_policy_free(rm);
        }
        CHECKF(fabs(sum - 1) < 1e-5, "alphas of modality %d sum to %g", mod, sum);
    }
    CHECKF(raw[L + L - 1] < 1e-8, "vision removal in the last layer scored %g, expected 0", raw[2 * L - 1]);
    CHECK(raw[0] > 0 && raw[L] > 0);

    /* Per-layer granularity: the same alpha for both modalities. */
    o.per_modality = 0;
    CHECK(calibrate_alpha(&s, &o, b, NULL, &err) == 0);
    for (int l = 0; l < L; l++) CHECK(b->alpha[0][l] == b->alpha[1][l]);
    /* Identity removal is a different experiment. */
    o = (calib_options){.per_modality = 1, .identity = 1};
    double *raw_id = calloc((size_t)2 * L, sizeof *raw_id);
    CHECK(calibrate_alpha(&s, &o, b, raw_id, &err) == 0);
    CHECK(raw_id[0] != raw[0]);
    free(raw_id);
    free(raw);
    modes_policy_free(a);
    modes_policy_free(b);
    calib_session_close(&s);
    data_free(&d);
    modes_model_free(m);

    /* Bad data files are refused with the file and line named. */
    const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char path[512];
    snprintf(path, sizeof path, "%s/modes-bad-data-%d.jsonl", dir, (int)getpid());
    const struct { const char *text, *needle; } bad[] = {
        {"{\"question\": \"q\"}\n", "line 1: \"answer\" is missing"},
        {"\n{\"question\": \"q\", \"answer\": 3}\n", "line 2: \"answer\" must be a string"},
        {"{\"question\": \"q\", \"answer\": \"a\", \"image\": [1]}\n", "\"image\""},
        {"{\"question\": \"q\", \"answer\": \"a\", \"metric\": \"bleu\"}\n", "metric"},
        {"{\"question\": \"q\", \"answer\": \"a\", \"metric\": \"choice\"}\n", "choices"},
        {"[1, 2]\n", "not a JSON object"},
        {"{\"question\": \"q\", \"answer\": \"a\"\n", "invalid JSON"},
        {"\n\n", "no examples"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        FILE *f = fopen(path, "w");
        fputs(bad[i].text, f);
        fclose(f);
        data_set dd;
        CHECKF(data_load(path, 0, &dd, &err) == MODES_E_INPUT, "bad data %zu accepted", i);
        CHECKF(strstr(err.msg, bad[i].needle) && strstr(err.msg, "modes-bad-data"), "data %zu: '%s' lacks '%s'", i,
               err.msg, bad[i].needle);
    }
    remove(path);
    return check_done();
}
