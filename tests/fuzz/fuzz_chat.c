/* The chat template with arbitrary message text (src/text/chat.c), through the steps a prompt takes:
 * render, encode with the tiny test tokenizer, expand the image placeholders.
 *
 * Input layout: byte 0 holds options (bit 0 add_generation_prompt, bit 1 add_vision_id); the rest
 * is split at 0xFF bytes (never part of UTF-8) into messages, each led by one byte: its low 3 bits
 * pick the role (system, user, assistant, tool, or an unknown one), bits 3-5 a number of image parts
 * put before the text, bit 6 a video part. Message text may hold anything, special-token strings
 * included. When the whole input parses as JSON, it is also read as an OpenAI-style message list
 * (chat_from_json) and rendered. */
#include "core/json.h"
#include "fuzz.h"
#include "text/chat.h"
#include "text/tokenizer.h"

#define MAX_MSGS 16
#define MAX_PARTS (MAX_MSGS * 9)

static modes_tokenizer *tok;
static const chat_template *tmpl;

static void load_once(void) {
    if (tok) return;
    char *path = fuzz_data_path("tokenizer.json");
    modes_error err = {0};
    if (tok_load(path, &tok, &err)) {
        fprintf(stderr, "fuzz_chat: %s\n", err.msg);
        abort();
    }
    free(path);
    tmpl = chat_template_by_name("qwen3-vl");
    FUZZ_CHECK(tmpl && chat_template_detect(NULL, "qwen3_vl_moe") == tmpl, "template");
}

/* Encodes the rendering and widens each image placeholder to 1..4 tokens. */
static void encode_and_expand(const char *text, size_t len, size_t n_images) {
    int32_t *ids = NULL, *out = NULL;
    size_t n = 0, out_n = 0;
    modes_error err = {0};
    int rc = tok_encode(tok, text, len, &ids, &n, &err);
    if (rc) {
        fuzz_check_error(rc, &err, "UTF-8"); /* the only way a rendering fails to encode */
        return;
    }
    const int32_t pad = tok_token_to_id(tok, chat_template_image_pad(tmpl));
    FUZZ_CHECK(pad >= 0, "no image pad token");
    size_t pads = 0;
    for (size_t i = 0; i < n; i++) pads += ids[i] == pad;
    FUZZ_CHECK(pads >= n_images, "%zu placeholders for %zu images", pads, n_images);
    size_t counts[MAX_PARTS + 64], extra = 0;
    const size_t nc = pads < sizeof counts / sizeof *counts ? pads : 0;
    for (size_t k = 0; k < nc; k++) extra += (counts[k] = 1 + k % 4) - 1;
    rc = chat_expand_pads(ids, n, pad, counts, nc, &out, &out_n, &err);
    if (nc == pads) {
        FUZZ_CHECK(rc == 0 && out_n == n + extra, "expansion: %s", err.msg);
    } else {
        FUZZ_CHECK(rc == MODES_E_INPUT, "a wrong placeholder count accepted");
    }
    /* One count too few is always an error. */
    if (nc && nc == pads) {
        int32_t *none = NULL;
        size_t none_n = 0;
        rc = chat_expand_pads(ids, n, pad, counts, nc - 1, &none, &none_n, &err);
        FUZZ_CHECK(rc == MODES_E_INPUT && !none, "too few counts accepted");
    }
    free(out);
    free(ids);
}

/* Images of system and assistant turns are dropped by the template: only user and tool ones count. */
static size_t rendered_images(const chat_message *msgs, size_t n) {
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        if (msgs[i].role && (!strcmp(msgs[i].role, "user") || !strcmp(msgs[i].role, "tool")))
            c += chat_count_parts(&msgs[i], 1, CHAT_PART_IMAGE);
    return c;
}

static void from_json(const uint8_t *data, size_t size) {
    json_doc *doc = NULL;
    modes_error err = {0};
    json_limits lim = {.max_bytes = 1 << 20, .max_depth = 16};
    if (json_parse((const char *)data, size, &lim, "messages", &doc, &err)) return;
    chat_conversation conv;
    int rc = chat_from_json(json_root(doc), "messages", &conv, &err);
    if (rc) {
        fuzz_check_error(rc, &err, NULL);
    } else {
        char *text = NULL;
        size_t len = 0;
        chat_options opt = {1, 1};
        rc = chat_render(tmpl, conv.msgs, conv.n, &opt, &text, &len, &err);
        if (rc) fuzz_check_error(rc, &err, NULL);
        else encode_and_expand(text, len, rendered_images(conv.msgs, conv.n));
        free(text);
        chat_conversation_free(&conv);
    }
    json_free(doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    load_once();
    static const char *roles[8] = {"system", "user", "assistant", "tool", "user", "assistant", "", "robot"};
    chat_message msgs[MAX_MSGS];
    chat_part parts[MAX_PARTS];
    size_t nm = 0, np = 0;
    chat_options opt = {size && (data[0] & 1), size && (data[0] & 2)};
    for (size_t at = size ? 1 : 0; at < size && nm < MAX_MSGS;) {
        const uint8_t *end = memchr(data + at, 0xFF, size - at);
        size_t stop = end ? (size_t)(end - data) : size;
        unsigned head = data[at];
        const char *text = (const char *)data + at + 1;
        size_t len = stop > at ? stop - at - 1 : 0;
        chat_message *m = &msgs[nm++];
        *m = (chat_message){.role = (head & 7) == 6 ? NULL : roles[head & 7]};
        unsigned images = (head >> 3) & 7, video = (head >> 6) & 1;
        if (!images && !video && !(head & 0x80)) {
            m->content = text;
            m->content_len = len;
        } else {
            m->parts = &parts[np];
            for (unsigned k = 0; k < images; k++) parts[np++] = (chat_part){CHAT_PART_IMAGE, NULL, 0};
            if (video) parts[np++] = (chat_part){CHAT_PART_VIDEO, "v.mp4", 5};
            parts[np++] = (chat_part){CHAT_PART_TEXT, text, len};
            m->n_parts = (size_t)(&parts[np] - m->parts);
        }
        at = stop + 1;
    }
    char *text = NULL;
    size_t len = 0;
    modes_error err = {0};
    int rc = chat_render(tmpl, msgs, nm, &opt, &text, &len, &err);
    if (rc) {
        FUZZ_CHECK(!text, "text returned on failure");
        fuzz_check_error(rc, &err, NULL);
    } else {
        FUZZ_CHECK(text && text[len] == 0, "rendering not terminated");
        encode_and_expand(text, len, rendered_images(msgs, nm));
    }
    free(text);
    from_json(data, size);
    return 0;
}
