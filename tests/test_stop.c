/* Why a generation ends, through the public API on the embedded model (models/shapes-vqa):
 * - a context that fills up ends the answer cleanly (return 0, MODES_STOP_CONTEXT, the cache full)
 *   where it used to fail with "do not fit in the context";
 * - max_new gives MODES_STOP_LENGTH, a stop id MODES_STOP_EOS, and a reset forgets the reason;
 * - the context's size is readable (modes_ctx_n_ctx, capped by modes_model_max_ctx);
 * - NULL arguments are refused with a message. */
#include <stdlib.h>

#include "check.h"
#include "modes.h"

static const char *STORY = "Tell me a long story about a dragon.";

/* Generates at temperature 8 (long answers, rarely a stop id) with each seed in turn; counts how
 * often each reason came and checks that each is consistent with the ids and the cache. */
static void generate_seeds(const modes_model *m, const modes_prompt *p, int n_ctx, int max_new, int counts[4]) {
    modes_error err = {0};
    modes_ctx *c = NULL;
    modes_ctx_params cp = {.n_ctx = n_ctx, .threads = 1};
    CHECKF(modes_ctx_new(m, &cp, &c, &err) == 0, "%s", err.msg);
    if (!c) return;
    int n_prompt;
    modes_prompt_ids(p, &n_prompt);
    int32_t *out = malloc(sizeof(int32_t) * (size_t)(max_new > 0 ? max_new : 1));
    for (int seed = 1; seed <= 6; seed++) {
        modes_ctx_reset(c);
        CHECK(modes_ctx_stop_reason(c) == MODES_STOP_NONE);
        const modes_sampling s = {.temperature = 8, .top_p = 1, .seed = (uint64_t)seed};
        int n_out = -1;
        const int rc = modes_generate(c, p, max_new, &s, NULL, NULL, out, &n_out, NULL, &err);
        CHECKF(rc == 0, "n_ctx %d, max_new %d, seed %d: %s", n_ctx, max_new, seed, err.msg);
        if (rc) continue;
        const modes_stop_reason r = modes_ctx_stop_reason(c);
        CHECK(r == MODES_STOP_EOS || r == MODES_STOP_LENGTH || r == MODES_STOP_CONTEXT);
        counts[r]++;
        CHECK(n_out >= 0 && n_out <= max_new && n_prompt + n_out <= n_ctx);
        for (int i = 0; i < n_out; i++) CHECK(!modes_model_is_stop(m, out[i]));
        if (r == MODES_STOP_LENGTH) CHECK(n_out == max_new);
        if (r == MODES_STOP_CONTEXT) /* every id fitted: the answer fills the cache to the last position */
            CHECKF(n_out < max_new && n_prompt + n_out == n_ctx && modes_ctx_n_past(c) == n_ctx,
                   "context stop after %d ids: %d + %d of %d", n_out, n_prompt, n_out, n_ctx);
    }
    free(out);
    modes_ctx_free(c);
}

int main(void) {
    modes_error err = {0};
    modes_model *m = NULL;
    const char *root = getenv("MODES_TESTS");
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/../models/shapes-vqa", root ? root : "tests");
    CHECKF(modes_model_load(dir, &m, &err) == 0, "%s", err.msg);
    if (!m) return check_done();
    modes_prompt *p = NULL;
    CHECKF(modes_prompt_new(m, NULL, STORY, NULL, 0, NULL, &p, &err) == 0, "%s", err.msg);
    if (!p) return check_done();
    int n;
    modes_prompt_ids(p, &n);

    /* A context 4 ids past the prompt, answers of up to 1000: the context ends most of them. */
    int counts[4] = {0};
    generate_seeds(m, p, n + 4, 1000, counts);
    CHECKF(counts[MODES_STOP_CONTEXT] > 0, "no answer reached the context's end (%d stopped at a stop id)",
           counts[MODES_STOP_EOS]);
    /* A context as long as the prompt: no id fits, and that is not an error either. */
    memset(counts, 0, sizeof counts);
    generate_seeds(m, p, n, 1000, counts);
    CHECK(counts[MODES_STOP_CONTEXT] > 0);
    /* Room to spare: max_new ends them. */
    memset(counts, 0, sizeof counts);
    generate_seeds(m, p, n + 64, 2, counts);
    CHECK(counts[MODES_STOP_LENGTH] > 0 && counts[MODES_STOP_CONTEXT] == 0);

    /* The size asked for, capped by the model's maximum; -1 for NULL. */
    modes_ctx *c = NULL;
    modes_ctx_params big = {.n_ctx = 1 << 24, .threads = 1};
    CHECK(modes_model_max_ctx(m) > 0);
    CHECK(modes_ctx_new(m, &big, &c, &err) == 0 && modes_ctx_n_ctx(c) == modes_model_max_ctx(m));
    CHECK(modes_ctx_n_ctx(NULL) == -1 && modes_model_max_ctx(NULL) == -1);
    CHECK(modes_ctx_stop_reason(NULL) == MODES_STOP_NONE);
    CHECK(!strcmp(modes_stop_reason_name(MODES_STOP_CONTEXT), "context") &&
          !strcmp(modes_stop_reason_name(MODES_STOP_EOS), "eos") &&
          !strcmp(modes_stop_reason_name(MODES_STOP_LENGTH), "length") &&
          !strcmp(modes_stop_reason_name(MODES_STOP_NONE), "none"));

    /* NULL pointers are refused with a message, not dereferenced. */
    int32_t out[4];
    int n_out;
    err = (modes_error){0};
    CHECK(modes_generate(NULL, p, 4, NULL, NULL, NULL, out, &n_out, NULL, &err) == MODES_E_INPUT && strstr(err.msg, "c is NULL"));
    err = (modes_error){0};
    CHECK(modes_generate(c, NULL, 4, NULL, NULL, NULL, out, &n_out, NULL, &err) == MODES_E_INPUT && strstr(err.msg, "p is NULL"));
    err = (modes_error){0};
    CHECK(modes_generate(c, p, 4, NULL, NULL, NULL, NULL, &n_out, NULL, &err) == MODES_E_INPUT && strstr(err.msg, " out is NULL"));
    err = (modes_error){0};
    CHECK(modes_generate(c, p, 4, NULL, NULL, NULL, out, NULL, NULL, &err) == MODES_E_INPUT && strstr(err.msg, "n_out is NULL"));
    CHECK(modes_generate(c, p, -1, NULL, NULL, NULL, out, &n_out, NULL, &err) == MODES_E_INPUT);
    modes_ctx_free(c);
    modes_prompt_free(p);
    modes_model_free(m);
    return check_done();
}
