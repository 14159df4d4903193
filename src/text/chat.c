/* Chat templates (docs/qwen3-vl-moe.md section 2.1). Each render function reproduces one Jinja
 * template's output byte for byte, whitespace control included; the reference renderings are in
 * ../shared/ref/qwen3-tokenizer/chat_cases.json. A new family adds a render function and a row
 * in `templates`. */
#include "text/chat.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

typedef int (*render_fn)(const chat_message *msgs, size_t n, const chat_options *opt, strbuf *o, modes_error *err);

struct chat_template {
    const char *name;
    const char *model_types[4]; /* config.json model_type values, NULL-terminated */
    const char *markers[3];     /* all appear in the template text ... */
    const char *absent[2];      /* ... and none of these, e.g. to tell Instruct from Thinking */
    const char *end_of_turn, *image_pad, *video_pad;
    render_fn render;
};

static int is_role(const chat_message *m, const char *role) { return m->role && !strcmp(m->role, role); }

/* ------------------------------------------------------------------------------------------------
 * Qwen3-VL Instruct (chat_template_qwen3vl_instruct.jinja, without tools). */

typedef struct {
    int images, videos; /* the template's image_count / video_count, shared by all messages */
} qwen_counts;

/* Text parts only: what the template keeps of system and assistant list contents. */
static void qwen_text_content(const chat_message *m, strbuf *o) {
    if (!m->parts) {
        sb_append(o, m->content, m->content_len);
        return;
    }
    for (size_t i = 0; i < m->n_parts; i++)
        if (m->parts[i].kind == CHAT_PART_TEXT) sb_append(o, m->parts[i].text, m->parts[i].len);
}

/* User and tool contents, where images and videos become placeholders. */
static void qwen_vision_content(const chat_message *m, const chat_options *opt, qwen_counts *c, strbuf *o) {
    if (!m->parts) {
        sb_append(o, m->content, m->content_len);
        return;
    }
    for (size_t i = 0; i < m->n_parts; i++) {
        const chat_part *p = &m->parts[i];
        if (p->kind == CHAT_PART_IMAGE) {
            c->images++;
            if (opt->add_vision_id) sb_printf(o, "Picture %d: ", c->images);
            sb_puts(o, "<|vision_start|><|image_pad|><|vision_end|>");
        } else if (p->kind == CHAT_PART_VIDEO) {
            c->videos++;
            if (opt->add_vision_id) sb_printf(o, "Video %d: ", c->videos);
            sb_puts(o, "<|vision_start|><|video_pad|><|vision_end|>");
        } else sb_append(o, p->text, p->len);
    }
}

static int render_qwen3_vl(const chat_message *msgs, size_t n, const chat_options *opt, strbuf *o, modes_error *err) {
    qwen_counts c = {0, 0};
    /* Only a system message in first place is used; the loop below skips system messages. */
    if (is_role(&msgs[0], "system")) {
        sb_puts(o, "<|im_start|>system\n");
        qwen_text_content(&msgs[0], o);
        sb_puts(o, "<|im_end|>\n");
    }
    for (size_t i = 0; i < n; i++) {
        const chat_message *m = &msgs[i];
        if (is_role(m, "user")) {
            sb_puts(o, "<|im_start|>user\n");
            qwen_vision_content(m, opt, &c, o);
            sb_puts(o, "<|im_end|>\n");
        } else if (is_role(m, "assistant")) {
            sb_puts(o, "<|im_start|>assistant\n");
            qwen_text_content(m, o);
            sb_puts(o, "<|im_end|>\n");
        } else if (is_role(m, "tool")) {
            /* Consecutive tool results share one user turn. */
            if (i == 0 || !is_role(&msgs[i - 1], "tool")) sb_puts(o, "<|im_start|>user");
            sb_puts(o, "\n<tool_response>\n");
            qwen_vision_content(m, opt, &c, o);
            sb_puts(o, "\n</tool_response>");
            if (i + 1 == n || !is_role(&msgs[i + 1], "tool")) sb_puts(o, "<|im_end|>\n");
        } else if (!is_role(m, "system")) {
            return modes_fail(err, MODES_E_INPUT, "message %zu: role \"%s\" is not system, user, assistant or tool", i,
                              m->role ? m->role : "(none)");
        }
    }
    if (opt->add_generation_prompt) sb_puts(o, "<|im_start|>assistant\n");
    return 0;
}

/* ------------------------------------------------------------------------------------------------
 * The table */

