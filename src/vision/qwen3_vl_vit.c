/* Qwen3-VL vision tower (docs/qwen3-vl-moe.md section 4):
 *
 *   x = patches W_pe^T + b + bilinear(pos_embed)             [N, D]
 *   for each block:  x = x + Attn(LN1(x));  x = x + MLP(LN2(x))   (DeepStack taps after some blocks)
 *   embeds = merger(x)                                        [N / merge^2, out]
 *
 * Rows are in merge-block order throughout, so every merge^2 consecutive rows form one output token. */
#include "vision/qwen3_vl_vit.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/weights.h"

#define VIS "model.visual."

static int bind_linear(weight_src *m, const char *pfx, const char *name, int rows, int cols, wmat *w, float **b,
                       modes_error *err) {
    char n[256];
    snprintf(n, sizeof n, "%s%s.weight", pfx, name);
    int rc = bind_matrix(m, n, rows, cols, w, err);
    snprintf(n, sizeof n, "%s%s.bias", pfx, name);
    return rc ? rc : bind_vector(m, n, rows, b, err);
}

static int bind_norm(weight_src *m, const char *pfx, const char *name, int dim, float **w, float **b, modes_error *err) {
    char n[256];
    snprintf(n, sizeof n, "%s%s.weight", pfx, name);
    int rc = bind_vector(m, n, dim, w, err);
    snprintf(n, sizeof n, "%s%s.bias", pfx, name);
    return rc ? rc : bind_vector(m, n, dim, b, err);
}

static int bind_merger(weight_src *m, const char *pfx, const vision_config *c, int postshuffle, vit_merger *mg,
                       modes_error *err) {
    const int wide = c->hidden * c->merge * c->merge;
    mg->postshuffle = postshuffle;
    int rc = bind_norm(m, pfx, "norm", postshuffle ? wide : c->hidden, &mg->norm_w, &mg->norm_b, err);
    if (!rc) rc = bind_linear(m, pfx, "linear_fc1", wide, wide, &mg->fc1, &mg->fc1_b, err);
    if (!rc) rc = bind_linear(m, pfx, "linear_fc2", c->out_hidden, wide, &mg->fc2, &mg->fc2_b, err);
    return rc;
}

/* The Conv3d weight [D, C, T, P, P] is a [D, C*T*P*P] matrix in the pixel rows' own order
 * (docs/qwen3-vl-moe.md section 3 step 6). */
static int bind_patch_embed(weight_src *m, qwen3_vit *v, modes_error *err) {
    const vision_config *c = &v->cfg;
    const int64_t shape[5] = {c->hidden, c->in_channels, c->temporal_patch, c->patch, c->patch};
    const st_tensor *t;
    int rc = find_tensor(m, VIS "patch_embed.proj.weight", 5, shape, &t, err);
    if (rc) return rc;
    v->patch.dtype = weight_dtype(t);
    v->patch.rows = c->hidden;
    v->patch.cols = c->in_channels * c->temporal_patch * c->patch * c->patch;
    if ((rc = tensor_data(m, t, &v->patch.data, err))) return rc;
    return bind_vector(m, VIS "patch_embed.proj.bias", c->hidden, &v->patch_b, err);
}

