/* Error reporting shared by every module: a code plus one human-readable line that names the file,
 * tensor or position at fault. The library never prints and never exits; callers decide. */
#ifndef MODES_CORE_ERROR_H
#define MODES_CORE_ERROR_H

#include "modes.h"

/* Formats the message into err (when non-NULL) and returns code, so a failing path reads
 * `return modes_fail(err, MODES_E_INPUT, "%s: truncated header", path);`. */
int modes_fail(modes_error *err, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Prefixes an existing message with more context ("while loading X: ..."). */
void modes_error_prefix(modes_error *err, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* The public API's refusal of a NULL pointer it needs: "modes_eval: ids is NULL". */
#define MODES_REQUIRE(err, arg)                                                                   \
    do {                                                                                          \
        if (!(arg)) return modes_fail(err, MODES_E_INPUT, "%s: %s is NULL", __func__, #arg);     \
    } while (0)

#endif
