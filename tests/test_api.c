/* The public API of include/modes.h as a program embedding the library uses it, on the embedded
 * model (models/shapes-vqa, found as $MODES_TESTS/../models/shapes-vqa):
 * - text: tokenize / detokenize round trips on multi-byte UTF-8, special tokens parsed or not,
 *   token pieces, and a streaming detokenizer that gives exactly what batch detokenizing gives;
 * - the skip ratio of a context in one call, overall and per token class;
 * - a second turn appended to the context of the first, as modes.h describes;
 * - every public function given NULL pointers: an error naming the argument, or the documented
 *   empty answer, and no crash. */
#include <math.h>

#include "check.h"
#include "modes.h"

static char model_dir[1024];

static void test_round_trip(const modes_tokenizer *t) {
    /* Accents, CJK, an emoji (4 bytes) and a combining-free string, so byte tokens split characters. */
    static const char *texts[] = {"Grüße aus Köln, 東京 und 🐍!", "naïve café — ½ €", "plain ascii", ""};
    for (size_t k = 0; k < sizeof texts / sizeof *texts; k++) {
        const char *s = texts[k];
        int32_t *ids = NULL;
        int n = -1;
        modes_error err = {0};
        CHECKF(modes_tokenize(t, s, strlen(s), 0, &ids, &n, &err) == 0, "%s", err.msg);
        CHECK(ids != NULL && n >= 0);
        char *back = NULL;
        size_t len = 0;
        CHECKF(modes_detokenize(t, ids, n, 0, &back, &len, &err) == 0, "%s", err.msg);
        CHECKF(back && len == strlen(s) && !strcmp(back, s), "round trip of \"%s\" gave \"%s\"", s, back ? back : "");

        /* Streaming, one id at a time, gives the same bytes as the batch call. */
        modes_detok_stream *st = NULL;
        CHECKF(modes_detok_stream_new(t, 0, &st, &err) == 0, "%s", err.msg);
        char joined[256] = "";
        size_t jl = 0;
        int split = 0;
        for (int i = 0; st && i < n; i++) {
            const char *piece = NULL, *txt = NULL;
            size_t plen = 0, tlen = 99;
            CHECKF(modes_token_to_piece(t, ids[i], &piece, &plen, &err) == 0, "%s", err.msg);
            CHECK(piece != NULL);
            CHECKF(modes_detok_stream_push(st, ids[i], &txt, &tlen, &err) == 0, "%s", err.msg);
            CHECK(txt && strlen(txt) == tlen);
            split += tlen != plen; /* a character held back or completed */
            if (txt && jl + tlen < sizeof joined) memcpy(joined + jl, txt, tlen), jl += tlen, joined[jl] = 0;
        }
        const char *rest = NULL;
        size_t rl = 0;
        CHECK(st && modes_detok_stream_finish(st, &rest, &rl, &err) == 0 && rl == 0 && rest && !*rest);
        CHECKF(!strcmp(joined, s), "streaming \"%s\" gave \"%s\"", s, joined);
        if (k == 0) CHECKF(split > 0, "no multi-byte character was split across ids in \"%s\"", s);
        modes_detok_stream_free(st);
        free(back);
        free(ids);
    }
}

