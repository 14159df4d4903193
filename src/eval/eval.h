/* Benchmark evaluation (docs/design.md section 1.3): every example answered greedily under each run's
 * policy (the first run is always the unskipped model), scored by its metric, with skip statistics
 * per run. Each example is prepared once (tokens, positions, vision features) for all runs. */
#ifndef MODES_EVAL_EVAL_H
#define MODES_EVAL_EVAL_H

#include "io/data.h"
#include "calib/calibrate.h"

typedef struct {
    const char *label;          /* the --skip spec or policy path */
    const modes_policy *policy; /* NULL: no skipping */
} eval_run;

#define EVAL_MAX_FAMILIES 64

typedef struct {
    long correct, total;
    modes_skip_count counts[2][3]; /* [prefill, decode][class] */
    long fam_correct[EVAL_MAX_FAMILIES], fam_total[EVAL_MAX_FAMILIES];
    double seconds;
} eval_result;

typedef struct {
    int n_runs, n_examples, n_families;
    const char *families[EVAL_MAX_FAMILIES]; /* point into the data set */
    eval_result *runs;
    char **predictions;         /* [example][run] */
    uint8_t *correct;           /* [example][run] */
} eval_results;

int eval_bench(const modes_model *m, const data_set *d, const eval_run *runs, int n_runs, int max_new,
               progress_fn progress, void *user, eval_results *out, modes_error *err);
void eval_results_free(eval_results *r);
int eval_family_index(const eval_results *r, const char *family); /* -1 when absent */

#endif
