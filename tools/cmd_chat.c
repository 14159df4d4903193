/* modes chat: an interactive conversation in one KV cache. Each message is prefilled on top of the
 * conversation so far (modes_prompt_followup), never the history again; the answer streams as it
 * is generated. Lines come from stdin, so a pipe works as well as a terminal. Slash commands attach
 * images, switch the skip policy and show statistics. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "cli.h"

static const char *HELP =
    "usage: modes chat -m DIR [--image FILE]... [--system TEXT] [-c N] [-n MAX_NEW] [--temp T] [--top-k K]\n"
    "                  [--top-p P] [--seed S] [-t THREADS] [--policy FILE | --skip SPEC [--alphas FILE]]\n"
    "  A conversation with the model in one KV cache: each line on stdin is a message, answered with\n"
    "  the whole conversation in view (only the new message is prefilled). --image files go with the\n"
    "  first message. Commands:\n"
    "    /image FILE    attach an image to the next message\n"
    "    /policy FILE   switch to a skip policy file      /skip SPEC   switch to a --skip SPEC (none: off)\n"
    "    /stats         tokens, speed and skip ratios     /reset       forget the conversation\n"
    "    /help          these commands                    /exit        end (so does the end of stdin)\n"
    "  -c/--ctx-size N: tokens the conversation may hold (default 4096, at most the model's maximum);\n"
    "  when it is full, /reset starts over. -n/--n-predict: most new tokens per answer (default 512).\n"
    "  --temp T: sampling temperature (default 0: greedy); --top-k K (default 0: off); --top-p P\n"
    "  (default 1: off); -s/--seed S (default 0; -1: random, shown by /stats).\n"
    "  -t/--threads: default {cores} (the physical cores). -m/--model DIR; --NAME=VALUE works.\n"
    "  modes: and gmlg-threshold: specs (--skip, /skip) take their layer importances from --alphas FILE\n"
    "  (from modes calibrate, or a policy file).\n";

typedef cli_gen_opts chat_opts;

static int parse(int argc, char **argv, chat_opts *o) {
    *o = (chat_opts){.n_new = 512, .top_p = 1.0};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            cli_print_help(HELP);
            return 2;
        }
        const int r = opt_generation(argc, argv, &i, o, "chat");
        if (r < 0) return -1;
        if (r > 0) return cli_usage("chat", "unknown option '%s'", argv[i]), -1;
    }
    if (!o->dir) return cli_usage("chat", "-m DIR is required"), -1;
    if (o->n_new < 1) return cli_usage("chat", "-n/--n-predict must be at least 1"), -1;
    return cli_gen_opts_finish(o, "chat") ? -1 : 0;
}

/* The conversation and what it cost since the last /reset. */
typedef struct {
    const modes_model *m;
    modes_ctx *ctx;
    modes_policy *policy;
    const char *alphas;              /* --alphas FILE, for /skip specs too */
    int n_ctx, turns;
    long prefilled, generated, decode_steps;
    double prefill_s, decode_s;
    const char *pending[CLI_MAX_IMAGES]; /* images for the next message (argv or owned copies) */
    char *owned[CLI_MAX_IMAGES];
    int n_pending;
} chat_state;

static void clear_pending(chat_state *s) {
    for (int i = 0; i < s->n_pending; i++) {
        free(s->owned[i]);
        s->owned[i] = NULL;
    }
    s->n_pending = 0;
}

/* Answers one message; MODES_E_INPUT errors (a bad image, a full context) leave the conversation as
 * it was, so the chat goes on. */
