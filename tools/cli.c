#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>


#define PROMPT_MAX_BYTES (64 << 20)

int cli_fail(const char *cmd, const modes_error *err) {
    fprintf(stderr, "modes %s: %s\n", cmd, err->msg[0] ? err->msg : "failed");
    return err->code == MODES_E_INPUT ? 1 : 2;
}

int cli_usage(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "modes %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see modes %s --help)\n", cmd);
    va_end(ap);
    return 1;
}

/* Whether arg is one of the forms of names ("-m|--model"): the name alone (its value is the next
 * argument, *inline_value NULL) or, for a long name, "--model=VALUE". */
static int option_matches(const char *arg, const char *names, const char **inline_value) {
    *inline_value = NULL;
    for (const char *alt = names; *alt;) {
        const char *bar = strchr(alt, '|');
        const size_t len = bar ? (size_t)(bar - alt) : strlen(alt);
        if (!strncmp(arg, alt, len)) {
            if (!arg[len]) return 1;
            if (arg[len] == '=' && len > 2 && alt[0] == '-' && alt[1] == '-') {
                *inline_value = arg + len + 1;
                return 1;
            }
        }
        alt += len + (bar != NULL);
    }
    return 0;
}

/* "-m|--model" as users read it: "-m/--model". */
static const char *option_label(const char *names, char *buf, size_t size) {
    snprintf(buf, size, "%s", names);
    for (char *c = buf; *c; c++)
        if (*c == '|') *c = '/';
    return buf;
}

/* Whether the option names takes at argv[at] was already given before: an earlier argument
 * matching it that is not itself the value of a preceding "-p"-style form. */
static int option_given_before(char **argv, int at, const char *names) {
    const char *v;
    for (int j = 1; j < at; j++) {
        if (!option_matches(argv[j], names, &v)) continue;
        if (j > 1 && option_matches(argv[j - 1], names, &v) && !v) continue; /* "-p -p": the value */
        return 1;
    }
    return 0;
}

static int option_value(int argc, char **argv, int *i, const char *names, const char **out, const char *cmd,
                        int repeatable) {
    const char *v;
    if (!option_matches(argv[*i], names, &v)) return 1;
    char label[96];
    if (!repeatable && option_given_before(argv, *i, names)) {
        cli_usage(cmd, "%s given twice", option_label(names, label, sizeof label));
        return -1;
    }
    if (!v) {
        if (*i + 1 >= argc) {
            cli_usage(cmd, "%s needs a value", option_label(names, label, sizeof label));
            return -1;
        }
        v = argv[++*i];
    }
    *out = v;
    return 0;
}

int opt_str(int argc, char **argv, int *i, const char *name, const char **out, const char *cmd) {
    return option_value(argc, argv, i, name, out, cmd, 0);
}

int opt_multi(int argc, char **argv, int *i, const char *name, const char **out, const char *cmd) {
    return option_value(argc, argv, i, name, out, cmd, 1);
}

int opt_int(int argc, char **argv, int *i, const char *name, long lo, long hi, long *out, const char *cmd) {
    const char *s;
    int rc = opt_str(argc, argv, i, name, &s, cmd);
    if (rc) return rc;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        char label[96];
        cli_usage(cmd, "%s must be an integer in [%ld, %ld], not '%s'", option_label(name, label, sizeof label), lo, hi, s);
        return -1;
    }
    *out = v;
    return 0;
}

int opt_float(int argc, char **argv, int *i, const char *name, double lo, double hi, double *out, const char *cmd) {
    const char *s;
    int rc = opt_str(argc, argv, i, name, &s, cmd);
    if (rc) return rc;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi) {
        char label[96];
        cli_usage(cmd, "%s must be a number in [%g, %g], not '%s'", option_label(name, label, sizeof label), lo, hi, s);
        return -1;
    }
    *out = v;
    return 0;
}

int stdout_is_terminal(void) { return isatty(STDOUT_FILENO); }

void cli_json_string(FILE *f, const char *s, size_t n) {
    char *q = modes_json_quote(s, n);
    if (q) fputs(q, f);
    else fputs("null", f); /* out of memory: still valid JSON */
    free(q);
}

void cli_json_number(FILE *f, double v) {
    char buf[40];
    fputs(modes_json_number(v, buf), f);
}

void cli_progress(void *user, const char *what, long done, long total) {
    (void)user;
    if (!isatty(STDERR_FILENO)) return;
    if (total > 0) fprintf(stderr, "\r\033[K%s %ld/%ld (%.0f%%)", what, done, total, 100.0 * done / total);
    else fprintf(stderr, "\r\033[K%s %ld", what, done);
    fflush(stderr);
}

