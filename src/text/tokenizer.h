/* Byte-level BPE tokenizer read from a Hugging Face tokenizer.json (docs/qwen3-vl-moe.md section 2.3).
 *
 * Encoding follows the Rust `tokenizers` library step by step, since token ids must be identical:
 * added tokens are matched whole first (leftmost, then longest), the text between them is NFC
 * normalised, split by the pre-tokenizer regexes, mapped byte by byte to the GPT-2 alphabet and
 * merged by BPE rank. No BOS/EOS is ever added: the chat template (text/chat.h) writes them.
 *
 * A loaded tokenizer is immutable; every function taking a const modes_tokenizer* may be called
 * from several threads at once. */
#ifndef MODES_TEXT_TOKENIZER_H
#define MODES_TEXT_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "core/json.h"
#include "modes.h"

typedef struct modes_tokenizer modes_tokenizer;

/* Limits on what tok_load accepts; larger files are refused with a message naming the limit. */
#define TOK_MAX_FILE_BYTES ((size_t)64 << 20)
#define TOK_MAX_VOCAB ((size_t)4 << 20)    /* entries in model.vocab */
#define TOK_MAX_ID ((int64_t)1 << 24)      /* every id is below this */
#define TOK_MAX_MERGES ((size_t)8 << 20)
#define TOK_MAX_ADDED ((size_t)1 << 20)
#define TOK_MAX_TOKEN_BYTES ((size_t)1 << 16) /* one vocabulary string or added token */
#define TOK_MAX_TEXT_BYTES ((size_t)1 << 30)  /* one tok_encode call */

/* path: a tokenizer.json, or a folder holding one. tokenizer_config.json beside it is read when
 * present (special token names, chat template); a chat_template.jinja beside it is used when the
 * config has no template. On success *out is owned by the caller: free with tok_free. */
int tok_load(const char *path, modes_tokenizer **out, modes_error *err);
void tok_free(modes_tokenizer *tok); /* accepts NULL */

/* Encodes text[0..len) (UTF-8, may contain NUL). Added and special tokens written in the text are
 * matched; nothing is prepended or appended. Invalid UTF-8 is refused (MODES_E_INPUT naming the
 * byte offset), as the reference library only takes Unicode strings. *ids is a new array (free()),
 * never NULL on success, even when *n is 0. */
int tok_encode(const modes_tokenizer *tok, const char *text, size_t len, int32_t **ids, size_t *n,
               modes_error *err);

/* tok_encode, or with parse_special 0 as the reference's split_special_tokens=True: added tokens
 * marked "special" are not matched, their text is encoded like any other (other added tokens are). */
int tok_encode_special(const modes_tokenizer *tok, const char *text, size_t len, int parse_special, int32_t **ids,
                       size_t *n, modes_error *err);

/* Decodes ids to UTF-8 (*out is NUL-terminated, free()). Byte sequences that are not valid UTF-8
 * become U+FFFD, one per maximal invalid subpart, as Python's errors="replace" does. skip_special
 * drops added tokens marked "special". An id outside [0, tok_vocab_size) is MODES_E_INPUT; an id
 * inside that range that no entry uses decodes to nothing, as in the reference. */
int tok_decode(const modes_tokenizer *tok, const int32_t *ids, size_t n, int skip_special, char **out,
               size_t *len, modes_error *err);

/* Largest id of the vocabulary and added tokens, plus one. */
size_t tok_vocab_size(const modes_tokenizer *tok);
/* The vocabulary string of id (GPT-2 alphabet, e.g. "Ġthe"), or an added token's content; *len gets
 * its length. NULL when id names no entry. Valid until tok_free. */
const char *tok_id_to_piece(const modes_tokenizer *tok, int32_t id, size_t *len);
/* The raw bytes id stands for (what it contributes to tok_decode, before UTF-8 repair). */
const char *tok_id_to_bytes(const modes_tokenizer *tok, int32_t id, size_t *len);
/* Id of an added token's content or a vocabulary string (added tokens first), or -1. */
int32_t tok_token_to_id(const modes_tokenizer *tok, const char *piece);
int tok_is_special(const modes_tokenizer *tok, int32_t id); /* an added token with "special": true */
int tok_is_added(const modes_tokenizer *tok, int32_t id);

/* From tokenizer_config.json: the id of a named special token ("eos_token", "bos_token",
 * "pad_token", "unk_token"), or -1 when the config or the key is absent or null. */
int32_t tok_config_token_id(const modes_tokenizer *tok, const char *key);
/* The chat template text (tokenizer_config.json "chat_template", or chat_template.jinja), or NULL. */
const char *tok_chat_template(const modes_tokenizer *tok);
/* The tokenizer.json path the tokenizer was loaded from. */
const char *tok_path(const modes_tokenizer *tok);

/* Streaming decode for printing tokens as they are generated: bytes of a UTF-8 character split
 * across tokens are held back until the character is complete, so the concatenation of everything
 * tok_stream_push and tok_stream_finish append equals tok_decode of all the ids. */
typedef struct {
    unsigned char pending[4];
    size_t npending;
} tok_stream;
void tok_stream_init(tok_stream *st);
/* Appends the text that id completes to out. Fails only on an out-of-range id. */
int tok_stream_push(const modes_tokenizer *tok, tok_stream *st, int32_t id, int skip_special, strbuf *out,
                    modes_error *err);
/* Appends U+FFFD for an incomplete character left at the end, and resets st. */
void tok_stream_finish(tok_stream *st, strbuf *out);

#endif
