/* The Qwen3-VL chat template against ../shared/ref/qwen3-tokenizer/chat_cases.json (prompt, ids,
 * image expansion), more conversations rendered by jinja2, template detection, and errors. */
#include <stdint.h>

#include "check.h"
#include "core/json.h"
#include "io/file.h"
#include "text/chat.h"
#include "text/tokenizer.h"

static int ids_equal(const int32_t *a, size_t n, const json_node *b) {
    if (!b || b->type != JSON_ARRAY || b->n != n) return 0;
    for (size_t i = 0; i < n; i++)
        if (json_at(b, i)->u.num != a[i]) return 0;
    return 1;
}

static int encode_equals(const modes_tokenizer *tok, const char *s, size_t n, const json_node *want) {
    int32_t *ids;
    size_t k;
    modes_error err = {0};
    if (tok_encode(tok, s, n, &ids, &k, &err)) return 0;
    int ok = ids_equal(ids, k, want);
    free(ids);
    return ok;
}

static void check_expansion(const modes_tokenizer *tok, const char *name, const char *prompt, size_t plen,
                            const json_node *exp) {
    const json_node *counts = json_get(exp, "num_image_tokens"), *want = json_get(exp, "ids_expanded"),
                    *text = json_get(exp, "prompt_expanded");
    if (!counts || counts->type != JSON_ARRAY || !want || !text) {
        CHECKF(0, "%s: malformed image_expansion", name);
        return;
    }
    size_t nc = counts->n, *c = malloc((nc + 1) * sizeof *c);
    for (size_t i = 0; i < nc; i++) c[i] = (size_t)json_at(counts, i)->u.num;
    int32_t *ids, *big;
    size_t n, nbig;
    modes_error err = {0};
    CHECK(tok_encode(tok, prompt, plen, &ids, &n, &err) == 0);
    int32_t pad = tok_token_to_id(tok, chat_template_image_pad(chat_template_by_name("qwen3-vl")));
    CHECK(pad == 151655);
    int rc = chat_expand_pads(ids, n, pad, c, nc, &big, &nbig, &err);
    CHECKF(rc == 0 && ids_equal(big, nbig, want), "%s: expanded ids differ (%s)", name, rc ? err.msg : "values");
    if (!rc) free(big);
    /* Expanding the text instead gives the same ids, since the pad is matched as one token. */
    CHECKF(encode_equals(tok, text->u.str, text->n, want), "%s: prompt_expanded does not encode to ids_expanded", name);
    /* A wrong number of counts is refused. */
    CHECK(chat_expand_pads(ids, n, pad, c, nc + 1, &big, &nbig, &err) == MODES_E_INPUT && big == NULL);
    free(ids);
    free(c);
}

static void test_reference_cases(void) {
    modes_tokenizer *tok = NULL;
    modes_error err = {0};
    const char *path = shared_path("ref/qwen3-tokenizer/chat_cases.json");
    char *data;
    size_t len;
    json_doc *doc = NULL;
    if (tok_load(shared_path("ref/qwen3-tokenizer"), &tok, &err) || read_file(path, 1 << 24, &data, &len, &err)) {
        CHECKF(0, "%s", err.msg);
        tok_free(tok);
        return;
    }
    CHECKF(json_parse(data, len, NULL, path, &doc, &err) == 0, "%s", err.msg);
    free(data);
    const json_node *cases = json_get(json_root(doc), "cases");
    const chat_template *t = chat_template_by_name("qwen3-vl");
    CHECK(t != NULL && cases && cases->n == 2);
    for (size_t i = 0; t && cases && i < cases->n; i++) {
        const json_node *c = json_at(cases, i), *nm = json_get(c, "name"), *want = json_get(c, "prompt");
        const char *name = nm ? nm->u.str : "?";
        chat_conversation conv;
        if (chat_from_json(json_get(c, "messages"), path, &conv, &err)) {
            CHECKF(0, "%s: %s", name, err.msg);
            continue;
        }
        chat_options opt = {.add_generation_prompt = json_get(c, "add_generation_prompt")->type == JSON_TRUE};
        char *prompt;
        size_t plen;
        int rc = chat_render(t, conv.msgs, conv.n, &opt, &prompt, &plen, &err);
        CHECKF(rc == 0 && plen == want->n && !memcmp(prompt, want->u.str, plen), "%s: prompt differs: %s", name,
               rc ? err.msg : prompt);
        if (rc) {
            chat_conversation_free(&conv);
            continue;
        }
        CHECKF(encode_equals(tok, prompt, plen, json_get(c, "ids")), "%s: ids differ", name);
        CHECK(chat_count_parts(conv.msgs, conv.n, CHAT_PART_IMAGE) == (json_get(c, "image_expansion") ? 1u : 0u));
        if (json_get(c, "image_expansion")) check_expansion(tok, name, prompt, plen, json_get(c, "image_expansion"));
        free(prompt);
        chat_conversation_free(&conv);
    }
    json_free(doc);
    tok_free(tok);
}