void cli_progress_end(void) {
    if (isatty(STDERR_FILENO)) fprintf(stderr, "\r\033[K");
}

int cli_check_skip_alphas(const char *skip_spec, const char *alphas_path, modes_error *err) {
    const char *colon = strchr(skip_spec, ':');
    const size_t n = colon ? (size_t)(colon - skip_spec) : strlen(skip_spec);
    const int needs = (n == 5 && !strncmp(skip_spec, "modes", 5)) || (n == 14 && !strncmp(skip_spec, "gmlg-threshold", 14));
    if (needs && !alphas_path)
        return modes_fail(err, MODES_E_INPUT, "--skip %s needs layer importances: pass --alphas FILE (the alphas from "
                          "modes calibrate, or a policy file)", skip_spec);
    return 0;
}

int cli_load_policy(const modes_model *m, const char *policy_path, const char *alphas_path, const char *skip_spec,
                    modes_policy **p, modes_error *err) {
    *p = NULL;
    if (policy_path && skip_spec)
        return modes_fail(err, MODES_E_INPUT, "--policy FILE and --skip %s both choose the skipping: give one (a spec "
                          "takes its layer importances from --alphas FILE)", skip_spec);
    if (alphas_path && !skip_spec)
        return modes_fail(err, MODES_E_INPUT, "--alphas FILE gives layer importances to a --skip spec, and no --skip "
                          "was given (--policy FILE applies a complete policy)");
    if (!skip_spec) return policy_path ? modes_policy_load(m, policy_path, p, err) : 0;
    modes_policy *alphas = NULL;
    int rc = cli_check_skip_alphas(skip_spec, alphas_path, err);
    if (!rc && alphas_path) rc = modes_policy_load(m, alphas_path, &alphas, err);
    if (!rc) rc = modes_policy_from_spec(m, skip_spec, alphas, p, err);
    modes_policy_free(alphas);
    return rc;
}

/* Reads all of f: stdin has no size to read ahead of time. */
static int read_stream(FILE *f, const char *what, char **out, modes_error *err) {
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap);
    if (!buf) return modes_fail(err, MODES_E_INTERNAL, "out of memory");
    for (size_t got; (got = fread(buf + len, 1, cap - len - 1, f)) > 0;) {
        len += got;
        if (cap - len - 1 > 0) continue;
        if (cap > PROMPT_MAX_BYTES) {
            free(buf);
            return modes_fail(err, MODES_E_INPUT, "%s: more than %d MiB", what, PROMPT_MAX_BYTES >> 20);
        }
        char *grown = realloc(buf, cap *= 2);
        if (!grown) {
            free(buf);
            return modes_fail(err, MODES_E_INTERNAL, "out of memory");
        }
        buf = grown;
    }
    if (ferror(f)) {
        free(buf);
        return modes_fail(err, MODES_E_INPUT, "%s: read error", what);
    }
    buf[len] = 0;
    *out = buf;
    return 0;
}

int cli_prompt_text(const char *prompt, const char *file, char **out, modes_error *err) {
    *out = NULL;
    if (prompt && file) return modes_fail(err, MODES_E_INPUT, "-p/--prompt and -f/--file both give the prompt: use one");
    int rc;
    if (file) {
        size_t len;
        rc = modes_read_file(file, PROMPT_MAX_BYTES, out, &len, err);
    } else if (prompt && !strcmp(prompt, "-")) {
        rc = read_stream(stdin, "the prompt on stdin", out, err);
    } else {
        rc = (*out = strdup(prompt ? prompt : "")) ? 0 : modes_fail(err, MODES_E_INTERNAL, "out of memory");
        return rc;
    }
    if (rc) return rc;
    /* "echo question | modes run -p -" and files ending in a line break mean the text before it */
    size_t n = strlen(*out);
    while (n && ((*out)[n - 1] == '\n' || (*out)[n - 1] == '\r')) (*out)[--n] = 0;
    return 0;
}

void cli_print_help(const char *help) {
    for (const char *at = help, *mark; *at; at = mark + 7) {
        if (!(mark = strstr(at, "{cores}"))) {
            fputs(at, stdout);
            break;
        }
        fwrite(at, 1, (size_t)(mark - at), stdout);
        printf("%d", modes_physical_cores());
    }
}

long cli_seed(long seed) {
    if (seed >= 0) return seed;
    uint32_t r = 0;
    FILE *f = fopen("/dev/urandom", "rb");
    const int got = f && fread(&r, sizeof r, 1, f) == 1;
    if (f) fclose(f);
    if (!got) { /* no /dev/urandom (a chroot): the clock and the process differ between runs */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        r = (uint32_t)ts.tv_nsec ^ (uint32_t)ts.tv_sec * 2654435761u ^ (uint32_t)getpid() << 16;
    }
    return (long)(r & 0x7fffffff); /* a seed --seed accepts, to reproduce the run */
}