int qwen3_vit_bind(weight_src *m, qwen3_vit *v, modes_error *err) {
    const vision_config *c = &v->cfg;
    const int D = c->hidden;
    int rc = bind_patch_embed(m, v, err);
    v->grid_side = (int)lround(sqrt((double)c->num_position_embeddings));
    wmat pe;
    if (!rc) rc = bind_matrix(m, VIS "pos_embed.weight", c->num_position_embeddings, D, &pe, err);
    if (!rc && !m->check_only) { /* a checked model's views may be misaligned: nothing reads them */
        const size_t n = (size_t)c->num_position_embeddings * D;
        if (!(v->pos_embed = malloc(n * sizeof(float)))) return modes_fail(err, MODES_E_INTERNAL, "out of memory");
        widen(v->pos_embed, pe.data, pe.dtype, 0, n);
        rc = ws_own(m, v->pos_embed, err);
    }
    if (!rc && !(v->blocks = calloc((size_t)c->depth, sizeof *v->blocks)))
        rc = modes_fail(err, MODES_E_INTERNAL, "out of memory");
    char p[128];
    for (int i = 0; !rc && i < c->depth; i++) {
        vit_block *b = &v->blocks[i];
        snprintf(p, sizeof p, VIS "blocks.%d.", i);
        rc = bind_norm(m, p, "norm1", D, &b->ln1_w, &b->ln1_b, err);
        if (!rc) rc = bind_norm(m, p, "norm2", D, &b->ln2_w, &b->ln2_b, err);
        if (!rc) rc = bind_linear(m, p, "attn.qkv", 3 * D, D, &b->qkv, &b->qkv_b, err);
        if (!rc) rc = bind_linear(m, p, "attn.proj", D, D, &b->proj, &b->proj_b, err);
        if (!rc) rc = bind_linear(m, p, "mlp.linear_fc1", c->intermediate, D, &b->fc1, &b->fc1_b, err);
        if (!rc) rc = bind_linear(m, p, "mlp.linear_fc2", D, c->intermediate, &b->fc2, &b->fc2_b, err);
    }
    if (!rc) rc = bind_merger(m, VIS "merger.", c, 0, &v->merger, err);
    if (!rc && c->n_deepstack && !(v->deepstack = calloc((size_t)c->n_deepstack, sizeof *v->deepstack)))
        rc = modes_fail(err, MODES_E_INTERNAL, "out of memory");
    for (int j = 0; !rc && j < c->n_deepstack; j++) {
        snprintf(p, sizeof p, VIS "deepstack_merger_list.%d.", j);
        rc = bind_merger(m, p, c, 1, &v->deepstack[j], err);
    }
    return rc;
}

void qwen3_vit_free(qwen3_vit *v) {
    free(v->blocks);
    free(v->deepstack);
    v->blocks = NULL;
    v->deepstack = NULL;
}

void vit_output_free(vit_output *o) {
    free(o->embeds);
    for (int j = 0; j < o->n_deepstack; j++) free(o->deepstack[j]);
    free(o->deepstack);
    memset(o, 0, sizeof *o);
}

/* ---- Forward ------------------------------------------------------------------------------ */

/* Patch (row, column) of sequence row i within an image of grid (h, w), merge-block order
 * (docs/qwen3-vl-moe.md section 3 step 6). */
static void patch_rc(int i, int w, int mg, int *r, int *c) {
    const int per_block = mg * mg, blocks_w = w / mg;
    const int b = i / per_block, in = i % per_block;
    *r = (b / blocks_w) * mg + in / mg;
    *c = (b % blocks_w) * mg + in % mg;
}

/* Bilinear (align_corners) resampling of the learned grid to (h, w), added to x (docs/qwen3-vl-moe.md section 4.2). */
static void add_position_embedding(const qwen3_vit *v, const vit_grid *g, float *x) {
    const int S = v->grid_side, D = v->cfg.hidden, mg = v->cfg.merge, hw = g->h * g->w;
    for (int i = 0; i < hw; i++) {
        int r, c;
        patch_rc(i, g->w, mg, &r, &c);
        const float hs = g->h > 1 ? (float)r * (float)(S - 1) / (float)(g->h - 1) : 0.0f;
        const float ws = g->w > 1 ? (float)c * (float)(S - 1) / (float)(g->w - 1) : 0.0f;
        const int h0 = (int)hs, w0 = (int)ws, h1 = h0 + 1 < S ? h0 + 1 : S - 1, w1 = w0 + 1 < S ? w0 + 1 : S - 1;
        const float dh = hs - (float)h0, dw = ws - (float)w0;
        const float k00 = (1 - dh) * (1 - dw), k01 = (1 - dh) * dw, k10 = dh * (1 - dw), k11 = dh * dw;
        const float *t00 = v->pos_embed + (size_t)(h0 * S + w0) * D, *t01 = v->pos_embed + (size_t)(h0 * S + w1) * D;
        const float *t10 = v->pos_embed + (size_t)(h1 * S + w0) * D, *t11 = v->pos_embed + (size_t)(h1 * S + w1) * D;
        for (int t = 0; t < g->t; t++) {
            float *xi = x + ((size_t)t * hw + i) * D;
            for (int d = 0; d < D; d++) xi[d] += k00 * t00[d] + k01 * t01[d] + k10 * t10[d] + k11 * t11[d];
        }
    }
}

