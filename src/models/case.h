#ifndef MODES_MODELS_CASE_H
#define MODES_MODELS_CASE_H

#include <stdint.h>

#include "modes.h"

/* A case file of the reference (ref/qwen3vlmoe-tiny-a/README.md): input_ids ([1, T] or [T], I64 or
 * I32) and, for image cases, pixel_values [P, row] F32 with image_grid_thw [n_images, 3]; row must be
 * the patch size m's vision tower takes (read_case checks it, so m is loaded first). */
typedef struct {
    int32_t *ids;
    int n;
    float *pixels;
    int n_images;
    modes_image *images; /* pointing into pixels, or owning their own with owns_images */
    int owns_images;
} case_input;
int read_case(const char *path, const modes_model *m, case_input *c, modes_error *err);
/* Replaces the case's images by image files preprocessed with the model's settings. */
int case_use_images(case_input *c, const modes_model *m, const char *const *paths, int n, modes_error *err);
void case_input_free(case_input *c);

#endif
