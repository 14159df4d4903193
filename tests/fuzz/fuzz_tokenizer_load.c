/* Loading a tokenizer.json (src/text/tokenizer.c): vocabulary, merges, added tokens, normalizer and
 * pre-tokenizer regexes (compiled with PCRE2), decoder. The same bytes are also written as the
 * tokenizer_config.json beside it (special-token names, chat template). A tokenizer that loads is
 * used: a few fixed texts are encoded and decoded, and every id is looked up. */
#include "fuzz.h"
#include "text/tokenizer.h"

static char *json_path, *config_path;

static void exercise(const modes_tokenizer *tok) {
    static const char *texts[] = {"Hello, world! 123 <|im_start|>user\n", "  e\xcc\x81t\xc3\xa9 \xe2\x80\x94 \xf0\x9f\x98\x80\t\r\n",
                                  "a", ""};
    const size_t vocab = tok_vocab_size(tok);
    FUZZ_CHECK(vocab >= 1 && vocab <= (size_t)TOK_MAX_ID, "vocab %zu", vocab);
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
        int32_t *ids = NULL;
        size_t n = 0;
        modes_error err = {0};
        int rc = tok_encode(tok, texts[i], strlen(texts[i]), &ids, &n, &err);
        if (rc) {
            fuzz_check_error(rc, &err, NULL);
            continue;
        }
        FUZZ_CHECK(ids, "no id array");
        for (size_t k = 0; k < n; k++) FUZZ_CHECK(ids[k] >= 0 && (size_t)ids[k] < vocab, "id %d of %zu", ids[k], vocab);
        char *text = NULL;
        size_t len = 0;
        rc = tok_decode(tok, ids, n, 0, &text, &len, &err);
        FUZZ_CHECK(rc == 0 && text && strlen(text) <= len, "decode: %s", err.msg);
        free(text);
        free(ids);
    }
    /* Every id, and one past the end, through the queries. */
    const size_t lim = vocab < 4096 ? vocab + 1 : 4096;
    for (size_t id = 0; id < lim; id++) {
        size_t len = 0;
        const char *piece = tok_id_to_piece(tok, (int32_t)id, &len);
        if (piece && len < 4096) {
            char buf[4096];
            memcpy(buf, piece, len);
            buf[len] = 0;
            if (strlen(buf) == len) FUZZ_CHECK(tok_token_to_id(tok, buf) >= 0, "piece of %zu not found", id);
        }
        tok_id_to_bytes(tok, (int32_t)id, &len);
        tok_is_special(tok, (int32_t)id);
    }
    static const char *keys[] = {"eos_token", "bos_token", "pad_token", "unk_token", "other"};
    for (int i = 0; i < 5; i++) {
        int32_t id = tok_config_token_id(tok, keys[i]);
        FUZZ_CHECK(id >= -1 && (id < 0 || (size_t)id < vocab), "config token %d", id);
    }
    const char *tmpl = tok_chat_template(tok);
    if (tmpl) (void)strlen(tmpl);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!json_path) {
        json_path = fuzz_path("tok/tokenizer.json");
        config_path = fuzz_path("tok/tokenizer_config.json");
    }
    fuzz_write(json_path, data, size);
    fuzz_write(config_path, data, size);
    modes_tokenizer *tok = NULL;
    modes_error err = {0};
    int rc = tok_load(json_path, &tok, &err);
    if (rc) {
        FUZZ_CHECK(!tok, "tokenizer returned on failure");
        fuzz_check_error(rc, &err, json_path); /* the config beside it has the same folder name */
        return 0;
    }
    exercise(tok);
    tok_free(tok);
    return 0;
}
