#include "cli_check.h"

#include <stdio.h>

#include "cli.h"

int cli_check_outputs(const char *cmd, const char *const *paths, int n) {
    int bad = 0;
    for (int i = 0; i < n; i++) {
        modes_error err = {0};
        if (paths[i] && modes_check_writable(paths[i], &err)) bad = cli_fail(cmd, &err);
    }
    return bad;
}

static void print_problem(void *cmd, const char *path, const modes_data_problem *p) {
    (void)cmd;
    cli_progress_end();
    if (p->id) fprintf(stderr, "%s:%d: example %s: %s\n", path, p->line, p->id, p->why);
    else fprintf(stderr, "%s:%d: example #%d: %s\n", path, p->line, p->index + 1, p->why);
}

static void warn_skipped(void *cmd, const char *path, int skipped, int total) {
    cli_progress_end();
    fprintf(stderr, "modes %s: warning: skipping %d of %d examples of %s (listed above)\n", (const char *)cmd, skipped,
            total, path);
}

modes_data_options cli_data_options(const char *cmd, const char *path, long limit) {
    return (modes_data_options){.path = path, .limit = (int)limit, .on_problem = print_problem,
                                .on_skip = warn_skipped, .progress = cli_progress, .user = (void *)cmd};
}
