/* Prompts with several images on the tiny golden model, where the reference has no case:
 * - the chat template and placeholder expansion give one <|vision_start|> pad run <|vision_end|> per
 *   image, with grid_t * grid_h * grid_w / merge^2 pads each;
 * - prefill of the prompt, then one cached decode step per token, equals one teacher-forced pass
 *   over the same ids (M-RoPE positions after the images and DeepStack included), for one and for
 *   two images. */
#include <math.h>
#include <stdlib.h>

#include "check.h"
#include "modes.h"

static void self_consistency(const modes_model *m, const char *const *images, int n_images) {
    modes_prompt *p = NULL;
    modes_error err = {0};
    CHECKF(modes_prompt_new(m, "Be brief.", "Which picture is red?", images, n_images, NULL, &p, &err) == 0, "%s",
           err.msg);
    if (!p) return;
    int n, ni;
    const int32_t *ids = modes_prompt_ids(p, &n);
    const modes_image *img = modes_prompt_images(p, &ni);
    CHECK(ni == n_images);
    int pads = 0, starts = 0;
    for (int i = 0; i < n; i++) {
        pads += ids[i] == 508;
        starts += ids[i] == 506;
    }
    int want = 0;
    for (int i = 0; i < ni; i++) want += modes_image_tokens(m, &img[i]);
    CHECKF(pads == want && starts == n_images, "%d pads (want %d), %d vision starts", pads, want, starts);

    static const int32_t extra[] = {100, 7, 250, 31, 402};
    const int ne = 5, T = n + ne, V = modes_model_vocab(m);
    int32_t *all = malloc(sizeof(int32_t) * T);
    memcpy(all, ids, sizeof(int32_t) * n);
    memcpy(all + n, extra, sizeof extra);
    float *full = malloc(sizeof(float) * (ne + 1) * V), *step = malloc(sizeof(float) * V);
    modes_ctx *c = NULL;
    CHECK(modes_ctx_new(m, NULL, &c, &err) == 0);
    CHECKF(modes_eval_images(c, all, T, img, ni, full, ne + 1, &err) == 0, "%s", err.msg);
    modes_ctx_reset(c);
    double worst = 0;
    CHECKF(modes_eval_prompt(c, p, step, 1, &err) == 0, "%s", err.msg);
    for (int k = 0; k <= ne; k++) {
        if (k) CHECK(modes_eval(c, &extra[k - 1], 1, step, 1, &err) == 0);
        for (int v = 0; v < V; v++) worst = fmax(worst, fabs((double)step[v] - full[(size_t)k * V + v]));
    }
    CHECKF(worst < 1e-5, "%d image(s): cached decode differs from the full pass by %g", n_images, worst);
    /* Images in the prompt but none given, and too few image tokens, are refused. */
    modes_ctx_reset(c);
    CHECK(modes_eval(c, all, T, full, 1, &err) == MODES_E_INPUT && strstr(err.msg, "image"));
    int first_pad = 0;
    while (first_pad < n && ids[first_pad] != 508) first_pad++;
    modes_ctx_reset(c); /* cut inside the first image's run of pads */
    CHECK(modes_eval_images(c, all, first_pad + 2, img, ni, full, 1, &err) == MODES_E_INPUT && strstr(err.msg, "image"));
    modes_ctx_free(c);
    free(all);
    free(full);
    free(step);
    modes_prompt_free(p);
}

int main(void) {
    require_shared();
    modes_model *m = NULL;
    modes_error err = {0};
    CHECKF(modes_model_load(shared_path("ref/qwen3vlmoe-tiny-a/model"), &m, &err) == 0, "%s", err.msg);
    if (!m) return check_done();
    char a[1024], b[1024];
    snprintf(a, sizeof a, "%s", tests_path("data/calib-tiny/red_square.png"));
    snprintf(b, sizeof b, "%s", tests_path("data/calib-tiny/two_dots.png"));
    const char *one[] = {a}, *two[] = {a, b};
    self_consistency(m, one, 1);
    self_consistency(m, two, 2);
    modes_model_free(m);
    return check_done();
}
