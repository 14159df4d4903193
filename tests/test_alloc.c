/* The steady state of decoding allocates nothing (docs/design.md section 4: the forward pass takes
 * its memory from the context's arena). Every malloc, calloc, realloc, aligned_alloc and
 * posix_memalign of the process is counted here by wrapping glibc's allocator; after a few warm-up
 * steps, more decode steps (modes_eval of one token, with and without a skip policy) and more
 * generated tokens (modes_generate, greedy) must add no allocation at all.
 * Under AddressSanitizer, which owns the allocator, the test has nothing to count and passes. */
#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "modes.h"

#if defined(__SANITIZE_ADDRESS__)
#define COUNTING 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define COUNTING 0
#endif
#endif
#ifndef COUNTING
#define COUNTING 1
#endif

static unsigned long allocations;

#if COUNTING
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

void *malloc(size_t n) { return __atomic_add_fetch(&allocations, 1, __ATOMIC_RELAXED), __libc_malloc(n); }
void *calloc(size_t k, size_t n) { return __atomic_add_fetch(&allocations, 1, __ATOMIC_RELAXED), __libc_calloc(k, n); }
void *realloc(void *p, size_t n) { return __atomic_add_fetch(&allocations, 1, __ATOMIC_RELAXED), __libc_realloc(p, n); }
void *aligned_alloc(size_t a, size_t n) { return __atomic_add_fetch(&allocations, 1, __ATOMIC_RELAXED), __libc_memalign(a, n); }
int posix_memalign(void **p, size_t a, size_t n) {
    __atomic_add_fetch(&allocations, 1, __ATOMIC_RELAXED);
    *p = __libc_memalign(a, n);
    return *p ? 0 : 12; /* ENOMEM */
}
#endif

static unsigned long count(void) { return __atomic_load_n(&allocations, __ATOMIC_RELAXED); }

/* Allocations made by `steps` decode steps after `warm` of them, from the end of a prompt. */
static long decode_allocations(const modes_model *m, modes_ctx *c, const modes_prompt *p, int warm, int steps) {
    modes_error err = {0};
    float *logits = malloc(sizeof(float) * (size_t)modes_model_vocab(m));
    modes_ctx_reset(c);
    CHECKF(modes_eval_prompt(c, p, NULL, 0, &err) == 0, "%s", err.msg);
    int32_t id = 10;
    for (int i = 0; i < warm; i++) CHECKF(modes_eval(c, &id, 1, logits, 1, &err) == 0, "%s", err.msg);
    const unsigned long before = count();
    for (int i = 0; i < steps; i++) CHECKF(modes_eval(c, &id, 1, logits, 1, &err) == 0, "%s", err.msg);
    const long made = (long)(count() - before);
    free(logits);
    return made;
}

/* Allocations of a generation of max_new tokens from the prompt (-1 when it stopped before). */
static long generate_allocations(modes_ctx *c, const modes_prompt *p, int max_new, const modes_sampling *s) {
    modes_error err = {0};
    int32_t out[64];
    int n_out = 0;
    modes_ctx_reset(c);
    const unsigned long before = count();
    CHECKF(modes_generate(c, p, max_new, s, NULL, NULL, out, &n_out, NULL, &err) == 0, "%s", err.msg);
    return n_out == max_new ? (long)(count() - before) : -1;
}

/* Generations of 4 and of 24 tokens make as many allocations: none per token. Sampled at a high
 * temperature (long answers) with the first seed whose two answers both run to their length. */
static void check_generation(modes_ctx *c, const modes_prompt *p) {
    for (uint64_t seed = 1; seed <= 20; seed++) {
        const modes_sampling s = {.temperature = 8, .top_p = 1, .seed = seed};
        const long short_run = generate_allocations(c, p, 4, &s), long_run = generate_allocations(c, p, 24, &s);
        if (short_run < 0 || long_run < 0) continue;
        CHECKF(long_run == short_run, "generating 24 tokens made %ld allocations, 4 tokens %ld", long_run, short_run);
        return;
    }
    CHECKF(0, "no seed of 20 gave two answers of 4 and 24 tokens");
}

int main(void) {
    if (!COUNTING) {
        printf("test_alloc: AddressSanitizer owns the allocator, nothing to count\n");
        return 0;
    }
    const char *root = getenv("MODES_TESTS");
    char dir[4096], image[4200];
    snprintf(dir, sizeof dir, "%s/../models/shapes-vqa", root ? root : "tests");
    snprintf(image, sizeof image, "%s/data/images/test-00000.png", dir);
    modes_error err = {0};
    modes_model *m = NULL;
    CHECKF(modes_model_load(dir, &m, &err) == 0, "%s", err.msg);
    if (!m) return check_done();
    modes_ctx *c = NULL;
    const modes_ctx_params cp = {.n_ctx = 512, .threads = 2};
    CHECKF(modes_ctx_new(m, &cp, &c, &err) == 0, "%s", err.msg);
    const char *images[1] = {image};
    modes_prompt *p = NULL;
    CHECKF(modes_prompt_new(m, NULL, "Tell me a long story about a dragon.", images, 1, NULL, &p, &err) == 0, "%s", err.msg);
    modes_policy *skip = NULL;
    CHECKF(modes_policy_from_spec(m, "topk:2", NULL, &skip, &err) == 0, "%s", err.msg);
    if (c && p && skip) {
        long made = decode_allocations(m, c, p, 3, 20);
        CHECKF(made == 0, "20 decode steps made %ld allocations", made);
        modes_ctx_set_policy(c, skip);
        made = decode_allocations(m, c, p, 3, 20);
        CHECKF(made == 0, "20 decode steps with topk:2 made %ld allocations", made);
        modes_ctx_set_policy(c, NULL);
        check_generation(c, p);
        /* the counter counts: a pass longer than any before grows the arena */
        const unsigned long before = count();
        modes_ctx_reset(c);
        CHECKF(modes_eval_prompt(c, p, NULL, 0, &err) == 0, "%s", err.msg);
        CHECK(count() > before);
    }
    modes_policy_free(skip);
    modes_prompt_free(p);
    modes_ctx_free(c);
    modes_model_free(m);
    return check_done();
}
