#include "eval/plot.h"

#include <math.h>
#include <string.h>

#include "core/error.h"
#include "core/json.h"
#include "io/file.h"

#define W 720
#define H 480
#define ML 70 /* margins: left, right, top, bottom */
#define MR 190
#define MT 40
#define MB 55

static const char *COLOURS[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"};

static void xml_text(strbuf *sb, const char *s) {
    for (; *s; s++) {
        if (*s == '<') sb_puts(sb, "&lt;");
        else if (*s == '>') sb_puts(sb, "&gt;");
        else if (*s == '&') sb_puts(sb, "&amp;");
        else sb_append(sb, s, 1);
    }
}

/* A tick step of 1, 2 or 5 times a power of ten giving about five intervals over [lo, hi]. */
static double nice_step(double lo, double hi) {
    const double raw = (hi - lo) / 5, p = pow(10, floor(log10(raw)));
    return raw / p < 1.5 ? p : raw / p < 3.5 ? 2 * p : raw / p < 7.5 ? 5 * p : 10 * p;
}

static void nice_range(double lo, double hi, double *a, double *b) {
    if (!(hi > lo)) hi = lo + 1;
    const double st = nice_step(lo, hi);
    *a = floor(lo / st) * st;
    *b = ceil(hi / st) * st;
}

static void fit(const plot_series *s, int n, plot_axes *a) {
    if (a->xmin != a->xmax && a->ymin != a->ymax) return;
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < s[i].n; j++) {
            if (!isfinite(s[i].x[j]) || !isfinite(s[i].y[j])) continue;
            x0 = fmin(x0, s[i].x[j]), x1 = fmax(x1, s[i].x[j]);
            y0 = fmin(y0, s[i].y[j]), y1 = fmax(y1, s[i].y[j]);
        }
    if (!isfinite(x0)) x0 = 0, x1 = 1, y0 = 0, y1 = 1;
    if (a->xmin == a->xmax) nice_range(x0, x1, &a->xmin, &a->xmax);
    if (a->ymin == a->ymax) nice_range(y0, y1, &a->ymin, &a->ymax);
}

static double px(const plot_axes *a, double x) { return ML + (x - a->xmin) / (a->xmax - a->xmin) * (W - ML - MR); }
static double py(const plot_axes *a, double y) { return H - MB - (y - a->ymin) / (a->ymax - a->ymin) * (H - MT - MB); }

static void axes(strbuf *sb, const plot_axes *a) {
    sb_printf(sb, "<rect x='%d' y='%d' width='%d' height='%d' fill='none' stroke='#444'/>\n", ML, MT, W - ML - MR,
              H - MT - MB);
    const double sx = nice_step(a->xmin, a->xmax), sy = nice_step(a->ymin, a->ymax);
    for (double xv = ceil(a->xmin / sx - 1e-9) * sx; xv <= a->xmax + 1e-9 * sx; xv += sx) {
        sb_printf(sb, "<line x1='%.1f' y1='%d' x2='%.1f' y2='%d' stroke='#ddd'/>\n", px(a, xv), MT, px(a, xv), H - MB);
        sb_printf(sb, "<text x='%.1f' y='%d' text-anchor='middle'>%g</text>\n", px(a, xv), H - MB + 18, fabs(xv) < 1e-12 ? 0 : xv);
    }
    for (double yv = ceil(a->ymin / sy - 1e-9) * sy; yv <= a->ymax + 1e-9 * sy; yv += sy) {
        sb_printf(sb, "<line x1='%d' y1='%.1f' x2='%d' y2='%.1f' stroke='#ddd'/>\n", ML, py(a, yv), W - MR, py(a, yv));
        sb_printf(sb, "<text x='%d' y='%.1f' text-anchor='end'>%g</text>\n", ML - 6, py(a, yv) + 4, fabs(yv) < 1e-12 ? 0 : yv);
    }
    sb_printf(sb, "<text x='%d' y='%d' text-anchor='middle'>", (ML + W - MR) / 2, H - 12);
    xml_text(sb, a->xlabel ? a->xlabel : "");
    sb_printf(sb, "</text>\n<text transform='translate(18,%d) rotate(-90)' text-anchor='middle'>", (MT + H - MB) / 2);
    xml_text(sb, a->ylabel ? a->ylabel : "");
    sb_printf(sb, "</text>\n<text x='%d' y='24' text-anchor='middle' font-weight='bold'>", (ML + W - MR) / 2);
    xml_text(sb, a->title ? a->title : "");
    sb_puts(sb, "</text>\n");
}

static void series(strbuf *sb, const plot_axes *a, const plot_series *s, int i) {
    const char *c = COLOURS[i % 8];
    sb_printf(sb, "<polyline fill='none' stroke='%s' stroke-width='2'%s points='", c,
              s->dashed ? " stroke-dasharray='6,4'" : "");
    for (int j = 0; j < s->n; j++)
        if (isfinite(s->x[j]) && isfinite(s->y[j])) sb_printf(sb, "%.1f,%.1f ", px(a, s->x[j]), py(a, s->y[j]));
    sb_puts(sb, "'/>\n");
    for (int j = 0; j < s->n; j++)
        if (isfinite(s->x[j]) && isfinite(s->y[j]))
            sb_printf(sb, "<circle cx='%.1f' cy='%.1f' r='3.5' fill='%s'/>\n", px(a, s->x[j]), py(a, s->y[j]), c);
    const int ly = MT + 10 + 20 * i;
    sb_printf(sb, "<line x1='%d' y1='%d' x2='%d' y2='%d' stroke='%s' stroke-width='2'%s/>\n", W - MR + 12, ly,
              W - MR + 36, ly, c, s->dashed ? " stroke-dasharray='6,4'" : "");
    sb_printf(sb, "<text x='%d' y='%d'>", W - MR + 42, ly + 4);
    xml_text(sb, s->label ? s->label : "");
    sb_puts(sb, "</text>\n");
}

int plot_svg(const char *path, const plot_axes *ax, const plot_series *s, int n, modes_error *err) {
    plot_axes a = *ax;
    fit(s, n, &a);
    strbuf sb = {0};
    sb_printf(&sb, "<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d' font-family='sans-serif' "
                   "font-size='12'>\n<rect width='100%%' height='100%%' fill='white'/>\n", W, H);
    axes(&sb, &a);
    for (int i = 0; i < n; i++) series(&sb, &a, &s[i], i);
    sb_puts(&sb, "</svg>\n");
    int rc = sb.failed ? modes_fail(err, MODES_E_INTERNAL, "out of memory") : write_file_atomic(path, sb.data, sb.len, err);
    sb_free(&sb);
    return rc;
}
