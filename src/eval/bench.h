/* Speed measurements (docs/design.md section 5; `modes bench`): prefill and decode under each policy in
 * one process, median of repetitions after a warm-up, with the counts that say what the hardware
 * allows: weight and KV-cache bytes per decoded token against the measured memory bandwidth, and
 * prefill FLOPs against the measured peak multiply-add rate. */
#ifndef MODES_EVAL_BENCH_H
#define MODES_EVAL_BENCH_H

#include "models/model.h"
#include "calib/calibrate.h"

typedef struct {
    int gen_tokens, reps;
    size_t probe_bytes; /* > 0: probe the read bandwidth after every decode step and repetition with this buffer */
    progress_fn progress; /* NULL: none; called after every prefill and decode step */
    void *progress_user;
} bench_options;

/* The decode fields are NAN when nothing was decoded (gen_tokens 0): not measured. */
typedef struct {
    double prefill_s, decode_s;      /* medians: one prefill, one decode step */
    double skip, skip_text, skip_vision, skip_decode;
    double decode_weight_bytes;      /* weights read per decoded token */
    double decode_kv_bytes;          /* KV cache read per decoded token (mean over the steps) */
    double prefill_flops;            /* multiply-adds x 2 of one prefill */
    double prefill_weight_bytes;     /* weights read by one prefill (each used matrix once) */
    double read_gbs;                 /* median read bandwidth probed after each repetition (0: not probed) */
    double read_gbs_sustained;       /* the same, sustained over as many bytes as one of its decode steps reads */
    double paired_fraction;          /* median of decode-step GB/s over a probe of the same bytes right after each step */
} bench_result;

/* The median of v[0..n) (n >= 1); sorts v in place. */
double bench_median(double *v, int n);

/* Runs the prepared prompt under each policy (NULL: none): a warm-up of every policy, then the
 * repetitions. In each, every policy prefills in turn, then all decode step by step, each in its
 * own KV cache (one more cache per policy beyond the first), so that drift of the machine affects
 * all alike. The context must hold the prompt plus gen_tokens. */
int bench_policies(modes_ctx *c, const prepared_input *prompt, const modes_policy *const *p, int n,
                   const bench_options *o, bench_result *r, modes_error *err);

/* "modes@R": a MoDES policy with one threshold tau for both modalities, chosen so that skipping slots
 * with alpha~ * weight < tau (uniform alphas when alphas is NULL) skips R of the prompt's routed
 * slots, from one unskipped pass's scores. Returns -1 (*out NULL) when spec is not of that form. */
int bench_ratio_policy(modes_ctx *c, const prepared_input *prompt, const modes_policy *alphas, const char *spec,
                       modes_policy **out, float *tau, modes_error *err);

#endif
