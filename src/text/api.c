/* The public text API: the tokenizer of text/tokenizer.h behind include/modes.h. */
#include <limits.h>
#include <stdlib.h>

#include "core/error.h"
#include "core/json.h"
#include "text/tokenizer.h"

int modes_tokenizer_load(const char *path, modes_tokenizer **out, modes_error *err) {
    MODES_REQUIRE(err, out);
    *out = NULL;
    MODES_REQUIRE(err, path);
    return tok_load(path, out, err);
}

void modes_tokenizer_free(modes_tokenizer *t) { tok_free(t); }

int modes_tokenizer_vocab(const modes_tokenizer *t) { return t ? (int)tok_vocab_size(t) : -1; }

int modes_tokenize(const modes_tokenizer *t, const char *text, size_t len, int parse_special, int32_t **ids, int *n,
                   modes_error *err) {
    MODES_REQUIRE(err, ids);
    *ids = NULL;
    MODES_REQUIRE(err, n);
    *n = 0;
    MODES_REQUIRE(err, t);
    MODES_REQUIRE(err, text);
    size_t count = 0;
    int rc = tok_encode_special(t, text, len, parse_special, ids, &count, err);
    if (!rc && count > INT_MAX) {
        free(*ids);
        *ids = NULL;
        return modes_fail(err, MODES_E_INPUT, "modes_tokenize: %zu tokens, more than an int counts", count);
    }
    if (!rc) *n = (int)count;
    return rc;
}

int modes_detokenize(const modes_tokenizer *t, const int32_t *ids, int n, int skip_special, char **text, size_t *len,
                     modes_error *err) {
    MODES_REQUIRE(err, text);
    *text = NULL;
    if (len) *len = 0;
    MODES_REQUIRE(err, t);
    if (n < 0) return modes_fail(err, MODES_E_INPUT, "modes_detokenize: n is %d", n);
    if (n > 0) MODES_REQUIRE(err, ids);
    size_t k = 0;
    int rc = tok_decode(t, ids, (size_t)n, skip_special, text, &k, err);
    if (!rc && len) *len = k;
    return rc;
}

int modes_token_to_piece(const modes_tokenizer *t, int32_t id, const char **piece, size_t *len, modes_error *err) {
    MODES_REQUIRE(err, piece);
    *piece = "";
    MODES_REQUIRE(err, len);
    *len = 0;
    MODES_REQUIRE(err, t);
    if (id < 0 || (size_t)id >= tok_vocab_size(t))
        return modes_fail(err, MODES_E_INPUT, "token id %d is out of range (vocabulary of %zu)", id, tok_vocab_size(t));
    const char *b = tok_id_to_bytes(t, id, len);
    if (b) *piece = b;
    return 0;
}

struct modes_detok_stream {
    const modes_tokenizer *tok;
    int skip_special;
    tok_stream st;
    strbuf text; /* what the last push or finish gave */
};

int modes_detok_stream_new(const modes_tokenizer *t, int skip_special, modes_detok_stream **out, modes_error *err) {
    MODES_REQUIRE(err, out);
    *out = NULL;
    MODES_REQUIRE(err, t);
    modes_detok_stream *s = calloc(1, sizeof *s);
    if (!s) return modes_fail(err, MODES_E_INTERNAL, "out of memory");
    s->tok = t;
    s->skip_special = skip_special;
    tok_stream_init(&s->st);
    *out = s;
    return 0;
}

/* Hands the caller the text gathered since the last call, NUL-terminated. */
static int stream_result(modes_detok_stream *s, const char **text, size_t *len, modes_error *err) {
    sb_append(&s->text, "", 0);
    if (s->text.failed) {
        sb_free(&s->text);
        return modes_fail(err, MODES_E_INTERNAL, "out of memory decoding a token");
    }
    *text = s->text.data;
    if (len) *len = s->text.len;
    return 0;
}

int modes_detok_stream_push(modes_detok_stream *s, int32_t id, const char **text, size_t *len, modes_error *err) {
    MODES_REQUIRE(err, text);
    *text = "";
    if (len) *len = 0;
    MODES_REQUIRE(err, s);
    s->text.len = 0;
    int rc = tok_stream_push(s->tok, &s->st, id, s->skip_special, &s->text, err);
    return rc ? rc : stream_result(s, text, len, err);
}

int modes_detok_stream_finish(modes_detok_stream *s, const char **text, size_t *len, modes_error *err) {
    MODES_REQUIRE(err, text);
    *text = "";
    if (len) *len = 0;
    MODES_REQUIRE(err, s);
    s->text.len = 0;
    tok_stream_finish(&s->st, &s->text);
    return stream_result(s, text, len, err);
}

void modes_detok_stream_free(modes_detok_stream *s) {
    if (!s) return;
    sb_free(&s->text);
    free(s);
}
