/* The public preprocessing of vision/ behind include/modes.h, for checking it without a model. */
#include "core/error.h"
#include "io/image.h"
#include "vision/preprocess.h"

int modes_image_preprocess(const char *config, const char *path, modes_image *img, int *row_len, modes_error *err) {
    MODES_REQUIRE(err, img);
    *img = (modes_image){0};
    MODES_REQUIRE(err, row_len);
    *row_len = 0;
    MODES_REQUIRE(err, path);
    preproc_config cfg;
    int rc = 0;
    if (config) rc = preproc_config_load(config, &cfg, err);
    else preproc_config_default(&cfg);
    rgb_image pic = {0};
    pixel_patches p = {0};
    if (!rc) rc = image_load(path, 0, &pic, err);
    if (!rc && (rc = preprocess_image(&cfg, &pic, &p, err))) modes_error_prefix(err, "%s", path);
    rgb_image_free(&pic);
    if (rc) return rc;
    *img = (modes_image){p.values, p.grid_t, p.grid_h, p.grid_w};
    *row_len = p.row_len;
    return 0;
}
