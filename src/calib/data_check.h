/* Checking a data set before long work (calibration, search, evaluation): every example's prompt is
 * built as the work will build it (image files decoded and preprocessed, text tokenised, the answer
 * appended) and measured against the model's context, and every example that cannot be used is
 * recorded, not only the first, so a user fixes them all in one round instead of one per run. */
#ifndef MODES_CALIB_DATA_CHECK_H
#define MODES_CALIB_DATA_CHECK_H

#include "io/data.h"
#include "calib/calibrate.h"

typedef struct {
    int index; /* into the data set as checked */
    int line;  /* in the data file */
    char *id;  /* the example's id, or NULL */
    char *why; /* one line */
} data_problem;

typedef struct {
    data_problem *items;
    int n, cap;
} data_problems;

typedef struct {
    int with_answer; /* teacher-forced work: prompt, answer and end of turn must fit the context */
    int max_new;     /* generation: the prompt and this many new tokens must fit the context (0: none) */
} data_check_options;

/* Appends a problem for every unusable example of d to out (which starts zeroed). Returns nonzero
 * only when the check itself fails (out of memory): bad examples are the answer, not an error. */
int data_check(const modes_model *m, const data_set *d, const data_check_options *o, progress_fn progress, void *user,
               data_problems *out, modes_error *err);
void data_problems_free(data_problems *p);

/* What the workflows do before their first pass: data_check, each problem to how->on_problem, then a
 * failure naming their count, or with how->skip_bad the unusable examples dropped from d (how->on_skip
 * told) and handed to *skipped (may be NULL); a data set with nothing usable left fails either way. */
int data_check_usable(const modes_model *m, data_set *d, const data_check_options *o, const modes_data_options *how,
                      data_problems *skipped, modes_error *err);

#endif
