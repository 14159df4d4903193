/* modes preprocess: one image -> pixel_values and image_grid_thw, as the reference processor makes
 * them (docs/qwen3-vl-moe.md section 3), so preprocessing can be checked on its own. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char *HELP =
    "usage: modes preprocess [-m DIR] --image FILE -o OUT.safetensors\n"
    "  Decodes FILE (PNG, JPEG or WebP), preprocesses it as the model's processor does and writes\n"
    "  pixel_values [patches, 3 * temporal_patch * patch^2] F32 and image_grid_thw [1, 3] I64.\n"
    "  -m DIR   model folder whose preprocessor_config.json is used (or that file itself); without\n"
    "           it, or when the folder has none, the Qwen3-VL defaults apply.\n"
    "  Long forms: -m/--model, -o/--output.\n";

static int write_patches(const modes_image *p, int row_len, const char *path, modes_error *err) {
    modes_tensor_writer *w = NULL;
    int64_t pv_shape[2] = {(int64_t)p->grid_t * p->grid_h * p->grid_w, row_len}, g_shape[2] = {1, 3};
    int64_t grid[3] = {p->grid_t, p->grid_h, p->grid_w};
    int rc = modes_tensor_writer_new(&w, err);
    if (!rc) rc = modes_tensor_writer_add(w, "pixel_values", MODES_VALUES_F32, 2, pv_shape, p->pixels, err);
    if (!rc) rc = modes_tensor_writer_add(w, "image_grid_thw", MODES_VALUES_I64, 2, g_shape, grid, err);
    if (!rc) rc = modes_tensor_writer_save(w, path, err);
    modes_tensor_writer_free(w);
    return rc;
}

int cmd_preprocess(int argc, char **argv) {
    const char *dir = NULL, *image = NULL, *out = NULL;
    for (int i = 1; i < argc; i++) {
        int r;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(HELP, stdout);
            return 0;
        }
        if ((r = opt_str(argc, argv, &i, "-m|--model", &dir, "preprocess")) <= 0 ||
            (r = opt_str(argc, argv, &i, "--image", &image, "preprocess")) <= 0 ||
            (r = opt_str(argc, argv, &i, "-o|--output", &out, "preprocess")) <= 0) {
            if (r < 0) return 1;
            continue;
        }
        return cli_usage("preprocess", "unknown option '%s'", argv[i]);
    }
    if (!image || !out) return cli_usage("preprocess", "--image and -o are required");

    modes_error err = {0};
    modes_image img;
    int row_len = 0;
    int rc = modes_image_preprocess(dir, image, &img, &row_len, &err);
    if (!rc) rc = write_patches(&img, row_len, out, &err);
    modes_image_free(&img);
    return rc ? cli_fail("preprocess", &err) : 0;
}