/* 2-D rotary tables (docs/qwen3-vl-moe.md section 4.3): for head dim hd, a quarter of the angle slots
 * follow the patch row and a quarter the column; rows hold cos[hd/2] then sin[hd/2] as rope_apply expects. */
static void vision_rope_tables(const qwen3_vit *v, const vit_grid *g, float *cs) {
    const int hd = v->cfg.hidden / v->cfg.n_heads, half = hd / 2, quarter = hd / 4, hw = g->h * g->w;
    for (int i = 0; i < hw; i++) {
        int r, c;
        patch_rc(i, g->w, v->cfg.merge, &r, &c);
        for (int t = 0; t < g->t; t++) {
            float *row = cs + ((size_t)t * hw + i) * hd;
            for (int j = 0; j < half; j++) {
                const int k = j % quarter;
                const float inv_freq = 1.0f / powf(10000.0f, (float)(2 * k) / (float)half);
                const float theta = (float)(j < quarter ? r : c) * inv_freq;
                row[j] = cosf(theta);
                row[half + j] = sinf(theta);
            }
        }
    }
}

typedef struct {
    float *xn, *qkv, *att, *tmp, *mlp, *cs, *scores;
    modes_pool *pool;
} vit_scratch;

static void vit_scratch_free(vit_scratch *s) {
    free(s->xn); free(s->qkv); free(s->att); free(s->tmp); free(s->mlp); free(s->cs); free(s->scores);
}

static void tap_rows(modes_tap_fn tap, void *user, const char *name, const float *x, int rows, int cols) {
    if (!tap) return;
    const int64_t shape[2] = {rows, cols};
    tap(user, name, 0, x, 2, shape);
}

/* x += Attn(LN1(x)), attention within each frame of each image, bidirectional. */
static void vit_attention(const qwen3_vit *v, const vit_block *b, const vit_grid *grids, int n_images, int N, float *x,
                          vit_scratch *s) {
    const int D = v->cfg.hidden, nh = v->cfg.n_heads, hd = D / nh;
    for (int i = 0; i < N; i++) layernorm(s->xn + (size_t)i * D, x + (size_t)i * D, b->ln1_w, b->ln1_b, D, 1e-6f);
    matmul_mt(s->pool, s->qkv, s->xn, N, &b->qkv, b->qkv_b);
    for (int i = 0; i < N; i++) /* q is the first D values of a row, k the next D, v the last */
        for (int h = 0; h < nh; h++) {
            rope_apply(s->qkv + (size_t)i * 3 * D + (size_t)h * hd, hd, s->cs + (size_t)i * hd);
            rope_apply(s->qkv + (size_t)i * 3 * D + D + (size_t)h * hd, hd, s->cs + (size_t)i * hd);
        }
    const float scale = 1.0f / sqrtf((float)hd);
    int start = 0;
    for (int im = 0; im < n_images; im++)
        for (int t = 0; t < grids[im].t; t++) {
            const int len = grids[im].h * grids[im].w;
            const float *base = s->qkv + (size_t)start * 3 * D;
            for (int h = 0; h < nh; h++)
                attention_head(s->att + (size_t)start * D + (size_t)h * hd, D, base + (size_t)h * hd, 3 * D,
                               base + D + (size_t)h * hd, base + 2 * D + (size_t)h * hd, 3 * D, len, 0, hd, scale, 0,
                               s->scores);
            start += len;
        }
    matmul_mt(s->pool, s->tmp, s->att, N, &b->proj, b->proj_b);
    for (size_t i = 0; i < (size_t)N * D; i++) x[i] += s->tmp[i];
}

