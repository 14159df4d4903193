#include "core/json.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

/* Nodes and strings live in a chain of blocks, so pointers handed out stay valid and json_free is
 * one walk. */
typedef struct block {
    struct block *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
} block;

struct json_doc {
    block *blocks;
    json_node root;
};

typedef struct {
    const char *s, *end, *start;
    const char *what;
    json_doc *doc;
    json_node *stack; /* children of the containers being parsed, innermost last */
    size_t sp, scap;
    size_t nodes, max_nodes;
    int depth, max_depth;
    modes_error *err;
} parser;

static void *arena_alloc(json_doc *doc, size_t n) {
    n = (n + 15) & ~(size_t)15;
    block *b = doc->blocks;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > ((size_t)1 << 20) ? n : ((size_t)1 << 20);
        b = malloc(sizeof *b + cap);
        if (!b) return NULL;
        b->next = doc->blocks;
        b->used = 0;
        b->cap = cap;
        doc->blocks = b;
    }
    void *p = b->data + b->used;
    b->used += n;
    return p;
}

static int fail_at(parser *p, const char *at, const char *fmt, ...) {
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    size_t line = 1, col = 1;
    for (const char *c = p->start; c < at && c < p->end; c++) {
        if (*c == '\n') { line++; col = 1; } else col++;
    }
    return modes_fail(p->err, MODES_E_INPUT, "%s: invalid JSON at line %zu, column %zu: %s", p->what, line, col,
                      msg);
}

static void skip_ws(parser *p) {
    while (p->s < p->end && (*p->s == ' ' || *p->s == '\t' || *p->s == '\n' || *p->s == '\r')) p->s++;
}

static int push(parser *p, const json_node *n) {
    if (p->sp == p->scap) {
        size_t cap = p->scap ? 2 * p->scap : 256;
        json_node *s = realloc(p->stack, cap * sizeof *s);
        if (!s) return modes_fail(p->err, MODES_E_INTERNAL, "%s: out of memory parsing JSON", p->what);
        p->stack = s;
        p->scap = cap;
    }
    p->stack[p->sp++] = *n;
    return 0;
}

/* Length of a valid UTF-8 sequence starting at s (strict: no overlongs, surrogates or > U+10FFFF),
 * or 0 when invalid. */
static int utf8_seq_len(const unsigned char *s, const unsigned char *end) {
    unsigned c = s[0];
    if (c < 0x80) return 1;
    int n;
    unsigned min, cp;
    if ((c & 0xE0) == 0xC0) { n = 2; cp = c & 0x1F; min = 0x80; }
    else if ((c & 0xF0) == 0xE0) { n = 3; cp = c & 0x0F; min = 0x800; }
    else if ((c & 0xF8) == 0xF0) { n = 4; cp = c & 0x07; min = 0x10000; }
    else return 0;
    if (end - s < n) return 0;
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return n;
}

static char *put_utf8(char *o, unsigned cp) {
    if (cp < 0x80) *o++ = (char)cp;
    else if (cp < 0x800) { *o++ = (char)(0xC0 | cp >> 6); *o++ = (char)(0x80 | (cp & 0x3F)); }
    else if (cp < 0x10000) {
        *o++ = (char)(0xE0 | cp >> 12); *o++ = (char)(0x80 | ((cp >> 6) & 0x3F)); *o++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *o++ = (char)(0xF0 | cp >> 18); *o++ = (char)(0x80 | ((cp >> 12) & 0x3F));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3F)); *o++ = (char)(0x80 | (cp & 0x3F));
    }
    return o;
}

static int hex4(const char *s, unsigned *out) {
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return -1;
    }
    *out = v;
    return 0;
}

