/* The public services of core/ behind include/modes.h: JSON as the library writes and reads it, and
 * the machine's core count. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cores.h"
#include "core/error.h"
#include "core/json.h"

int modes_physical_cores(void) { return cores_physical(); }

char *modes_json_quote(const char *s, size_t n) {
    if (!s) return NULL;
    strbuf sb = {0};
    sb_json_string(&sb, s, n);
    if (!sb.failed) return sb.data;
    sb_free(&sb);
    return NULL;
}

const char *modes_json_number(double v, char buf[40]) {
    if (!buf) return NULL;
    strbuf sb = {0};
    sb_json_number(&sb, v);
    snprintf(buf, 40, "%s", sb.failed ? "null" : sb.data);
    sb_free(&sb);
    return buf;
}

int modes_json_string_member(const char *text, size_t len, const char *what, const char *key, char **value,
                             size_t *value_len, modes_error *err) {
    MODES_REQUIRE(err, value);
    *value = NULL;
    MODES_REQUIRE(err, value_len);
    *value_len = 0;
    MODES_REQUIRE(err, text);
    MODES_REQUIRE(err, what);
    MODES_REQUIRE(err, key);
    json_doc *doc;
    const json_limits lim = {.max_bytes = (size_t)64 << 20, .max_depth = 16};
    int rc = json_parse(text, len, &lim, what, &doc, err);
    if (rc) return rc;
    const json_node *v = json_get(json_root(doc), key);
    if (v && v->type == JSON_STRING) {
        if ((*value = malloc(v->n + 1))) {
            memcpy(*value, v->u.str, v->n + 1);
            *value_len = v->n;
        } else {
            rc = modes_fail(err, MODES_E_INTERNAL, "%s: out of memory", what);
        }
    }
    json_free(doc);
    return rc;
}

/* The public JSON reader: a modes_json is a json_node, a modes_json_doc a json_doc. */
_Static_assert(MODES_JSON_NULL == (int)JSON_NULL && MODES_JSON_STRING == (int)JSON_STRING &&
                   MODES_JSON_OBJECT == (int)JSON_OBJECT,
               "modes_json_type follows json_type");
static const json_node *node(const modes_json *v) { return (const json_node *)(const void *)v; }
static const modes_json *pub(const json_node *n) { return (const modes_json *)(const void *)n; }

int modes_json_parse(const char *text, size_t len, const char *what, size_t max_bytes, int max_depth,
                     modes_json_doc **out, modes_error *err) {
    MODES_REQUIRE(err, out);
    *out = NULL;
    MODES_REQUIRE(err, text);
    MODES_REQUIRE(err, what);
    const json_limits lim = {.max_bytes = max_bytes ? max_bytes : (size_t)64 << 20, .max_depth = max_depth};
    json_doc *doc = NULL;
    const int rc = json_parse(text, len, &lim, what, &doc, err);
    if (!rc) *out = (modes_json_doc *)(void *)doc;
    return rc;
}

void modes_json_free(modes_json_doc *d) { json_free((json_doc *)(void *)d); }

const modes_json *modes_json_root(const modes_json_doc *d) {
    return d ? pub(json_root((const json_doc *)(const void *)d)) : NULL;
}

int modes_json_type_of(const modes_json *v) { return v ? (int)node(v)->type : -1; }

const char *modes_json_type_name(int type) {
    return type >= JSON_NULL && type <= JSON_OBJECT ? json_type_name((json_type)type) : "unknown";
}

const modes_json *modes_json_get(const modes_json *obj, const char *key) {
    return obj && key ? pub(json_get(node(obj), key)) : NULL;
}

const modes_json *modes_json_at(const modes_json *arr, size_t i) { return arr ? pub(json_at(node(arr), i)) : NULL; }

size_t modes_json_count(const modes_json *v) {
    return v && (node(v)->type == JSON_ARRAY || node(v)->type == JSON_OBJECT) ? node(v)->n : 0;
}

const char *modes_json_str(const modes_json *v, size_t *len) {
    const int ok = v && node(v)->type == JSON_STRING;
    if (len) *len = ok ? node(v)->n : 0;
    return ok ? node(v)->u.str : NULL;
}

double modes_json_num(const modes_json *v) { return v && node(v)->type == JSON_NUMBER ? node(v)->u.num : NAN; }
