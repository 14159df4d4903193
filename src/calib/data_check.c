#include "calib/data_check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "models/model.h"

static int add_problem(data_problems *out, int index, const data_example *e, const char *why, modes_error *err) {
    if (out->n == out->cap) {
        const int cap = out->cap ? 2 * out->cap : 16;
        data_problem *g = realloc(out->items, (size_t)cap * sizeof *g);
        if (!g) return modes_fail(err, MODES_E_INTERNAL, "out of memory");
        out->items = g;
        out->cap = cap;
    }
    data_problem *p = &out->items[out->n];
    *p = (data_problem){.index = index, .line = e->line, .id = e->id ? strdup(e->id) : NULL, .why = strdup(why)};
    if (!p->why || (e->id && !p->id)) {
        free(p->id);
        free(p->why);
        return modes_fail(err, MODES_E_INTERNAL, "out of memory");
    }
    out->n++;
    return 0;
}

/* The example's prompt as the work builds it; *why is set (and 0 returned) when it cannot be used. */
static int check_example(const modes_model *m, const data_example *e, const data_check_options *o, char *why,
                         size_t why_len, modes_error *err) {
    modes_error ex_err = {0};
    modes_prompt *p = NULL;
    why[0] = 0;
    int rc = modes_prompt_new(m, NULL, e->question, (const char *const *)e->images, e->n_images,
                              o->with_answer ? e->answer : NULL, &p, &ex_err);
    if (rc == MODES_E_INPUT) {
        snprintf(why, why_len, "%s", ex_err.msg);
        return 0;
    }
    if (rc) {
        *err = ex_err;
        return rc;
    }
    int n = 0;
    modes_prompt_ids(p, &n);
    const int ctx = m->cfg.text.max_position;
    if (o->with_answer && n > ctx)
        snprintf(why, why_len, "the prompt and answer take %d tokens, more than the model's context of %d", n, ctx);
    else if (o->max_new > 0 && (long)modes_prompt_answer_start(p) + o->max_new > ctx)
        snprintf(why, why_len, "the prompt's %d tokens and %d new tokens do not fit the model's context of %d",
                 modes_prompt_answer_start(p), o->max_new, ctx);
    modes_prompt_free(p);
    return 0;
}

int data_check(const modes_model *m, const data_set *d, const data_check_options *o, progress_fn progress, void *user,
               data_problems *out, modes_error *err) {
    char why[sizeof ((modes_error *)0)->msg + 128];
    int rc = 0;
    for (int i = 0; !rc && i < d->n; i++) {
        rc = check_example(m, &d->ex[i], o, why, sizeof why, err);
        if (!rc && why[0]) rc = add_problem(out, i, &d->ex[i], why, err);
        if (progress) progress(user, "checking examples", i + 1, d->n);
    }
    return rc;
}

void data_problems_free(data_problems *p) {
    for (int i = 0; i < p->n; i++) {
        free(p->items[i].id);
        free(p->items[i].why);
    }
    free(p->items);
    memset(p, 0, sizeof *p);
}

int data_check_usable(const modes_model *m, data_set *d, const data_check_options *o, const modes_data_options *how,
                      data_problems *skipped, modes_error *err) {
    data_problems bad = {0};
    int rc = data_check(m, d, o, how->progress, how->user, &bad, err);
    for (int i = 0; !rc && how->on_problem && i < bad.n; i++) {
        const data_problem *p = &bad.items[i];
        const modes_data_problem problem = {.index = p->index, .line = p->line, .id = p->id, .why = p->why};
        how->on_problem(how->user, d->path, &problem);
    }
    const int total = d->n;
    const char *hint = how->skip_hint;
    if (!rc && bad.n && !how->skip_bad)
        rc = modes_fail(err, MODES_E_INPUT, "%d of %d examples of %s cannot be used%s; nothing was run%s%s%s", bad.n,
                        total, d->path, how->on_problem ? " (listed above)" : "", hint ? " (" : "", hint ? hint : "",
                        hint ? " leaves them out)" : "");
    if (!rc && bad.n == total)
        rc = modes_fail(err, MODES_E_INPUT, "none of the %d examples of %s can be used", total, d->path);
    unsigned char *drop = !rc && bad.n ? calloc((size_t)total, 1) : NULL;
    if (!rc && bad.n && !drop) rc = modes_fail(err, MODES_E_INTERNAL, "out of memory");
    if (!rc && bad.n) {
        for (int i = 0; i < bad.n; i++) drop[bad.items[i].index] = 1;
        data_drop(d, drop);
        if (how->on_skip) how->on_skip(how->user, d->path, bad.n, total);
    }
    free(drop);
    if (!rc && skipped) *skipped = bad;
    else data_problems_free(&bad);
    return rc;
}
