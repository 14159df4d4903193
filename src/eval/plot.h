/* A small SVG line plot (one line per series, markers at the points, legend), for results people
 * compare: accuracy retained against skip ratio, speed-up against skip ratio. */
#ifndef MODES_EVAL_PLOT_H
#define MODES_EVAL_PLOT_H

#include "modes.h"

typedef struct {
    const char *label;
    const double *x, *y;
    int n;
    int dashed;
} plot_series;

typedef struct {
    const char *title, *xlabel, *ylabel;
    double xmin, xmax, ymin, ymax; /* xmin == xmax: fit the data */
} plot_axes;

/* Writes the plot atomically. Points are drawn in the order given (sort by x first). */
int plot_svg(const char *path, const plot_axes *ax, const plot_series *s, int n, modes_error *err);

#endif