/* Conversations rendered with the reference template by jinja2 3.1.6 (trim_blocks, lstrip_blocks,
 * as transformers' apply_chat_template does). */
static const struct {
    const char *messages;
    int add_generation_prompt, add_vision_id;
    const char *prompt;
} rendered[] = {
    {"[{\"role\":\"system\",\"content\":\"You are helpful.\"},{\"role\":\"user\",\"content\":\"Hi\"},"
     "{\"role\":\"assistant\",\"content\":\"Hello!\"},{\"role\":\"user\",\"content\":[{\"type\":\"image\",\"image\":"
     "\"a.png\"},{\"type\":\"text\",\"text\":\"What?\"},{\"type\":\"image_url\",\"image_url\":{\"url\":"
     "\"http://x/b.png\"}},{\"type\":\"video\",\"video\":\"v.mp4\"}]}]",
     1, 1,
     "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!"
     "<|im_end|>\n<|im_start|>user\nPicture 1: <|vision_start|><|image_pad|><|vision_end|>What?Picture 2: "
     "<|vision_start|><|image_pad|><|vision_end|>Video 1: <|vision_start|><|video_pad|><|vision_end|><|im_end|>\n"
     "<|im_start|>assistant\n"},
    {"[{\"role\":\"user\",\"content\":\"q\"},{\"role\":\"assistant\",\"content\":\"a\"},{\"role\":\"tool\","
     "\"content\":\"r1\"},{\"role\":\"tool\",\"content\":[{\"type\":\"text\",\"text\":\"r2\"},{\"type\":\"image\"}]}]",
     0, 0,
     "<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\na<|im_end|>\n<|im_start|>user\n<tool_response>\nr1\n"
     "</tool_response>\n<tool_response>\nr2<|vision_start|><|image_pad|><|vision_end|>\n</tool_response><|im_end|>\n"},
    {"[{\"role\":\"system\",\"content\":[{\"type\":\"text\",\"text\":\"A\"},{\"type\":\"image\"},{\"type\":\"text\","
     "\"text\":\"B\"}]},{\"role\":\"user\",\"content\":[{\"type\":\"image\"},{\"type\":\"image\"},{\"text\":\"two\"}]},"
     "{\"role\":\"system\",\"content\":\"ignored\"},{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":"
     "\"x\"},{\"type\":\"image\"},{\"type\":\"text\",\"text\":\"y\"}]}]",
     1, 0,
     "<|im_start|>system\nAB<|im_end|>\n<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|><|vision_start|>"
     "<|image_pad|><|vision_end|>two<|im_end|>\n<|im_start|>assistant\nxy<|im_end|>\n<|im_start|>assistant\n"},
    {"[{\"role\":\"tool\",\"content\":\"first\"},{\"role\":\"user\",\"content\":\"\"}]", 1, 0,
     "<|im_start|>user\n<tool_response>\nfirst\n</tool_response><|im_end|>\n<|im_start|>user\n<|im_end|>\n"
     "<|im_start|>assistant\n"},
};

static void test_rendered(void) {
    const chat_template *t = chat_template_by_name("qwen3-vl");
    for (size_t i = 0; i < sizeof rendered / sizeof *rendered; i++) {
        json_doc *doc;
        modes_error err = {0};
        chat_conversation conv;
        if (json_parse(rendered[i].messages, strlen(rendered[i].messages), NULL, "case", &doc, &err) ||
            chat_from_json(json_root(doc), "case", &conv, &err)) {
            CHECKF(0, "case %zu: %s", i, err.msg);
            continue;
        }
        chat_options opt = {rendered[i].add_generation_prompt, rendered[i].add_vision_id};
        char *p;
        size_t n;
        int rc = chat_render(t, conv.msgs, conv.n, &opt, &p, &n, &err);
        CHECKF(rc == 0 && n == strlen(rendered[i].prompt) && !strcmp(p, rendered[i].prompt), "case %zu: got %s", i,
               rc ? err.msg : p);
        if (!rc) free(p);
        chat_conversation_free(&conv);
        json_free(doc);
    }
    /* Messages built in C, without JSON. */
    chat_part parts[] = {{CHAT_PART_IMAGE, NULL, 0}, {CHAT_PART_TEXT, "Describe this image.", 20}};
    chat_message m = {.role = "user", .parts = parts, .n_parts = 2};
    chat_options opt = {.add_generation_prompt = 1};
    char *p;
    size_t n;
    modes_error err = {0};
    CHECK(chat_render(t, &m, 1, &opt, &p, &n, &err) == 0 &&
          !strcmp(p, "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>Describe this image.<|im_end|>\n"
                     "<|im_start|>assistant\n"));
    free(p);
    CHECK(chat_render(t, &m, 1, NULL, &p, &n, &err) == 0 && n > 0 && !strstr(p, "assistant"));
    free(p);
}

