#include "eval/score.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

char *score_normalise(const char *s) {
    while (*s && isspace((unsigned char)*s)) s++;
    size_t n = strlen(s);
    while (n && (isspace((unsigned char)s[n - 1]) || strchr(".,;:!?\"'", s[n - 1]))) n--;
    char *o = malloc(n + 1);
    if (!o) return NULL;
    for (size_t i = 0; i < n; i++) o[i] = (char)tolower((unsigned char)s[i]);
    o[n] = 0;
    return o;
}

static int same(const char *a, const char *b) {
    char *x = score_normalise(a), *y = score_normalise(b);
    const int r = x && y && !strcmp(x, y);
    free(x);
    free(y);
    return r;
}

/* The first word of a yes/no answer decides ("Yes, there is" counts as yes). */
static int yesno_of(const char *s) {
    char *n = score_normalise(s);
    int r = -1;
    if (n) {
        if (!strncmp(n, "yes", 3) && !isalpha((unsigned char)n[3])) r = 1;
        else if (!strncmp(n, "no", 2) && !isalpha((unsigned char)n[2])) r = 0;
    }
    free(n);
    return r;
}

int score_answer(const data_example *ex, const char *pred) {
    switch (ex->metric) {
    case METRIC_YESNO: {
        const int p = yesno_of(pred), a = yesno_of(ex->answer);
        return p >= 0 && p == a;
    }
    case METRIC_CHOICE: /* the prediction must be one of the choices, and the right one */
        for (int i = 0; i < ex->n_choices; i++)
            if (same(pred, ex->choices[i])) return same(ex->choices[i], ex->answer);
        return 0;
    default: return same(pred, ex->answer);
    }
}
