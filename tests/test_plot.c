/* The SVG plot writer: lines broken at points not measured, one legend entry per label, a distinct
 * marker per method, titles and notes as given; and path_tail, which names what is plotted. */
#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "eval/plot.h"
#include "io/file.h"

static int count(const char *text, const char *needle) {
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

/* Writes the plot to a temporary file and returns its text (NULL on failure). */
static char *render(const char *title, const plot_panel *p, int n, const char *note) {
    char path[] = "/tmp/modes-plot-XXXXXX";
    const int fd = mkstemp(path);
    if (fd < 0) return NULL;
    close(fd);
    modes_error err;
    char *text = NULL;
    size_t len;
    if (plot_svg(path, title, p, n, note, &err) || read_file(path, 1 << 20, &text, &len, &err)) text = NULL;
    unlink(path);
    return text;
}

int main(void) {
    /* a gap: the line stops before the point not measured and starts again after it */
    const double x[] = {0, 25, 50, 75, 100}, y_gap[] = {1, 1.5, NAN, 2.5, 3}, y2[] = {1, 1.2, 1.4, 1.6, 1.8};
    plot_series gap = {.label = "topk", .x = x, .y = y_gap, .n = 5, .style = 0};
    plot_panel one = {.title = "prefill", .xlabel = "skipped (%)", .ylabel = "speed-up", .series = &gap, .n_series = 1};
    char *t = render("shapes-vqa: accuracy vs skip ratio, 500 examples", &one, 1, NULL);
    CHECK(t != NULL);
    if (t) {
        CHECK(count(t, "<polyline") == 2);
        CHECK(count(t, "class='m0'") == 4 + 1); /* the measured points and the legend */
        CHECK(strstr(t, "shapes-vqa: accuracy vs skip ratio, 500 examples") != NULL);
        CHECK(strstr(t, ">prefill<") && strstr(t, ">skipped (%)<") && strstr(t, ">speed-up<"));
        CHECK(!strstr(t, "nan") && !strstr(t, "inf"));
    }
    free(t);

    /* two methods in two panels: a marker and colour each, each label once in the legend, the
     * dashed line without markers, the grey key entry without any */
    const double lone[] = {NAN, 2, NAN, NAN, NAN}, none[] = {NAN, NAN, NAN, NAN, NAN};
    plot_series left[] = {{.label = "topk <k&1>", .x = x, .y = y2, .n = 5, .style = 0},
                          {.label = "policy-88", .x = x, .y = y_gap, .n = 5, .style = 1},
                          {.label = NULL, .x = x, .y = y2, .n = 5, .style = 1, .dashed = 1},
                          {.label = "ideal", .x = x, .y = y2, .n = 0, .style = -1, .dashed = 1}};
    plot_series right[] = {{.label = "topk <k&1>", .x = x, .y = lone, .n = 5, .style = 0},
                           {.label = "policy-88", .x = x, .y = none, .n = 5, .style = 1}};
    plot_panel two[] = {{.title = "prefill", .series = left, .n_series = 4},
                        {.title = "decode", .series = right, .n_series = 2}};
    t = render("bench <model>", two, 2, "ideal: the speed-up if time\nwere proportional to bytes");
    CHECK(t != NULL);
    if (t) {
        CHECK(count(t, ">topk &lt;k&amp;1&gt;<") == 1);
        CHECK(count(t, ">policy-88<") == 1);
        CHECK(count(t, ">ideal<") == 1);
        CHECK(count(t, "class='m0'") == 5 + 1 + 1); /* left panel, the lone right point, legend */
        CHECK(count(t, "class='m1'") == 4 + 1);     /* its gap leaves four; the dashed line adds none */
        CHECK(count(t, "class='m") == 12);          /* the grey key has no marker */
        CHECK(count(t, "stroke-dasharray") == 2);   /* the dashed line and its legend entry */
        CHECK(count(t, "<polyline") == 1 + 2 + 1);  /* a lone point or no point draws no line */
        CHECK(count(t, "stroke='#1f77b4'") > 0 && count(t, "stroke='#d62728'") > 0);
        CHECK(strstr(t, ">bench &lt;model&gt;<") && strstr(t, ">decode<"));
        CHECK(strstr(t, ">ideal: the speed-up if time<") && strstr(t, ">were proportional to bytes<"));
        CHECK(!strstr(t, "nan") && !strstr(t, "inf"));
    }
    free(t);

    /* beyond the palette, colour and marker pairs stay distinct */
    plot_series many[9];
    for (int i = 0; i < 9; i++) many[i] = (plot_series){.label = "m", .x = x, .y = y2, .n = 1, .style = i};
    many[8].label = "m8";
    plot_panel pm = {.series = many, .n_series = 9};
    t = render("", &pm, 1, NULL);
    CHECK(t && count(t, "class='m0'") == 2 && count(t, "class='m1'") == 4); /* style 8: colour 0, marker 1 */
    CHECK(t && count(t, "h7v7h-7z' fill='#1f77b4'") == 2 && count(t, "h7v7h-7z' fill='#d62728'") == 2);
    free(t);

    /* the names runs and models are labelled by */
    char b[64];
    CHECK(path_tail("runs/a/policy-88.json", 0, 1, b, sizeof b) == 1 && !strcmp(b, "policy-88"));
    CHECK(path_tail("runs/a/policy-88.json", 1, 1, b, sizeof b) == 1 && !strcmp(b, "a/policy-88"));
    CHECK(path_tail("runs/a/policy-88.json", 2, 1, b, sizeof b) == 0 && !strcmp(b, "runs/a/policy-88"));
    CHECK(path_tail("policy.v2.json", 3, 1, b, sizeof b) == 0 && !strcmp(b, "policy.v2"));
    CHECK(path_tail("a/.hidden", 0, 1, b, sizeof b) == 1 && !strcmp(b, ".hidden"));
    CHECK(path_tail("models/qwen3.5-vl/", 0, 0, b, sizeof b) == 1 && !strcmp(b, "qwen3.5-vl"));
    CHECK(path_tail("/abs/p.json", 1, 1, b, sizeof b) == 1 && !strcmp(b, "abs/p"));
    CHECK(path_tail("/abs/p.json", 2, 1, b, sizeof b) == 0 && !strcmp(b, "/abs/p"));
    return check_done();
}