static const chat_template templates[] = {
    {
        .name = "qwen3-vl",
        /* Qwen3-MoE's text-only chats render the same ChatML (its thinking template differs only
         * in the <think> blocks of earlier answers, which this renderer keeps) */
        .model_types = {"qwen3_vl_moe", "qwen3_vl", "qwen3_moe", NULL},
        .markers = {"<|im_start|>", "<|vision_start|><|image_pad|><|vision_end|>", NULL},
        .absent = {"<think>", NULL},
        .end_of_turn = "<|im_end|>",
        .image_pad = "<|image_pad|>",
        .video_pad = "<|video_pad|>",
        .render = render_qwen3_vl,
    },
};
#define N_TEMPLATES (sizeof templates / sizeof *templates)

const chat_template *chat_template_by_name(const char *name) {
    for (size_t i = 0; name && i < N_TEMPLATES; i++)
        if (!strcmp(templates[i].name, name)) return &templates[i];
    return NULL;
}

static int text_matches(const chat_template *t, const char *text) {
    for (int k = 0; k < 3 && t->markers[k]; k++)
        if (!strstr(text, t->markers[k])) return 0;
    for (int k = 0; k < 2 && t->absent[k]; k++)
        if (strstr(text, t->absent[k])) return 0;
    return 1;
}

const chat_template *chat_template_detect(const char *template_text, const char *model_type) {
    for (size_t i = 0; i < N_TEMPLATES; i++) {
        const chat_template *t = &templates[i];
        if (template_text) {
            if (text_matches(t, template_text)) return t;
            continue;
        }
        for (int k = 0; model_type && k < 4 && t->model_types[k]; k++)
            if (!strcmp(model_type, t->model_types[k])) return t;
    }
    return NULL;
}

const char *chat_template_name(const chat_template *t) { return t->name; }
const char *chat_template_end_of_turn(const chat_template *t) { return t->end_of_turn; }
const char *chat_template_image_pad(const chat_template *t) { return t->image_pad; }
const char *chat_template_video_pad(const chat_template *t) { return t->video_pad; }

int chat_render(const chat_template *t, const chat_message *msgs, size_t n, const chat_options *opt, char **out,
                size_t *len, modes_error *err) {
    *out = NULL;
    *len = 0;
    if (!n) return modes_fail(err, MODES_E_INPUT, "chat template %s: no messages", t->name);
    chat_options none = {0, 0};
    strbuf o = {0};
    int rc = t->render(msgs, n, opt ? opt : &none, &o, err);
    if (!rc) sb_append(&o, "", 0);
    if (!rc && o.failed) rc = modes_fail(err, MODES_E_INTERNAL, "chat template %s: out of memory", t->name);
    if (rc) {
        sb_free(&o);
        return rc;
    }
    *out = o.data;
    *len = o.len;
    return 0;
}

/* ------------------------------------------------------------------------------------------------
 * Messages from JSON */

static const json_node *str_or_null(const json_node *v) { return v && v->type == JSON_STRING ? v : NULL; }

/* Classifies one content part the way the Qwen template tests it: image first (a "type" of
 * "image", or an "image" or "image_url" key), then video, then text. */
static int part_from_json(const json_node *p, const char *what, size_t mi, size_t pi, chat_part *out,
                          modes_error *err) {
    if (!p || p->type != JSON_OBJECT)
        return modes_fail(err, MODES_E_INPUT, "%s: message %zu, part %zu is not an object", what, mi, pi);
    const json_node *type = str_or_null(json_get(p, "type")), *v;
    const char *ty = type ? type->u.str : "";
    *out = (chat_part){CHAT_PART_TEXT, NULL, 0};
    if (!strcmp(ty, "image") || json_get(p, "image") || json_get(p, "image_url")) {
        out->kind = CHAT_PART_IMAGE;
        v = str_or_null(json_get(p, "image"));
        if (!v) v = str_or_null(json_get(p, "image_url"));
        if (!v) v = str_or_null(json_get(json_get(p, "image_url"), "url"));
    } else if (!strcmp(ty, "video") || json_get(p, "video")) {
        out->kind = CHAT_PART_VIDEO;
        v = str_or_null(json_get(p, "video"));
    } else if (json_get(p, "text")) {
        v = str_or_null(json_get(p, "text"));
        if (!v) return modes_fail(err, MODES_E_INPUT, "%s: message %zu, part %zu: \"text\" is not a string", what, mi, pi);
    } else {
        return modes_fail(err, MODES_E_INPUT, "%s: message %zu, part %zu has no text, image or video", what, mi, pi);
    }
    if (v) {
        out->text = v->u.str;
        out->len = v->n;
    }
    return 0;
}

