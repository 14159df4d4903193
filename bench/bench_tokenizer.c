/* Tokenizer speed: load time of tokenizer.json, and encode/decode throughput over the reference
 * cases' text repeated to a few MB (all categories, and the English prose ones alone).
 *
 *   bench_tokenizer [-m DIR|TOKENIZER.json] [--cases FILE.jsonl] [--mb N] [-r REPS] [-o OUT.json]
 *
 * Defaults: the Qwen3 tokenizer and cases under $MODES_SHARED (or ../shared). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/json.h"
#include "io/file.h"
#include "text/tokenizer.h"

typedef struct {
    const char *model, *cases, *out;
    double mb;
    int reps;
} options;

typedef struct {
    const char *name;
    size_t bytes, tokens;
    double encode_s, decode_s;
} result;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int usage(void) {
    fprintf(stderr, "usage: bench_tokenizer [-m DIR|TOKENIZER.json] [--cases FILE.jsonl] [--mb N] [-r REPS] [-o OUT.json]\n");
    return 1;
}

static int parse_args(int argc, char **argv, options *o, char *defm, char *defc, size_t cap) {
    const char *shared = getenv("MODES_SHARED");
    snprintf(defm, cap, "%s/ref/qwen3-tokenizer", shared ? shared : "../shared");
    snprintf(defc, cap, "%s/ref/qwen3-tokenizer/cases.jsonl", shared ? shared : "../shared");
    *o = (options){.model = defm, .cases = defc, .mb = 4, .reps = 3};
    for (int i = 1; i < argc; i += 2) { /* every option takes one value */
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) return usage() - 2;
        if (!v) return usage();
        if (!strcmp(a, "-m")) o->model = v;
        else if (!strcmp(a, "--cases")) o->cases = v;
        else if (!strcmp(a, "-o")) o->out = v;
        else if (!strcmp(a, "--mb")) o->mb = atof(v);
        else if (!strcmp(a, "-r")) o->reps = atoi(v);
        else return usage();
    }
    if (o->mb <= 0 || o->mb > 1024 || o->reps < 1) return usage();
    return 0;
}

/* The case texts (all, or one category), joined by newlines and repeated to at least mb MB. */
static int build_text(const char *cases, const char *category, double mb, strbuf *text) {
    char *data;
    size_t len;
    modes_error err = {0};
    if (read_file(cases, (size_t)256 << 20, &data, &len, &err)) {
        fprintf(stderr, "bench_tokenizer: %s\n", err.msg);
        return 1;
    }
    strbuf one = {0};
    for (char *p = data, *nl; p < data + len; p = nl + 1) {
        nl = memchr(p, '\n', (size_t)(data + len - p));
        if (!nl) nl = data + len;
        json_doc *doc;
        if (nl == p || json_parse(p, (size_t)(nl - p), NULL, cases, &doc, &err)) continue;
        const json_node *t = json_get(json_root(doc), "text"), *c = json_get(json_root(doc), "cat");
        if (t && t->type == JSON_STRING && (!category || (c && c->type == JSON_STRING && !strcmp(c->u.str, category)))) {
            sb_append(&one, t->u.str, t->n);
            sb_append(&one, "\n", 1);
        }
        json_free(doc);
    }
    free(data);
    size_t want = (size_t)(mb * 1e6);
    while (one.len && text->len < want) sb_append(text, one.data, one.len);
    sb_free(&one);
    if (!text->len || text->failed) {
        fprintf(stderr, "bench_tokenizer: no text for %s in %s\n", category ? category : "all cases", cases);
        return 1;
    }
    return 0;
}