/* x += fc2(gelu_tanh(fc1(LN2(x)))). */
static void vit_mlp(const qwen3_vit *v, const vit_block *b, int N, float *x, vit_scratch *s) {
    const int D = v->cfg.hidden;
    for (int i = 0; i < N; i++) layernorm(s->xn + (size_t)i * D, x + (size_t)i * D, b->ln2_w, b->ln2_b, D, 1e-6f);
    matmul_mt(s->pool, s->mlp, s->xn, N, &b->fc1, b->fc1_b);
    gelu_tanh(s->mlp, (size_t)N * v->cfg.intermediate);
    matmul_mt(s->pool, s->tmp, s->mlp, N, &b->fc2, b->fc2_b);
    for (size_t i = 0; i < (size_t)N * D; i++) x[i] += s->tmp[i];
}

/* Merges each merge^2 block of rows into one token (docs/qwen3-vl-moe.md section 4.5); out is
 * [N / merge^2, out_hidden]. */
static int vit_merge(const qwen3_vit *v, const vit_merger *mg, const float *x, int N, float *out, modes_pool *pool) {
    const int D = v->cfg.hidden, k = v->cfg.merge * v->cfg.merge, wide = D * k, M = N / k;
    float *y = malloc((size_t)N * D * sizeof *y), *h = malloc((size_t)M * wide * sizeof *h);
    if (!y || !h) {
        free(y);
        free(h);
        return -1;
    }
    if (mg->postshuffle)
        for (int i = 0; i < M; i++) layernorm(y + (size_t)i * wide, x + (size_t)i * wide, mg->norm_w, mg->norm_b, wide, 1e-6f);
    else
        for (int i = 0; i < N; i++) layernorm(y + (size_t)i * D, x + (size_t)i * D, mg->norm_w, mg->norm_b, D, 1e-6f);
    matmul_mt(pool, h, y, M, &mg->fc1, mg->fc1_b);
    gelu_erf(h, (size_t)M * wide);
    matmul_mt(pool, out, h, M, &mg->fc2, mg->fc2_b);
    free(y);
    free(h);
    return 0;
}

static int check_grids(const qwen3_vit *v, const vit_grid *grids, int n_images, int *N, modes_error *err) {
    *N = 0;
    for (int i = 0; i < n_images; i++) {
        const vit_grid *g = &grids[i];
        if (g->t < 1 || g->h < 1 || g->w < 1 || g->h % v->cfg.merge || g->w % v->cfg.merge || g->h > 4096 || g->w > 4096)
            return modes_fail(err, MODES_E_INPUT, "image %d: grid (%d, %d, %d) is not a positive multiple of the merge size %d",
                              i, g->t, g->h, g->w, v->cfg.merge);
        if ((int64_t)*N + (int64_t)g->t * g->h * g->w > (1 << 24))
            return modes_fail(err, MODES_E_INPUT, "images hold more than 2^24 patches");
        *N += g->t * g->h * g->w;
    }
    return 0;
}

