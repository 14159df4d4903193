/* Answer scoring (exact, choice, yes/no) and the SVG plot writer. */
#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "eval/plot.h"
#include "eval/score.h"
#include "io/file.h"

static int score(data_metric m, const char *answer, const char *pred, char **choices, int n_choices) {
    data_example e = {.answer = (char *)answer, .metric = m, .choices = choices, .n_choices = n_choices};
    return score_answer(&e, pred);
}

int main(void) {
    CHECK(score(METRIC_EXACT, "red", "red", NULL, 0));
    CHECK(score(METRIC_EXACT, "red", "  Red.\n", NULL, 0));
    CHECK(score(METRIC_EXACT, "4", "4", NULL, 0));
    CHECK(!score(METRIC_EXACT, "4", "44", NULL, 0));
    CHECK(!score(METRIC_EXACT, "red", "reddish", NULL, 0));
    CHECK(!score(METRIC_EXACT, "red", "", NULL, 0));
    CHECK(score(METRIC_YESNO, "yes", "Yes, there is.", NULL, 0));
    CHECK(score(METRIC_YESNO, "no", "no", NULL, 0));
    CHECK(!score(METRIC_YESNO, "no", "nothing", NULL, 0));
    CHECK(!score(METRIC_YESNO, "yes", "no", NULL, 0));
    char *ch[] = {"left", "right"};
    CHECK(score(METRIC_CHOICE, "left", "Left", ch, 2));
    CHECK(!score(METRIC_CHOICE, "left", "right", ch, 2));
    CHECK(!score(METRIC_CHOICE, "left", "up", ch, 2));
    char *n = score_normalise("  Hello World!! ");
    CHECK(n && !strcmp(n, "hello world"));
    free(n);

    char path[] = "/tmp/modes-plot-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    const double x[] = {0, 50, 88}, y[] = {100, 98.5, NAN}, y2[] = {100, 70, 40};
    plot_series s[2] = {{.label = "modes <a&b>", .x = x, .y = y, .n = 3}, {.label = "topk", .x = x, .y = y2, .n = 3, .dashed = 1}};
    plot_axes ax = {.title = "t", .xlabel = "x", .ylabel = "y"};
    modes_error err;
    CHECK(plot_svg(path, &ax, s, 2, &err) == 0);
    char *text;
    size_t len;
    CHECK(read_file(path, 1 << 20, &text, &len, &err) == 0);
    CHECK(strstr(text, "<svg") && strstr(text, "</svg>") && strstr(text, "modes &lt;a&amp;b&gt;"));
    CHECK(!strstr(text, "nan") && !strstr(text, "inf")); /* non-finite points are left out */
    free(text);
    unlink(path);
    return check_done();
}
