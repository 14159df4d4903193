/* Scoring a generated answer against a data example (metrics exact, choice, yesno). */
#ifndef MODES_EVAL_SCORE_H
#define MODES_EVAL_SCORE_H

#include "io/data.h"

/* Normalises for comparison: trims whitespace and trailing punctuation, lowercases ASCII. Returns a
 * new string (free()). */
char *score_normalise(const char *s);
/* 1 when pred answers ex correctly under ex->metric. */
int score_answer(const data_example *ex, const char *pred);

#endif
