/* Shared by the CLI's subcommands: argument parsing helpers and error reporting. */
#ifndef MODES_TOOLS_CLI_H
#define MODES_TOOLS_CLI_H

#include "modes.h"

int cmd_run(int argc, char **argv);
int cmd_forward(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_inspect(int argc, char **argv);

#endif