static int parse_string(parser *p, json_node *out) {
    const char *q = ++p->s; /* after the opening quote */
    /* First pass finds the end, so the unescaped copy can be sized: it is never longer. */
    while (q < p->end && *q != '"') {
        if (*q == '\\') q++;
        q++;
    }
    if (q >= p->end) return fail_at(p, p->s - 1, "unterminated string");
    char *buf = arena_alloc(p->doc, (size_t)(q - p->s) + 1);
    if (!buf) return modes_fail(p->err, MODES_E_INTERNAL, "%s: out of memory parsing JSON", p->what);
    char *o = buf;
    const char *s = p->s;
    while (s < q) {
        unsigned char c = (unsigned char)*s;
        if (c == '\\') {
            char e = s[1];
            s += 2;
            switch (e) {
            case '"': *o++ = '"'; break;
            case '\\': *o++ = '\\'; break;
            case '/': *o++ = '/'; break;
            case 'b': *o++ = '\b'; break;
            case 'f': *o++ = '\f'; break;
            case 'n': *o++ = '\n'; break;
            case 'r': *o++ = '\r'; break;
            case 't': *o++ = '\t'; break;
            case 'u': {
                unsigned cp, lo;
                if (q - s < 4 || hex4(s, &cp)) return fail_at(p, s, "bad \\u escape");
                s += 4;
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    if (q - s < 6 || s[0] != '\\' || s[1] != 'u' || hex4(s + 2, &lo) || lo < 0xDC00 || lo > 0xDFFF)
                        return fail_at(p, s, "lone UTF-16 surrogate in \\u escape");
                    s += 6;
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                    return fail_at(p, s, "lone UTF-16 surrogate in \\u escape");
                }
                o = put_utf8(o, cp);
                break;
            }
            default: return fail_at(p, s - 1, "bad escape character");
            }
        } else if (c < 0x20) {
            return fail_at(p, s, "control character in string");
        } else if (c < 0x80) {
            *o++ = (char)c;
            s++;
        } else {
            int n = utf8_seq_len((const unsigned char *)s, (const unsigned char *)q);
            if (!n) return fail_at(p, s, "invalid UTF-8 in string");
            memcpy(o, s, (size_t)n);
            o += n;
            s += n;
        }
    }
    *o = 0;
    out->type = JSON_STRING;
    out->n = (size_t)(o - buf);
    out->u.str = buf;
    p->s = q + 1;
    return 0;
}

static int parse_number(parser *p, json_node *out) {
    const char *s = p->s, *b = s;
    if (s < p->end && *s == '-') s++;
    if (s >= p->end) return fail_at(p, b, "bad number");
    if (*s == '0') s++;
    else if (*s >= '1' && *s <= '9') while (s < p->end && *s >= '0' && *s <= '9') s++;
    else return fail_at(p, b, "bad number");
    if (s < p->end && *s == '.') {
        s++;
        if (s >= p->end || *s < '0' || *s > '9') return fail_at(p, b, "bad number");
        while (s < p->end && *s >= '0' && *s <= '9') s++;
    }
    if (s < p->end && (*s == 'e' || *s == 'E')) {
        s++;
        if (s < p->end && (*s == '+' || *s == '-')) s++;
        if (s >= p->end || *s < '0' || *s > '9') return fail_at(p, b, "bad number");
        while (s < p->end && *s >= '0' && *s <= '9') s++;
    }
    size_t n = (size_t)(s - b);
    char small[64], *tmp = n < sizeof small ? small : malloc(n + 1);
    if (!tmp) return modes_fail(p->err, MODES_E_INTERNAL, "%s: out of memory parsing JSON", p->what);
    memcpy(tmp, b, n);
    tmp[n] = 0;
    double v = strtod(tmp, NULL);
    if (tmp != small) free(tmp);
    if (!isfinite(v)) return fail_at(p, b, "number out of range");
    out->type = JSON_NUMBER;
    out->n = 0;
    out->u.num = v;
    p->s = s;
    return 0;
}

static int parse_value(parser *p, json_node *out);

static int finish_container(parser *p, size_t base, json_type type, size_t members, json_node *out) {
    size_t count = p->sp - base;
    json_node *items = NULL;
    if (count) {
        items = arena_alloc(p->doc, count * sizeof *items);
        if (!items) return modes_fail(p->err, MODES_E_INTERNAL, "%s: out of memory parsing JSON", p->what);
        memcpy(items, p->stack + base, count * sizeof *items);
    }
    p->sp = base;
    out->type = type;
    out->n = members;
    out->u.items = items;
    return 0;
}