static int message_from_json(const json_node *m, const char *what, size_t mi, chat_message *out, chat_part *parts,
                             size_t *used, modes_error *err) {
    if (!m || m->type != JSON_OBJECT) return modes_fail(err, MODES_E_INPUT, "%s: message %zu is not an object", what, mi);
    const json_node *role = str_or_null(json_get(m, "role")), *content = json_get(m, "content"),
                    *calls = json_get(m, "tool_calls");
    if (!role) return modes_fail(err, MODES_E_INPUT, "%s: message %zu has no \"role\" string", what, mi);
    if (calls && calls->type != JSON_NULL && !(calls->type == JSON_ARRAY && calls->n == 0))
        return modes_fail(err, MODES_E_INPUT, "%s: message %zu: tool_calls are not supported", what, mi);
    *out = (chat_message){.role = role->u.str};
    if (content && content->type == JSON_STRING) {
        out->content = content->u.str;
        out->content_len = content->n;
        return 0;
    }
    if (!content || content->type != JSON_ARRAY)
        return modes_fail(err, MODES_E_INPUT, "%s: message %zu: \"content\" must be a string or a list of parts", what, mi);
    out->parts = parts + *used;
    out->n_parts = content->n;
    for (size_t i = 0; i < content->n; i++)
        if (part_from_json(json_at(content, i), what, mi, i, &parts[(*used)++], err)) return MODES_E_INPUT;
    return 0;
}

int chat_from_json(const json_node *messages, const char *what, chat_conversation *conv, modes_error *err) {
    memset(conv, 0, sizeof *conv);
    if (!messages || messages->type != JSON_ARRAY)
        return modes_fail(err, MODES_E_INPUT, "%s: messages must be a list", what);
    size_t nparts = 0;
    for (size_t i = 0; i < messages->n; i++) {
        const json_node *c = json_get(json_at(messages, i), "content");
        if (c && c->type == JSON_ARRAY) nparts += c->n;
    }
    conv->msgs = calloc(messages->n + 1, sizeof *conv->msgs);
    conv->parts = calloc(nparts + 1, sizeof *conv->parts);
    if (!conv->msgs || !conv->parts) {
        chat_conversation_free(conv);
        return modes_fail(err, MODES_E_INTERNAL, "%s: out of memory", what);
    }
    size_t used = 0;
    for (size_t i = 0; i < messages->n; i++) {
        if (message_from_json(json_at(messages, i), what, i, &conv->msgs[i], conv->parts, &used, err)) {
            chat_conversation_free(conv);
            return MODES_E_INPUT;
        }
    }
    conv->n = messages->n;
    return 0;
}

void chat_conversation_free(chat_conversation *conv) {
    free(conv->msgs);
    free(conv->parts);
    memset(conv, 0, sizeof *conv);
}

size_t chat_count_parts(const chat_message *msgs, size_t n, chat_part_kind kind) {
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; msgs[i].parts && k < msgs[i].n_parts; k++) c += msgs[i].parts[k].kind == kind;
    return c;
}

/* ------------------------------------------------------------------------------------------------
 * Placeholder expansion (the processor's work in the reference, done on ids: the pad token is a
 * special token, so expanding the text and encoding it gives the same ids). */

int chat_expand_pads(const int32_t *ids, size_t n, int32_t pad_id, const size_t *counts, size_t n_counts,
                     int32_t **out, size_t *out_n, modes_error *err) {
    *out = NULL;
    *out_n = 0;
    size_t pads = 0, total = n;
    for (size_t i = 0; i < n; i++) pads += ids[i] == pad_id;
    if (pads != n_counts)
        return modes_fail(err, MODES_E_INPUT, "the prompt has %zu placeholder tokens (id %d) but %zu were expected", pads,
                          pad_id, n_counts);
    for (size_t k = 0; k < n_counts; k++) {
        if (counts[k] < 1 || counts[k] > ((size_t)1 << 30))
            return modes_fail(err, MODES_E_INPUT, "placeholder %zu: %zu tokens is out of range", k, counts[k]);
        total += counts[k] - 1;
    }
    if (total > SIZE_MAX / sizeof(int32_t) / 2)
        return modes_fail(err, MODES_E_INPUT, "expanding the placeholders gives %zu tokens, too many", total);
    int32_t *v = malloc((total ? total : 1) * sizeof *v);
    if (!v) return modes_fail(err, MODES_E_INTERNAL, "out of memory expanding %zu tokens", total);
    size_t o = 0, k = 0;
    for (size_t i = 0; i < n; i++) {
        size_t reps = ids[i] == pad_id ? counts[k++] : 1;
        for (size_t r = 0; r < reps; r++) v[o++] = ids[i];
    }
    *out = v;
    *out_n = o;
    return 0;
}
