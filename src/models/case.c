/* Case files of the reference (ref/qwen3vlmoe-tiny-a/README.md), as modes forward and modes
 * generate read them: every size is checked against the file and the model before it is used. */
#include "models/case.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/safetensors.h"
#include "models/model.h"

static int read_ids(const char *path, const st_tensor *t, case_input *c, modes_error *err) {
    if ((t->dtype != ST_I64 && t->dtype != ST_I32) || !(t->ndim == 1 || (t->ndim == 2 && t->shape[0] == 1)))
        return modes_fail(err, MODES_E_INPUT, "%s: 'input_ids' must be I64 or I32 of shape [T] or [1, T]", path);
    if (t->numel < 1 || t->numel > (1 << 24))
        return modes_fail(err, MODES_E_INPUT, "%s: 'input_ids' must hold 1 to 2^24 tokens", path);
    if (!(c->ids = malloc((size_t)t->numel * sizeof *c->ids))) return modes_fail(err, MODES_E_INTERNAL, "out of memory");
    for (int64_t i = 0; i < t->numel; i++) {
        int64_t x;
        if (t->dtype == ST_I64) memcpy(&x, (const char *)t->data + 8 * i, 8);
        else {
            int32_t y;
            memcpy(&y, (const char *)t->data + 4 * i, 4);
            x = y;
        }
        if (x < 0 || x > INT32_MAX)
            return modes_fail(err, MODES_E_INPUT, "%s: input_ids[%lld] = %lld is not a token id", path, (long long)i,
                              (long long)x);
        c->ids[i] = (int32_t)x;
    }
    c->n = (int)t->numel;
    return 0;
}

/* pixel_values rows are split among the images in order of image_grid_thw. The vision tower reads
 * rows of its own patch size, so a file with other rows would have it read past the buffer. */
static int read_images(const char *path, const modes_model *m, const st_tensor *pv, const st_tensor *g,
                       case_input *c, modes_error *err) {
    const vision_config *v = &m->cfg.vision;
    const int64_t row = (int64_t)v->in_channels * v->temporal_patch * v->patch * v->patch;
    if (pv->dtype != ST_F32 || pv->ndim != 2)
        return modes_fail(err, MODES_E_INPUT, "%s: 'pixel_values' must be F32 [patches, row]", path);
    if (!v->present || pv->shape[1] != row)
        return modes_fail(err, MODES_E_INPUT, "%s: 'pixel_values' rows of %lld values do not fit the model (%lld)",
                          path, (long long)pv->shape[1], (long long)(v->present ? row : 0));
    if (!g || g->dtype != ST_I64 || g->ndim != 2 || g->shape[1] != 3 || g->shape[0] < 1 || g->shape[0] > 1024)
        return modes_fail(err, MODES_E_INPUT, "%s: 'image_grid_thw' must be I64 [images, 3] beside pixel_values", path);
    c->n_images = (int)g->shape[0];
    c->images = calloc((size_t)c->n_images, sizeof *c->images);
    c->pixels = malloc(pv->nbytes ? pv->nbytes : 1);
    if (!c->images || !c->pixels) return modes_fail(err, MODES_E_INTERNAL, "out of memory");
    memcpy(c->pixels, pv->data, pv->nbytes);
    int64_t at = 0;
    for (int i = 0; i < c->n_images; i++) {
        int64_t thw[3];
        memcpy(thw, (const char *)g->data + 24 * i, 24);
        const int64_t left = pv->shape[0] - at; /* each factor is checked before the product can overflow */
        if (thw[0] < 1 || thw[1] < 1 || thw[2] < 1 || thw[0] > left || thw[1] > left / thw[0] ||
            thw[2] > left / (thw[0] * thw[1]))
            return modes_fail(err, MODES_E_INPUT, "%s: image_grid_thw[%d] does not fit the %lld pixel_values rows", path,
                              i, (long long)pv->shape[0]);
        c->images[i] = (modes_image){c->pixels + at * pv->shape[1], (int)thw[0], (int)thw[1], (int)thw[2]};
        at += thw[0] * thw[1] * thw[2];
    }
    if (at != pv->shape[0])
        return modes_fail(err, MODES_E_INPUT, "%s: image_grid_thw covers %lld of %lld pixel_values rows", path,
                          (long long)at, (long long)pv->shape[0]);
    return 0;
}

