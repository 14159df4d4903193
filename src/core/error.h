/* Error reporting shared by every module: a code plus one human-readable line that names the file,
 * tensor or position at fault. The library never prints and never exits; callers decide. */
#ifndef MODES_CORE_ERROR_H
#define MODES_CORE_ERROR_H

#include "modes.h"

/* modes_fail and modes_error_prefix are declared in modes.h: programs built on the library use them too. */

/* The public API's refusal of a NULL pointer it needs: "modes_eval: ids is NULL". */
#define MODES_REQUIRE(err, arg)                                                                   \
    do {                                                                                          \
        if (!(arg)) return modes_fail(err, MODES_E_INPUT, "%s: %s is NULL", __func__, #arg);     \
    } while (0)

#endif
