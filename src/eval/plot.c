#include "eval/plot.h"

#include <math.h>
#include <string.h>

#include "core/error.h"
#include "core/json.h"
#include "io/file.h"

#define PW 460 /* one panel's width */
#define LW 200 /* the legend's */
#define H 480
#define ML 70 /* a panel's margins: left, right, top, bottom */
#define MR 24
#define MT 60
#define MB 55
#define NOTE_LINE 16

static const char *COLOURS[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"};
#define GREY "#888888"

/* Marker shapes as a path relative to the point; the last three are drawn hollow or as strokes so
 * that they stay apart from the filled ones in print. */
static const char *SHAPES[] = {
    "m-4,0a4,4 0 1,0 8,0a4,4 0 1,0 -8,0z", /* circle */
    "m-3.5,-3.5h7v7h-7z",                  /* square */
    "m0,-5l4.5,8h-9z",                     /* triangle up */
    "m0,-5l5,5l-5,5l-5,-5z",               /* diamond */
    "m0,5l4.5,-8h-9z",                     /* triangle down */
    "m-4,0a4,4 0 1,0 8,0a4,4 0 1,0 -8,0z", /* circle, hollow */
    "m-3.5,-3.5h7v7h-7z",                  /* square, hollow */
    "m-5,0h10m-5,-5v10",                   /* plus */
};
#define N_STYLES 8

static const char *colour(int style) { return style < 0 ? GREY : COLOURS[style % N_STYLES]; }
/* Beyond eight methods colours repeat, but with another marker. */
static int shape(int style) { return (style + style / N_STYLES) % N_STYLES; }

static void xml_text(strbuf *sb, const char *s, size_t n) {
    for (const char *e = s + n; s < e; s++) {
        if (*s == '<') sb_puts(sb, "&lt;");
        else if (*s == '>') sb_puts(sb, "&gt;");
        else if (*s == '&') sb_puts(sb, "&amp;");
        else sb_append(sb, s, 1);
    }
}

static void text(strbuf *sb, const char *attrs, const char *s) {
    sb_printf(sb, "<text %s>", attrs);
    xml_text(sb, s ? s : "", s ? strlen(s) : 0);
    sb_puts(sb, "</text>\n");
}

static void marker(strbuf *sb, int style, double x, double y) {
    if (style < 0) return;
    const int k = shape(style);
    const char *c = colour(style);
    sb_printf(sb, "<path class='m%d' d='M%.1f,%.1f%s' fill='%s' stroke='%s' stroke-width='%s'/>\n", k, x, y, SHAPES[k],
              k < 5 ? c : k < 7 ? "white" : "none", c, k < 7 ? "1" : "2");
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

static int measured(const plot_series *s, int j) { return isfinite(s->x[j]) && isfinite(s->y[j]); }

static void fit(plot_panel *a) {
    if (a->xmin != a->xmax && a->ymin != a->ymax) return;
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    for (int i = 0; i < a->n_series; i++)
        for (int j = 0; j < a->series[i].n; j++) {
            if (!measured(&a->series[i], j)) continue;
            x0 = fmin(x0, a->series[i].x[j]), x1 = fmax(x1, a->series[i].x[j]);
            y0 = fmin(y0, a->series[i].y[j]), y1 = fmax(y1, a->series[i].y[j]);
        }
    if (!isfinite(x0)) x0 = 0, x1 = 1, y0 = 0, y1 = 1;
    if (a->xmin == a->xmax) nice_range(x0, x1, &a->xmin, &a->xmax);
    if (a->ymin == a->ymax) nice_range(y0, y1, &a->ymin, &a->ymax);
}

/* Panel coordinates: the panel's left edge is at `left`. */
typedef struct {
    const plot_panel *a;
    int left;
} frame;

static double px(const frame *f, double x) {
    return f->left + ML + (x - f->a->xmin) / (f->a->xmax - f->a->xmin) * (PW - ML - MR);
}
static double py(const frame *f, double y) { return H - MB - (y - f->a->ymin) / (f->a->ymax - f->a->ymin) * (H - MT - MB); }

static void axes(strbuf *sb, const frame *f) {
    const plot_panel *a = f->a;
    const int l = f->left + ML, r = f->left + PW - MR, mid = (l + r) / 2;
    sb_printf(sb, "<rect x='%d' y='%d' width='%d' height='%d' fill='none' stroke='#444'/>\n", l, MT, r - l, H - MT - MB);
    const double sx = nice_step(a->xmin, a->xmax), sy = nice_step(a->ymin, a->ymax);
    for (double xv = ceil(a->xmin / sx - 1e-9) * sx; xv <= a->xmax + 1e-9 * sx; xv += sx) {
        sb_printf(sb, "<line x1='%.1f' y1='%d' x2='%.1f' y2='%d' stroke='#ddd'/>\n", px(f, xv), MT, px(f, xv), H - MB);
        sb_printf(sb, "<text x='%.1f' y='%d' text-anchor='middle'>%g</text>\n", px(f, xv), H - MB + 18, fabs(xv) < 1e-12 ? 0 : xv);
    }
    for (double yv = ceil(a->ymin / sy - 1e-9) * sy; yv <= a->ymax + 1e-9 * sy; yv += sy) {
        sb_printf(sb, "<line x1='%d' y1='%.1f' x2='%d' y2='%.1f' stroke='#ddd'/>\n", l, py(f, yv), r, py(f, yv));
        sb_printf(sb, "<text x='%d' y='%.1f' text-anchor='end'>%g</text>\n", l - 6, py(f, yv) + 4, fabs(yv) < 1e-12 ? 0 : yv);
    }
    char at[96];
    snprintf(at, sizeof at, "x='%d' y='%d' text-anchor='middle'", mid, H - 12);
    text(sb, at, a->xlabel);
    snprintf(at, sizeof at, "transform='translate(%d,%d) rotate(-90)' text-anchor='middle'", f->left + 18, (MT + H - MB) / 2);
    text(sb, at, a->ylabel);
    snprintf(at, sizeof at, "x='%d' y='%d' text-anchor='middle'", mid, MT - 10);
    text(sb, at, a->title);
}

/* One polyline per run of measured points: a point not measured breaks the line. */
static void series(strbuf *sb, const frame *f, const plot_series *s) {
    for (int j = 0; j < s->n;) {
        int e = j;
        while (e < s->n && measured(s, e)) e++;
        if (e - j >= 2) {
            sb_printf(sb, "<polyline fill='none' stroke='%s' stroke-width='2'%s points='", colour(s->style),
                      s->dashed ? " stroke-dasharray='6,4'" : "");
            for (int k = j; k < e; k++) sb_printf(sb, "%s%.1f,%.1f", k > j ? " " : "", px(f, s->x[k]), py(f, s->y[k]));
            sb_puts(sb, "'/>\n");
        }
        j = e + 1;
    }
    for (int j = 0; !s->dashed && j < s->n; j++)
        if (measured(s, j)) marker(sb, s->style, px(f, s->x[j]), py(f, s->y[j]));
}

static int same_entry(const plot_series *a, const plot_series *b) {
    return a->label && a->style == b->style && a->dashed == b->dashed && !strcmp(a->label, b->label);
}

/* Whether series k of panel i repeats a legend entry of a series before it. */
static int listed_before(const plot_panel *p, int i, int k) {
    for (int pi = 0; pi <= i; pi++)
        for (int pk = 0; pk < (pi < i ? p[pi].n_series : k); pk++)
            if (same_entry(&p[pi].series[pk], &p[i].series[k])) return 1;
    return 0;
}

/* The labelled series of every panel, each label once, beside the panels. */
static void legend(strbuf *sb, const plot_panel *p, int n_panels) {
    const int x = n_panels * PW + 8;
    int n = 0;
    for (int i = 0; i < n_panels; i++)
        for (int k = 0; k < p[i].n_series; k++) {
            const plot_series *s = &p[i].series[k];
            if (!s->label || listed_before(p, i, k)) continue;
            const int y = MT + 10 + 20 * n++;
            sb_printf(sb, "<line x1='%d' y1='%d' x2='%d' y2='%d' stroke='%s' stroke-width='2'%s/>\n", x, y, x + 28, y,
                      colour(s->style), s->dashed ? " stroke-dasharray='6,4'" : "");
            if (!s->dashed) marker(sb, s->style, x + 14, y);
            char at[48];
            snprintf(at, sizeof at, "x='%d' y='%d'", x + 36, y + 4);
            text(sb, at, s->label);
        }
}

int plot_svg(const char *path, const char *title, const plot_panel *p, int n_panels, const char *note,
             modes_error *err) {
    /* as wide as the panels and legend, or the title and the note's lines where they are longer
     * (SVG does not wrap; about 8.5 and 6.5 pixels a character at their sizes) */
    int lines = 0, w = n_panels * PW + LW;
    for (const char *c = note; c && *c; lines++) {
        const size_t len = strcspn(c, "\n");
        w = ML + 6.5 * len + 10 > w ? (int)(ML + 6.5 * len + 10) : w;
        c += len + (c[len] == '\n');
    }
    w = title && 8.5 * strlen(title) + 40 > w ? (int)(8.5 * strlen(title) + 40) : w;
    const int h = H + (lines ? 8 + NOTE_LINE * lines : 0);
    strbuf sb = {0};
    sb_printf(&sb, "<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d' font-family='sans-serif' "
                   "font-size='12'>\n<rect width='100%%' height='100%%' fill='white'/>\n", w, h);
    char at[96];
    snprintf(at, sizeof at, "x='%d' y='24' text-anchor='middle' font-weight='bold' font-size='14'", w / 2);
    text(&sb, at, title);
    for (int i = 0; i < n_panels; i++) {
        plot_panel a = p[i];
        fit(&a);
        const frame f = {&a, i * PW};
        axes(&sb, &f);
        for (int k = 0; k < a.n_series; k++) series(&sb, &f, &a.series[k]);
    }
    legend(&sb, p, n_panels);
    for (int i = 0; note && *note; i++) { /* one <text> per line: SVG does not wrap */
        const char *end = strchr(note, '\n');
        const size_t len = end ? (size_t)(end - note) : strlen(note);
        sb_printf(&sb, "<text x='%d' y='%d' font-size='11'>", ML, H + 4 + NOTE_LINE * i);
        xml_text(&sb, note, len);
        sb_puts(&sb, "</text>\n");
        note = end ? end + 1 : note + len;
    }
    sb_puts(&sb, "</svg>\n");
    int rc = sb.failed ? modes_fail(err, MODES_E_INTERNAL, "out of memory") : write_file_atomic(path, sb.data, sb.len, err);
    sb_free(&sb);
    return rc;
}
