/* The generation loop shared by `run` (streaming, sampled) and `eval` (greedy): prefill the prompt,
 * then one cached decode step per new token, until a stop id, max_new ids or a full context. */
#include <math.h>
#include <stdlib.h>
#include <time.h>

#include "core/error.h"
#include "models/model.h"
#include "text/tokenizer.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int generate_prepared(modes_ctx *c, const prepared_input *in, int max_new, const modes_sampling *s,
                      modes_token_fn on_token, void *user, int32_t *out, int *n_out, double *times, modes_error *err) {
    const modes_model *m = c->model;
    const int V = m->cfg.text.vocab;
    float *logits = malloc((size_t)V * sizeof *logits);
    void *work = malloc(sample_work_bytes(V));
    if (!logits || !work) {
        free(logits), free(work);
        return modes_fail(err, MODES_E_INTERNAL, "out of memory");
    }
    uint64_t rng = modes_rng_seed(s ? s->seed : 0);
    *n_out = 0;
    c->stop = MODES_STOP_NONE;
    double t0 = now_s();
    int rc = model_run_prepared(c, in, 0, NULL, NULL, logits, 1, err);
    if (times) times[0] = now_s() - t0;
    t0 = now_s();
    modes_stop_reason stop = MODES_STOP_NONE;
    while (!rc && !stop) {
        int32_t next = -1;
        /* sampled before the check for room: a stop id needs no position, and says more than "full" */
        if (*n_out == max_new) stop = MODES_STOP_LENGTH;
        else if (modes_model_is_stop(m, next = model_sample(m, logits, s, &rng, work))) stop = MODES_STOP_EOS;
        else if (c->n_past == c->n_ctx) stop = MODES_STOP_CONTEXT;
        else {
            out[(*n_out)++] = next;
            if (on_token) on_token(user, next);
            /* the last id is not evaluated: nothing would read its logits */
            if (*n_out < max_new) rc = modes_eval(c, &next, 1, logits, 1, err);
        }
    }
    if (times) times[1] = now_s() - t0;
    free(logits);
    free(work);
    if (!rc) c->stop = stop;
    return rc;
}

int modes_generate(modes_ctx *c, const modes_prompt *p, int max_new, const modes_sampling *s, modes_token_fn on_token,
                   void *user, int32_t *out, int *n_out, double *times, modes_error *err) {
    MODES_REQUIRE(err, n_out);
    *n_out = 0;
    MODES_REQUIRE(err, c);
    MODES_REQUIRE(err, p);
    if (max_new > 0) MODES_REQUIRE(err, out);
    if (max_new < 0) return modes_fail(err, MODES_E_INPUT, "modes_generate: max_new is %d, not >= 0", max_new);
    prepared_input in;
    int rc = prompt_prepare(c, p, &in, err);
    if (rc) return rc;
    rc = generate_prepared(c, &in, max_new, s, on_token, user, out, n_out, times, err);
    prepared_free(&in);
    return rc;
}

modes_stop_reason modes_ctx_stop_reason(const modes_ctx *c) { return c ? c->stop : MODES_STOP_NONE; }

const char *modes_stop_reason_name(modes_stop_reason r) {
    switch (r) {
    case MODES_STOP_EOS: return "eos";
    case MODES_STOP_LENGTH: return "length";
    case MODES_STOP_CONTEXT: return "context";
    default: return "none";
    }
}
