/* Qwen3-VL image preprocessing (docs/qwen3-vl-moe.md section 3), exactly as the reference processor:
 * smart_resize, bicubic resize with antialias, rescale and normalise, temporal duplication, and
 * patch flattening in merge-block order. */
#ifndef MODES_VISION_PREPROCESS_H
#define MODES_VISION_PREPROCESS_H

#include <stdint.h>

#include "io/image.h"
#include "modes.h"

typedef struct {
    int patch, temporal_patch, merge;
    int64_t min_pixels, max_pixels;
    float mean[3], std[3];
    double rescale;           /* 1/255 */
    int do_resize, do_rescale, do_normalize;
    double max_aspect;        /* 200: the reference refuses more elongated images */
} preproc_config;

/* Reads preprocessor_config.json from a model folder (or a path to the file itself); keys missing
 * from the file take the Qwen3-VL defaults (patch 16, temporal 2, merge 2, min 65536, max 16777216
 * pixels, mean = std = 0.5). A folder without the file gives the defaults; a file path that does not
 * exist is an error.
 *
 * Keys read: patch_size, temporal_patch_size, merge_size, size {shortest_edge, longest_edge},
 * min_pixels, max_pixels, image_mean, image_std (3 numbers, or one for all channels),
 * rescale_factor, do_resize, do_rescale, do_normalize, resample (must be 3, bicubic). A null value
 * counts as absent. As in transformers' Qwen2VLImageProcessor.__init__ (v4.5x and v5), top-level
 * min_pixels / max_pixels override size.shortest_edge / size.longest_edge when both are given; size,
 * when present, must have both keys. Nonsense values (a zero or negative size, min_pixels over
 * max_pixels, a zero std, ...) fail with a message naming the file and key. */
int preproc_config_load(const char *path, preproc_config *cfg, modes_error *err);
void preproc_config_default(preproc_config *cfg);

/* The target (height, width) of smart_resize (docs/qwen3-vl-moe.md section 3 step 2, factor = patch * merge, Python's
 * round-half-to-even) for a picture of any size; fails only on an aspect ratio over max_aspect (200,
 * as the reference) or an area over 2^53 (beyond where doubles match Python's integer arithmetic).
 * As in the reference, the result may exceed max_pixels by a strip one factor wide: a very elongated
 * picture keeps its short side at one factor, and scaling up rounds each side up. */
int smart_resize(const preproc_config *cfg, int h, int w, int *out_h, int *out_w, modes_error *err);

typedef struct {
    float *values;            /* [n_patches][row_len], owned */
    int n_patches, row_len;   /* row_len = channels * temporal_patch * patch * patch */
    int grid_t, grid_h, grid_w;
} pixel_patches;

/* The size preprocess_image resizes a w x h picture to (smart_resize when do_resize), with the same
 * checks and messages, without touching pixels. */
int preprocess_size(const preproc_config *cfg, int w, int h, int *out_w, int *out_h, modes_error *err);

/* smart_resize (when do_resize), the resize below, rescale and normalise in float32 as the reference
 * computes them (with both on: (p - mean/rescale) / (std/rescale), the constants rounded to float
 * first), duplication of the frame to temporal_patch frames, and patch flattening in merge-block
 * order. grid_t is 1. Without do_resize both sides must be multiples of patch * merge. */
int preprocess_image(const preproc_config *cfg, const rgb_image *img, pixel_patches *out, modes_error *err);
void pixel_patches_free(pixel_patches *p);

/* Resizes to out_w x out_h as torchvision's resize(BICUBIC, antialias=True) does on a uint8 tensor
 * on the CPU (ATen's _upsample_bicubic2d_aa uint8 path, after Pillow-SIMD): separable, horizontal
 * pass first into an 8-bit intermediate, then vertical; Keys cubic with a = -0.5, support widened by
 * the scale when downscaling, pixel centres at i + 0.5; weights normalised in double, then rounded
 * to int16 with the largest precision that keeps the biggest weight under 2^15; each output is
 * (sum + 2^(prec-1)) >> prec clamped to 0..255. A side that keeps its size is not resampled; equal
 * sizes copy. On failure dst is zeroed. */
int image_resize_bicubic_aa(const rgb_image *src, int out_w, int out_h, rgb_image *dst, modes_error *err);

#endif