static int answer(chat_state *s, const chat_opts *o, const char *text, modes_error *err) {
    modes_prompt *p = NULL;
    int rc = s->turns ? modes_prompt_followup(s->m, text, s->pending, s->n_pending, &p, err)
                      : modes_prompt_new(s->m, o->system, text, s->pending, s->n_pending, NULL, &p, err);
    clear_pending(s);
    if (rc) return rc;
    int n;
    modes_prompt_ids(p, &n);
    const int past = modes_ctx_n_past(s->ctx), room = s->n_ctx - past - n;
    if (room < 1) {
        modes_prompt_free(p);
        return modes_fail(err, MODES_E_INPUT, "the context is full (%d of %d tokens; this message needs %d): /reset starts over",
                          past, s->n_ctx, n + 1);
    }
    /* every id must end up in the cache for the next turn: the last one is evaluated below */
    const int max_new = o->n_new < room ? (int)o->n_new : room;
    int32_t *out = malloc((size_t)max_new * sizeof *out);
    if (!out) {
        modes_prompt_free(p);
        return modes_fail(err, MODES_E_INTERNAL, "out of memory");
    }
    const modes_sampling smp = cli_sampling(o, (uint64_t)s->turns);
    cli_stream st;
    double times[2] = {0, 0};
    int made = 0;
    rc = cli_stream_init(&st, s->m, 1, err);
    if (!rc) rc = modes_generate(s->ctx, p, max_new, &smp, cli_stream_token, &st, out, &made, times, err);
    const int text_rc = cli_stream_finish(&st, rc ? &(modes_error){0} : err);
    if (!rc) rc = text_rc;
    fputc('\n', stdout);
    fflush(stdout);
    if (!rc && made == max_new) { /* cut off: the stop id did not come, and the last id is not cached yet */
        rc = modes_eval(s->ctx, &out[made - 1], 1, NULL, 0, err);
        if (!rc && max_new == room)
            fprintf(stderr, "modes chat: the context is full (%d tokens): /reset starts over\n", s->n_ctx);
    }
    if (!rc) {
        s->turns++;
        s->prefilled += n;
        s->generated += made;
        s->decode_steps += made == max_new ? made - 1 : made; /* the ids evaluated inside modes_generate */
        s->prefill_s += times[0];
        s->decode_s += times[1];
    }
    cli_stream_free(&st);
    free(out);
    modes_prompt_free(p);
    return rc;
}

static void print_stats(const chat_state *s, const chat_opts *o) {
    const modes_stats *st = modes_ctx_stats(s->ctx);
    const modes_skip_count *pre = st->phase[0], *dec = st->phase[1];
    printf("turns %d | context %d of %d tokens | prefilled %ld tokens, %.1f tok/s | generated %ld tokens, %.1f tok/s"
           " | skipped: prefill %.1f%% (text %.1f%%, vision %.1f%%), decode %.1f%% | seed %ld\n",
           s->turns, modes_ctx_n_past(s->ctx), s->n_ctx, s->prefilled, s->prefill_s > 0 ? s->prefilled / s->prefill_s : 0.0,
           s->generated, s->decode_s > 0 ? s->decode_steps / s->decode_s : 0.0, 100 * modes_skip_ratio(pre, 3),
           100 * modes_skip_ratio(&pre[MODES_TOKEN_TEXT], 1), 100 * modes_skip_ratio(&pre[MODES_TOKEN_VISION], 1),
           100 * modes_skip_ratio(dec, 3), o->seed);
}

/* Replaces the policy: from a file (/policy) or a spec (/skip). */
static int switch_policy(chat_state *s, const char *file, const char *spec, modes_error *err) {
    modes_policy *p = NULL;
    int rc = cli_load_policy(s->m, file, spec ? s->alphas : NULL, spec, &p, err);
    if (rc) return rc;
    modes_ctx_set_policy(s->ctx, p);
    modes_policy_free(s->policy);
    s->policy = p;
    return 0;
}

/* The argument of "/cmd ARG", or NULL when line is not that command. */
static const char *command_arg(const char *line, const char *cmd) {
    const size_t n = strlen(cmd);
    if (strncmp(line, cmd, n) || (line[n] && line[n] != ' ')) return NULL;
    line += n;
    while (*line == ' ') line++;
    return line;
}

/* One line of input: a command or a message. Returns 1 to end the chat, 0 to go on, or an error
 * code that ends it (MODES_E_INPUT errors are reported here and the chat goes on). */
