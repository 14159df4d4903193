/* modes: a C inference engine for Mixture-of-Experts multimodal LLMs with MoDES expert skipping.
 *
 * Conventions: every function that can fail returns 0 on success or a modes_status code, and fills
 * the caller's modes_error (which may be NULL) with one line naming the file, tensor or value at
 * fault. The library never prints and never exits, and keeps no global state: everything lives in
 * a modes_model (read-only weights, shareable) or a modes_ctx (KV cache and scratch, one per
 * conversation). Every _load/_new has a matching _free, which accepts NULL. */
#ifndef MODES_H
#define MODES_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MODES_VERSION "0.1.0"

typedef enum {
    MODES_OK = 0,
    MODES_E_INPUT = 1,    /* bad input: a file, an option, a prompt the model cannot take */
    MODES_E_INTERNAL = 2, /* out of memory, or a bug */
} modes_status;

typedef struct {
    int code;
    char msg[512];
} modes_error;

#ifdef __cplusplus
}
#endif
#endif
