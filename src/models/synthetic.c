/* A decoder with the real dimensions of a released checkpoint (its family gives the config) and
 * random bf16 weights made in memory, for `modes bench --synthetic` (docs/design.md section 5): speed does not depend on the values.
 *
 * The experts of Qwen3-VL-30B-A3B alone are 58 GB, more than such machines have, so the expert
 * weights are a pool of distinct layer blocks sized to a memory budget, and layer l uses block
 * l mod n_blocks. Each block is far larger than any cache, so a token still streams every expert
 * it uses from memory; the byte counts the benchmark reports are those of distinct experts. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/mem.h"
#include "models/decoder.h"

typedef struct {
    uint64_t s;
} rng64;

/* Owned random bf16 storage of n values, uniform in [-scale/2, scale/2): xorshift64 gives four
 * values per step, so gigabytes take seconds. Every row is distinct, so routing is not degenerate. */
static void *random_weights(modes_model *m, size_t n, float scale, rng64 *r, modes_error *err) {
    uint16_t *w = n <= SIZE_MAX / sizeof *w ? mem_alloc_streamed(n * sizeof *w) : NULL;
    if (!w) {
        modes_fail(err, MODES_E_INTERNAL, "out of memory for %zu synthetic weights", n);
        return NULL;
    }
    uint64_t x = r->s | 1;
    for (size_t i = 0; i < n; i += 4) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        for (size_t k = 0; k < 4 && i + k < n; k++)
            w[i + k] = f32_to_bf16(((float)((x >> (16 * k)) & 0xffff) / 65536.0f - 0.5f) * scale);
    }
    r->s = x;
    return ws_own(&m->w, w, err) ? NULL : w;
}

static float *ones(modes_model *m, int n, modes_error *err) {
    float *v = malloc((size_t)n * sizeof *v);
    if (!v) {
        modes_fail(err, MODES_E_INTERNAL, "out of memory");
        return NULL;
    }
    for (int i = 0; i < n; i++) v[i] = 1.0f;
    return ws_own(&m->w, v, err) ? NULL : v;
}

static int make_matrix(modes_model *m, int rows, int cols, rng64 *r, wmat *w, modes_error *err) {
    void *d = random_weights(m, (size_t)rows * cols, 0.1f, r, err);
    if (!d) return MODES_E_INTERNAL;
    *w = (wmat){DT_BF16, d, rows, cols};
    return 0;
}

static int make_layers(modes_model *m, decoder *d, size_t expert_budget, rng64 *r, int *n_blocks, modes_error *err) {
    const text_config *c = &m->cfg.text;
    const int H = c->hidden, hd = c->head_dim, E = c->n_experts, I = c->moe_intermediate;
    const size_t block = (size_t)E * 3 * I * H * 2; /* bytes of one layer's experts */
    int nb = (int)(expert_budget / block);
    nb = nb < 1 ? 1 : nb > c->n_layers ? c->n_layers : nb;
    *n_blocks = nb;
    expert_w **blocks = calloc((size_t)nb, sizeof *blocks);
    if (!blocks || ws_own(&m->w, blocks, err)) return modes_fail(err, MODES_E_INTERNAL, "out of memory");
    for (int b = 0; b < nb; b++) {
        uint16_t *gu = random_weights(m, (size_t)E * 2 * I * H, 0.05f, r, err);
        uint16_t *dn = gu ? random_weights(m, (size_t)E * H * I, 0.05f, r, err) : NULL;
        if (!dn || !(blocks[b] = calloc((size_t)E, sizeof **blocks)) || ws_own(&m->w, blocks[b], err)) return MODES_E_INTERNAL;
        for (int e = 0; e < E; e++) {
            const uint16_t *g = gu + (size_t)e * 2 * I * H;
            blocks[b][e] = (expert_w){{DT_BF16, g, I, H}, {DT_BF16, g + (size_t)I * H, I, H},
                                      {DT_BF16, dn + (size_t)e * H * I, H, I}};
        }
    }
    for (int l = 0; l < c->n_layers; l++) {
        decoder_layer *L = &d->layers[l];
        int rc;
        if (!(L->attn_norm = ones(m, H, err)) || !(L->ffn_norm = ones(m, H, err)) || !(L->q_norm = ones(m, hd, err)) ||
            !(L->k_norm = ones(m, hd, err)))
            return MODES_E_INTERNAL;
        if ((rc = make_matrix(m, c->n_heads * hd, H, r, &L->q, err)) ||
            (rc = make_matrix(m, c->n_kv_heads * hd, H, r, &L->k, err)) ||
            (rc = make_matrix(m, c->n_kv_heads * hd, H, r, &L->v, err)) ||
            (rc = make_matrix(m, H, c->n_heads * hd, r, &L->o, err)))
            return rc;
        L->is_moe = 1;
        L->moe = (moe_layer){.n_experts = E, .top_k = c->top_k, .hidden = H, .inter = I, .experts = blocks[l % nb],
                             .rule = {.scoring = MOE_SCORE_SOFTMAX, .norm_topk = c->norm_topk_prob, .routed_scale = 1.0f}};
        if ((rc = make_matrix(m, E, H, r, &L->moe.router, err))) return rc;
    }
    return 0;
}

int decoder_random(modes_model *m, decoder *d, size_t expert_budget, uint64_t seed, int *n_blocks, modes_error *err) {
    const text_config *c = &m->cfg.text;
    d->cfg = c;
    rng64 r = {seed * 2654435761u + 1};
    uint8_t all_moe[CFG_MAX_LAYERS];
    memset(all_moe, 1, sizeof all_moe);
    int rc = model_set_layers(m, c->n_layers, all_moe, err);
    if (!rc && !(d->layers = calloc((size_t)c->n_layers, sizeof *d->layers))) rc = modes_fail(err, MODES_E_INTERNAL, "out of memory");
    if (!rc) rc = make_matrix(m, c->vocab, c->hidden, &r, &d->embed, err);
    if (!rc) rc = make_matrix(m, c->vocab, c->hidden, &r, &d->lm_head, err);
    if (!rc && !(d->final_norm = ones(m, c->hidden, err))) rc = MODES_E_INTERNAL;
    if (!rc) rc = make_layers(m, d, expert_budget, &r, n_blocks, err);
    return rc;
}