static int handle_line(chat_state *s, const chat_opts *o, const char *line, modes_error *err) {
    const char *arg;
    int rc = 0;
    if (!*line) return 0;
    if (!strcmp(line, "/exit") || !strcmp(line, "/quit")) return 1;
    if (!strcmp(line, "/help")) {
        printf("/image FILE, /policy FILE, /skip SPEC, /stats, /reset, /help, /exit; any other line is a message\n");
    } else if (!strcmp(line, "/stats")) {
        print_stats(s, o);
    } else if (!strcmp(line, "/reset")) {
        modes_ctx_reset(s->ctx);
        modes_ctx_reset_stats(s->ctx);
        const modes_model *m = s->m;
        modes_ctx *ctx = s->ctx;
        modes_policy *policy = s->policy;
        const int n_ctx = s->n_ctx;
        clear_pending(s);
        *s = (chat_state){.m = m, .ctx = ctx, .policy = policy, .alphas = s->alphas, .n_ctx = n_ctx};
    } else if ((arg = command_arg(line, "/image"))) {
        if (!*arg) rc = modes_fail(err, MODES_E_INPUT, "/image needs a file");
        else if (access(arg, R_OK)) rc = modes_fail(err, MODES_E_INPUT, "%s: cannot read the image", arg);
        else if (s->n_pending == CLI_MAX_IMAGES) rc = modes_fail(err, MODES_E_INPUT, "at most %d images per message", CLI_MAX_IMAGES);
        else if (!(s->owned[s->n_pending] = strdup(arg))) rc = modes_fail(err, MODES_E_INTERNAL, "out of memory");
        else s->pending[s->n_pending] = s->owned[s->n_pending], s->n_pending++;
    } else if ((arg = command_arg(line, "/policy"))) {
        rc = *arg ? switch_policy(s, arg, NULL, err) : modes_fail(err, MODES_E_INPUT, "/policy needs a file");
    } else if ((arg = command_arg(line, "/skip"))) {
        rc = *arg ? switch_policy(s, NULL, arg, err) : modes_fail(err, MODES_E_INPUT, "/skip needs a spec");
    } else if (line[0] == '/' && line[1] != '/' && !strchr(line, ' ')) {
        rc = modes_fail(err, MODES_E_INPUT, "unknown command %s (try /help)", line);
    } else {
        rc = answer(s, o, line[0] == '/' ? line + 1 : line, err); /* "//..." sends a message starting with '/' */
    }
    if (rc == MODES_E_INPUT) {
        cli_fail("chat", err);
        *err = (modes_error){0};
        rc = 0;
    }
    return rc;
}

int cmd_chat(int argc, char **argv) {
    chat_opts o;
    int pr = parse(argc, argv, &o);
    if (pr) return pr == 2 ? 0 : 1;
    modes_error err = {0};
    modes_model *m = NULL;
    chat_state s = {0};
    char *line = NULL;
    size_t cap = 0;
    int rc = modes_model_load(o.dir, &m, &err);
    if (!rc && !modes_model_tokenizer(m)) rc = modes_fail(&err, MODES_E_INPUT, "%s: no tokenizer.json", o.dir);
    if (!rc) {
        s.m = m;
        s.alphas = o.alphas;
        const int max = modes_model_max_ctx(m);
        s.n_ctx = o.n_ctx ? (int)o.n_ctx : 4096;
        if (s.n_ctx > max) s.n_ctx = max;
        modes_ctx_params cp = {.n_ctx = s.n_ctx, .threads = (int)o.threads};
        rc = modes_ctx_new(m, &cp, &s.ctx, &err);
    }
    if (!rc && (o.policy || o.skip)) rc = switch_policy(&s, o.policy, o.skip, &err);
    for (int i = 0; !rc && i < o.n_images; i++) s.pending[s.n_pending++] = o.images[i];
    const int interactive = isatty(STDIN_FILENO);
    if (!rc && interactive) fprintf(stderr, "modes chat: /help lists the commands, /exit or Ctrl-D ends\n");
    while (!rc) {
        if (interactive) {
            fputs("> ", stdout);
            fflush(stdout);
        }
        ssize_t len = getline(&line, &cap, stdin);
        if (len < 0) break;
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        rc = handle_line(&s, &o, line, &err);
    }
    if (rc == 1) rc = 0;
    free(line);
    clear_pending(&s);
    modes_policy_free(s.policy);
    modes_ctx_free(s.ctx);
    modes_model_free(m);
    return rc ? cli_fail("chat", &err) : 0;
}
