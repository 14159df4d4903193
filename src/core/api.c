/* The public services of core/ behind include/modes.h: JSON as the library writes and reads it, and
 * the machine's core count. */
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
