/* Calibration and benchmark data (docs/design.md section 3): JSON Lines, one example per line,
 *   {"id": "...", "image": "a.png" | ["a.png", "b.png"], "question": "...", "answer": "...",
 *    "choices": ["A", "B"], "metric": "exact|choice|yesno", "family": "..."}
 * image, choices, metric and family are optional; image paths are relative to the data file. */
#ifndef MODES_EVAL_DATA_H
#define MODES_EVAL_DATA_H

#include "modes.h"

typedef enum { METRIC_EXACT, METRIC_CHOICE, METRIC_YESNO } data_metric;

typedef struct {
    char *id, *question, *answer, *family;
    char **images;      /* resolved paths */
    int n_images;
    char **choices;
    int n_choices;
    data_metric metric;
    int line;           /* in the data file, for messages */
} data_example;

typedef struct {
    data_example *ex;
    int n;
    char *path;
} data_set;

#define DATA_MAX_BYTES ((size_t)256 << 20)
#define DATA_MAX_EXAMPLES 1000000
#define DATA_MAX_IMAGES 64

/* Reads every line (blank lines skipped); errors name the file and line. limit > 0 keeps the first
 * `limit` examples. */
int data_load(const char *path, int limit, data_set *out, modes_error *err);
void data_free(data_set *d);
/* Frees the examples whose drop[i] is set and closes the gaps, keeping the others in order. */
void data_drop(data_set *d, const unsigned char *drop);
const char *data_metric_name(data_metric m);

#endif
