/* The Qwen3-VL vision tower (docs/qwen3-vl-moe.md section 4): patch embedding, interpolated learned
 * positions, 2-D rotary attention blocks within each image, the patch merger and the DeepStack
 * mergers. Images are packed into one sequence; attention never crosses an image boundary. */
#ifndef MODES_VISION_QWEN3_VL_VIT_H
#define MODES_VISION_QWEN3_VL_VIT_H

#include "core/pool.h"
#include "io/config.h"
#include "io/weights.h"
#include "modes.h"
#include "tensor/tensor.h"


typedef struct {
    float *ln1_w, *ln1_b, *ln2_w, *ln2_b;
    wmat qkv, proj, fc1, fc2;
    float *qkv_b, *proj_b, *fc1_b, *fc2_b;
} vit_block;

typedef struct {
    int postshuffle;          /* DeepStack mergers norm the concatenated 2x2 block, the main one each patch */
    float *norm_w, *norm_b;
    wmat fc1, fc2;
    float *fc1_b, *fc2_b;
} vit_merger;

typedef struct {
    vision_config cfg;
    int grid_side;            /* the learned position table is grid_side x grid_side */
    wmat patch;               /* Conv3d weight as [D, C * T * P * P] */
    float *patch_b, *pos_embed; /* pos_embed: fp32 [grid_side^2, D] */
    vit_block *blocks;
    vit_merger merger, *deepstack;
} qwen3_vit;

int qwen3_vit_bind(weight_src *w, qwen3_vit *v, modes_error *err);
void qwen3_vit_free(qwen3_vit *v);

typedef struct {
    int t, h, w;              /* image_grid_thw, in patches */
} vit_grid;

typedef struct {
    int n_tokens, dim;        /* merged tokens (patches / merge^2) and the text width */
    float *embeds;            /* [n_tokens, dim] */
    int n_deepstack;
    float **deepstack;        /* n_deepstack arrays of [n_tokens, dim] */
} vit_output;
void vit_output_free(vit_output *o);

/* pixels: [sum of t*h*w, C*T*P*P] rows in merge-block order, image after image. tap may be NULL. */
int qwen3_vit_forward(const qwen3_vit *v, const float *pixels, const vit_grid *grids, int n_images,
                      modes_pool *pool, modes_tap_fn tap, void *tap_user, vit_output *out, modes_error *err);

#endif