static void test_special_tokens(const modes_tokenizer *t) {
    const char *s = "<|im_start|>user\nhi<|im_end|>";
    int32_t *a = NULL, *b = NULL;
    int na = 0, nb = 0;
    modes_error err = {0};
    CHECK(modes_tokenize(t, s, strlen(s), 1, &a, &na, &err) == 0);
    CHECK(modes_tokenize(t, s, strlen(s), 0, &b, &nb, &err) == 0);
    CHECKF(na > 0 && nb > na, "special tokens parsed: %d ids, as text: %d ids", na, nb);
    char *x = NULL, *y = NULL, *z = NULL;
    CHECK(modes_detokenize(t, a, na, 0, &x, NULL, &err) == 0 && x && !strcmp(x, s));
    CHECK(modes_detokenize(t, b, nb, 0, &y, NULL, &err) == 0 && y && !strcmp(y, s));
    /* skip_special drops <|im_start|> and <|im_end|> only when they are the special ids. */
    CHECK(modes_detokenize(t, a, na, 1, &z, NULL, &err) == 0 && z && !strcmp(z, "user\nhi"));
    free(z);
    CHECK(modes_detokenize(t, b, nb, 1, &z, NULL, &err) == 0 && z && !strcmp(z, s));

    /* A streaming detokenizer with skip_special agrees with the batch call. */
    modes_detok_stream *st = NULL;
    char joined[128] = "";
    CHECK(modes_detok_stream_new(t, 1, &st, &err) == 0);
    for (int i = 0; st && i < na; i++) {
        const char *txt = NULL;
        if (!modes_detok_stream_push(st, a[i], &txt, NULL, &err)) strncat(joined, txt, sizeof joined - strlen(joined) - 1);
    }
    CHECK(!strcmp(joined, "user\nhi"));
    /* An id out of range is refused, the stream stays usable. */
    const char *txt = NULL;
    CHECK(modes_detok_stream_push(st, modes_tokenizer_vocab(t), &txt, NULL, &err) == MODES_E_INPUT);
    CHECK(modes_detok_stream_push(st, -1, &txt, NULL, &err) == MODES_E_INPUT);
    const char *piece = NULL;
    size_t plen = 0;
    CHECK(modes_token_to_piece(t, -1, &piece, &plen, &err) == MODES_E_INPUT && piece && plen == 0);
    CHECK(modes_token_to_piece(t, a[0], &piece, &plen, &err) == 0 && plen == strlen("<|im_start|>") &&
          !memcmp(piece, "<|im_start|>", plen));
    modes_detok_stream_free(st);
    free(x);
    free(y);
    free(z);
    free(a);
    free(b);

    /* A trailing incomplete character comes out of finish as U+FFFD, as the batch call gives. */
    const char cut[] = "\xc3"; /* not valid text: tokenize refuses it */
    int32_t *c = NULL;
    int nc = 0;
    CHECK(modes_tokenize(t, cut, 1, 0, &c, &nc, &err) == MODES_E_INPUT && !c && nc == 0);
    const char *e_acute = "é";
    CHECK(modes_tokenize(t, e_acute, strlen(e_acute), 0, &c, &nc, &err) == 0);
    if (nc == 2) { /* two byte tokens: feed only the first */
        char *half = NULL;
        CHECK(modes_detokenize(t, c, 1, 0, &half, NULL, &err) == 0 && half && !strcmp(half, "\xef\xbf\xbd"));
        CHECK(modes_detok_stream_new(t, 0, &st, &err) == 0);
        CHECK(modes_detok_stream_push(st, c[0], &txt, &plen, &err) == 0 && plen == 0);
        CHECK(modes_detok_stream_finish(st, &txt, &plen, &err) == 0 && !strcmp(txt, "\xef\xbf\xbd"));
        modes_detok_stream_free(st);
        free(half);
    }
    free(c);
}

/* Runs the question about the first test picture and returns the answer text (free()). */
static char *answer(modes_ctx *ctx, const modes_model *m, const char *question, const char *image, int *n_out) {
    modes_error err = {0};
    char path[1200];
    snprintf(path, sizeof path, "%s/data/images/%s", model_dir, image);
    const char *paths[1] = {path};
    modes_prompt *p = NULL;
    int32_t out[16];
    char *text = NULL;
    CHECKF(modes_prompt_new(m, NULL, question, paths, 1, NULL, &p, &err) == 0, "%s", err.msg);
    CHECKF(p && modes_generate(ctx, p, 16, NULL, NULL, NULL, out, n_out, NULL, &err) == 0, "%s", err.msg);
    CHECK(modes_detokenize(modes_model_tokenizer(m), out, *n_out, 1, &text, NULL, &err) == 0);
    modes_prompt_free(p);
    return text;
}

