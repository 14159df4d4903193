/* Encoding arbitrary bytes and decoding arbitrary ids with a real tokenizer (the tiny Qwen3-VL-MoE
 * test model's tokenizer.json, copied into tests/fuzz/data: NFC, the Qwen split regex, ByteLevel,
 * added tokens). MODES_FUZZ_TOKENIZER names another tokenizer.json (the full Qwen3 one, say).
 *
 * Checked: invalid UTF-8 is refused with MODES_E_INPUT, valid text encodes to in-range ids; text that
 * NFC leaves alone decodes back to itself; the input read as ids decodes (or is refused for an
 * out-of-range id), and streaming those ids one by one gives the same text as decoding them at once. */
#include "fuzz.h"
#include "text/tokenizer.h"

static modes_tokenizer *tok;

static void load_once(void) {
    if (tok) return;
    char *path = getenv("MODES_FUZZ_TOKENIZER") ? strdup(getenv("MODES_FUZZ_TOKENIZER")) : fuzz_data_path("tokenizer.json");
    modes_error err = {0};
    if (tok_load(path, &tok, &err)) {
        fprintf(stderr, "fuzz_tokenizer: %s\n", err.msg);
        abort();
    }
    free(path);
}

static int valid_utf8(const uint8_t *s, size_t n) {
    for (size_t i = 0; i < n;) {
        unsigned c = s[i], need, lo = 0x80, hi = 0xBF;
        if (c < 0x80) { i++; continue; }
        if (c >= 0xC2 && c <= 0xDF) need = 1;
        else if (c >= 0xE0 && c <= 0xEF) { need = 2; if (c == 0xE0) lo = 0xA0; if (c == 0xED) hi = 0x9F; }
        else if (c >= 0xF0 && c <= 0xF4) { need = 3; if (c == 0xF0) lo = 0x90; if (c == 0xF4) hi = 0x8F; }
        else return 0;
        if (n - i - 1 < need) return 0;
        for (unsigned k = 1; k <= need; k++) {
            if (s[i + k] < lo || s[i + k] > hi) return 0;
            lo = 0x80;
            hi = 0xBF;
        }
        i += need + 1;
    }
    return 1;
}

static void check_encode(const uint8_t *data, size_t size) {
    const size_t vocab = tok_vocab_size(tok);
    int32_t *ids = NULL;
    size_t n = 0;
    modes_error err = {0};
    int rc = tok_encode(tok, (const char *)data, size, &ids, &n, &err);
    if (!valid_utf8(data, size)) {
        FUZZ_CHECK(rc == MODES_E_INPUT && !ids, "invalid UTF-8 accepted (rc %d)", rc);
        fuzz_check_error(rc, &err, "UTF-8");
        return;
    }
    FUZZ_CHECK(rc == 0 && ids, "valid text refused: %s", err.msg);
    for (size_t i = 0; i < n; i++) FUZZ_CHECK(ids[i] >= 0 && (size_t)ids[i] < vocab, "id %d", ids[i]);
    char *text = NULL;
    size_t len = 0;
    rc = tok_decode(tok, ids, n, 0, &text, &len, &err);
    FUZZ_CHECK(rc == 0, "decode of encoded text failed: %s", err.msg);
    int nfc_identity = 1; /* nothing below U+0300 changes under NFC */
    for (size_t i = 0; i < size; i++) nfc_identity &= data[i] < 0xCC;
    if (nfc_identity)
        FUZZ_CHECK(len == size && !memcmp(text, data, size), "decode(encode(x)) != x for %zu bytes", size);
    free(text);
    free(ids);
}

static void check_decode(const uint8_t *data, size_t size) {
    const size_t vocab = tok_vocab_size(tok);
    size_t n = size / 2;
    int32_t *ids = malloc((n ? n : 1) * sizeof *ids);
    FUZZ_CHECK(ids, "out of memory");
    /* Mostly valid ids, a few out of range either side. */
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned v = (unsigned)data[2 * i] | (unsigned)data[2 * i + 1] << 8;
        ids[i] = (int32_t)(v % (vocab + 4)) - 2;
        if (v == 0xFFFF) ids[i] = INT32_MIN;
        bad |= ids[i] < 0 || (size_t)ids[i] >= vocab;
    }
    for (int skip = 0; skip < 2; skip++) {
        char *text = NULL;
        size_t len = 0;
        modes_error err = {0};
        int rc = tok_decode(tok, ids, n, skip, &text, &len, &err);
        if (bad) {
            FUZZ_CHECK(rc == MODES_E_INPUT && !text, "out-of-range id accepted");
            fuzz_check_error(rc, &err, "out of range");
            continue;
        }
        FUZZ_CHECK(rc == 0 && text && text[len] == 0, "decode failed: %s", err.msg);
        FUZZ_CHECK(valid_utf8((const uint8_t *)text, len), "decode gave invalid UTF-8");
        strbuf sb = {0};
        tok_stream st;
        tok_stream_init(&st);
        for (size_t i = 0; i < n; i++) FUZZ_CHECK(tok_stream_push(tok, &st, ids[i], skip, &sb, &err) == 0, "push");
        tok_stream_finish(&st, &sb);
        FUZZ_CHECK(sb.len == len && (len == 0 || !memcmp(sb.data, text, len)), "streamed text differs from decode");
        sb_free(&sb);
        free(text);
    }
    free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    load_once();
    check_encode(data, size);
    check_decode(data, size);
    return 0;
}
