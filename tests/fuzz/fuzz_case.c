/* A case file as `modes forward --input` and `modes generate --input` read it (read_case,
 * src/models/case.c): safetensors holding input_ids and, for image cases, pixel_values with image_grid_thw.
 * The model is a stand-in with small vision settings (rows of 3 x 2 x 2 x 2 values). On
 * success every image's rows must lie inside the pixel buffer, and every value is read. */
#include "fuzz.h"
#include "models/case.h"
#include "models/model.h"

static char *path;
static modes_model *model;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!path) {
        path = fuzz_path("case.safetensors");
        model = calloc(1, sizeof *model);
        FUZZ_CHECK(model, "out of memory");
        model->cfg.vision = (vision_config){.present = 1, .in_channels = 3, .temporal_patch = 2, .patch = 2, .merge = 2};
        model->cfg.text.max_position = 4096;
    }
    fuzz_write(path, data, size);
    case_input c;
    modes_error err = {0};
    int rc = read_case(path, model, &c, &err);
    if (rc) {
        FUZZ_CHECK(!c.ids && !c.pixels && !c.images, "case left behind on failure");
        fuzz_check_error(rc, &err, path);
        return 0;
    }
    FUZZ_CHECK(c.n >= 1 && c.n <= 4096 && c.ids, "%d ids", c.n);
    for (int i = 0; i < c.n; i++) FUZZ_CHECK(c.ids[i] >= 0, "id %d", c.ids[i]);
    const int64_t row = 3 * 2 * 2 * 2;
    int64_t rows = 0;
    float sum = 0;
    for (int i = 0; i < c.n_images; i++) {
        const modes_image *im = &c.images[i];
        const int64_t n = (int64_t)im->grid_t * im->grid_h * im->grid_w;
        FUZZ_CHECK(im->grid_t >= 1 && im->grid_h >= 1 && im->grid_w >= 1, "grid");
        FUZZ_CHECK(im->pixels == c.pixels + rows * row, "image %d does not follow the one before", i);
        for (int64_t k = 0; k < n * row; k++) sum += im->pixels[k];
        rows += n;
    }
    (void)sum;
    case_input_free(&c);
    return 0;
}
