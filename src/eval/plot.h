/* A small SVG line plot for results people compare (accuracy retained against skip ratio, speed-up
 * against skip ratio): one or more panels side by side sharing one legend; in each, one line per
 * series with its method's colour and marker at every point, broken where a point was not measured. */
#ifndef MODES_EVAL_PLOT_H
#define MODES_EVAL_PLOT_H

#include "modes.h"

typedef struct {
    const char *label;   /* legend entry (listed once however many series carry it); NULL: none */
    const double *x, *y; /* a non-finite x or y is a point not measured: no marker, the line breaks */
    int n;
    int style;           /* colour and marker: the lines of one method share it; < 0: grey, no marker */
    int dashed;          /* dashed, without markers (e.g. the ideal beside a measured line) */
} plot_series;

typedef struct {
    const char *title, *xlabel, *ylabel;
    double xmin, xmax, ymin, ymax; /* xmin == xmax (ymin == ymax): fit the data */
    const plot_series *series;
    int n_series;
} plot_panel;

/* Writes the panels side by side under `title`, with `note` (lines split at '\n'; NULL: none) under
 * them, atomically. Points are joined in the order given (sort by x first). */
int plot_svg(const char *path, const char *title, const plot_panel *p, int n_panels, const char *note,
             modes_error *err);

#endif
