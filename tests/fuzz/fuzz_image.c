/* Image decoding and Qwen3-VL preprocessing (src/io/image.c, src/vision/preprocess.c): the input is
 * an image file (PNG, JPEG, WebP, or anything else). The pixel budget is 2^16 here (the library's
 * default is 100 megapixels) so that a small file claiming a large picture costs the fuzzer little; the check
 * itself is the same. A decoded image is preprocessed with one of two configurations, picked by the
 * input's length: Qwen3-VL's (patch 16, bounds shrunk to 2^10..2^16 pixels) or patch 14 without
 * resizing (sides must be multiples of 28). */
#include <math.h>

#include "fuzz.h"
#include "io/image.h"
#include "vision/preprocess.h"

#define BUDGET ((int64_t)1 << 16)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    rgb_image img;
    modes_error err = {0};
    int rc = image_decode(data, size, "fuzz.img", BUDGET, &img, &err);
    if (rc) {
        FUZZ_CHECK(!img.rgb && !img.w && !img.h, "image left behind on failure");
        fuzz_check_error(rc, &err, "fuzz.img");
        return 0;
    }
    FUZZ_CHECK(img.rgb && img.w > 0 && img.h > 0 && (int64_t)img.w * img.h <= BUDGET, "decoded %d x %d", img.w, img.h);
    unsigned sum = 0;
    for (size_t i = 0; i < (size_t)img.w * img.h * 3; i++) sum += img.rgb[i];
    (void)sum;

    preproc_config cfg;
    preproc_config_default(&cfg);
    if (size % 2) {
        cfg.patch = 14;
        cfg.do_resize = 0;
        cfg.mean[0] = 0.48145466f;
        cfg.std[0] = 0.26862954f;
    } else {
        cfg.min_pixels = 1 << 10;
        cfg.max_pixels = 1 << 16;
    }
    pixel_patches pp;
    rc = preprocess_image(&cfg, &img, &pp, &err);
    if (rc) {
        FUZZ_CHECK(!pp.values, "patches left behind on failure");
        fuzz_check_error(rc, &err, NULL);
    } else {
        const int f = cfg.patch * cfg.merge;
        FUZZ_CHECK(pp.grid_t == 1 && pp.grid_h % cfg.merge == 0 && pp.grid_w % cfg.merge == 0, "grid");
        FUZZ_CHECK(pp.n_patches == pp.grid_h * pp.grid_w && pp.row_len == 3 * cfg.temporal_patch * cfg.patch * cfg.patch,
                   "patch count");
        /* As in the reference, smart_resize may pass max_pixels by a strip one factor wide (a side
         * held at one factor, or ceil when scaling up); with aspect ratios up to 200 that strip is
         * under 16 * f * sqrt(max_pixels) + f^2. */
        const double over = 16.0 * f * sqrt((double)cfg.max_pixels) + (double)f * f;
        FUZZ_CHECK((double)pp.grid_h * cfg.patch * pp.grid_w * cfg.patch <=
                       (cfg.do_resize ? (double)cfg.max_pixels + over : (double)BUDGET),
                   "over max_pixels");
        if (!cfg.do_resize) FUZZ_CHECK(img.w % f == 0 && img.h % f == 0, "unresized odd size accepted");
        for (size_t i = 0; i < (size_t)pp.n_patches * pp.row_len; i++) FUZZ_CHECK(isfinite(pp.values[i]), "value");
        pixel_patches_free(&pp);
    }
    rgb_image_free(&img);
    return 0;
}