int qwen3_vit_forward(const qwen3_vit *v, const float *pixels, const vit_grid *grids, int n_images, modes_pool *pool,
                      modes_tap_fn tap, void *tap_user, vit_output *out, modes_error *err) {
    memset(out, 0, sizeof *out);
    const vision_config *c = &v->cfg;
    const int D = c->hidden, hd = D / c->n_heads;
    int N, rc = check_grids(v, grids, n_images, &N, err);
    if (rc) return rc;
    const int M = N / (c->merge * c->merge);
    int max_len = 1;
    for (int i = 0; i < n_images; i++) max_len = grids[i].h * grids[i].w > max_len ? grids[i].h * grids[i].w : max_len;
    vit_scratch s = {.pool = pool};
    float *x = malloc((size_t)N * D * sizeof *x);
    s.xn = malloc((size_t)N * D * sizeof(float));
    s.qkv = malloc((size_t)N * 3 * D * sizeof(float));
    s.att = malloc((size_t)N * D * sizeof(float));
    s.tmp = malloc((size_t)N * D * sizeof(float));
    s.mlp = malloc((size_t)N * c->intermediate * sizeof(float));
    s.cs = malloc((size_t)N * hd * sizeof(float));
    s.scores = malloc((size_t)max_len * sizeof(float));
    out->embeds = malloc((size_t)M * c->out_hidden * sizeof(float));
    out->deepstack = calloc((size_t)(c->n_deepstack ? c->n_deepstack : 1), sizeof *out->deepstack);
    out->n_deepstack = c->n_deepstack;
    int ok = x && s.xn && s.qkv && s.att && s.tmp && s.mlp && s.cs && s.scores && out->embeds && out->deepstack;
    for (int j = 0; ok && j < c->n_deepstack; j++)
        ok = (out->deepstack[j] = malloc((size_t)M * c->out_hidden * sizeof(float))) != NULL;
    if (!ok) {
        rc = modes_fail(err, MODES_E_INTERNAL, "out of memory for %d image patches", N);
        goto done;
    }
    out->n_tokens = M;
    out->dim = c->out_hidden;
    matmul_mt(pool, x, pixels, N, &v->patch, v->patch_b);
    tap_rows(tap, tap_user, "vision.patch_embed_out", x, N, D);
    for (int i = 0, start = 0; i < n_images; i++) {
        add_position_embedding(v, &grids[i], x + (size_t)start * D);
        vision_rope_tables(v, &grids[i], s.cs + (size_t)start * hd);
        start += grids[i].t * grids[i].h * grids[i].w;
    }
    char name[64];
    for (int l = 0; l < c->depth; l++) {
        snprintf(name, sizeof name, "vision.block%d.in", l);
        tap_rows(tap, tap_user, name, x, N, D);
        vit_attention(v, &v->blocks[l], grids, n_images, N, x, &s);
        vit_mlp(v, &v->blocks[l], N, x, &s);
        snprintf(name, sizeof name, "vision.block%d.out", l);
        tap_rows(tap, tap_user, name, x, N, D);
        for (int j = 0; j < c->n_deepstack; j++) {
            if (c->deepstack[j] != l) continue;
            if (vit_merge(v, &v->deepstack[j], x, N, out->deepstack[j], pool)) {
                rc = modes_fail(err, MODES_E_INTERNAL, "out of memory in the DeepStack merger");
                goto done;
            }
            snprintf(name, sizeof name, "vision.deepstack_features.%d", j);
            tap_rows(tap, tap_user, name, out->deepstack[j], M, c->out_hidden);
            snprintf(name, sizeof name, "vision.deepstack%d_out", j); /* the reference stores both names */
            tap_rows(tap, tap_user, name, out->deepstack[j], M, c->out_hidden);
        }
    }
    tap_rows(tap, tap_user, "vision.last_hidden_state", x, N, D);
    if (vit_merge(v, &v->merger, x, N, out->embeds, pool)) rc = modes_fail(err, MODES_E_INTERNAL, "out of memory in the merger");
    else {
        tap_rows(tap, tap_user, "vision.merger_out", out->embeds, M, c->out_hidden);
        tap_rows(tap, tap_user, "vision.image_embeds", out->embeds, M, c->out_hidden);
    }
done:
    free(x);
    vit_scratch_free(&s);
    if (rc) vit_output_free(out);
    return rc;
}
