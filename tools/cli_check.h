/* Checks the CLI's long commands (calibrate, search, eval) make before their first pass over the
 * data, so that a bad output path or example is reported in seconds, not after the work. */
#ifndef MODES_TOOLS_CLI_CHECK_H
#define MODES_TOOLS_CLI_CHECK_H

#include "eval/data_check.h"

/* Tries each output path (NULL entries are options not given) as the final write will, and prints
 * one line per path that cannot be written. Returns 0, or the exit status. */
int cli_check_outputs(const char *cmd, const char *const *paths, int n);

/* Checks every example of d and prints each unusable one on stderr as "FILE:LINE: example ID: why".
 * Without skip_bad any unusable example fails with their count in err (naming skip_flag, when the
 * command has one, as the way out); with skip_bad they are dropped from d with a warning and handed
 * to *skipped (may be NULL; the caller frees it), and only a data set with nothing left fails. */
int cli_check_data(const char *cmd, const modes_model *m, data_set *d, const data_check_options *o, int skip_bad,
                   const char *skip_flag, data_problems *skipped, modes_error *err);

#endif