static void test_skip_ratio(const modes_model *m) {
    modes_error err = {0};
    modes_ctx *ctx = NULL;
    modes_policy *pol = NULL;
    CHECK(modes_ctx_new(m, NULL, &ctx, &err) == 0);
    CHECK(modes_ctx_skip_ratio(ctx, -1) == 0.0); /* nothing routed yet */
    CHECKF(modes_policy_from_spec(m, "topk:4", NULL, &pol, &err) == 0, "%s", err.msg);
    modes_ctx_set_policy(ctx, pol);
    int n = 0;
    char *a = answer(ctx, m, "What color is the triangle?", "test-00000.png", &n);
    free(a);
    /* top-4 of 8 experts: half the slots of text and vision tokens, none of special tokens. */
    const double all = modes_ctx_skip_ratio(ctx, -1);
    CHECKF(modes_ctx_skip_ratio(ctx, MODES_TOKEN_TEXT) == 0.5, "text %g", modes_ctx_skip_ratio(ctx, MODES_TOKEN_TEXT));
    CHECKF(modes_ctx_skip_ratio(ctx, MODES_TOKEN_VISION) == 0.5, "vision %g", modes_ctx_skip_ratio(ctx, MODES_TOKEN_VISION));
    CHECK(modes_ctx_skip_ratio(ctx, MODES_TOKEN_SPECIAL) == 0.0);
    CHECKF(all > 0.3 && all < 0.5, "overall %g", all);
    const modes_stats *s = modes_ctx_stats(ctx);
    CHECK(s && all == modes_skip_ratio(&s->phase[0][0], 6));
    CHECK(modes_ctx_skip_ratio(ctx, 3) == -1.0 && modes_ctx_skip_ratio(ctx, -2) == -1.0);
    modes_ctx_reset_stats(ctx);
    CHECK(modes_ctx_skip_ratio(ctx, -1) == 0.0);
    modes_ctx_free(ctx);
    modes_policy_free(pol);
}

/* The recipe of modes.h "Several turns in one context", step by step: the second turn appended to
 * the first's cache gives the logits a fresh context gets from the whole conversation at once. */