static void test_detection(void) {
    const chat_template *q = chat_template_by_name("qwen3-vl");
    CHECK(q && !strcmp(chat_template_name(q), "qwen3-vl") && !chat_template_by_name("llama"));
    CHECK(!strcmp(chat_template_end_of_turn(q), "<|im_end|>") && !strcmp(chat_template_video_pad(q), "<|video_pad|>"));
    /* The tiny model ships the Qwen3-VL Instruct template; the Qwen3 text template is not it. */
    modes_tokenizer *tiny = NULL, *qwen3 = NULL;
    modes_error err = {0};
    CHECKF(tok_load(shared_path("ref/qwen3vlmoe-tiny-a/model"), &tiny, &err) == 0, "%s", err.msg);
    CHECKF(tok_load(shared_path("ref/qwen3-tokenizer"), &qwen3, &err) == 0, "%s", err.msg);
    if (tiny) CHECK(chat_template_detect(tok_chat_template(tiny), NULL) == q);
    if (qwen3) CHECK(tok_chat_template(qwen3) && chat_template_detect(tok_chat_template(qwen3), "qwen3_vl_moe") == NULL);
    char *jinja;
    size_t n;
    if (!read_file(shared_path("ref/qwen3-tokenizer/chat_template_qwen3vl_instruct.jinja"), 1 << 20, &jinja, &n, &err)) {
        CHECK(chat_template_detect(jinja, NULL) == q);
        free(jinja);
    }
    CHECK(chat_template_detect(NULL, "qwen3_vl_moe") == q && chat_template_detect(NULL, "qwen3_vl") == q);
    CHECK(chat_template_detect(NULL, "llama") == NULL && chat_template_detect(NULL, NULL) == NULL);
    tok_free(tiny);
    tok_free(qwen3);
}

static void expect_json_error(const char *messages, const char *needle) {
    json_doc *doc;
    modes_error err = {0};
    chat_conversation conv;
    if (json_parse(messages, strlen(messages), NULL, "m.json", &doc, &err)) {
        CHECKF(0, "%s", err.msg);
        return;
    }
    int rc = chat_from_json(json_root(doc), "m.json", &conv, &err);
    CHECKF(rc == MODES_E_INPUT && strstr(err.msg, "m.json") && strstr(err.msg, needle), "%s: rc %d, %s", messages, rc,
           err.msg);
    CHECK(conv.msgs == NULL && conv.n == 0);
    json_free(doc);
}

static void test_errors(void) {
    const chat_template *t = chat_template_by_name("qwen3-vl");
    chat_message m = {.role = "narrator", .content = "x", .content_len = 1};
    char *p;
    size_t n;
    modes_error err = {0};
    CHECK(chat_render(t, &m, 1, NULL, &p, &n, &err) == MODES_E_INPUT && strstr(err.msg, "narrator") && !p);
    CHECK(chat_render(t, &m, 0, NULL, &p, &n, &err) == MODES_E_INPUT && !p);
    expect_json_error("{\"role\": \"user\"}", "list");
    expect_json_error("[{\"content\": \"x\"}]", "role");
    expect_json_error("[{\"role\": \"user\"}]", "content");
    expect_json_error("[{\"role\": \"user\", \"content\": [{\"type\": \"audio\"}]}]", "part 0");
    expect_json_error("[{\"role\": \"user\", \"content\": [{\"text\": 5}]}]", "text");
    expect_json_error("[{\"role\": \"assistant\", \"content\": \"\", \"tool_calls\": [{}]}]", "tool_calls");
    expect_json_error("[1]", "message 0");

    int32_t ids[] = {1, 9, 2, 9, 3}, *out;
    size_t counts[] = {3, 1}, zero[] = {0, 1};
    CHECK(chat_expand_pads(ids, 5, 9, counts, 2, &out, &n, &err) == 0 && n == 7 && out[1] == 9 && out[3] == 9 &&
          out[4] == 2 && out[5] == 9 && out[6] == 3);
    free(out);
    CHECK(chat_expand_pads(ids, 5, 9, counts, 1, &out, &n, &err) == MODES_E_INPUT && strstr(err.msg, "2 placeholder"));
    CHECK(chat_expand_pads(ids, 5, 9, zero, 2, &out, &n, &err) == MODES_E_INPUT);
    CHECK(chat_expand_pads(ids, 0, 9, NULL, 0, &out, &n, &err) == 0 && n == 0);
    free(out);
}

int main(void) {
    require_shared();
    test_reference_cases();
    test_rendered();
    test_detection();
    test_errors();
    return check_done();
}