int read_case(const char *path, const modes_model *m, case_input *c, modes_error *err) {
    memset(c, 0, sizeof *c);
    st_archive *a;
    int rc = st_open(path, &a, err);
    if (rc) return rc;
    const st_tensor *t = st_find(a, "input_ids"), *pv = st_find(a, "pixel_values");
    if (!t) rc = modes_fail(err, MODES_E_INPUT, "%s: no tensor 'input_ids'", path);
    if (!rc) rc = read_ids(path, t, c, err);
    if (!rc && c->n > m->cfg.text.max_position) /* before anything is sized by it */
        rc = modes_fail(err, MODES_E_INPUT, "%s: 'input_ids' has %d tokens, more than the model's context of %d", path,
                        c->n, m->cfg.text.max_position);
    for (int i = 0; !rc && i < c->n; i++) /* here, where the error can name the file */
        if (c->ids[i] < 0 || c->ids[i] >= m->cfg.text.vocab)
            rc = modes_fail(err, MODES_E_INPUT, "%s: 'input_ids' holds token id %d at position %d, outside the vocabulary of %d",
                            path, (int)c->ids[i], i, m->cfg.text.vocab);
    if (!rc && pv) rc = read_images(path, m, pv, st_find(a, "image_grid_thw"), c, err);
    st_close(a);
    if (rc) case_input_free(c);
    return rc;
}

int case_use_images(case_input *c, const modes_model *m, const char *const *paths, int n, modes_error *err) {
    free(c->pixels);
    free(c->images);
    c->pixels = NULL;
    c->n_images = 0;
    if (!(c->images = calloc((size_t)(n ? n : 1), sizeof *c->images))) return modes_fail(err, MODES_E_INTERNAL, "out of memory");
    c->owns_images = 1;
    for (int i = 0; i < n; i++) {
        int rc = modes_image_load(m, paths[i], &c->images[i], err);
        if (rc) return rc;
        c->n_images++;
    }
    return 0;
}

void case_input_free(case_input *c) {
    free(c->ids);
    free(c->pixels);
    for (int i = 0; c->owns_images && i < c->n_images; i++) modes_image_free(&c->images[i]);
    free(c->images);
    memset(c, 0, sizeof *c);
}

/* The public face of a case (include/modes.h). */
struct modes_case {
    case_input in;
};

int modes_case_load(const modes_model *m, const char *path, modes_case **out, modes_error *err) {
    MODES_REQUIRE(err, out);
    *out = NULL;
    MODES_REQUIRE(err, m);
    MODES_REQUIRE(err, path);
    modes_case *c = calloc(1, sizeof *c);
    if (!c) return modes_fail(err, MODES_E_INTERNAL, "out of memory");
    int rc = read_case(path, m, &c->in, err);
    if (rc) free(c);
    else *out = c;
    return rc;
}

int modes_case_set_images(modes_case *c, const modes_model *m, const char *const *paths, int n, modes_error *err) {
    MODES_REQUIRE(err, c);
    MODES_REQUIRE(err, m);
    if (n < 0) return modes_fail(err, MODES_E_INPUT, "modes_case_set_images: n is %d", n);
    if (n) MODES_REQUIRE(err, paths);
    return case_use_images(&c->in, m, paths, n, err);
}

const int32_t *modes_case_ids(const modes_case *c, int *n) {
    if (n) *n = c ? c->in.n : 0;
    return c ? c->in.ids : NULL;
}

const modes_image *modes_case_images(const modes_case *c, int *n) {
    if (n) *n = c ? c->in.n_images : 0;
    return c ? c->in.images : NULL;
}

void modes_case_free(modes_case *c) {
    if (!c) return;
    case_input_free(&c->in);
    free(c);
}