int opt_generation(int argc, char **argv, int *i, cli_gen_opts *g, const char *cmd) {
    const char *img;
    int r = opt_multi(argc, argv, i, "--image", &img, cmd);
    if (r == 0) {
        if (g->n_images == CLI_MAX_IMAGES) return cli_usage(cmd, "at most %d images", CLI_MAX_IMAGES), -1;
        g->images[g->n_images++] = img;
        return 0;
    }
    if (r < 0 ||
        (r = opt_str(argc, argv, i, "-m|--model", &g->dir, cmd)) <= 0 ||
        (r = opt_str(argc, argv, i, "--system", &g->system, cmd)) <= 0 ||
        (r = opt_str(argc, argv, i, "--policy", &g->policy, cmd)) <= 0 ||
        (r = opt_str(argc, argv, i, "--alphas", &g->alphas, cmd)) <= 0 ||
        (r = opt_str(argc, argv, i, "--skip", &g->skip, cmd)) <= 0 ||
        (r = opt_int(argc, argv, i, "-c|--ctx-size", 0, 1 << 30, &g->n_ctx, cmd)) <= 0 ||
        (r = opt_int(argc, argv, i, "-n|--n-predict", 0, 1 << 20, &g->n_new, cmd)) <= 0 ||
        (r = opt_int(argc, argv, i, "-t|--threads", 0, 1024, &g->threads, cmd)) <= 0 ||
        (r = opt_int(argc, argv, i, "--top-k", 0, 1 << 24, &g->top_k, cmd)) <= 0 ||
        (r = opt_int(argc, argv, i, "-s|--seed", -1, 0x7fffffffL, &g->seed, cmd)) <= 0 ||
        (r = opt_float(argc, argv, i, "--temp", 0, 100, &g->temp, cmd)) <= 0 ||
        (r = opt_float(argc, argv, i, "--top-p", 0, 1, &g->top_p, cmd)) <= 0)
        return r;
    return 1;
}

int cli_gen_opts_finish(cli_gen_opts *g, const char *cmd) {
    if (g->policy && g->skip)
        return cli_usage(cmd, "--policy FILE and --skip SPEC both choose the skipping: give one (a spec takes its layer "
                         "importances from --alphas FILE)");
    g->seed = cli_seed(g->seed);
    return 0;
}

modes_sampling cli_sampling(const cli_gen_opts *g, uint64_t seed_offset) {
    return (modes_sampling){.temperature = (float)g->temp, .top_k = (int)g->top_k, .top_p = (float)g->top_p,
                            .seed = (uint64_t)g->seed + seed_offset};
}

static void stream_text(cli_stream *s, const char *piece, size_t n) {
    if (!n || s->failed) return;
    if (s->len + n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 256;
        while (cap < s->len + n + 1) cap *= 2;
        char *grown = realloc(s->text, cap);
        if (!grown) {
            s->failed = 1;
            modes_fail(&s->err, MODES_E_INTERNAL, "out of memory");
            return;
        }
        s->text = grown;
        s->cap = cap;
    }
    memcpy(s->text + s->len, piece, n);
    s->text[s->len += n] = 0;
    if (s->print) {
        fwrite(piece, 1, n, stdout);
        fflush(stdout);
    }
}

int cli_stream_init(cli_stream *s, const modes_model *m, int print, modes_error *err) {
    *s = (cli_stream){.print = print};
    return modes_detok_stream_new(modes_model_tokenizer(m), 1, &s->ds, err);
}

void cli_stream_token(void *stream, int32_t id) {
    cli_stream *s = stream;
    const char *piece;
    size_t n;
    if (s->failed) return;
    if (modes_detok_stream_push(s->ds, id, &piece, &n, &s->err)) s->failed = 1;
    else stream_text(s, piece, n);
}

int cli_stream_finish(cli_stream *s, modes_error *err) {
    const char *piece;
    size_t n;
    if (!s->failed) {
        if (modes_detok_stream_finish(s->ds, &piece, &n, &s->err)) s->failed = 1;
        else stream_text(s, piece, n);
    }
    if (!s->failed) return 0;
    *err = s->err;
    return err->code ? err->code : MODES_E_INTERNAL;
}

void cli_stream_free(cli_stream *s) {
    modes_detok_stream_free(s->ds);
    free(s->text);
    *s = (cli_stream){0};
}
