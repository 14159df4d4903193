/* The JSON reader every parser of outside data goes through (src/core/json.c): arbitrary bytes
 * under generous and under tight limits. On success the tree is checked (string lengths, numbers
 * finite, look-ups finding the last duplicate), written back with the JSON writer and read again:
 * the copy must parse and be the same tree. */
#include <math.h>

#include "core/json.h"
#include "fuzz.h"

static void write_node(const json_node *v, strbuf *sb) {
    switch (v->type) {
    case JSON_NULL: sb_puts(sb, "null"); break;
    case JSON_TRUE: sb_puts(sb, "true"); break;
    case JSON_FALSE: sb_puts(sb, "false"); break;
    case JSON_NUMBER: sb_json_number(sb, v->u.num); break;
    case JSON_STRING: sb_json_string(sb, v->u.str, v->n); break;
    case JSON_ARRAY:
        sb_puts(sb, "[");
        for (size_t i = 0; i < v->n; i++) {
            if (i) sb_puts(sb, ",");
            write_node(json_at(v, i), sb);
        }
        sb_puts(sb, "]");
        break;
    case JSON_OBJECT:
        sb_puts(sb, "{");
        for (size_t i = 0; i < v->n; i++) {
            if (i) sb_puts(sb, ",");
            write_node(json_key_at(v, i), sb);
            sb_puts(sb, ":");
            write_node(json_val_at(v, i), sb);
        }
        sb_puts(sb, "}");
        break;
    }
}

static void check_node(const json_node *v, int depth) {
    FUZZ_CHECK(depth <= 64, "depth %d", depth);
    FUZZ_CHECK(json_type_name(v->type)[0] != '?', "type %d", (int)v->type);
    switch (v->type) {
    case JSON_NUMBER:
        FUZZ_CHECK(isfinite(v->u.num), "number %g", v->u.num);
        if (json_is_int(v)) FUZZ_CHECK(fabs(v->u.num) <= 9007199254740992.0, "int %g", v->u.num);
        break;
    case JSON_STRING: FUZZ_CHECK(v->u.str[v->n] == 0, "string not NUL-terminated"); break;
    case JSON_ARRAY:
        for (size_t i = 0; i < v->n; i++) check_node(json_at(v, i), depth + 1);
        FUZZ_CHECK(json_at(v, v->n) == NULL, "json_at past the end");
        break;
    case JSON_OBJECT:
        for (size_t i = 0; i < v->n; i++) {
            const json_node *k = json_key_at(v, i);
            FUZZ_CHECK(k->type == JSON_STRING, "key of type %d", (int)k->type);
            check_node(k, depth + 1);
            check_node(json_val_at(v, i), depth + 1);
            /* json_get returns the last member with the key (keys with NUL cannot be asked for). */
            if (strlen(k->u.str) == k->n) {
                const json_node *g = json_get(v, k->u.str);
                FUZZ_CHECK(g && g >= json_val_at(v, i), "json_get misses '%s'", k->u.str);
            }
        }
        break;
    default: break;
    }
}

static void check_same(const json_node *a, const json_node *b) {
    FUZZ_CHECK(a->type == b->type && a->n == b->n, "round trip changed a node");
    if (a->type == JSON_NUMBER) FUZZ_CHECK(a->u.num == b->u.num, "round trip changed %.17g to %.17g", a->u.num, b->u.num);
    if (a->type == JSON_STRING) FUZZ_CHECK(!memcmp(a->u.str, b->u.str, a->n), "round trip changed a string");
    if (a->type == JSON_ARRAY)
        for (size_t i = 0; i < a->n; i++) check_same(json_at(a, i), json_at(b, i));
    if (a->type == JSON_OBJECT)
        for (size_t i = 0; i < 2 * a->n; i++) check_same(&a->u.items[i], &b->u.items[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *text = (const char *)data;
    modes_error err = {0};
    json_doc *doc = NULL;
    json_limits lim = {.max_bytes = (size_t)1 << 20, .max_depth = 0, .max_nodes = 1 << 16};
    int rc = json_parse(text, size, &lim, "fuzz.json", &doc, &err);
    if (rc) {
        FUZZ_CHECK(!doc, "document returned on failure");
        fuzz_check_error(rc, &err, "fuzz.json");
    } else {
        const json_node *root = json_root(doc);
        check_node(root, 1);
        strbuf sb = {0};
        write_node(root, &sb);
        FUZZ_CHECK(!sb.failed, "out of memory");
        json_doc *again = NULL;
        modes_error err2 = {0};
        int rc2 = json_parse(sb.data, sb.len, &lim, "copy", &again, &err2);
        FUZZ_CHECK(rc2 == 0, "written copy does not parse: %s\n%.*s", err2.msg, (int)(sb.len < 400 ? sb.len : 400),
                   sb.data);
        check_same(root, json_root(again));
        json_free(again);
        sb_free(&sb);
    }
    json_free(doc);

    /* Tight limits: failures part-way through a document must clean up as well. */
    json_limits tight = {.max_bytes = 4096, .max_depth = 3, .max_nodes = 40};
    doc = NULL;
    rc = json_parse(text, size, &tight, "tight.json", &doc, &err);
    if (rc) fuzz_check_error(rc, &err, "tight.json");
    json_free(doc);
    return 0;
}