static int run_one(const modes_tokenizer *tok, const options *o, const char *category, result *r) {
    strbuf text = {0};
    if (build_text(o->cases, category, o->mb, &text)) return 1;
    r->name = category ? category : "all";
    r->bytes = text.len;
    r->encode_s = r->decode_s = 1e30;
    modes_error err = {0};
    for (int k = 0; k < o->reps; k++) {
        int32_t *ids;
        size_t n;
        double t0 = now_s();
        if (tok_encode(tok, text.data, text.len, &ids, &n, &err)) {
            fprintf(stderr, "bench_tokenizer: %s\n", err.msg);
            sb_free(&text);
            return 1;
        }
        double t1 = now_s();
        char *out;
        size_t on;
        int rc = tok_decode(tok, ids, n, 0, &out, &on, &err);
        double t2 = now_s();
        if (rc) fprintf(stderr, "bench_tokenizer: %s\n", err.msg);
        else free(out);
        free(ids);
        r->tokens = n;
        if (t1 - t0 < r->encode_s) r->encode_s = t1 - t0;
        if (t2 - t1 < r->decode_s) r->decode_s = t2 - t1;
    }
    sb_free(&text);
    printf("encode %-6s %6.2f MB  %9zu tokens  %7.2f MB/s  %6.2f Mtok/s   decode %7.1f MB/s\n", r->name, r->bytes / 1e6,
           r->tokens, r->bytes / 1e6 / r->encode_s, r->tokens / 1e6 / r->encode_s, r->bytes / 1e6 / r->decode_s);
    return 0;
}

static int write_json(const options *o, double load_first, double load_best, const result *res, int nres) {
    strbuf sb = {0};
    sb_puts(&sb, "{\"benchmark\": \"tokenizer\", \"tokenizer\": ");
    sb_json_string(&sb, o->model, strlen(o->model));
    sb_puts(&sb, ", \"cases\": ");
    sb_json_string(&sb, o->cases, strlen(o->cases));
    sb_printf(&sb, ", \"reps\": %d, \"load_s_first\": ", o->reps);
    sb_json_number(&sb, load_first);
    sb_puts(&sb, ", \"load_s_best\": ");
    sb_json_number(&sb, load_best);
    sb_puts(&sb, ", \"encode\": [");
    for (int i = 0; i < nres; i++) {
        const result *r = &res[i];
        sb_printf(&sb, "%s{\"text\": \"%s\", \"bytes\": %zu, \"tokens\": %zu, \"encode_s\": ", i ? ", " : "", r->name,
                  r->bytes, r->tokens);
        sb_json_number(&sb, r->encode_s);
        sb_puts(&sb, ", \"encode_mb_per_s\": ");
        sb_json_number(&sb, r->bytes / 1e6 / r->encode_s);
        sb_puts(&sb, ", \"decode_mb_per_s\": ");
        sb_json_number(&sb, r->bytes / 1e6 / r->decode_s);
        sb_puts(&sb, "}");
    }
    sb_puts(&sb, "]}\n");
    modes_error err = {0};
    int rc = sb.failed ? 1 : write_file_atomic(o->out, sb.data, sb.len, &err);
    if (rc) fprintf(stderr, "bench_tokenizer: %s\n", sb.failed ? "out of memory" : err.msg);
    sb_free(&sb);
    return rc ? 1 : 0;
}

int main(int argc, char **argv) {
    options o;
    char defm[1024], defc[1024];
    int rc = parse_args(argc, argv, &o, defm, defc, sizeof defm);
    if (rc) return rc < 0 ? 0 : rc;
    modes_tokenizer *tok = NULL;
    modes_error err = {0};
    double first = 0, best = 1e30;
    for (int k = 0; k < o.reps; k++) {
        tok_free(tok);
        double t0 = now_s();
        if (tok_load(o.model, &tok, &err)) {
            fprintf(stderr, "bench_tokenizer: %s\n", err.msg);
            return 1;
        }
        double dt = now_s() - t0;
        if (!k) first = dt;
        if (dt < best) best = dt;
    }
    printf("load   %s: %.1f ms (first), %.1f ms (best of %d), vocabulary %zu\n", tok_path(tok), first * 1e3, best * 1e3,
           o.reps, tok_vocab_size(tok));
    result res[2];
    rc = run_one(tok, &o, NULL, &res[0]) || run_one(tok, &o, "prose", &res[1]);
    if (!rc && o.out) rc = write_json(&o, first, best, res, 2);
    tok_free(tok);
    return rc;
}
