/* Chat templates written in C, one render function per model family (no Jinja engine), chosen by
 * name, by recognising the template text shipped in tokenizer_config.json, or by config.json's
 * model_type. The rendered prompt is plain text: encode it with tok_encode, which matches the
 * special tokens written in it. Then chat_expand_pads widens each image placeholder to the number
 * of vision tokens the image gives (docs/qwen3-vl-moe.md section 2.1). */
#ifndef MODES_TEXT_CHAT_H
#define MODES_TEXT_CHAT_H

#include <stddef.h>
#include <stdint.h>

#include "core/json.h"
#include "modes.h"

typedef enum { CHAT_PART_TEXT, CHAT_PART_IMAGE, CHAT_PART_VIDEO } chat_part_kind;

typedef struct {
    chat_part_kind kind;
    const char *text; /* TEXT: the text. IMAGE/VIDEO: the file or URL when one was given, else NULL */
    size_t len;
} chat_part;

/* A message's content is either a string (parts == NULL) or a list of parts. role is "system",
 * "user", "assistant" or "tool". The structure only points at the caller's strings. */
typedef struct {
    const char *role;
    const char *content;
    size_t content_len;
    const chat_part *parts;
    size_t n_parts;
} chat_message;

typedef struct {
    int add_generation_prompt; /* end with the opening of the assistant's turn */
    int add_vision_id;         /* "Picture N: " before each image, "Video N: " before each video */
} chat_options;

typedef struct chat_template chat_template; /* entries of a static table; never freed */

/* By name: "qwen3-vl" (the Qwen3-VL Instruct template). NULL when unknown. */
const chat_template *chat_template_by_name(const char *name);
/* Recognises a template from its Jinja text (tokenizer_config.json "chat_template"); when
 * template_text is NULL, from config.json's model_type. NULL when neither identifies one of ours:
 * a template text we do not know is not guessed from the model type. */
const chat_template *chat_template_detect(const char *template_text, const char *model_type);
const char *chat_template_name(const chat_template *t);
/* Token strings the caller needs around the template: the end of an assistant turn (generation
 * stops there), and the image and video placeholders chat_expand_pads widens. */
const char *chat_template_end_of_turn(const chat_template *t);
const char *chat_template_image_pad(const chat_template *t);
const char *chat_template_video_pad(const chat_template *t);

/* Renders msgs[0..n) to *out (NUL-terminated, free()). MODES_E_INPUT for an unknown role or an
 * empty conversation. */
int chat_render(const chat_template *t, const chat_message *msgs, size_t n, const chat_options *opt, char **out,
                size_t *len, modes_error *err);

/* Messages read from JSON in the OpenAI / Hugging Face form:
 *   [{"role": "user", "content": "text" | [{"type": "text", "text": ...}, {"type": "image", "image": ...},
 *                                          {"type": "image_url", "image_url": ...}, {"type": "video", ...}]}]
 * The chat_message strings point into the JSON document, which must outlive conv. */
typedef struct {
    chat_message *msgs;
    size_t n;
    chat_part *parts;
} chat_conversation;
int chat_from_json(const json_node *messages, const char *what, chat_conversation *conv, modes_error *err);
void chat_conversation_free(chat_conversation *conv);
/* Number of parts of kind in the conversation (images the caller must supply, for instance). */
size_t chat_count_parts(const chat_message *msgs, size_t n, chat_part_kind kind);

/* Copies ids[0..n) to a new array (*out, free()), with the k-th occurrence of pad_id repeated
 * counts[k] times. The number of occurrences must equal n_counts and every count be at least 1. */
int chat_expand_pads(const int32_t *ids, size_t n, int32_t pad_id, const size_t *counts, size_t n_counts,
                     int32_t **out, size_t *out_n, modes_error *err);

#endif
