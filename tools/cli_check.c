#include "cli_check.h"

#include <stdio.h>
#include <stdlib.h>

#include "cli.h"

int cli_check_outputs(const char *cmd, const char *const *paths, int n) {
    int bad = 0;
    for (int i = 0; i < n; i++) {
        modes_error err = {0};
        if (paths[i] && modes_check_writable(paths[i], &err)) bad = cli_fail(cmd, &err);
    }
    return bad;
}

static void print_problem(const data_set *d, const data_problem *p) {
    if (p->id) fprintf(stderr, "%s:%d: example %s: %s\n", d->path, p->line, p->id, p->why);
    else fprintf(stderr, "%s:%d: example #%d: %s\n", d->path, p->line, p->index + 1, p->why);
}

int cli_check_data(const char *cmd, const modes_model *m, data_set *d, const data_check_options *o, int skip_bad,
                   const char *skip_flag, data_problems *skipped, modes_error *err) {
    data_problems bad = {0};
    int rc = data_check(m, d, o, cli_progress, NULL, &bad, err);
    cli_progress_end();
    for (int i = 0; !rc && i < bad.n; i++) print_problem(d, &bad.items[i]);
    const int total = d->n;
    if (!rc && bad.n && !skip_bad)
        rc = modes_fail(err, MODES_E_INPUT, "%d of %d examples of %s cannot be used (listed above); nothing was run%s%s%s",
                        bad.n, total, d->path, skip_flag ? " (" : "", skip_flag ? skip_flag : "",
                        skip_flag ? " leaves them out)" : "");
    if (!rc && bad.n == total)
        rc = modes_fail(err, MODES_E_INPUT, "none of the %d examples of %s can be used", total, d->path);
    unsigned char *drop = !rc && bad.n ? calloc((size_t)total, 1) : NULL;
    if (!rc && bad.n && !drop) rc = modes_fail(err, MODES_E_INTERNAL, "out of memory");
    if (!rc && bad.n) {
        for (int i = 0; i < bad.n; i++) drop[bad.items[i].index] = 1;
        data_drop(d, drop);
        fprintf(stderr, "modes %s: warning: skipping %d of %d examples of %s (listed above)\n", cmd, bad.n, total,
                d->path);
    }
    free(drop);
    if (!rc && skipped) *skipped = bad;
    else data_problems_free(&bad);
    return rc;
}
