/* Scratch memory for the forward pass, owned by a context (docs/design.md section 4): a bump
 * allocator that is reset before every pass, so the steady state of decoding allocates nothing.
 *
 * A pass that needs more than the arena holds still gets its memory (each overflow request is a
 * separate allocation, freed at the next reset), and the next reset grows the arena to the most
 * any pass has used: after one pass of a given shape, passes of that shape never call malloc. */
#ifndef MODES_CORE_ARENA_H
#define MODES_CORE_ARENA_H

#include <stddef.h>

typedef struct {
    unsigned char *base;
    size_t cap, used; /* used counts overflow requests too: it is what the arena should have held */
    size_t peak;
    void **overflow;  /* separate allocations made while the arena was full, freed at reset */
    size_t *overflow_at; /* the arena offset at which each was made, for arena_release */
    size_t n_overflow, cap_overflow;
} arena;

/* n bytes aligned to 64, or NULL when out of memory. The memory is uninitialised. */
void *arena_alloc(arena *a, size_t n);
/* arena_alloc of count elements of size bytes, NULL on overflow of the product too. */
void *arena_array(arena *a, size_t count, size_t size);

/* A mark to release back to: what was allocated after it is given back at once (a MoE layer's
 * scratch, reused by the next layer of the same pass). */
size_t arena_mark(const arena *a);
void arena_release(arena *a, size_t mark);

/* Forgets every allocation, frees the overflow and grows the arena to the peak seen. Returns -1
 * when growing failed (the arena then stays as it was and overflows again). */
int arena_reset(arena *a);
void arena_free(arena *a);

#endif
