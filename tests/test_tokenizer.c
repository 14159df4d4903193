/* The tokenizer against the reference ids (../shared/ref/qwen3-tokenizer and the tiny model's
 * fixture: every case, exactly), plus decoding repair, streaming, limits and malformed files. */
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "core/json.h"
#include "io/file.h"
#include "text/tokenizer.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void show(const char *s, size_t n, char *out, size_t cap) {
    strbuf b = {0};
    sb_json_string(&b, s, n < 70 ? n : 70);
    snprintf(out, cap, "%s%s", b.data ? b.data : "?", n > 70 ? "..." : "");
    sb_free(&b);
}

static int same_ids(const int32_t *a, size_t na, const json_node *b) {
    if (!b || b->type != JSON_ARRAY || b->n != na) return 0;
    for (size_t i = 0; i < na; i++)
        if (json_at(b, i)->u.num != a[i]) return 0;
    return 1;
}

/* Decoding the ids one at a time through a stream gives the same text as decoding them at once. */
static int stream_matches(const modes_tokenizer *tok, const int32_t *ids, size_t n, const char *want, size_t wn) {
    tok_stream st;
    strbuf out = {0};
    tok_stream_init(&st);
    modes_error err = {0};
    for (size_t i = 0; i < n; i++)
        if (tok_stream_push(tok, &st, ids[i], 0, &out, &err)) return 0;
    tok_stream_finish(&st, &out);
    int ok = out.len == wn && (!wn || !memcmp(out.data, want, wn));
    sb_free(&out);
    return ok;
}

/* One case line {"text", "ids", "decoded"}: encode, decode, stream. Returns 1 when all agree. */
static int run_case(const modes_tokenizer *tok, const json_node *c, size_t line, const char *file) {
    const json_node *text = json_get(c, "text"), *want = json_get(c, "ids"), *dec = json_get(c, "decoded");
    char shown[128];
    if (!text || text->type != JSON_STRING || !want || !dec || dec->type != JSON_STRING) {
        CHECKF(0, "%s line %zu: malformed case", file, line);
        return 0;
    }
    show(text->u.str, text->n, shown, sizeof shown);
    int32_t *ids;
    size_t n;
    modes_error err = {0};
    if (tok_encode(tok, text->u.str, text->n, &ids, &n, &err)) {
        CHECKF(0, "%s line %zu %s: encode failed: %s", file, line, shown, err.msg);
        return 0;
    }
    int ok = same_ids(ids, n, want);
    CHECKF(ok, "%s line %zu %s: ids differ (got %zu ids, want %zu)", file, line, shown, n, want->n);
    /* Decode the reference ids, so a decode bug shows even where encode differs. */
    int32_t *ref = malloc((want->n + 1) * sizeof *ref);
    for (size_t i = 0; i < want->n; i++) ref[i] = (int32_t)json_at(want, i)->u.num;
    char *out;
    size_t on;
    int drc = tok_decode(tok, ref, want->n, 0, &out, &on, &err);
    int dok = !drc && on == dec->n && !memcmp(out, dec->u.str, on);
    CHECKF(dok, "%s line %zu %s: decoded text differs", file, line, shown);
    int sok = stream_matches(tok, ref, want->n, dec->u.str, dec->n);
    CHECKF(sok, "%s line %zu %s: streaming decode differs", file, line, shown);
    if (!drc) free(out);
    free(ref);
    free(ids);
    return ok && dok && sok;
}

