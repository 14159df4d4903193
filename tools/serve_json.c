/* The growable text buffer `modes serve` writes its responses into, with JSON values written as the
 * library writes them (modes_json_quote, modes_json_number). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve.h"

static int grow(serve_buf *b, size_t extra) {
    if (b->failed) return 0;
    if (b->len + extra + 1 <= b->cap) return 1;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1) cap *= 2;
    char *d = realloc(b->data, cap);
    if (!d) {
        b->failed = 1;
        return 0;
    }
    b->data = d;
    b->cap = cap;
    return 1;
}

void sbuf_append(serve_buf *b, const char *s, size_t n) {
    if (!grow(b, n)) return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = 0;
}

void sbuf_printf(serve_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    const int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !grow(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void sbuf_json_string(serve_buf *b, const char *s, size_t n) {
    char *q = modes_json_quote(s ? s : "", s ? n : 0);
    if (!q) {
        b->failed = 1;
        return;
    }
    sbuf_append(b, q, strlen(q));
    free(q);
}

void sbuf_json_number(serve_buf *b, double v) {
    char buf[40];
    const char *s = modes_json_number(v, buf);
    sbuf_append(b, s, strlen(s));
}

void sbuf_free(serve_buf *b) {
    free(b->data);
    *b = (serve_buf){0};
}
