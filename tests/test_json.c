#include <math.h>

#include "check.h"
#include "core/json.h"

static int parses(const char *s, json_doc **doc, modes_error *err) {
    return json_parse(s, strlen(s), NULL, "t.json", doc, err);
}

static void test_values(void) {
    json_doc *doc;
    modes_error err = {0};
    const char *s = "{\"a\": [1, -2.5e3, true, false, null], \"b\": {\"c\": \"x\\u00e9\\ud83d\\ude00\\n\"},"
                    " \"a\": 7, \"z\": \"nul\\u0000in\"}";
    CHECK(parses(s, &doc, &err) == 0);
    const json_node *r = json_root(doc);
    CHECK(r->type == JSON_OBJECT && r->n == 4);
    const json_node *a = json_get(r, "a");
    CHECK(a && a->type == JSON_NUMBER && a->u.num == 7); /* last duplicate wins */
    const json_node *arr = json_val_at(r, 0);
    CHECK(arr->type == JSON_ARRAY && arr->n == 5);
    CHECK(json_at(arr, 1)->u.num == -2500.0);
    CHECK(json_at(arr, 2)->type == JSON_TRUE && json_at(arr, 4)->type == JSON_NULL);
    CHECK(json_at(arr, 5) == NULL);
    const json_node *c = json_get(json_get(r, "b"), "c");
    CHECK(c && c->n == 8 && !memcmp(c->u.str, "x\xc3\xa9\xf0\x9f\x98\x80\n", 8));
    const json_node *z = json_get(r, "z");
    CHECK(z && z->n == 6 && z->u.str[3] == 0);
    int64_t iv;
    CHECK(json_get_int(r, "a", 0, &iv, "t", &err) == 0 && iv == 7);
    CHECK(json_get_int(r, "missing", 42, &iv, "t", &err) == 0 && iv == 42);
    CHECK(json_get_int(r, "b", 0, &iv, "t", &err) == MODES_E_INPUT && strstr(err.msg, "\"b\""));
    json_free(doc);
}

static void test_errors(void) {
    const char *bad[] = {"", "{", "[1,]", "{\"a\" 1}", "[1 2]", "01", "1.", "-", "1e", "\"abc", "\"\\x\"",
                         "\"\\ud800\"", "\"a\x01\"", "tru", "nul", "[] []", "NaN", "Infinity", "1e999",
                         "\"\xff\"", "\"\xc0\xaf\"", "\"\xed\xa0\x80\"", "{1:2}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        json_doc *doc = NULL;
        modes_error err = {0};
        int rc = parses(bad[i], &doc, &err);
        CHECKF(rc == MODES_E_INPUT && doc == NULL, "accepted bad JSON #%zu", i);
        CHECKF(strstr(err.msg, "t.json") != NULL, "message does not name the file: %s", err.msg);
    }
    /* Depth and size limits are reported, not crashed on. */
    char deep[400];
    memset(deep, '[', sizeof deep - 1);
    deep[sizeof deep - 1] = 0;
    json_doc *doc = NULL;
    modes_error err = {0};
    json_limits lim = {.max_depth = 32};
    CHECK(json_parse(deep, strlen(deep), &lim, "d.json", &doc, &err) == MODES_E_INPUT && strstr(err.msg, "nesting"));
    lim = (json_limits){.max_bytes = 4};
    CHECK(json_parse("[1,2,3]", 7, &lim, "d.json", &doc, &err) == MODES_E_INPUT && strstr(err.msg, "limit"));
    lim = (json_limits){.max_nodes = 3};
    CHECK(json_parse("[1,2,3]", 7, &lim, "d.json", &doc, &err) == MODES_E_INPUT);
}

static void test_writer(void) {
    strbuf sb = {0};
    sb_json_string(&sb, "a\"b\\c\n\x01\xc3\xa9", 9);
    sb_puts(&sb, " ");
    sb_json_number(&sb, 0.1);
    sb_puts(&sb, " ");
    sb_json_number(&sb, 3.0);
    sb_puts(&sb, " ");
    sb_json_number(&sb, NAN);
    CHECKF(!strcmp(sb.data, "\"a\\\"b\\\\c\\n\\u0001\xc3\xa9\" 0.1 3 null"), "got %s", sb.data);
    json_doc *doc;
    modes_error err;
    size_t qlen = (size_t)(strchr(sb.data, ' ') - sb.data);
    int rc = json_parse(sb.data, qlen, NULL, "w", &doc, &err); /* the string round-trips */
    CHECK(rc == 0);
    if (!rc) {
        CHECK(json_root(doc)->n == 9 && !memcmp(json_root(doc)->u.str, "a\"b\\c\n\x01\xc3\xa9", 9));
        json_free(doc);
    }
    sb_free(&sb);
}

int main(void) {
    test_values();
    test_errors();
    test_writer();
    return check_done();
}
