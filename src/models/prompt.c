/* Building a prompt from a conversation and image files: the chat template, tokenisation, image
 * preprocessing and the expansion of each image placeholder (docs/qwen3-vl-moe.md sections 2 and 3). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "models/model.h"
#include "text/chat.h"
#include "text/tokenizer.h"

struct modes_prompt {
    int32_t *ids;
    int n, answer_start;
    int n_images;
    pixel_patches *patches; /* owned pixel buffers */
    modes_image *images;    /* views of patches */
    modes_image_info *info; /* each image's decoded and resized size */
};

void modes_prompt_free(modes_prompt *p) {
    if (!p) return;
    for (int i = 0; i < p->n_images; i++) pixel_patches_free(&p->patches[i]);
    free(p->patches);
    free(p->images);
    free(p->info);
    free(p->ids);
    free(p);
}

const int32_t *modes_prompt_ids(const modes_prompt *p, int *n) {
    if (n) *n = p ? p->n : 0;
    return p ? p->ids : NULL;
}

const modes_image *modes_prompt_images(const modes_prompt *p, int *n) {
    if (n) *n = p ? p->n_images : 0;
    return p ? p->images : NULL;
}

int modes_prompt_answer_start(const modes_prompt *p) { return p ? p->answer_start : -1; }

int modes_eval_prompt(modes_ctx *c, const modes_prompt *p, float *logits, int n_logits, modes_error *err) {
    MODES_REQUIRE(err, c);
    MODES_REQUIRE(err, p);
    return modes_eval_images(c, p->ids, p->n, p->images, p->n_images, logits, n_logits, err);
}

int prompt_prepare(modes_ctx *c, const modes_prompt *p, prepared_input *out, modes_error *err) {
    return model_prepare(c, p->ids, p->n, p->images, p->n_images, out, err);
}

/* The size facts of a picture of w x h pixels preprocessed for the model. */
static int image_info_of(const modes_model *m, int w, int h, modes_image_info *info, modes_error *err) {
    const preproc_config *pc = &m->preproc;
    int rw, rh, rc = preprocess_size(pc, w, h, &rw, &rh, err);
    if (rc) return rc;
    const int f = pc->patch * pc->merge;
    *info = (modes_image_info){w, h, rw, rh, rw / f, rh / f, (rw / f) * (rh / f)};
    return 0;
}

/* Preprocesses a decoded picture (what names it in errors); img is freed. */
static int preprocess_decoded(const modes_model *m, rgb_image *img, const char *what, pixel_patches *out,
                              modes_image_info *info, modes_error *err) {
    int rc = preprocess_image(&m->preproc, img, out, err);
    if (!rc && info) rc = image_info_of(m, img->w, img->h, info, err);
    if (rc) modes_error_prefix(err, "%s", what);
    rgb_image_free(img);
    return rc;
}

/* The decode budget is the decoder's own (100 MP): pictures far above max_pixels are resized
 * down, not refused. */
static int preprocess_file(const modes_model *m, const char *path, pixel_patches *out, modes_image_info *info,
                           modes_error *err) {
    if (!m->has_vision) return modes_fail(err, MODES_E_INPUT, "%s: this model has no vision tower", m->dir);
    rgb_image img;
    const int rc = image_load(path, 0, &img, err);
    return rc ? rc : preprocess_decoded(m, &img, path, out, info, err);
}

int modes_image_probe(const modes_model *m, const char *path, modes_image_info *info, modes_error *err) {
    if (!m || !path || !info)
        return modes_fail(err, MODES_E_INPUT, "modes_image_probe: %s is NULL", !m ? "model" : !path ? "path" : "info");
    memset(info, 0, sizeof *info);
    if (!m->has_vision) return modes_fail(err, MODES_E_INPUT, "%s: this model has no vision tower", m->dir);
    rgb_image img;
    int rc = image_load(path, 0, &img, err);
    if (!rc && (rc = image_info_of(m, img.w, img.h, info, err))) modes_error_prefix(err, "%s", path);
    rgb_image_free(&img);
    return rc;
}

