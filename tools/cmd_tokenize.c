/* modes tokenize -m DIR|TOKENIZER.json: JSON Lines {"text": ...} on stdin, {"ids": [...]} on stdout,
 * one output line per input line (blank lines are skipped). No special tokens are added; special
 * token strings written in the text are matched (docs/design.md section 3). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "core/error.h"
#include "core/json.h"
#include "text/tokenizer.h"

static const char *const CMD = "tokenize";

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

/* Encodes one input line into out as an {"ids"} line. */
static int tokenize_line(const modes_tokenizer *tok, const char *line, size_t n, size_t lineno, strbuf *out,
                         modes_error *err) {
    char what[48];
    snprintf(what, sizeof what, "stdin line %zu", lineno);
    json_doc *doc;
    json_limits lim = {.max_bytes = TOK_MAX_FILE_BYTES, .max_depth = 16};
    int rc = json_parse(line, n, &lim, what, &doc, err);
    if (rc) return rc;
    const json_node *text = json_get(json_root(doc), "text");
    int32_t *ids = NULL;
    size_t k = 0;
    if (!text || text->type != JSON_STRING)
        rc = modes_fail(err, MODES_E_INPUT, "%s: expected an object with a \"text\" string", what);
    else if ((rc = tok_encode(tok, text->u.str, text->n, &ids, &k, err)))
        modes_error_prefix(err, "%s", what);
    json_free(doc);
    if (rc) return rc;
    sb_puts(out, "{\"ids\": [");
    for (size_t i = 0; i < k; i++) sb_printf(out, i ? ", %d" : "%d", ids[i]);
    sb_puts(out, "]}\n");
    free(ids);
    return out->failed ? modes_fail(err, MODES_E_INTERNAL, "%s: out of memory", what) : 0;
}

/* Reads one line (newline kept) into *line; -1 at end of input. A line longer than max is not
 * buffered whole: the rest of it is skipped and *too_long set, so a huge line cannot exhaust memory. */
static ssize_t read_line(FILE *in, strbuf *line, size_t max, int *too_long) {
    int ch = EOF;
    line->len = 0;
    *too_long = 0;
    while ((ch = getc(in)) != EOF) {
        const char c = (char)ch;
        if (line->len < max) sb_append(line, &c, 1);
        else *too_long = 1;
        if (ch == '\n') break;
    }
    return ch == EOF && line->len == 0 && !*too_long ? -1 : (ssize_t)line->len;
}

static int tokenize_stream(const modes_tokenizer *tok, FILE *in, FILE *outf, modes_error *err) {
    strbuf line = {0}, out = {0};
    size_t lineno = 0;
    ssize_t n;
    int rc = 0, too_long = 0;
    while (!rc && (n = read_line(in, &line, TOK_MAX_FILE_BYTES, &too_long)) >= 0) {
        lineno++;
        if (too_long) {
            rc = modes_fail(err, MODES_E_INPUT, "stdin line %zu: longer than %zu bytes", lineno, (size_t)TOK_MAX_FILE_BYTES);
            break;
        }
        if (line.failed) {
            rc = modes_fail(err, MODES_E_INTERNAL, "stdin line %zu: out of memory", lineno);
            break;
        }
        if (is_blank(line.data, (size_t)n)) continue;
        out.len = 0;
        rc = tokenize_line(tok, line.data, (size_t)n, lineno, &out, err);
        /* Flushed per line, so a caller can feed lines interactively through a pipe. */
        if (!rc && (fwrite(out.data, 1, out.len, outf) != out.len || fflush(outf)))
            rc = modes_fail(err, MODES_E_INTERNAL, "cannot write to stdout");
    }
    if (!rc && ferror(in)) rc = modes_fail(err, MODES_E_INPUT, "cannot read stdin (line %zu)", lineno + 1);
    sb_free(&line);
    sb_free(&out);
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
    if (tok_load(model, &tok, &err)) return cli_fail(CMD, &err);
    int rc = tokenize_stream(tok, stdin, stdout, &err);
    tok_free(tok);
    return rc ? cli_fail(CMD, &err) : 0;
}