static void test_second_turn(const modes_model *m) {
    const modes_tokenizer *t = modes_model_tokenizer(m);
    modes_error err = {0};
    modes_ctx *ctx = NULL, *fresh = NULL;
    modes_prompt *p = NULL;
    char path[1200];
    snprintf(path, sizeof path, "%s/data/images/test-00000.png", model_dir);
    const char *paths[1] = {path};
    int32_t answer_ids[16];
    int na = 0, np = 0, ni = 0, ni_img = 0;
    CHECK(modes_ctx_new(m, NULL, &ctx, &err) == 0 && modes_ctx_new(m, NULL, &fresh, &err) == 0);
    CHECKF(modes_prompt_new(m, NULL, "What color is the triangle?", paths, 1, NULL, &p, &err) == 0, "%s", err.msg);
    CHECKF(modes_generate(ctx, p, 16, NULL, NULL, NULL, answer_ids, &na, NULL, &err) == 0, "%s", err.msg);
    char *first = NULL;
    CHECK(modes_detokenize(t, answer_ids, na, 1, &first, NULL, &err) == 0);
    CHECKF(first && !strcmp(first, "blue"), "first answer \"%s\"", first ? first : "");
    const int32_t *pids = modes_prompt_ids(p, &np);
    CHECKF(modes_ctx_n_past(ctx) == np + na, "after the first turn the cache holds %d ids, not %d + %d",
           modes_ctx_n_past(ctx), np, na);

    const char *turn = "<|im_end|>\n<|im_start|>user\nWhat is 7 plus 1?<|im_end|>\n<|im_start|>assistant\n";
    int32_t *ids = NULL;
    CHECK(modes_tokenize(t, turn, strlen(turn), 1, &ids, &ni, &err) == 0);
    const int V = modes_model_vocab(m);
    float *logits = malloc((size_t)V * sizeof *logits), *whole = malloc((size_t)V * sizeof *whole);
    CHECKF(modes_eval(ctx, ids, ni, logits, 1, &err) == 0, "%s", err.msg);
    CHECK(modes_ctx_n_past(ctx) == np + na + ni);

    /* The same conversation in one evaluation of a fresh context. */
    const int total = np + na + ni;
    int32_t *all = malloc((size_t)total * sizeof *all);
    memcpy(all, pids, (size_t)np * sizeof *all);
    memcpy(all + np, answer_ids, (size_t)na * sizeof *all);
    memcpy(all + np + na, ids, (size_t)ni * sizeof *all);
    const modes_image *imgs = modes_prompt_images(p, &ni_img);
    CHECKF(modes_eval_images(fresh, all, total, imgs, ni_img, whole, 1, &err) == 0, "%s", err.msg);
    double diff = 0, mx = 0;
    for (int v = 0; v < V; v++) {
        const double d = fabs((double)logits[v] - whole[v]);
        diff = d > diff ? d : diff;
        mx = fabs(whole[v]) > mx ? fabs(whole[v]) : mx;
    }
    CHECKF(diff <= 1e-3 * mx, "second turn logits differ from the whole conversation's by %g (max %g)", diff, mx);

    /* Then generate the second answer, streaming it. */
    modes_detok_stream *st = NULL;
    CHECK(modes_detok_stream_new(t, 1, &st, &err) == 0);
    char said[64] = "";
    for (int i = 0; i < 8; i++) {
        const int32_t id = modes_model_sample(m, logits, NULL, NULL);
        if (id < 0 || modes_model_is_stop(m, id)) break;
        const char *txt = NULL;
        if (!modes_detok_stream_push(st, id, &txt, NULL, &err)) strncat(said, txt, sizeof said - strlen(said) - 1);
        if (modes_eval(ctx, &id, 1, logits, 1, &err)) break;
    }
    printf("second turn: \"%s\" (context %d tokens)\n", said, modes_ctx_n_past(ctx));
    CHECKF(*said, "the second turn said nothing");
    modes_detok_stream_free(st);
    free(all);
    free(whole);
    free(logits);
    free(ids);
    free(first);
    modes_prompt_free(p);
    modes_ctx_free(fresh);
    modes_ctx_free(ctx);
}