int modes_prompt_image_info(const modes_prompt *p, int i, modes_image_info *info, modes_error *err) {
    if (!p || !info)
        return modes_fail(err, MODES_E_INPUT, "modes_prompt_image_info: %s is NULL", !p ? "prompt" : "info");
    if (i < 0 || i >= p->n_images)
        return modes_fail(err, MODES_E_INPUT, "modes_prompt_image_info: no image %d (the prompt has %d)", i,
                          p->n_images);
    *info = p->info[i];
    return 0;
}

int modes_image_load(const modes_model *m, const char *path, modes_image *img, modes_error *err) {
    MODES_REQUIRE(err, img);
    memset(img, 0, sizeof *img);
    MODES_REQUIRE(err, m);
    MODES_REQUIRE(err, path);
    pixel_patches pp;
    int rc = preprocess_file(m, path, &pp, NULL, err);
    if (rc) return rc;
    *img = (modes_image){pp.values, pp.grid_t, pp.grid_h, pp.grid_w};
    return 0;
}

void modes_image_free(modes_image *img) {
    if (!img) return;
    free((void *)img->pixels);
    img->pixels = NULL;
}

/* Room for p->n_images images in p, when the model can take images at all. */
static int image_slots(const modes_model *m, modes_prompt *p, modes_error *err) {
    if (!p->n_images) return 0;
    if (!m->has_vision) return modes_fail(err, MODES_E_INPUT, "%s: this model has no vision tower", m->dir);
    p->patches = calloc((size_t)p->n_images, sizeof *p->patches);
    p->images = calloc((size_t)p->n_images, sizeof *p->images);
    p->info = calloc((size_t)p->n_images, sizeof *p->info);
    return p->patches && p->images && p->info ? 0 : modes_fail(err, MODES_E_INTERNAL, "out of memory");
}

static int load_images(const modes_model *m, const char *const *paths, modes_prompt *p, modes_error *err) {
    int rc = image_slots(m, p, err);
    if (rc || !p->n_images) return rc;
    for (int i = 0; i < p->n_images; i++) {
        rc = preprocess_file(m, paths[i], &p->patches[i], &p->info[i], err);
        if (rc) return rc;
        const pixel_patches *pp = &p->patches[i];
        p->images[i] = (modes_image){pp->values, pp->grid_t, pp->grid_h, pp->grid_w};
    }
    return 0;
}

static const chat_template *model_template(const modes_model *m, modes_error *err) {
    const chat_template *t = chat_template_detect(tok_chat_template(m->tok), m->cfg.model_type);
    if (!t && tok_chat_template(m->tok)) t = chat_template_detect(NULL, m->cfg.model_type); /* a variant we do not know */
    if (!t) modes_fail(err, MODES_E_INPUT, "%s: no chat template for model type %s", m->dir, m->cfg.model_type);
    return t;
}

/* The text a follow-up user turn adds to a conversation a context holds: what the template writes
 * after an assistant's answer, then the new user turn and the assistant prefix. It is taken as the
 * difference between renderings of a conversation with and without the turn, so it follows the
 * template's own separators. */
