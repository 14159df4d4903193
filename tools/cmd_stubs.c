/* Temporary: subcommands not yet written. */
#include <stdio.h>
#include "cli.h"
static int todo(const char *n) { fprintf(stderr, "modes %s: not built yet\n", n); return 2; }
int cmd_run(int argc, char **argv) { (void)argc; (void)argv; return todo("run"); }
int cmd_forward(int argc, char **argv) { (void)argc; (void)argv; return todo("forward"); }
int cmd_generate(int argc, char **argv) { (void)argc; (void)argv; return todo("generate"); }
int cmd_inspect(int argc, char **argv) { (void)argc; (void)argv; return todo("inspect"); }