/* Every public function with NULL where it takes a pointer. */
static void test_null_arguments(const modes_model *m) {
    modes_model *mo = (modes_model *)1;
    modes_ctx *cx = (modes_ctx *)1;
    modes_prompt *pr = (modes_prompt *)1;
    modes_policy *po = (modes_policy *)1;
    modes_tokenizer *tk = (modes_tokenizer *)1;
    modes_detok_stream *ds = (modes_detok_stream *)1;
    const modes_tokenizer *t = modes_model_tokenizer(m);
    int32_t one = 1, *ids = (int32_t *)1, out[4];
    int n = 7;
    char *text = (char *)1;
    const char *cs = NULL;
    size_t len = 0;
    float logits[4];
    modes_image img = {0};

    CHECK_NULL_ERR(modes_model_load(NULL, &mo, &e_), "modes_model_load", "dir");
    CHECK(mo == NULL);
    CHECK_NULL_ERR(modes_model_load(model_dir, NULL, &e_), "modes_model_load", "out");
    CHECK(modes_model_tokenizer(NULL) == NULL && modes_model_vocab(NULL) == -1 && modes_model_is_stop(NULL, 1) == 0 &&
          modes_model_token_class(NULL, 1) == -1);
    modes_model_free(NULL);

    CHECK_NULL_ERR(modes_tokenizer_load(NULL, &tk, &e_), "modes_tokenizer_load", "path");
    CHECK(tk == NULL);
    CHECK_NULL_ERR(modes_tokenizer_load(model_dir, NULL, &e_), "modes_tokenizer_load", "out");
    CHECK(modes_tokenizer_vocab(NULL) == -1);
    modes_tokenizer_free(NULL);
    CHECK_NULL_ERR(modes_tokenize(NULL, "a", 1, 0, &ids, &n, &e_), "modes_tokenize", "t");
    CHECK(ids == NULL && n == 0);
    CHECK_NULL_ERR(modes_tokenize(t, NULL, 1, 0, &ids, &n, &e_), "modes_tokenize", "text");
    CHECK_NULL_ERR(modes_tokenize(t, "a", 1, 0, NULL, &n, &e_), "modes_tokenize", "ids");
    CHECK_NULL_ERR(modes_tokenize(t, "a", 1, 0, &ids, NULL, &e_), "modes_tokenize", "n");
    CHECK_NULL_ERR(modes_detokenize(NULL, &one, 1, 0, &text, &len, &e_), "modes_detokenize", "t");
    CHECK(text == NULL);
    CHECK_NULL_ERR(modes_detokenize(t, NULL, 1, 0, &text, &len, &e_), "modes_detokenize", "ids");
    CHECK_NULL_ERR(modes_detokenize(t, &one, 1, 0, NULL, &len, &e_), "modes_detokenize", "text");
    CHECK(modes_detokenize(t, NULL, 0, 0, &text, &len, NULL) == 0 && text && !*text && len == 0);
    free(text);
    CHECK_NULL_ERR(modes_token_to_piece(NULL, 1, &cs, &len, &e_), "modes_token_to_piece", "t");
    CHECK_NULL_ERR(modes_token_to_piece(t, 1, NULL, &len, &e_), "modes_token_to_piece", "piece");
    CHECK_NULL_ERR(modes_token_to_piece(t, 1, &cs, NULL, &e_), "modes_token_to_piece", "len");
    CHECK_NULL_ERR(modes_detok_stream_new(NULL, 0, &ds, &e_), "modes_detok_stream_new", "t");
    CHECK(ds == NULL);
    CHECK_NULL_ERR(modes_detok_stream_new(t, 0, NULL, &e_), "modes_detok_stream_new", "out");
    CHECK_NULL_ERR(modes_detok_stream_push(NULL, 1, &cs, &len, &e_), "modes_detok_stream_push", "s");
    CHECK(cs && !*cs);
    CHECK_NULL_ERR(modes_detok_stream_finish(NULL, &cs, &len, &e_), "modes_detok_stream_finish", "s");
    CHECK(modes_detok_stream_new(t, 0, &ds, NULL) == 0);
    CHECK_NULL_ERR(modes_detok_stream_push(ds, 1, NULL, &len, &e_), "modes_detok_stream_push", "text");
    CHECK_NULL_ERR(modes_detok_stream_finish(ds, NULL, &len, &e_), "modes_detok_stream_finish", "text");
    modes_detok_stream_free(ds);
    modes_detok_stream_free(NULL);

    CHECK_NULL_ERR(modes_ctx_new(NULL, NULL, &cx, &e_), "modes_ctx_new", "m");
    CHECK(cx == NULL);
    CHECK_NULL_ERR(modes_ctx_new(m, NULL, NULL, &e_), "modes_ctx_new", "out");
    modes_ctx_free(NULL);
    modes_ctx_reset(NULL);
    CHECK(modes_ctx_n_past(NULL) == -1 && modes_ctx_n_ctx(NULL) == -1 && modes_model_max_ctx(NULL) == -1);
    CHECK(modes_ctx_stop_reason(NULL) == MODES_STOP_NONE);
    modes_ctx_set_tap(NULL, NULL, NULL);
    modes_ctx_set_policy(NULL, NULL);
    CHECK(modes_ctx_stats(NULL) == NULL);
    modes_ctx_reset_stats(NULL);
    CHECK(modes_ctx_skip_ratio(NULL, -1) == -1.0);
    CHECK(modes_skip_ratio(NULL, 3) == 0.0);

    modes_ctx *ctx = NULL;
    CHECK(modes_ctx_new(m, NULL, &ctx, NULL) == 0);
    CHECK_NULL_ERR(modes_eval(NULL, &one, 1, logits, 0, &e_), "modes_eval", "c");
    CHECK_NULL_ERR(modes_eval(ctx, NULL, 1, logits, 0, &e_), "modes_eval", "ids");
    CHECK_NULL_ERR(modes_eval_images(NULL, &one, 1, NULL, 0, NULL, 0, &e_), "modes_eval_images", "c");
    CHECK_NULL_ERR(modes_eval_images(ctx, NULL, 1, NULL, 0, NULL, 0, &e_), "modes_eval_images", "ids");
    CHECK_NULL_ERR(modes_eval_images(ctx, &one, 1, NULL, 0, NULL, 1, &e_), "modes_eval_images", "logits");
    CHECK_NULL_ERR(modes_eval_images(ctx, &one, 1, NULL, 1, NULL, 0, &e_), "modes_eval_images", "images");
    CHECK_NULL_ERR(modes_eval_images(ctx, &one, 1, &img, 1, NULL, 0, &e_), "modes_eval_images", "images[0].pixels");
    CHECK(modes_ctx_n_past(ctx) == 0);

    char path[1200];
    snprintf(path, sizeof path, "%s/data/images/test-00000.png", model_dir);
    CHECK_NULL_ERR(modes_image_load(NULL, path, &img, &e_), "modes_image_load", "m");
    CHECK_NULL_ERR(modes_image_load(m, NULL, &img, &e_), "modes_image_load", "path");
    CHECK_NULL_ERR(modes_image_load(m, path, NULL, &e_), "modes_image_load", "img");
    modes_image_free(NULL);
    CHECK(modes_image_tokens(NULL, &img) == -1 && modes_image_tokens(m, NULL) == -1);

    const char *paths[2] = {path, NULL};
    CHECK_NULL_ERR(modes_prompt_new(NULL, NULL, "hi", NULL, 0, NULL, &pr, &e_), "modes_prompt_new", "m");
    CHECK(pr == NULL);
    CHECK_NULL_ERR(modes_prompt_new(m, NULL, NULL, NULL, 0, NULL, &pr, &e_), "modes_prompt_new", "text");
    CHECK_NULL_ERR(modes_prompt_new(m, NULL, "hi", NULL, 1, NULL, &pr, &e_), "modes_prompt_new", "image_paths");
    CHECK_NULL_ERR(modes_prompt_new(m, NULL, "hi", paths, 2, NULL, &pr, &e_), "modes_prompt_new", "image_paths[1]");
    CHECK_NULL_ERR(modes_prompt_new(m, NULL, "hi", NULL, 0, NULL, NULL, &e_), "modes_prompt_new", "out");
    CHECK_NULL_ERR(modes_prompt_followup(NULL, "hi", NULL, 0, &pr, &e_), "modes_prompt_followup", "m");
    CHECK(pr == NULL);
    CHECK_NULL_ERR(modes_prompt_followup(m, NULL, NULL, 0, &pr, &e_), "modes_prompt_followup", "text");
    CHECK_NULL_ERR(modes_prompt_followup(m, "hi", NULL, 1, &pr, &e_), "modes_prompt_followup", "image_paths");
    CHECK_NULL_ERR(modes_prompt_followup(m, "hi", paths, 2, &pr, &e_), "modes_prompt_followup", "image_paths[1]");
    CHECK_NULL_ERR(modes_prompt_followup(m, "hi", NULL, 0, NULL, &e_), "modes_prompt_followup", "out");
    modes_prompt_free(NULL);
    n = 7;
    CHECK(modes_prompt_ids(NULL, &n) == NULL && n == 0);
    n = 7;
    CHECK(modes_prompt_images(NULL, &n) == NULL && n == 0);
    CHECK(modes_prompt_answer_start(NULL) == -1);
    CHECK_NULL_ERR(modes_eval_prompt(NULL, pr, logits, 0, &e_), "modes_eval_prompt", "c");
    CHECK_NULL_ERR(modes_eval_prompt(ctx, NULL, logits, 0, &e_), "modes_eval_prompt", "p");

    modes_prompt *p = NULL;
    CHECK(modes_prompt_new(m, NULL, "hi", NULL, 0, NULL, &p, NULL) == 0);
    CHECK(modes_prompt_ids(p, NULL) != NULL && modes_prompt_images(p, NULL) == NULL);
    CHECK_NULL_ERR(modes_generate(NULL, p, 4, NULL, NULL, NULL, out, &n, NULL, &e_), "modes_generate", "c");
    CHECK(n == 0);
    CHECK_NULL_ERR(modes_generate(ctx, NULL, 4, NULL, NULL, NULL, out, &n, NULL, &e_), "modes_generate", "p");
    CHECK_NULL_ERR(modes_generate(ctx, p, 4, NULL, NULL, NULL, NULL, &n, NULL, &e_), "modes_generate", "out");
    CHECK_NULL_ERR(modes_generate(ctx, p, 4, NULL, NULL, NULL, out, NULL, NULL, &e_), "modes_generate", "n_out");
    modes_prompt_free(p);

    CHECK_NULL_ERR(modes_policy_load(NULL, "x.json", &po, &e_), "modes_policy_load", "m");
    CHECK(po == NULL);
    CHECK_NULL_ERR(modes_policy_load(m, NULL, &po, &e_), "modes_policy_load", "path");
    CHECK_NULL_ERR(modes_policy_load(m, "x.json", NULL, &e_), "modes_policy_load", "out");
    CHECK_NULL_ERR(modes_policy_from_spec(NULL, "none", NULL, &po, &e_), "modes_policy_from_spec", "m");
    CHECK_NULL_ERR(modes_policy_from_spec(m, NULL, NULL, &po, &e_), "modes_policy_from_spec", "spec");
    CHECK_NULL_ERR(modes_policy_from_spec(m, "none", NULL, NULL, &e_), "modes_policy_from_spec", "out");
    modes_policy_free(NULL);

    modes_sampling smp = {.temperature = 1.0f, .seed = 1};
    CHECK(modes_sample(NULL, 4, NULL, NULL) == -1);
    CHECK(modes_sample(logits, 0, NULL, NULL) == -1);
    CHECK(modes_sample(logits, 4, &smp, NULL) == -1);
    CHECK(modes_model_sample(NULL, logits, NULL, NULL) == -1);
    CHECK(modes_model_sample(m, NULL, NULL, NULL) == -1);
    modes_ctx_free(ctx);
    (void)mo, (void)pr, (void)po, (void)tk, (void)cx;
}

int main(void) {
    const char *tests = getenv("MODES_TESTS");
    snprintf(model_dir, sizeof model_dir, "%s/../models/shapes-vqa", tests ? tests : "tests");
    modes_error err = {0};
    modes_model *m = NULL;
    modes_tokenizer *own = NULL;
    if (modes_model_load(model_dir, &m, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    CHECKF(modes_tokenizer_load(model_dir, &own, &err) == 0, "%s", err.msg);
    CHECK(own && modes_tokenizer_vocab(own) == modes_tokenizer_vocab(modes_model_tokenizer(m)));
    if (own) {
        test_round_trip(own);
        test_special_tokens(own);
    }
    test_round_trip(modes_model_tokenizer(m));
    test_skip_ratio(m);
    test_second_turn(m);
    test_null_arguments(m);
    modes_tokenizer_free(own);
    modes_model_free(m);
    return check_done();
}
