/* The scores s = alpha~(l, m) * pi of every routed slot in one unskipped pass (alpha~ = 1 without
 * GMLG), per modality, sorted: the frozen-routing estimate of a skip ratio (docs/modes-method.md
 * section 5) counts how many fall below a threshold without running the model again. */
#ifndef MODES_CALIB_SCORES_H
#define MODES_CALIB_SCORES_H

#include "models/model.h"

typedef struct {
    float *s[2];       /* text, vision scores, ascending */
    size_t n[2], cap[2];
    uint64_t total;    /* every routed slot, special tokens' included */
} slot_scores;

/* Adds the slots of one unskipped pass over `in` (the context is reset first). alphas NULL or gmlg
 * 0: the scores are the routing weights themselves. */
int slot_scores_record(modes_ctx *c, const prepared_input *in, const modes_policy *alphas, int gmlg, slot_scores *out,
                       modes_error *err);
void slot_scores_sort(slot_scores *s);
/* Slots of modality m whose score is below tau. */
size_t slot_scores_below(const slot_scores *s, int m, float tau);
void slot_scores_free(slot_scores *s);

#endif
