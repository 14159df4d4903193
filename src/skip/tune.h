/* Choosing a policy's thresholds for a target skip ratio on calibration data: the MoDES frontier
 * search over (tau_t, tau_v), and the same target for the baselines (a single threshold, a global
 * NAEE beta) by bisection, so methods are compared at equal skip ratios. */
#ifndef MODES_SKIP_TUNE_H
#define MODES_SKIP_TUNE_H

#include "skip/calibrate.h"
#include "skip/search.h"

typedef struct {
    skip_method method;    /* SKIP_MODES, SKIP_DMT (2-D); SKIP_THRESHOLD, SKIP_THRESHOLD_GMLG, SKIP_NAEE (1-D) */
    int grid;              /* D */
    double cap[2];         /* grid caps for text and vision (x domain of the tau mapping) */
    double target;         /* rho */
    int exhaustive;        /* evaluate the whole D x D grid */
    int frozen;            /* estimate g from one unskipped pass; real passes only on the frontier */
} tune_options;

typedef struct {
    modes_policy *policy;  /* the chosen policy (owned) */
    double kl, skip, skip_text, skip_vision;
    double *per_layer;     /* [n_moe_layers] skip ratio of the chosen policy (owned) */
    long long tokens;
    int real_passes;
    search_point *trace;   /* owned */
    int n_trace;
} tune_result;

int tune_policy(calib_session *s, const modes_policy *alphas, const tune_options *o, tune_result *out,
                modes_error *err);
void tune_result_free(tune_result *r);

#endif
