/* Multi-turn use of one context (modes_prompt_followup): the follow-up prompt is what the chat
 * template writes after the first turn's answer, and answering it in the context that holds the
 * first turn computes what a fresh context computes from the whole conversation at once. Runs on
 * the embedded model (models/shapes-vqa). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "modes.h"
#include "text/chat.h"
#include "text/tokenizer.h"

static int32_t *concat(const int32_t *a, int na, const int32_t *b, int nb) {
    int32_t *c = malloc(((size_t)na + (size_t)nb + 1) * sizeof *c);
    if (!c) return NULL;
    memcpy(c, a, (size_t)na * sizeof *c);
    memcpy(c + na, b, (size_t)nb * sizeof *c);
    return c;
}

/* The first turn with its answer, then the follow-up, token for token equals the template's
 * rendering of the whole conversation. */
static void test_format(const modes_model *m) {
    modes_error err = {0};
    modes_prompt *first = NULL, *next = NULL;
    CHECKF(modes_prompt_new(m, "Be brief.", "What shape is it?", NULL, 0, "a circle", &first, &err) == 0, "%s", err.msg);
    CHECKF(modes_prompt_followup(m, "And its color?", NULL, 0, &next, &err) == 0, "%s", err.msg);
    if (!first || !next) goto done;
    int n1, n2;
    const int32_t *a = modes_prompt_ids(first, &n1), *b = modes_prompt_ids(next, &n2);
    const chat_template *t = chat_template_by_name("qwen3-vl");
    const chat_message conv[4] = {{.role = "system", .content = "Be brief.", .content_len = 9},
                                  {.role = "user", .content = "What shape is it?", .content_len = 17},
                                  {.role = "assistant", .content = "a circle", .content_len = 8},
                                  {.role = "user", .content = "And its color?", .content_len = 14}};
    chat_options gen = {.add_generation_prompt = 1};
    char *text = NULL;
    size_t len, nw = 0;
    int32_t *want = NULL;
    CHECK(chat_render(t, conv, 4, &gen, &text, &len, &err) == 0);
    CHECK(text && tok_encode(modes_model_tokenizer(m), text, len, &want, &nw, &err) == 0);
    /* the first prompt ends with the answer's end-of-turn id, which the follow-up opens with */
    CHECKF(n2 > 1 && b[0] == a[n1 - 1], "the follow-up starts with the end-of-turn id %d, not %d", a[n1 - 1], b[0]);
    int32_t *got = concat(a, n1 - 1, b, n2);
    CHECKF(got && (size_t)(n1 - 1 + n2) == nw && !memcmp(got, want, nw * sizeof *got),
           "turn by turn: %d ids, the whole conversation rendered: %zu", n1 - 1 + n2, nw);
    free(got);
    free(want);
    free(text);
done:
    modes_prompt_free(first);
    modes_prompt_free(next);
}

static int argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

/* Turn 2 answered in the context of turn 1 (only the follow-up prefilled) against a fresh context
 * given turn 1, its answer and turn 2 in one pass: the same next-token logits. The follow-up holds
 * an image, so its M-RoPE positions must continue from the cache. */
static void test_same_context(const modes_model *m, const char *image) {
    modes_error err = {0};
    modes_ctx *ctx = NULL, *fresh = NULL;
    modes_prompt *first = NULL, *next = NULL;
    const int V = modes_model_vocab(m), max_new = 6;
    float *la = malloc((size_t)V * sizeof *la), *lb = malloc((size_t)V * sizeof *lb);
    int32_t out[6], *all = NULL, *hist = NULL;
    int made = 0, n1, n2;
    modes_ctx_params cp = {.n_ctx = 1024, .threads = 1};
    CHECK(la && lb);
    CHECKF(modes_ctx_new(m, &cp, &ctx, &err) == 0 && modes_ctx_new(m, &cp, &fresh, &err) == 0, "%s", err.msg);
    CHECKF(modes_prompt_new(m, NULL, "What shape is in the picture?", &image, 1, NULL, &first, &err) == 0, "%s", err.msg);
    CHECKF(modes_prompt_followup(m, "What color is this one?", &image, 1, &next, &err) == 0, "%s", err.msg);
    if (!ctx || !fresh || !first || !next || !la || !lb) goto done;
    CHECKF(modes_generate(ctx, first, max_new, NULL, NULL, NULL, out, &made, NULL, &err) == 0, "%s", err.msg);
    if (made == max_new) CHECK(modes_eval(ctx, &out[made - 1], 1, NULL, 0, &err) == 0); /* cut off: its last id */
    const int32_t *a = modes_prompt_ids(first, &n1), *b = modes_prompt_ids(next, &n2);
    const int before = modes_ctx_n_past(ctx);
    CHECKF(before == n1 + made, "after turn 1 the cache holds %d ids, not %d", before, n1 + made);
    int ni;
    const modes_image *img1 = modes_prompt_images(first, &ni), *img2 = modes_prompt_images(next, &ni);
    CHECKF(modes_eval_images(ctx, b, n2, img2, 1, la, 1, &err) == 0, "%s", err.msg);
    CHECKF(modes_ctx_n_past(ctx) == before + n2, "the follow-up added %d ids, not %d", modes_ctx_n_past(ctx) - before, n2);

    hist = concat(a, n1, out, made);
    all = hist ? concat(hist, n1 + made, b, n2) : NULL;
    const modes_image both[2] = {img1[0], img2[0]};
    CHECK(all && modes_eval_images(fresh, all, n1 + made + n2, both, 2, lb, 1, &err) == 0);
    double diff = 0;
    for (int i = 0; i < V; i++) diff = fmax(diff, fabs((double)la[i] - lb[i]));
    CHECKF(diff < 1e-3, "next-token logits differ by %g between one context and a fresh one", diff);
    CHECK(argmax(la, V) == argmax(lb, V));
done:
    free(all);
    free(hist);
    free(la);
    free(lb);
    modes_prompt_free(first);
    modes_prompt_free(next);
    modes_ctx_free(ctx);
    modes_ctx_free(fresh);
}

int main(void) {
    char model[1024], image[1200];
    const char *tests = getenv("MODES_TESTS");
    snprintf(model, sizeof model, "%s/../models/shapes-vqa", tests ? tests : "tests");
    snprintf(image, sizeof image, "%s/data/images/calib-00001.png", model);
    modes_model *m = NULL;
    modes_error err = {0};
    CHECKF(modes_model_load(model, &m, &err) == 0, "%s", err.msg);
    if (!m) return check_done();
    test_format(m);
    test_same_context(m, image);
    modes_model_free(m);
    return check_done();
}