static int render_followup(const chat_template *t, const chat_message *turn, char **out, size_t *len,
                           modes_error *err) {
    static const char ANSWER[] = "A";
    const chat_part part = {CHAT_PART_TEXT, "U", 1};
    const chat_message msgs[3] = {{.role = "user", .parts = &part, .n_parts = 1},
                                  {.role = "assistant", .content = ANSWER, .content_len = sizeof ANSWER - 1},
                                  *turn};
    chat_options gen = {.add_generation_prompt = 1}, closed = {0};
    char *asked = NULL, *answered = NULL, *followed = NULL;
    size_t na, nb, nc;
    int rc = chat_render(t, msgs, 1, &gen, &asked, &na, err);
    if (!rc) rc = chat_render(t, msgs, 2, &closed, &answered, &nb, err);
    if (!rc) rc = chat_render(t, msgs, 3, &gen, &followed, &nc, err);
    const size_t close_at = na + sizeof ANSWER - 1;
    if (!rc && (nb < close_at || memcmp(answered, asked, na) || memcmp(answered + na, ANSWER, sizeof ANSWER - 1) ||
                nc < nb || memcmp(followed, answered, nb)))
        rc = modes_fail(err, MODES_E_INPUT, "the %s chat template does not extend a conversation turn by turn",
                        chat_template_name(t));
    if (!rc) {
        *len = (nb - close_at) + (nc - nb);
        memmove(followed + (nb - close_at), followed + nb, nc - nb + 1);
        memcpy(followed, answered + close_at, nb - close_at);
        *out = followed;
        followed = NULL;
    }
    free(asked);
    free(answered);
    free(followed);
    return rc;
}

/* Renders the turn(s) and tokenises; images become single placeholders here. A follow-up has no
 * system message: the conversation's first turn had it. */
static int encode_chat(const modes_model *m, const chat_template *t, const char *system, const char *text,
                       int n_images, int followup, int32_t **ids, size_t *n, modes_error *err) {
    chat_part *parts = calloc((size_t)n_images + 1, sizeof *parts);
    if (!parts) return modes_fail(err, MODES_E_INTERNAL, "out of memory");
    for (int i = 0; i < n_images; i++) parts[i].kind = CHAT_PART_IMAGE;
    parts[n_images] = (chat_part){CHAT_PART_TEXT, text, strlen(text)};
    chat_message msgs[2];
    size_t nm = 0;
    if (system) msgs[nm++] = (chat_message){.role = "system", .content = system, .content_len = strlen(system)};
    msgs[nm++] = (chat_message){.role = "user", .parts = parts, .n_parts = (size_t)n_images + 1};
    chat_options opt = {.add_generation_prompt = 1};
    char *rendered = NULL;
    size_t len;
    int rc = followup ? render_followup(t, &msgs[nm - 1], &rendered, &len, err)
                      : chat_render(t, msgs, nm, &opt, &rendered, &len, err);
    if (!rc) rc = tok_encode(m->tok, rendered, len, ids, n, err);
    free(rendered);
    free(parts);
    return rc;
}

/* Appends the answer and the end-of-turn token for teacher forcing. */
static int append_answer(const modes_model *m, const chat_template *t, const char *answer, modes_prompt *p,
                         modes_error *err) {
    int32_t *ans = NULL;
    size_t na = 0;
    int rc = tok_encode(m->tok, answer, strlen(answer), &ans, &na, err);
    const int32_t eot = tok_token_to_id(m->tok, chat_template_end_of_turn(t));
    if (!rc && eot < 0) rc = modes_fail(err, MODES_E_INPUT, "%s: the tokenizer lacks the end-of-turn token", m->dir);
    int32_t *grown = rc ? NULL : realloc(p->ids, ((size_t)p->n + na + 1) * sizeof *grown);
    if (!rc && !grown) rc = modes_fail(err, MODES_E_INTERNAL, "out of memory");
    if (!rc) {
        p->ids = grown;
        memcpy(p->ids + p->n, ans, na * sizeof *ans);
        p->n += (int)na;
        p->ids[p->n++] = eot;
    }
    free(ans);
    return rc;
}

/* Takes the encoded ids (freed here) with one placeholder per image of p, widens each to its image's
 * tokens and checks the length against the model. */
static int set_prompt_ids(const modes_model *m, modes_prompt *p, int32_t *ids, size_t n, modes_error *err) {
    int rc = 0;
    if (p->n_images) {
        size_t *counts = malloc((size_t)p->n_images * sizeof *counts);
        if (!counts) rc = modes_fail(err, MODES_E_INTERNAL, "out of memory");
        for (int i = 0; !rc && i < p->n_images; i++) counts[i] = (size_t)modes_image_tokens(m, &p->images[i]);
        size_t nn = 0;
        if (!rc) rc = chat_expand_pads(ids, n, m->cfg.image_token_id, counts, (size_t)p->n_images, &p->ids, &nn, err);
        n = nn;
        free(counts);
        free(ids);
    } else {
        p->ids = ids;
    }
    if (!rc && n > (size_t)m->cfg.text.max_position)
        rc = modes_fail(err, MODES_E_INPUT, "the prompt has %zu tokens, more than the model's %d", n, m->cfg.text.max_position);
    p->n = (int)n;
    p->answer_start = p->n;
    return rc;
}

