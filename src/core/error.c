#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Messages quote file contents (names, keys, values) and are printed as one line: control bytes
 * (a newline, a terminal escape) become '?'. */
static void one_line(char *s) {
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) *s = '?';
}

int modes_fail(modes_error *err, int code, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        one_line(err->msg);
        err->code = code;
    }
    return code;
}

void modes_error_prefix(modes_error *err, const char *fmt, ...) {
    if (!err) return;
    char prefix[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    one_line(prefix);
    /* Truncation is acceptable: the start of the message says the most. */
    size_t pl = strlen(prefix), cap = sizeof err->msg;
    if (pl + 2 >= cap) pl = cap - 3;
    memmove(err->msg + pl + 2, err->msg, cap - pl - 2);
    err->msg[cap - 1] = 0;
    memcpy(err->msg, prefix, pl);
    err->msg[pl] = ':';
    err->msg[pl + 1] = ' ';
}
