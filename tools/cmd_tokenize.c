/* modes tokenize -m DIR|TOKENIZER.json: JSON Lines {"text": ...} on stdin, {"ids": [...]} on stdout,
 * one output line per input line (blank lines are skipped). No special tokens are added; special
 * token strings written in the text are matched (docs/design.md section 3). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char *const CMD = "tokenize";
#define LINE_MAX_BYTES ((size_t)64 << 20) /* the most modes_json_string_member reads */

static void help(void) {
    printf("usage: modes tokenize -m DIR|TOKENIZER.json < IN.jsonl > OUT.jsonl\n\n"
           "Reads one JSON object {\"text\": ...} per line and writes {\"ids\": [...]} per line.\n"
           "No BOS/EOS is added; special tokens written in the text (<|im_start|>, ...) are matched.\n"
           "Long forms: -m/--model; --model=DIR works.\n");
}

static int is_blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n') return 0;
    return 1;
}

/* Encodes one input line and writes its {"ids"} line to outf. */
static int tokenize_line(const modes_tokenizer *tok, const char *line, size_t n, size_t lineno, FILE *outf,
                         modes_error *err) {
    char what[48];
    snprintf(what, sizeof what, "stdin line %zu", lineno);
    char *text = NULL;
    size_t len = 0;
    int rc = modes_json_string_member(line, n, what, "text", &text, &len, err);
    if (rc) return rc;
    int32_t *ids = NULL;
    int k = 0;
    if (!text)
        rc = modes_fail(err, MODES_E_INPUT, "%s: expected an object with a \"text\" string", what);
    else if ((rc = modes_tokenize(tok, text, len, 1, &ids, &k, err)))
        modes_error_prefix(err, "%s", what);
    free(text);
    if (rc) return rc;
    fputs("{\"ids\": [", outf);
    for (int i = 0; i < k; i++) fprintf(outf, i ? ", %d" : "%d", ids[i]);
    fputs("]}\n", outf);
    free(ids);
    /* Flushed per line, so a caller can feed lines interactively through a pipe. */
    return ferror(outf) || fflush(outf) ? modes_fail(err, MODES_E_INTERNAL, "cannot write to stdout") : 0;
}

/* A line being read: its bytes so far. */
typedef struct {
    char *data;
    size_t len, cap;
    int failed;
} line_buf;

static void line_add(line_buf *l, char c) {
    if (l->failed) return;
    if (l->len == l->cap) {
        const size_t cap = l->cap ? 2 * l->cap : 256;
        char *grown = realloc(l->data, cap);
        if (!grown) {
            l->failed = 1;
            return;
        }
        l->data = grown;
        l->cap = cap;
    }
    l->data[l->len++] = c;
}

/* Reads one line (newline kept) into *line; -1 at end of input. A line longer than max is not
 * buffered whole: the rest of it is skipped and *too_long set, so a huge line cannot exhaust memory. */
static ssize_t read_line(FILE *in, line_buf *line, size_t max, int *too_long) {
    int ch = EOF;
    line->len = 0;
    *too_long = 0;
    while ((ch = getc(in)) != EOF) {
        if (line->len < max) line_add(line, (char)ch);
        else *too_long = 1;
        if (ch == '\n') break;
    }
    return ch == EOF && line->len == 0 && !*too_long ? -1 : (ssize_t)line->len;
}

static int tokenize_stream(const modes_tokenizer *tok, FILE *in, FILE *outf, modes_error *err) {
    line_buf line = {0};
    size_t lineno = 0;
    ssize_t n;
    int rc = 0, too_long = 0;
    while (!rc && (n = read_line(in, &line, LINE_MAX_BYTES, &too_long)) >= 0) {
        lineno++;
        if (too_long) {
            rc = modes_fail(err, MODES_E_INPUT, "stdin line %zu: longer than %zu bytes", lineno, LINE_MAX_BYTES);
            break;
        }
        if (line.failed) {
            rc = modes_fail(err, MODES_E_INTERNAL, "stdin line %zu: out of memory", lineno);
            break;
        }
        if (is_blank(line.data, (size_t)n)) continue;
        rc = tokenize_line(tok, line.data, (size_t)n, lineno, outf, err);
    }
    if (!rc && ferror(in)) rc = modes_fail(err, MODES_E_INPUT, "cannot read stdin (line %zu)", lineno + 1);
    free(line.data);
    return rc;
}

int cmd_tokenize(int argc, char **argv) {
    const char *model = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            help();
            return 0;
        }
        int r = opt_str(argc, argv, &i, "-m|--model", &model, CMD);
        if (r < 0) return 1;
        if (r > 0) return cli_usage(CMD, "unknown option '%s'", argv[i]);
    }
    if (!model) return cli_usage(CMD, "-m DIR|TOKENIZER.json is required");
    modes_tokenizer *tok;
    modes_error err = {0};
    if (modes_tokenizer_load(model, &tok, &err)) return cli_fail(CMD, &err);
    int rc = tokenize_stream(tok, stdin, stdout, &err);
    modes_tokenizer_free(tok);
    return rc ? cli_fail(CMD, &err) : 0;
}
