/* Calibration (docs/modes-method.md sections 2 and 5): teacher-forced passes over image + question +
 * answer examples, scored by the KL divergence of the next-token distribution at the answer tokens.
 * A session prepares every example once (prompt, positions, vision features, original answer
 * distributions) so that alpha calibration and the threshold search reuse them in every pass. */
#ifndef MODES_CALIB_CALIBRATE_H
#define MODES_CALIB_CALIBRATE_H

#include "io/data.h"
#include "models/model.h"

typedef modes_progress_fn progress_fn; /* the public callback */

typedef struct {
    modes_prompt *prompt;
    prepared_input in;
    int answer_start, n_answer; /* answer tokens include the end-of-turn token */
    float *logp;                /* [n_answer][vocab] original log-probabilities */
} calib_example;

typedef struct {
    const modes_model *m;
    modes_ctx *ctx;
    calib_example *ex;
    int n_ex, vocab;
    long long answer_tokens;
    long long layer_evals, naive_layer_evals; /* token-layers computed by calibrate_alpha, and without reuse */
    float *logits;              /* scratch [max answer + 1][vocab] */
    progress_fn progress;
    void *progress_user;
} calib_session;

int calib_session_open(const modes_model *m, const data_set *d, progress_fn progress, void *user, calib_session *s,
                       modes_error *err);
void calib_session_close(calib_session *s);

/* Runs every example under p (NULL: none): mean KL over all answer tokens, and the skip statistics
 * of those passes (prefill over prompt and answer tokens). */
int calib_eval(calib_session *s, const modes_policy *p, double *kl, modes_skip_count counts[3], modes_error *err);
/* The per-layer skip ratios of the last calib_eval, into out[n_moe_layers]. */
void calib_layer_ratios(const calib_session *s, double *out);

typedef struct {
    int per_modality; /* one alpha per layer and modality (default) or per layer */
    int identity;     /* removal substitutes the MLP input instead of zero */
} calib_options;

/* alpha(l, m) = mean KL when layer l's routed experts are removed for modality m; writes alpha~
 * (normalised over layers) into out->alpha. Layers below the removed one are reused from the
 * original pass. raw (optional, [2][L]) receives the unnormalised means. */
int calibrate_alpha(calib_session *s, const calib_options *o, modes_policy *out, double *raw, modes_error *err);

#endif
