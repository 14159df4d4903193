/* Temporary stub; replaced by the tokenizer work. */
#include <stdio.h>
#include "cli.h"
int cmd_tokenize(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "modes tokenize: not built yet\n"); return 2; }
