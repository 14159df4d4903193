/* Shared by the CLI's subcommands: option parsing, error reporting and inputs common to several
 * commands. Exit status (docs/design.md section 3): 0 success, 1 bad input or usage, 2 internal error. */
#ifndef MODES_TOOLS_CLI_H
#define MODES_TOOLS_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "modes.h"

int cmd_run(int argc, char **argv);
int cmd_chat(int argc, char **argv);
int cmd_forward(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_preprocess(int argc, char **argv);
int cmd_calibrate(int argc, char **argv);
int cmd_search(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_serve(int argc, char **argv);

/* Prints "modes CMD: message" on stderr and returns the exit status for err->code. */
int cli_fail(const char *cmd, const modes_error *err);
/* Prints a usage error and returns 1. */
int cli_usage(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Option parsing: argv[*i] is the option; its value is argv[*i + 1], or follows '=' in a long form.
 * name lists the option's forms: "-m|--model" takes "-m DIR", "--model DIR" and "--model=DIR".
 * Each returns 0 when the option matched and its value parsed, 1 when it did not match, and -1
 * (after printing) on a bad value or, except for opt_multi (--image FILE...), an option given twice. */
int opt_multi(int argc, char **argv, int *i, const char *name, const char **out, const char *cmd);
int opt_str(int argc, char **argv, int *i, const char *name, const char **out, const char *cmd);
int opt_int(int argc, char **argv, int *i, const char *name, long lo, long hi, long *out, const char *cmd);
int opt_float(int argc, char **argv, int *i, const char *name, double lo, double hi, double *out, const char *cmd);

/* The options run and chat share: the model, the pictures, the skipping and the sampling. The
 * caller sets the defaults before parsing. */
#define CLI_MAX_IMAGES 64
typedef struct {
    const char *dir, *system, *policy, *alphas, *skip;
    const char *images[CLI_MAX_IMAGES];
    int n_images;
    long n_ctx, n_new, threads, top_k, seed;
    double temp, top_p;
} cli_gen_opts;
/* argv[*i] as one of those options: 0 when it was (and its value parsed), 1 when not, -1 (after
 * printing) on a bad value. */
int opt_generation(int argc, char **argv, int *i, cli_gen_opts *g, const char *cmd);
/* After parsing: -m is required, --policy and --skip exclude each other, --seed -1 is drawn.
 * 0, or 1 after printing the usage error. */
int cli_gen_opts_finish(cli_gen_opts *g, const char *cmd);
modes_sampling cli_sampling(const cli_gen_opts *g, uint64_t seed_offset);

/* Text of generated ids, streamed to stdout as it completes (print) and kept in text, through the
 * public streaming detokenizer (special tokens left out). */
typedef struct {
    modes_detok_stream *ds;
    char *text;
    size_t len, cap;
    int print, failed;
    modes_error err;
} cli_stream;
int cli_stream_init(cli_stream *s, const modes_model *m, int print, modes_error *err);
void cli_stream_token(void *stream, int32_t id); /* a modes_token_fn */
/* Flushes the last bytes; an error from any token is returned here. */
int cli_stream_finish(cli_stream *s, modes_error *err);
void cli_stream_free(cli_stream *s);

int stdout_is_terminal(void);

/* JSON values written to f as the library writes them (modes_json_quote, modes_json_number). */
void cli_json_string(FILE *f, const char *s, size_t n);
void cli_json_number(FILE *f, double v);

/* Prints a command's --help text with "{cores}" replaced by the default thread count. */
void cli_print_help(const char *help);
/* The seed to use for --seed S: S itself, or for -1 a random one (reported, so it can be reused). */
long cli_seed(long seed);

/* The prompt as a heap string (free()): -p TEXT, all of stdin for "-p -", or the file of -f FILE;
 * line breaks that end stdin or the file are dropped. Both -p and -f given is an error. */
int cli_prompt_text(const char *prompt, const char *file, char **out, modes_error *err);

/* --policy FILE (a complete policy) or --skip SPEC (whose modes: and gmlg-threshold: take the layer
 * importances of --alphas FILE, an alphas or policy file); *p is NULL when neither. */
int cli_load_policy(const modes_model *m, const char *policy_path, const char *alphas_path, const char *skip_spec,
                    modes_policy **p, modes_error *err);
/* MODES_E_INPUT naming --alphas when the spec needs layer importances and no --alphas was given. */
int cli_check_skip_alphas(const char *skip_spec, const char *alphas_path, modes_error *err);

/* Progress on stderr for long work, only when stderr is a terminal (quiet in scripts and CI).
 * total <= 0: an open-ended count. The user pointer is unused. */
void cli_progress(void *user, const char *what, long done, long total);
void cli_progress_end(void);

#endif