static int parse_container(parser *p, json_node *out) {
    const char open = *p->s;
    const char close = open == '[' ? ']' : '}';
    const char *at = p->s;
    if (++p->depth > p->max_depth)
        return fail_at(p, at, "nesting deeper than %d levels", p->max_depth);
    p->s++;
    size_t base = p->sp, members = 0;
    skip_ws(p);
    if (p->s < p->end && *p->s == close) {
        p->s++;
    } else {
        for (;;) {
            json_node n;
            int rc;
            skip_ws(p);
            if (open == '{') {
                if (p->s >= p->end || *p->s != '"') return fail_at(p, p->s, "expected a string key");
                if ((rc = parse_string(p, &n)) || (rc = push(p, &n))) return rc;
                skip_ws(p);
                if (p->s >= p->end || *p->s != ':') return fail_at(p, p->s, "expected ':'");
                p->s++;
            }
            if ((rc = parse_value(p, &n)) || (rc = push(p, &n))) return rc;
            members++;
            skip_ws(p);
            if (p->s < p->end && *p->s == ',') { p->s++; continue; }
            if (p->s < p->end && *p->s == close) { p->s++; break; }
            return fail_at(p, p->s, p->s >= p->end ? "unexpected end of input" : "expected ',' or '%c'", close);
        }
    }
    p->depth--;
    return finish_container(p, base, open == '[' ? JSON_ARRAY : JSON_OBJECT, members, out);
}

static int parse_value(parser *p, json_node *out) {
    skip_ws(p);
    if (p->s >= p->end) return fail_at(p, p->s, "unexpected end of input");
    if (p->max_nodes && ++p->nodes > p->max_nodes)
        return fail_at(p, p->s, "more than %zu values", p->max_nodes);
    char c = *p->s;
    size_t left = (size_t)(p->end - p->s);
    switch (c) {
    case '{': case '[': return parse_container(p, out);
    case '"': return parse_string(p, out);
    case 't':
        if (left >= 4 && !memcmp(p->s, "true", 4)) { p->s += 4; out->type = JSON_TRUE; out->n = 0; return 0; }
        break;
    case 'f':
        if (left >= 5 && !memcmp(p->s, "false", 5)) { p->s += 5; out->type = JSON_FALSE; out->n = 0; return 0; }
        break;
    case 'n':
        if (left >= 4 && !memcmp(p->s, "null", 4)) { p->s += 4; out->type = JSON_NULL; out->n = 0; return 0; }
        break;
    default:
        if (c == '-' || (c >= '0' && c <= '9')) return parse_number(p, out);
    }
    return fail_at(p, p->s, "unexpected character");
}

int json_parse(const char *text, size_t len, const json_limits *lim, const char *what, json_doc **out,
               modes_error *err) {
    *out = NULL;
    if (!what) what = "JSON";
    if (lim && lim->max_bytes && len > lim->max_bytes)
        return modes_fail(err, MODES_E_INPUT, "%s: JSON text of %zu bytes is over the limit of %zu", what, len,
                          lim->max_bytes);
    json_doc *doc = calloc(1, sizeof *doc);
    if (!doc) return modes_fail(err, MODES_E_INTERNAL, "%s: out of memory", what);
    parser p = {.s = text, .end = text + len, .start = text, .what = what, .doc = doc,
                .max_nodes = lim ? lim->max_nodes : 0,
                .max_depth = lim && lim->max_depth > 0 ? lim->max_depth : 64, .err = err};
    /* A UTF-8 byte order mark is tolerated, as Python's json does for files opened with utf-8-sig. */
    if (len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3)) p.s += 3;
    int rc = parse_value(&p, &doc->root);
    if (!rc) {
        skip_ws(&p);
        if (p.s != p.end) rc = fail_at(&p, p.s, "trailing characters after the value");
    }
    free(p.stack);
    if (rc) {
        json_free(doc);
        return rc;
    }
    *out = doc;
    return 0;
}

const json_node *json_root(const json_doc *doc) { return doc ? &doc->root : NULL; }

void json_free(json_doc *doc) {
    if (!doc) return;
    for (block *b = doc->blocks, *n; b; b = n) {
        n = b->next;
        free(b);
    }
    free(doc);
}

const json_node *json_get(const json_node *obj, const char *key) {
    if (!obj || obj->type != JSON_OBJECT) return NULL;
    size_t kl = strlen(key);
    /* Last occurrence wins, as in Python's json; files with duplicate keys are rare. */
    for (size_t i = obj->n; i-- > 0;) {
        const json_node *k = json_key_at(obj, i);
        if (k->n == kl && !memcmp(k->u.str, key, kl)) return json_val_at(obj, i);
    }
    return NULL;
}

const json_node *json_at(const json_node *arr, size_t i) {
    if (!arr || arr->type != JSON_ARRAY || i >= arr->n) return NULL;
    return &arr->u.items[i];
}

int json_is_int(const json_node *v) {
    return v && v->type == JSON_NUMBER && v->u.num == floor(v->u.num) && fabs(v->u.num) <= 9007199254740992.0;
}