static void run_cases(const char *tok_path, const char *cases_path, size_t want_cases) {
    modes_tokenizer *tok = NULL;
    modes_error err = {0};
    double t0 = now_s();
    int rc = tok_load(tok_path, &tok, &err);
    double t1 = now_s();
    CHECKF(rc == 0, "load %s: %s", tok_path, err.msg);
    if (rc) return;
    printf("%s: loaded in %.3f s\n", tok_path, t1 - t0);
    char *data;
    size_t len, line = 0, passed = 0;
    rc = read_file(cases_path, (size_t)64 << 20, &data, &len, &err);
    CHECKF(rc == 0, "%s", err.msg);
    for (char *p = data, *nl; !rc && p < data + len; p = nl + 1) {
        nl = memchr(p, '\n', (size_t)(data + len - p));
        if (!nl) nl = data + len;
        line++;
        if (nl == p) continue;
        json_doc *doc;
        if (json_parse(p, (size_t)(nl - p), NULL, cases_path, &doc, &err)) {
            CHECKF(0, "%s", err.msg);
            continue;
        }
        passed += (size_t)run_case(tok, json_root(doc), line, cases_path);
        json_free(doc);
    }
    printf("%s: %zu of %zu cases pass\n", cases_path, passed, line);
    CHECKF(line == want_cases && passed == want_cases, "%s: %zu of %zu cases pass, want all %zu", cases_path, passed, line,
           want_cases);
    free(data);
    tok_free(tok);
}

/* The GPT-2 byte alphabet character of byte b, as UTF-8 (written out here independently of the
 * library's table). */
