#include "core/arena.h"

#include <stdint.h>
#include <stdlib.h>

#define ARENA_ALIGN 64

static size_t round_up(size_t n) { return (n + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN; }

static void *overflow_alloc(arena *a, size_t n, size_t at) {
    if (a->n_overflow == a->cap_overflow) {
        const size_t cap = a->cap_overflow ? 2 * a->cap_overflow : 16;
        void **o = realloc(a->overflow, cap * sizeof *o);
        if (!o) return NULL;
        a->overflow = o;
        size_t *w = realloc(a->overflow_at, cap * sizeof *w);
        if (!w) return NULL;
        a->overflow_at = w;
        a->cap_overflow = cap;
    }
    void *p = aligned_alloc(ARENA_ALIGN, n);
    if (!p) return NULL;
    a->overflow[a->n_overflow] = p;
    a->overflow_at[a->n_overflow++] = at;
    return p;
}

void *arena_alloc(arena *a, size_t n) {
    n = round_up(n ? n : 1);
    if (n < ARENA_ALIGN) return NULL; /* n was within 63 of SIZE_MAX */
    const size_t at = a->used;
    if (n > SIZE_MAX - at) return NULL;
    void *p = at + n <= a->cap ? a->base + at : overflow_alloc(a, n, at);
    if (!p) return NULL;
    a->used = at + n;
    if (a->used > a->peak) a->peak = a->used;
    return p;
}

void *arena_array(arena *a, size_t count, size_t size) {
    if (size && count > SIZE_MAX / size) return NULL;
    return arena_alloc(a, count * size);
}

size_t arena_mark(const arena *a) { return a->used; }

void arena_release(arena *a, size_t mark) {
    while (a->n_overflow && a->overflow_at[a->n_overflow - 1] >= mark) free(a->overflow[--a->n_overflow]);
    if (mark < a->used) a->used = mark;
}

int arena_reset(arena *a) {
    arena_release(a, 0);
    if (a->peak <= a->cap) return 0;
    unsigned char *grown = aligned_alloc(ARENA_ALIGN, a->peak);
    if (!grown) return -1;
    free(a->base);
    a->base = grown;
    a->cap = a->peak;
    return 0;
}

void arena_free(arena *a) {
    arena_release(a, 0);
    free(a->base);
    free(a->overflow);
    free(a->overflow_at);
    *a = (arena){0};
}