const char *json_type_name(json_type t) {
    static const char *names[] = {"null", "false", "true", "number", "string", "array", "object"};
    return (unsigned)t < 7 ? names[t] : "?";
}

int json_get_int(const json_node *obj, const char *key, int64_t def, int64_t *out, const char *what,
                 modes_error *err) {
    const json_node *v = json_get(obj, key);
    if (!v || v->type == JSON_NULL) { *out = def; return 0; }
    if (!json_is_int(v))
        return modes_fail(err, MODES_E_INPUT, "%s: \"%s\" must be an integer, not %s", what, key,
                          v->type == JSON_NUMBER ? "a fraction" : json_type_name(v->type));
    *out = (int64_t)v->u.num;
    return 0;
}

int json_get_num(const json_node *obj, const char *key, double def, double *out, const char *what,
                 modes_error *err) {
    const json_node *v = json_get(obj, key);
    if (!v || v->type == JSON_NULL) { *out = def; return 0; }
    if (v->type != JSON_NUMBER)
        return modes_fail(err, MODES_E_INPUT, "%s: \"%s\" must be a number, not %s", what, key,
                          json_type_name(v->type));
    *out = v->u.num;
    return 0;
}

int json_get_bool(const json_node *obj, const char *key, int def, int *out, const char *what, modes_error *err) {
    const json_node *v = json_get(obj, key);
    if (!v || v->type == JSON_NULL) { *out = def; return 0; }
    if (v->type != JSON_TRUE && v->type != JSON_FALSE)
        return modes_fail(err, MODES_E_INPUT, "%s: \"%s\" must be true or false, not %s", what, key,
                          json_type_name(v->type));
    *out = v->type == JSON_TRUE;
    return 0;
}

void sb_append(strbuf *sb, const char *s, size_t n) {
    if (sb->failed) return;
    if (sb->cap - sb->len < n + 1) {
        size_t cap = sb->cap ? sb->cap : 256;
        while (cap - sb->len < n + 1) cap *= 2;
        char *d = realloc(sb->data, cap);
        if (!d) { sb->failed = 1; return; }
        sb->data = d;
        sb->cap = cap;
    }
    memcpy(sb->data + sb->len, s, n);
    sb->len += n;
    sb->data[sb->len] = 0;
}

void sb_puts(strbuf *sb, const char *s) { sb_append(sb, s, strlen(s)); }

void sb_printf(strbuf *sb, const char *fmt, ...) {
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) { sb->failed = 1; return; }
    if ((size_t)n < sizeof small) { sb_append(sb, small, (size_t)n); return; }
    char *big = malloc((size_t)n + 1);
    if (!big) { sb->failed = 1; return; }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb_append(sb, big, (size_t)n);
    free(big);
}

void sb_json_string(strbuf *sb, const char *s, size_t n) {
    sb_append(sb, "\"", 1);
    size_t run = 0; /* bytes copied verbatim in one go */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        sb_append(sb, s + run, i - run);
        run = i + 1;
        switch (c) {
        case '"': sb_puts(sb, "\\\""); break;
        case '\\': sb_puts(sb, "\\\\"); break;
        case '\n': sb_puts(sb, "\\n"); break;
        case '\r': sb_puts(sb, "\\r"); break;
        case '\t': sb_puts(sb, "\\t"); break;
        default: sb_printf(sb, "\\u%04x", c);
        }
    }
    sb_append(sb, s + run, n - run);
    sb_append(sb, "\"", 1);
}

void sb_json_number(strbuf *sb, double v) {
    if (!isfinite(v)) { sb_puts(sb, "null"); return; }
    if (v == floor(v) && fabs(v) < 1e15) { sb_printf(sb, "%.0f", v); return; }
    char buf[40];
    for (int prec = 6; prec <= 17; prec++) { /* shortest text that reads back to the same double */
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) break;
    }
    sb_puts(sb, buf);
}

void sb_free(strbuf *sb) {
    free(sb->data);
    sb->data = NULL;
    sb->len = sb->cap = 0;
    sb->failed = 0;
}

int sb_take(strbuf *sb, char **out, modes_error *err) {
    *out = sb->failed ? NULL : sb->data ? sb->data : strdup(""); /* nothing written: "" */
    if (*out == sb->data) *sb = (strbuf){0};
    else sb_free(sb);
    return *out ? 0 : modes_fail(err, MODES_E_INTERNAL, "out of memory");
}
