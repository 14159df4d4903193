/* Answer scoring (exact, choice, yes/no). */
#include <stdlib.h>

#include "check.h"
#include "eval/score.h"

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

    return check_done();
}