static int build_prompt(const modes_model *m, const char *system, const char *text, const char *const *image_paths,
                        int n_images, const char *answer, int followup, modes_prompt **out, modes_error *err) {
    *out = NULL;
    if (!m->tok) return modes_fail(err, MODES_E_INPUT, "%s: no tokenizer.json", m->dir);
    if (n_images < 0 || n_images > 256) return modes_fail(err, MODES_E_INPUT, "at most 256 images per prompt");
    const chat_template *t = model_template(m, err);
    if (!t) return MODES_E_INPUT;
    modes_prompt *p = calloc(1, sizeof *p);
    if (!p) return modes_fail(err, MODES_E_INTERNAL, "out of memory");
    p->n_images = n_images;
    int32_t *ids = NULL;
    size_t n = 0;
    int rc = load_images(m, image_paths, p, err);
    if (!rc) rc = encode_chat(m, t, system, text, n_images, followup, &ids, &n, err);
    if (!rc) rc = set_prompt_ids(m, p, ids, n, err);
    else free(ids);
    if (!rc && answer) rc = append_answer(m, t, answer, p, err);
    if (rc) {
        modes_prompt_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

/* The public prompt builders' refusal of NULL arguments, naming the function fn. */
static int check_prompt_args(const char *fn, const modes_model *m, const char *text, const char *const *image_paths,
                             int n_images, modes_prompt **out, modes_error *err) {
    if (!out) return modes_fail(err, MODES_E_INPUT, "%s: out is NULL", fn);
    *out = NULL;
    if (!m) return modes_fail(err, MODES_E_INPUT, "%s: m is NULL", fn);
    if (!text) return modes_fail(err, MODES_E_INPUT, "%s: text is NULL", fn);
    if (n_images > 0 && !image_paths) return modes_fail(err, MODES_E_INPUT, "%s: image_paths is NULL", fn);
    for (int i = 0; i < n_images && i < 256; i++)
        if (!image_paths[i]) return modes_fail(err, MODES_E_INPUT, "%s: image_paths[%d] is NULL", fn, i);
    return 0;
}

int modes_prompt_new(const modes_model *m, const char *system, const char *text, const char *const *image_paths,
                     int n_images, const char *answer, modes_prompt **out, modes_error *err) {
    const int rc = check_prompt_args(__func__, m, text, image_paths, n_images, out, err);
    if (rc) return rc;
    return build_prompt(m, system, text, image_paths, n_images, answer, 0, out, err);
}

int modes_prompt_followup(const modes_model *m, const char *text, const char *const *image_paths, int n_images,
                          modes_prompt **out, modes_error *err) {
    const int rc = check_prompt_args(__func__, m, text, image_paths, n_images, out, err);
    if (rc) return rc;
    return build_prompt(m, NULL, text, image_paths, n_images, NULL, 1, out, err);
}

/* Each image part of the conversation decoded from memory into p (p->n_images of them). */
static int load_message_images(const modes_model *m, const modes_chat_message *msgs, int n, modes_prompt *p,
                               modes_error *err) {
    int rc = image_slots(m, p, err);
    if (rc || !p->n_images) return rc;
    int k = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < msgs[i].n_parts; j++) {
            const modes_chat_part *part = &msgs[i].parts[j];
            if (!part->image_data) continue;
            char what[64];
            snprintf(what, sizeof what, "image %d (message %d)", k + 1, i + 1);
            rgb_image img;
            rc = image_decode(part->image_data, part->image_len, what, 0, &img, err);
            if (!rc) rc = preprocess_decoded(m, &img, what, &p->patches[k], &p->info[k], err);
            if (rc) return rc;
            const pixel_patches *pp = &p->patches[k];
            p->images[k++] = (modes_image){pp->values, pp->grid_t, pp->grid_h, pp->grid_w};
        }
    return 0;
}

/* The conversation as the template's messages (parts point at the caller's text), and its image count. */
static int messages_to_chat(const modes_chat_message *msgs, int n, chat_message *out, chat_part *parts, int *n_images,
                            modes_error *err) {
    size_t k = 0;
    *n_images = 0;
    for (int i = 0; i < n; i++) {
        const modes_chat_message *msg = &msgs[i];
        if (!msg->role) return modes_fail(err, MODES_E_INPUT, "modes_prompt_from_messages: msgs[%d].role is NULL", i);
        if (msg->n_parts < 0 || (msg->n_parts && !msg->parts))
            return modes_fail(err, MODES_E_INPUT, "modes_prompt_from_messages: msgs[%d].parts is NULL", i);
        out[i] = (chat_message){.role = msg->role, .parts = &parts[k], .n_parts = (size_t)msg->n_parts};
        for (int j = 0; j < msg->n_parts; j++, k++) {
            const modes_chat_part *part = &msg->parts[j];
            if (part->image_data) {
                parts[k] = (chat_part){.kind = CHAT_PART_IMAGE};
                ++*n_images;
            } else if (part->text) {
                parts[k] = (chat_part){CHAT_PART_TEXT, part->text, part->text_len};
            } else {
                return modes_fail(err, MODES_E_INPUT, "message %d part %d: neither text nor image data", i + 1, j + 1);
            }
        }
        if (!msg->n_parts) out[i] = (chat_message){.role = msg->role, .content = "", .content_len = 0};
    }
    return 0;
}

int modes_prompt_from_messages(const modes_model *m, const modes_chat_message *msgs, int n, modes_prompt **out,
                               modes_error *err) {
    MODES_REQUIRE(err, out);
    *out = NULL;
    MODES_REQUIRE(err, m);
    MODES_REQUIRE(err, msgs);
    if (n < 1) return modes_fail(err, MODES_E_INPUT, "modes_prompt_from_messages: no messages");
    if (!m->tok) return modes_fail(err, MODES_E_INPUT, "%s: no tokenizer.json", m->dir);
    const chat_template *t = model_template(m, err);
    if (!t) return MODES_E_INPUT;
    size_t total_parts = 0;
    for (int i = 0; i < n; i++) total_parts += msgs[i].n_parts > 0 ? (size_t)msgs[i].n_parts : 0;
    chat_message *cm = calloc((size_t)n, sizeof *cm);
    chat_part *parts = calloc(total_parts + 1, sizeof *parts);
    modes_prompt *p = calloc(1, sizeof *p);
    int rc = cm && parts && p ? 0 : modes_fail(err, MODES_E_INTERNAL, "out of memory");
    if (!rc) rc = messages_to_chat(msgs, n, cm, parts, &p->n_images, err);
    if (!rc && p->n_images > 256) rc = modes_fail(err, MODES_E_INPUT, "at most 256 images per prompt");
    if (!rc) rc = load_message_images(m, msgs, n, p, err);
    char *rendered = NULL;
    size_t len = 0;
    const chat_options opt = {.add_generation_prompt = 1};
    if (!rc) rc = chat_render(t, cm, (size_t)n, &opt, &rendered, &len, err);
    int32_t *ids = NULL;
    size_t n_ids = 0;
    if (!rc) rc = tok_encode(m->tok, rendered, len, &ids, &n_ids, err);
    if (!rc) rc = set_prompt_ids(m, p, ids, n_ids, err);
    free(rendered);
    free(parts);
    free(cm);
    if (rc) {
        modes_prompt_free(p);
        return rc;
    }
    *out = p;
    return 0;
}
