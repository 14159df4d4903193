/* Checks the CLI's long commands (calibrate, search, eval) make before their first pass over the
 * data, so that a bad output path or example is reported in seconds, not after the work. */
#ifndef MODES_TOOLS_CLI_CHECK_H
#define MODES_TOOLS_CLI_CHECK_H

#include "modes.h"

/* Tries each output path (NULL entries are options not given) as the final write will, and prints
 * one line per path that cannot be written. Returns 0, or the exit status. */
int cli_check_outputs(const char *cmd, const char *const *paths, int n);

/* The data options of command cmd: progress on a terminal, each unusable example printed on stderr
 * as "FILE:LINE: example ID: why" before anything runs, and a warning when skip_bad leaves them out. */
modes_data_options cli_data_options(const char *cmd, const char *path, long limit);

#endif
