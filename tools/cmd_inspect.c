/* modes inspect [-m] DIR [--json]: what a model folder holds (modes_model_inspect), read from its files
 * without running anything; a folder inspect accepts loads, and one it refuses gets the message
 * `modes run` would give. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char *const CMD = "inspect";
static const char *HELP =
    "usage: modes inspect [-m] DIR [--json]\n"
    "  Architecture, shapes, parameter and byte counts, dtypes and tokenizer of a model folder. The folder\n"
    "  is checked as loading it does (every tensor's presence, dtype and shape, the tokenizer): a folder\n"
    "  that would not load is refused with the same message, exit status 1.\n"
    "  -m, --model DIR   the model folder (or DIR alone)\n"
    "  --json            the report as one JSON object\n";

int cmd_inspect(int argc, char **argv) {
    const char *dir = NULL;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(HELP, stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--json")) {
            json = 1;
            continue;
        }
        const char *before = dir;
        const int r = opt_str(argc, argv, &i, "-m|--model", &dir, CMD);
        if (r < 0) return 1;
        if (r == 0) continue;
        if (argv[i][0] == '-' && argv[i][1]) return cli_usage(CMD, "unknown option '%s'", argv[i]);
        if (before) return cli_usage(CMD, "expected exactly one model folder");
        dir = argv[i];
    }
    if (!dir) return cli_usage(CMD, "expected a model folder: modes inspect [-m] DIR [--json]");
    modes_error err = {0};
    char *report = NULL;
    if (modes_model_inspect(dir, json ? MODES_REPORT_JSON : MODES_REPORT_TEXT, &report, &err)) return cli_fail(CMD, &err);
    fputs(report, stdout);
    free(report);
    return 0;
}