static void gpt2_char(unsigned b, char s[3]) {
    unsigned cp = b, k = 0;
    for (unsigned x = 0; x < b; x++) k += !((x >= '!' && x <= '~') || (x >= 0xA1 && x <= 0xAC) || x >= 0xAE);
    if (!((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE)) cp = 256 + k;
    memset(s, 0, 3);
    if (cp < 0x80) s[0] = (char)cp;
    else {
        s[0] = (char)(0xC0 | cp >> 6);
        s[1] = (char)(0x80 | (cp & 0x3F));
    }
}

static int32_t byte_token(const modes_tokenizer *tok, unsigned b) {
    char s[3];
    gpt2_char(b, s);
    return tok_token_to_id(tok, s);
}

static void expect_decode(const modes_tokenizer *tok, const unsigned char *bytes, size_t n, const char *want) {
    int32_t ids[16];
    for (size_t i = 0; i < n; i++) ids[i] = byte_token(tok, bytes[i]);
    char *out;
    size_t on;
    modes_error err = {0};
    int rc = tok_decode(tok, ids, n, 0, &out, &on, &err);
    CHECKF(rc == 0 && on == strlen(want) && !memcmp(out, want, on), "decode of %zu raw bytes gave \"%s\", want \"%s\"", n,
           rc ? err.msg : out, want);
    CHECKF(stream_matches(tok, ids, n, want, strlen(want)), "streaming decode of %zu raw bytes differs", n);
    if (!rc) free(out);
}

static void test_qwen_api(void) {
    modes_tokenizer *tok = NULL;
    modes_error err = {0};
    if (tok_load(shared_path("ref/qwen3-tokenizer/tokenizer.json"), &tok, &err)) {
        CHECKF(0, "%s", err.msg);
        return;
    }
    CHECK(tok_vocab_size(tok) == 151669);
    CHECK(tok_token_to_id(tok, "<|im_start|>") == 151644);
    CHECK(tok_token_to_id(tok, "<|image_pad|>") == 151655);
    CHECK(tok_token_to_id(tok, "user") == 872);
    CHECK(tok_token_to_id(tok, "no such token at all") == -1);
    CHECK(tok_is_special(tok, 151644) && tok_is_special(tok, 151656));
    CHECK(!tok_is_special(tok, 151667) && tok_is_added(tok, 151667) && !tok_is_added(tok, 872));
    CHECK(!tok_is_special(tok, -1) && !tok_is_special(tok, 1 << 30));
    CHECK(tok_config_token_id(tok, "eos_token") == 151645);
    CHECK(tok_config_token_id(tok, "pad_token") == 151643);
    CHECK(tok_config_token_id(tok, "bos_token") == -1);
    CHECK(tok_chat_template(tok) != NULL);
    size_t n;
    const char *p = tok_id_to_piece(tok, 220, &n); /* " " */
    CHECK(p && n == 2 && !memcmp(p, "\xC4\xA0", 2));
    p = tok_id_to_bytes(tok, 220, &n);
    CHECK(p && n == 1 && p[0] == ' ');
    CHECK(tok_id_to_piece(tok, 151669, &n) == NULL && tok_id_to_piece(tok, -5, &n) == NULL);

    /* Invalid UTF-8 out of the decoder: one U+FFFD per maximal invalid subpart, like Python. */
    expect_decode(tok, (const unsigned char *)"\xE6\x95", 2, "\xEF\xBF\xBD");
    expect_decode(tok, (const unsigned char *)"\xE6" "a", 2, "\xEF\xBF\xBD" "a");
    expect_decode(tok, (const unsigned char *)"\xFF\xFE", 2, "\xEF\xBF\xBD\xEF\xBF\xBD");
    expect_decode(tok, (const unsigned char *)"\xF0\x9F\x98x", 4, "\xEF\xBF\xBDx");
    expect_decode(tok, (const unsigned char *)"\xED\xA0\x80", 3, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
    expect_decode(tok, (const unsigned char *)"\xC0\xAF" "b", 3, "\xEF\xBF\xBD\xEF\xBF\xBD" "b");
    expect_decode(tok, (const unsigned char *)"\xF0\x9F\x98\x80", 4, "\xF0\x9F\x98\x80");

    /* Special tokens are skipped on request; ids out of range are refused. */
    int32_t ids[] = {151644, 872, 151645, 151667};
    char *out;
    size_t on;
    CHECK(tok_decode(tok, ids, 4, 1, &out, &on, &err) == 0 && on == 11 && !strcmp(out, "user<think>"));
    free(out);
    int32_t bad[] = {872, 151669};
    CHECK(tok_decode(tok, bad, 2, 0, &out, &on, &err) == MODES_E_INPUT && strstr(err.msg, "151669"));
    bad[1] = -1;
    CHECK(tok_decode(tok, bad, 2, 0, &out, &on, &err) == MODES_E_INPUT);
    tok_stream st;
    strbuf sb = {0};
    tok_stream_init(&st);
    CHECK(tok_stream_push(tok, &st, 1 << 24, 0, &sb, &err) == MODES_E_INPUT);
    sb_free(&sb);
    CHECK(tok_decode(tok, ids, 0, 0, &out, &on, &err) == 0 && on == 0 && out && out[0] == 0);
    free(out);

    /* Encoding refuses invalid UTF-8 with the offset, and takes empty text. */
    int32_t *enc;
    const char *invalid[] = {"ab\xFF", "\xC3", "x\xED\xA0\x80", "\xF4\x90\x80\x80", "ok\xE6\x95"};
    for (size_t i = 0; i < sizeof invalid / sizeof *invalid; i++) {
        int rc = tok_encode(tok, invalid[i], strlen(invalid[i]), &enc, &n, &err);
        CHECKF(rc == MODES_E_INPUT && strstr(err.msg, "UTF-8") && enc == NULL, "invalid UTF-8 #%zu accepted", i);
    }
    CHECK(tok_encode(tok, "", 0, &enc, &n, &err) == 0 && n == 0 && enc != NULL);
    free(enc);
    /* A NUL inside the text is a character like any other. */
    CHECK(tok_encode(tok, "a\0b", 3, &enc, &n, &err) == 0 && n == 3);
    free(enc);

    /* Long inputs: a 200k-character word and 100k spaces stay fast (no quadratic paths). */
    size_t big = 200000;
    char *s = malloc(big + 1);
    for (size_t i = 0; i < big; i++) s[i] = (char)('a' + (i * 7 + i / 13) % 26);
    double t0 = now_s();
    CHECK(tok_encode(tok, s, big, &enc, &n, &err) == 0 && n > 0);
    if (n) {
        CHECK(tok_decode(tok, enc, n, 0, &out, &on, &err) == 0 && on == big && !memcmp(out, s, big));
        free(out);
    }
    free(enc);
    memset(s, ' ', big / 2);
    s[big / 2 - 1] = 'x';
    CHECK(tok_encode(tok, s, big / 2, &enc, &n, &err) == 0 && n > 0);
    free(enc);
    double dt = now_s() - t0;
    CHECKF(dt < 20, "long inputs took %.1f s", dt);
    free(s);
    tok_free(tok);
}

/* ------------------------------------------------------------------------------------------------
 * Small tokenizers written by the test: other configurations and malformed files. */

static char tmpdir[256];

static const char *write_fixture(const char *name, const char *text) {
    static char path[4][512];
    static int slot;
    char *p = path[slot++ & 3];
    snprintf(p, sizeof path[0], "%s/%s", tmpdir, name);
    FILE *f = fopen(p, "wb");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
    return p;
}

/* A byte-level vocabulary: the 256 byte characters get ids 0..255 in byte order, extra tokens
 * follow. Built as JSON text by the test so fixtures stay small. */
static void byte_vocab(strbuf *sb) {
    for (unsigned b = 0; b < 256; b++) {
        char s[3];
        gpt2_char(b, s);
        if (b) sb_puts(sb, ", ");
        sb_json_string(sb, s, strlen(s));
        sb_printf(sb, ": %u", b);
    }
}

static const char *make_tokenizer(const char *name, const char *extra_vocab, const char *merges, const char *added,
                                  const char *normalizer, const char *pretok) {
    strbuf sb = {0};
    sb_printf(&sb, "{\"version\": \"1.0\", \"added_tokens\": [%s], \"normalizer\": %s, \"pre_tokenizer\": %s, "
                   "\"decoder\": {\"type\": \"ByteLevel\"}, \"model\": {\"type\": \"BPE\", \"vocab\": {",
              added, normalizer, pretok);
    byte_vocab(&sb);
    sb_printf(&sb, "%s%s}, \"merges\": [%s]}}", *extra_vocab ? ", " : "", extra_vocab, merges);
    const char *p = write_fixture(name, sb.data);
    sb_free(&sb);
    return p;
}

/* Encodes text with the tokenizer at path and compares with want (terminated by -1). */
static void expect_ids(const char *path, const char *text, const int32_t *want, const char *label) {
    modes_tokenizer *tok;
    modes_error err = {0};
    if (tok_load(path, &tok, &err)) {
        CHECKF(0, "%s: %s", label, err.msg);
        return;
    }
    int32_t *ids;
    size_t n, nw = 0;
    while (want[nw] >= 0) nw++;
    int rc = tok_encode(tok, text, strlen(text), &ids, &n, &err);
    int ok = !rc && n == nw;
    for (size_t i = 0; ok && i < n; i++) ok = ids[i] == want[i];
    CHECKF(ok, "%s: ids differ (%zu ids%s)", label, rc ? 0 : n, rc ? ", encode failed" : "");
    if (!ok && !rc) {
        for (size_t i = 0; i < n; i++) fprintf(stderr, " %d", ids[i]);
        fputc('\n', stderr);
    }
    if (!rc) free(ids);
    tok_free(tok);
}

static const char *split_regex(const char *behavior) {
    static char buf[4][256];
    static int slot;
    char *b = buf[slot++ & 3];
    snprintf(b, sizeof buf[0],
             "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": {\"String\": \"-\"}, "
             "\"behavior\": \"%s\", \"invert\": false}, {\"type\": \"ByteLevel\", \"add_prefix_space\": false, "
             "\"use_regex\": false}]}",
             behavior);
    return b;
}

static void test_configurations(void) {
    /* GPT-2 style: ByteLevel with its own regex and a prefix space; merges as "a b" strings. */
    const char *gpt2 = "{\"type\": \"ByteLevel\", \"add_prefix_space\": true, \"use_regex\": true}";
    const char *vocab = "\"\\u0120h\": 256, \"\\u0120hi\": 257, \"hi\": 258";
    const char *p = make_tokenizer("gpt2.json", vocab, "\"\\u0120 h\", \"\\u0120h i\", \"h i\"", "", "null", gpt2);
    expect_ids(p, "hi hi", (const int32_t[]){257, 257, -1}, "ByteLevel add_prefix_space");
    /* The same with merges as pairs, and an NFC normalizer inside a Sequence. */
    p = make_tokenizer("pairs.json", vocab, "[\"\\u0120\", \"h\"], [\"\\u0120h\", \"i\"], [\"h\", \"i\"]", "",
                       "{\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"NFC\"}]}", gpt2);
    expect_ids(p, "hi e\xCC\x81", (const int32_t[]){257, ' ', 195, 169, -1}, "pair merges, NFC");

    /* Split behaviors on a literal "-" over "a-b--c". */
    static const struct {
        const char *behavior;
        int32_t want[8];
    } beh[] = {
        {"Isolated", {'a', '-', 'b', '-', '-', 'c', -1}},
        {"Removed", {'a', 'b', 'c', -1}},
        {"MergedWithPrevious", {256, 'b', '-', '-', 'c', -1}}, /* a- b- - c */
        {"MergedWithNext", {'a', 257, '-', 258, -1}},          /* a -b - -c */
        {"Contiguous", {'a', '-', 'b', 259, 'c', -1}},
    };
    const char *v2 = "\"a-\": 256, \"-b\": 257, \"-c\": 258, \"--\": 259";
    const char *m2 = "\"a -\", \"- b\", \"- c\", \"- -\"";
    for (size_t i = 0; i < sizeof beh / sizeof *beh; i++) {
        p = make_tokenizer("split.json", v2, m2, "", "null", split_regex(beh[i].behavior));
        expect_ids(p, "a-b--c", beh[i].want, beh[i].behavior);
    }

    /* Added tokens: longest match first, lstrip/rstrip take the spaces, single_word needs word edges. */
    const char *added = "{\"id\": 300, \"content\": \"<a>\", \"special\": true, \"normalized\": false},"
                        "{\"id\": 301, \"content\": \"<a>b\", \"special\": false, \"normalized\": false},"
                        "{\"id\": 302, \"content\": \"[S]\", \"lstrip\": true, \"rstrip\": true, \"special\": true},"
                        "{\"id\": 303, \"content\": \"cat\", \"single_word\": true, \"normalized\": false},"
                        "{\"id\": 304, \"content\": \"\\u00f1\", \"special\": false}";
    const char *plain = "{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": true}";
    p = make_tokenizer("added.json", "", "", added, "null", plain);
    expect_ids(p, "<a>b<a>", (const int32_t[]){301, 300, -1}, "longest added token");
    expect_ids(p, "x  [S]  y", (const int32_t[]){'x', 302, 'y', -1}, "lstrip/rstrip");
    expect_ids(p, "cat cats", (const int32_t[]){303, ' ', 'c', 'a', 't', 's', -1}, "single_word");
    expect_ids(p, "\xC3\xB1", (const int32_t[]){304, -1}, "added token with a Latin-1 character");

    /* The reference decodes added tokens through the ByteLevel decoder too: "\u00f1" is the byte
     * alphabet's character for byte 0xF1, so it decodes to that lone byte, then U+FFFD. */
    modes_tokenizer *tok;
    modes_error err = {0};
    if (tok_load(p, &tok, &err) == 0) {
        int32_t ids[] = {304, 300};
        char *out;
        size_t n;
        CHECK(tok_decode(tok, ids, 2, 0, &out, &n, &err) == 0 && !strcmp(out, "\xEF\xBF\xBD<a>"));
        free(out);
        CHECK(tok_decode(tok, ids, 2, 1, &out, &n, &err) == 0 && !strcmp(out, "\xEF\xBF\xBD"));
        free(out);
        tok_free(tok);
    }
}

/* Split with behavior Removed drops what the regex matches, so the ids left show what it matched.
 * The patterns are written for Oniguruma: \s is White_Space (U+0085 but not U+180E), \w includes
 * marks, \h is a hex digit, and \p{..} knows the characters Unicode 15 added. */
static void test_regex_dialect(void) {
    static const struct {
        const char *regex, *text, *label;
        int32_t want[12];
    } cases[] = {
        {"\\\\p{L}", "a\xF0\xB1\x8D\x90" "b1", "Unicode 15 letter (CJK Ext. H)", {'1', -1}},
        {"[^\\\\s\\\\p{N}]", "x\xF0\x9E\x93\xB0 9", "Unicode 15 digit (Nag Mundari)", {0xF0, 0x9E, 0x93, 0xB0, ' ', '9', -1}},
        {"\\\\s", "a\xE1\xA0\x8E" "b\xC2\x85" "c", "White_Space", {'a', 0xE1, 0xA0, 0x8E, 'b', 'c', -1}},
        {"\\\\S+", "a b\xC2\xA0" "c", "negated White_Space", {' ', 0xC2, 0xA0, -1}},
        {"\\\\w", "a\xCC\x81_-", "word characters include marks", {'-', -1}},
        {"\\\\h", "0xG f", "\\h is a hex digit", {'x', 'G', ' ', -1}},
        {"(?i:'s)", "IT'S it's", "case-insensitive group", {'I', 'T', ' ', 'i', 't', -1}},
        {"x*", "axxb", "empty matches", {'a', 'b', -1}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char pre[512];
        snprintf(pre, sizeof pre,
                 "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": {\"Regex\": \"%s\"}, "
                 "\"behavior\": \"Removed\"}, {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": false}]}",
                 cases[i].regex);
        const char *p = make_tokenizer("dialect.json", "", "", "", "null", pre);
        expect_ids(p, cases[i].text, cases[i].want, cases[i].label);
    }
}

static void expect_load_error(const char *path, const char *label, const char *needle) {
    modes_tokenizer *tok = NULL;
    modes_error err = {0};
    int rc = tok_load(path, &tok, &err);
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    CHECKF(rc == MODES_E_INPUT && tok == NULL, "%s: loaded (rc %d)", label, rc);
    CHECKF(strstr(err.msg, base) != NULL, "%s: message does not name the file: %s", label, err.msg);
    CHECKF(!needle || strstr(err.msg, needle), "%s: message lacks \"%s\": %s", label, needle, err.msg);
    tok_free(tok);
}

/* A byte-level vocabulary without the token of byte 'q', with "<unk>" = 256 as unk_token or not. */
static const char *without_q(const char *name, int with_unk) {
    strbuf sb = {0};
    sb_puts(&sb, "{\"model\": {\"type\": \"BPE\", \"merges\": [], \"vocab\": {");
    for (unsigned b = 0; b < 256; b++) {
        char ch[3];
        gpt2_char(b, ch);
        if (b == 'q') continue;
        sb_json_string(&sb, ch, strlen(ch));
        sb_printf(&sb, ": %u, ", b);
    }
    sb_printf(&sb, "\"<unk>\": 256}%s}, \"pre_tokenizer\": {\"type\": \"ByteLevel\"}, \"decoder\": {\"type\": \"ByteLevel\"}}",
              with_unk ? ", \"unk_token\": \"<unk>\"" : "");
    const char *p = write_fixture(name, sb.data);
    sb_free(&sb);
    return p;
}

static void test_malformed(void) {
    const char *bl = "{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": true}";
    const char *good = make_tokenizer("good.json", "", "", "", "null", bl);
    modes_tokenizer *tok;
    modes_error err = {0};
    CHECKF(tok_load(good, &tok, &err) == 0, "the well-formed fixture fails: %s", err.msg);
    if (!err.code) tok_free(tok);

    expect_load_error(write_fixture("truncated.json", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0"),
                      "truncated JSON", "JSON");
    expect_load_error(write_fixture("nomodel.json", "{\"version\": \"1.0\", \"added_tokens\": []}"), "missing model",
                      "model");
    expect_load_error(write_fixture("wordpiece.json", "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"a\": 0}}}"),
                      "unknown model type", "WordPiece");
    expect_load_error(make_tokenizer("badmerge.json", "", "\"a zz\"", "", "null", bl), "merge of an unknown token", "zz");
    expect_load_error(make_tokenizer("badmerge2.json", "", "\"a b\"", "", "null", bl), "merge result not in vocab",
                      "ab");
    expect_load_error(make_tokenizer("badmerge3.json", "", "\"a b c\"", "", "null", bl), "merge with two spaces",
                      "merges[0]");
    expect_load_error(
        make_tokenizer("badregex.json", "", "", "", "null",
                       "{\"type\": \"Split\", \"pattern\": {\"Regex\": \"(?i:a|b\"}, \"behavior\": \"Isolated\"}"),
        "bad regex", "regex");
    expect_load_error(make_tokenizer("metaspace.json", "", "", "", "null", "{\"type\": \"Metaspace\"}"),
                      "unsupported pre_tokenizer", "Metaspace");
    expect_load_error(make_tokenizer("nfkc.json", "", "", "", "{\"type\": \"NFKC\"}", bl), "unsupported normalizer",
                      "NFKC");
    expect_load_error(make_tokenizer("nobytelevel.json", "", "", "", "null", "null"), "no ByteLevel", "ByteLevel");
    expect_load_error(make_tokenizer("badid.json", "\"zz\": -3", "", "", "null", bl), "negative id", "id");
    expect_load_error(make_tokenizer("badadded.json", "", "", "{\"id\": 5, \"content\": \"\"}", "null", bl),
                      "empty added token", "content");
    /* Tokenizers that could not encode arbitrary text: refused at load, not encoding to nothing. */
    expect_load_error(write_fixture("emptyvocab.json", "{\"model\": {\"type\": \"BPE\", \"vocab\": {}, \"merges\": []}, "
                                                       "\"pre_tokenizer\": {\"type\": \"ByteLevel\"}, \"decoder\": {\"type\": \"ByteLevel\"}, \"added_tokens\": "
                                                       "[{\"id\": 0, \"content\": \"<s>\", \"special\": true}]}"),
                      "empty vocabulary with added tokens", "model.vocab is empty");
    expect_load_error(write_fixture("nobytes.json", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"hello\": 0, \"world\": 1}, "
                                                    "\"merges\": []}, \"pre_tokenizer\": {\"type\": \"ByteLevel\"}, \"decoder\": {\"type\": \"ByteLevel\"}}"),
                      "no byte-level tokens", "256 bytes (byte 0x00 first)");
    /* One byte missing is enough; an unk_token to stand for it makes the tokenizer usable again. */
    expect_load_error(without_q("noq.json", 0), "one byte missing", "1 of the 256 bytes (byte 0x71 first)");
    modes_tokenizer *ut = NULL;
    CHECKF(tok_load(without_q("noq_unk.json", 1), &ut, &err) == 0, "a missing byte with an unk_token: %s", err.msg);
    if (ut) {
        int32_t *ids = NULL;
        size_t n = 0;
        CHECK(tok_encode(ut, "q", 1, &ids, &n, &err) == 0 && n >= 1 && ids[n - 1] == 256); /* after a prefix space */
        free(ids);
        tok_free(ut);
    }
    expect_load_error(write_fixture("array.json", "[1, 2]"), "not an object", NULL);
    expect_load_error(write_fixture("empty.json", ""), "empty file", NULL);
    /* Over the size limit: refused before reading (the file is sparse, so this costs nothing). */
    const char *huge = write_fixture("huge.json", "{");
    CHECK(truncate(huge, (off_t)TOK_MAX_FILE_BYTES + 1) == 0);
    expect_load_error(huge, "file over the size limit", "limit");

    /* A folder without tokenizer.json names the path it looked for. */
    char sub[300];
    snprintf(sub, sizeof sub, "%s/emptydir", tmpdir);
    CHECK(mkdir(sub, 0700) == 0);
    modes_tokenizer *none = NULL;
    CHECK(tok_load(sub, &none, &err) == MODES_E_INPUT && strstr(err.msg, "emptydir/tokenizer.json") && !none);
}

int main(void) {
    require_shared();
    snprintf(tmpdir, sizeof tmpdir, "/tmp/modes_test_tok_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    run_cases(shared_path("ref/qwen3-tokenizer"), shared_path("ref/qwen3-tokenizer/cases.jsonl"), 360);
    run_cases(shared_path("ref/qwen3vlmoe-tiny-a/model"), shared_path("ref/qwen3vlmoe-tiny-a/tokenizer_cases.jsonl"),
              8);
    test_qwen_api();
    test_configurations();
    test_regex_dialect();
    test_malformed();
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return check_done();
}
