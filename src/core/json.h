/* A strict JSON (RFC 8259) reader into an immutable tree, and helpers to write JSON text.
 *
 * Every parser of outside data (config.json, tokenizer.json, safetensors headers, policies, data
 * files) goes through here, so the limits live here: input size, nesting depth and node count are
 * checked while parsing and reported with the line and column at fault. Strings are unescaped into
 * UTF-8 (invalid UTF-8 and lone surrogates are rejected) and may contain NUL, so lengths are explicit. */
#ifndef MODES_CORE_JSON_H
#define MODES_CORE_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "modes.h"

typedef enum { JSON_NULL, JSON_FALSE, JSON_TRUE, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT } json_type;

typedef struct json_node json_node;
struct json_node {
    json_type type;
    size_t n;              /* string: bytes; array: items; object: members */
    union {
        double num;
        const char *str;   /* NUL-terminated, but may hold NULs: use n */
        json_node *items;  /* array: n nodes; object: 2n nodes, key (a string) then value */
    } u;
};

typedef struct {
    size_t max_bytes;  /* 0: no limit beyond what fits in memory */
    int max_depth;     /* 0: default of 64 */
    size_t max_nodes;  /* 0: no limit */
} json_limits;

typedef struct json_doc json_doc;

/* Parses text[0..len). `what` names the source (a path) in error messages. On success *out owns
 * every node and string; free with json_free. */
int json_parse(const char *text, size_t len, const json_limits *lim, const char *what, json_doc **out,
               modes_error *err);
const json_node *json_root(const json_doc *doc);
void json_free(json_doc *doc);

/* Look-ups return NULL when the node is not of the right type or the key is missing. */
const json_node *json_get(const json_node *obj, const char *key);
const json_node *json_at(const json_node *arr, size_t i);
static inline const json_node *json_key_at(const json_node *obj, size_t i) { return &obj->u.items[2 * i]; }
static inline const json_node *json_val_at(const json_node *obj, size_t i) { return &obj->u.items[2 * i + 1]; }
int json_is_int(const json_node *v);  /* a number with an exact integer value within +-2^53 */
const char *json_type_name(json_type t);

/* Typed look-ups with defaults: *found (optional) says whether the key was present. They fail (return
 * MODES_E_INPUT with a message naming `what` and the key) when the key is present with the wrong type. */
int json_get_int(const json_node *obj, const char *key, int64_t def, int64_t *out, const char *what,
                 modes_error *err);
int json_get_num(const json_node *obj, const char *key, double def, double *out, const char *what,
                 modes_error *err);
int json_get_bool(const json_node *obj, const char *key, int def, int *out, const char *what,
                  modes_error *err);

/* Growable byte buffer for writing JSON (and any other text). An allocation failure sets `failed`
 * and later appends do nothing, so writers check once at the end. */
typedef struct {
    char *data;
    size_t len, cap;
    int failed;
} strbuf;
void sb_append(strbuf *sb, const char *s, size_t n);
void sb_puts(strbuf *sb, const char *s);
void sb_printf(strbuf *sb, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void sb_json_string(strbuf *sb, const char *s, size_t n); /* quoted and escaped */
void sb_json_number(strbuf *sb, double v);                 /* shortest round-trip; null for NaN/inf */
void sb_free(strbuf *sb);
/* Hands the text written to *out (a heap string to free()), or frees it and fails with "out of
 * memory" when an append failed: the end of a function that returns what it wrote. */
int sb_take(strbuf *sb, char **out, modes_error *err);

#endif
