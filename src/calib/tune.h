/* Choosing a policy's thresholds for a target skip ratio on calibration data: the MoDES frontier
 * search over (tau_t, tau_v), and the same target for the baselines (a single threshold, a global
 * NAEE beta) by bisection, so methods are compared at equal skip ratios. */
#ifndef MODES_CALIB_TUNE_H
#define MODES_CALIB_TUNE_H

#include "calib/calibrate.h"
#include "calib/search.h"

typedef struct {
    skip_method method;    /* SKIP_MODES, SKIP_DMT (2-D); SKIP_THRESHOLD, SKIP_THRESHOLD_GMLG, SKIP_NAEE (1-D) */
    int grid;              /* D */
    double cap[2];         /* grid caps for text and vision (x domain of the tau mapping); NaN: from the
                            * data (tune_default_caps) */
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
    double cap[2];         /* the caps the search used */
    /* When the target was unreachable: the largest skip ratio the used caps give, and whether the
     * default caps (suggest_cap, which reach every skippable slot) give max_skip >= target. */
    int unreachable, caps_reach;
    double cap_skip, max_skip, suggest_cap[2];
} tune_result;

/* Caps from the data: the last grid point's tau exceeds the largest score a slot can have (the
 * routing weight is at most 1, times the largest alpha~ of the modality under GMLG), so the grid's
 * corner skips every skippable slot and any reachable target is reached. */
void tune_default_caps(skip_method m, const modes_policy *alphas, double cap[2]);

int tune_policy(calib_session *s, const modes_policy *alphas, const tune_options *o, tune_result *out,
                modes_error *err);
void tune_result_free(tune_result *r);

#endif
