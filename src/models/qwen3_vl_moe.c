/* Qwen3-VL-MoE text decoder (docs/qwen3-vl-moe.md sections 1, 6 and 7).
 *
 *   x = embed(ids)
 *   for each layer:  h = x + Attn(RMSNorm_in(x));  x = h + MoE(RMSNorm_post(h))
 *   logits = lm_head(RMSNorm(x))
 *
 * Attention is GQA with per-head RMSNorm on q and k before interleaved M-RoPE. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/mem.h"
#include "models/model.h"

#define TEXT "model.language_model."

/* ---- Weight binding ------------------------------------------------------------------------ */

/* [E, A, B] -> [E, B, A] into owned memory: the released x·W expert layout becomes rows for GEMV. */
static int transpose_experts(modes_model *m, const st_tensor *t, modes_dtype dt, const void **out, modes_error *err) {
    unsigned char *dst = mem_alloc_streamed(t->nbytes);
    if (!dst) return modes_fail(err, MODES_E_INTERNAL, "out of memory transposing '%s'", t->name);
    int rc = model_own(m, dst, err);
    if (!rc && (rc = dtype_transpose(dst, t->data, dt, (size_t)t->shape[0], (size_t)t->shape[1], (size_t)t->shape[2],
                                     t->name, err)))
        modes_error_prefix(err, "%s", m->dir);
    *out = dst;
    return rc;
}

/* Fused 3-D experts (docs/qwen3-vl-moe.md section 1): released [E, H, 2I] / [E, I, H] (x·W) or v5
 * [E, 2I, H] / [E, H, I]. */
static int bind_fused_experts(modes_model *m, const char *pfx, moe_layer *moe, modes_error *err) {
    const int E = moe->n_experts, H = moe->hidden, I = moe->inter;
    char gname[256], dname[256];
    snprintf(gname, sizeof gname, "%sexperts.gate_up_proj", pfx);
    snprintf(dname, sizeof dname, "%sexperts.down_proj", pfx);
    const st_tensor *gu = st_find(m->weights, gname), *dn = st_find(m->weights, dname);
    if (!gu || !dn) return modes_fail(err, MODES_E_INPUT, "%s: tensor '%s' is missing", m->dir, gu ? dname : gname);
    const int64_t released_gu[3] = {E, H, 2 * I}, v5_gu[3] = {E, 2 * I, H};
    const int64_t released_dn[3] = {E, I, H}, v5_dn[3] = {E, H, I};
    modes_error e1;
    const st_tensor *t;
    /* When H == 2I the shapes cannot tell; the released layout is assumed (docs/qwen3-vl-moe.md section 1). */
    int released = find_tensor(m, gname, 3, released_gu, &t, &e1) == 0;
    int rc = released ? 0 : find_tensor(m, gname, 3, v5_gu, &t, err);
    if (rc) return rc;
    const st_tensor *td;
    if ((rc = find_tensor(m, dname, 3, released ? released_dn : v5_dn, &td, err))) return rc;
    const modes_dtype dg = weight_dtype(t), dd = weight_dtype(td);
    const void *gdata, *ddata;
    if (released && !m->check_only) {
        if ((rc = transpose_experts(m, t, dg, &gdata, err)) || (rc = transpose_experts(m, td, dd, &ddata, err))) return rc;
    } else if ((rc = tensor_data(m, t, &gdata, err)) || (rc = tensor_data(m, td, &ddata, err))) {
        return rc;
    }
    const size_t gs = (size_t)2 * I * dtype_row_bytes(dg, (size_t)H), ds = (size_t)H * dtype_row_bytes(dd, (size_t)I);
    for (int e = 0; e < E; e++) {
        const char *g = (const char *)gdata + e * gs;
        moe->experts[e].gate = (wmat){dg, g, I, H};
        moe->experts[e].up = (wmat){dg, g + (size_t)I * dtype_row_bytes(dg, (size_t)H), I, H};
        moe->experts[e].down = (wmat){dd, (const char *)ddata + e * ds, H, I};
    }
    return 0;
}

/* Per-expert tensors experts.J.{gate,up,down}_proj.weight (InternVL's Qwen3-MoE, docs/qwen3-vl-moe.md section 1). */
static int bind_split_experts(modes_model *m, const char *pfx, moe_layer *moe, modes_error *err) {
    char name[256];
    int rc = 0;
    for (int e = 0; e < moe->n_experts && !rc; e++) {
        expert_w *x = &moe->experts[e];
        snprintf(name, sizeof name, "%sexperts.%d.gate_proj.weight", pfx, e);
        rc = bind_matrix(m, name, moe->inter, moe->hidden, &x->gate, err);
        snprintf(name, sizeof name, "%sexperts.%d.up_proj.weight", pfx, e);
        if (!rc) rc = bind_matrix(m, name, moe->inter, moe->hidden, &x->up, err);
        snprintf(name, sizeof name, "%sexperts.%d.down_proj.weight", pfx, e);
        if (!rc) rc = bind_matrix(m, name, moe->hidden, moe->inter, &x->down, err);
    }
    return rc;
}

static int bind_layer(modes_model *m, int l, text_layer *L, modes_error *err) {
    const text_config *c = &m->cfg.text;
    const int H = c->hidden, hd = c->head_dim;
    char p[128], name[256];
    snprintf(p, sizeof p, TEXT "layers.%d.", l);
#define NAME(s) (snprintf(name, sizeof name, "%s%s", p, s), name)
    int rc;
    if ((rc = bind_vector(m, NAME("input_layernorm.weight"), H, &L->attn_norm, err)) ||
        (rc = bind_vector(m, NAME("post_attention_layernorm.weight"), H, &L->ffn_norm, err)) ||
        (rc = bind_vector(m, NAME("self_attn.q_norm.weight"), hd, &L->q_norm, err)) ||
        (rc = bind_vector(m, NAME("self_attn.k_norm.weight"), hd, &L->k_norm, err)) ||
        (rc = bind_matrix(m, NAME("self_attn.q_proj.weight"), c->n_heads * hd, H, &L->q, err)) ||
        (rc = bind_matrix(m, NAME("self_attn.k_proj.weight"), c->n_kv_heads * hd, H, &L->k, err)) ||
        (rc = bind_matrix(m, NAME("self_attn.v_proj.weight"), c->n_kv_heads * hd, H, &L->v, err)) ||
        (rc = bind_matrix(m, NAME("self_attn.o_proj.weight"), H, c->n_heads * hd, &L->o, err)))
        return rc;
    L->is_moe = c->is_moe[l];
    if (!L->is_moe) {
        if ((rc = bind_matrix(m, NAME("mlp.gate_proj.weight"), c->intermediate, H, &L->mlp.gate, err)) ||
            (rc = bind_matrix(m, NAME("mlp.up_proj.weight"), c->intermediate, H, &L->mlp.up, err)))
            return rc;
        return bind_matrix(m, NAME("mlp.down_proj.weight"), H, c->intermediate, &L->mlp.down, err);
    }
    moe_layer *moe = &L->moe;
    *moe = (moe_layer){.n_experts = c->n_experts, .top_k = c->top_k, .hidden = H, .inter = c->moe_intermediate};
    if ((rc = bind_matrix(m, NAME("mlp.gate.weight"), c->n_experts, H, &moe->router, err))) return rc;
    moe->experts = calloc((size_t)c->n_experts, sizeof *moe->experts);
    if (!moe->experts) return modes_fail(err, MODES_E_INTERNAL, "out of memory");
    if ((rc = model_own(m, moe->experts, err))) return rc;
    snprintf(p, sizeof p, TEXT "layers.%d.mlp.", l);
    snprintf(name, sizeof name, "%sexperts.0.gate_proj.weight", p);
    return st_find(m->weights, name) ? bind_split_experts(m, p, moe, err) : bind_fused_experts(m, p, moe, err);
#undef NAME
}

int qwen3vl_bind_weights(modes_model *m, modes_error *err) {
    const text_config *c = &m->cfg.text;
    int rc;
    if ((rc = bind_matrix(m, TEXT "embed_tokens.weight", c->vocab, c->hidden, &m->embed, err)) ||
        (rc = bind_vector(m, TEXT "norm.weight", c->hidden, &m->final_norm, err)))
        return rc;
    if (c->tie_embeddings && !st_find(m->weights, "lm_head.weight")) m->lm_head = m->embed;
    else if ((rc = bind_matrix(m, "lm_head.weight", c->vocab, c->hidden, &m->lm_head, err))) return rc;
    m->layers = calloc((size_t)c->n_layers, sizeof *m->layers);
    m->moe_index = malloc((size_t)c->n_layers * sizeof *m->moe_index);
    if (!m->layers || !m->moe_index) return modes_fail(err, MODES_E_INTERNAL, "out of memory");
    m->n_moe_layers = 0;
    for (int l = 0; l < c->n_layers; l++) m->moe_index[l] = c->is_moe[l] ? m->n_moe_layers++ : -1;
    for (int l = 0; l < c->n_layers; l++)
        if ((rc = bind_layer(m, l, &m->layers[l], err))) return rc;
    return 0;
}

/* ---- Forward ------------------------------------------------------------------------------- */

/* Interleaved M-RoPE (docs/qwen3-vl-moe.md section 6.1): angle slot j takes its position from H when j % 3 == 1 and
 * j < 3 * section[1], from W when j % 3 == 2 and j < 3 * section[2], else from T. Writes, per token,
 * cos[hd/2] then sin[hd/2]. inv_freq is computed in float32 as the reference does. */
static void mrope_tables(const text_config *c, const int32_t *pos, int n, float *cs) {
    const int half = c->head_dim / 2;
    for (int i = 0; i < n; i++) {
        float *cos_ = cs + (size_t)i * c->head_dim, *sin_ = cos_ + half;
        for (int j = 0; j < half; j++) {
            const float inv_freq = 1.0f / powf((float)c->rope_theta, (float)(2 * j) / (float)c->head_dim);
            int axis = 0;
            if (j % 3 == 1 && j < 3 * c->mrope_section[1]) axis = 1;
            else if (j % 3 == 2 && j < 3 * c->mrope_section[2]) axis = 2;
            const float theta = (float)pos[(size_t)axis * n + i] * inv_freq;
            cos_[j] = cosf(theta);
            sin_[j] = sinf(theta);
        }
    }
}

typedef struct {
    modes_ctx *c;
    int n;
    char name[96];
} tapper;

static void tap_f(tapper *t, const char *fmt, int layer, const float *data, int ndim, int64_t d0, int64_t d1,
                  int64_t d2) {
    if (!t->c->tap) return;
    snprintf(t->name, sizeof t->name, fmt, layer);
    const int64_t shape[3] = {d0, d1, d2};
    t->c->tap(t->c->tap_user, t->name, 0, data, ndim, shape);
}

static void tap_rope(tapper *t, const float *cs, int n, int hd) {
    if (!t->c->tap) return;
    float *full = malloc((size_t)n * hd * 2 * sizeof *full);
    if (!full) return;
    const int half = hd / 2;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < hd; j++) {
            full[(size_t)i * hd + j] = cs[(size_t)i * hd + j % half];
            full[(size_t)(n + i) * hd + j] = cs[(size_t)i * hd + half + j % half];
        }
    tap_f(t, "text.rope_cos", 0, full, 3, 1, n, hd);
    tap_f(t, "text.rope_sin", 0, full + (size_t)n * hd, 3, 1, n, hd);
    free(full);
}

typedef struct {
    float *x, *xn, *q, *k, *v, *att, *tmp, *cs, *scores, *router_logits, *topk_w;
    int32_t *topk_idx;
    uint8_t *cls;
} scratch;

static void scratch_free(scratch *s) {
    free(s->x); free(s->xn); free(s->q); free(s->k); free(s->v); free(s->att); free(s->tmp);
    free(s->cs); free(s->scores); free(s->router_logits); free(s->topk_w); free(s->topk_idx); free(s->cls);
}

static int scratch_alloc(scratch *s, const text_config *c, int n, int T) {
    const size_t H = (size_t)c->hidden, qd = (size_t)c->n_heads * c->head_dim, kd = (size_t)c->n_kv_heads * c->head_dim;
    const size_t E = (size_t)c->n_experts, K = (size_t)c->top_k;
    memset(s, 0, sizeof *s);
    s->x = malloc(n * H * sizeof(float));
    s->xn = malloc(n * H * sizeof(float));
    s->tmp = malloc(n * H * sizeof(float));
    s->q = malloc(n * qd * sizeof(float));
    s->att = malloc(n * qd * sizeof(float));
    s->k = malloc(n * kd * sizeof(float));
    s->v = malloc(n * kd * sizeof(float));
    s->cs = malloc((size_t)n * c->head_dim * sizeof(float));
    s->scores = malloc((size_t)T * c->n_heads * sizeof(float));
    s->router_logits = malloc(n * (E ? E : 1) * sizeof(float));
    s->topk_w = malloc(n * (K ? K : 1) * sizeof(float));
    s->topk_idx = malloc(n * (K ? K : 1) * sizeof(int32_t));
    s->cls = malloc((size_t)n);
    return s->cls && s->x && s->xn && s->tmp && s->q && s->att && s->k && s->v && s->cs && s->scores && s->router_logits &&
                   s->topk_w && s->topk_idx
               ? 0
               : -1;
}

typedef struct {
    scratch *s;
    const float *k0, *v0;
    int n, n_past, hd, qd, kd, group;
    float scale;
} head_work;

/* One query head; each thread has its own score row (scratch holds one per head). */
static void attention_task(void *arg, int h, int n_heads) {
    const head_work *w = arg;
    const int g = h / w->group; /* repeat_kv: query head h reads kv head h / group */
    attention_head(w->s->att + (size_t)h * w->hd, w->qd, w->s->q + (size_t)h * w->hd, w->qd, w->k0 + (size_t)g * w->hd,
                   w->v0 + (size_t)g * w->hd, w->kd, w->n, w->n_past, w->hd, w->scale, 1,
                   w->s->scores + (size_t)h * (w->n_past + w->n));
    (void)n_heads;
}

/* Decode: the query heads of one key/value head together, so the cache is read once per group. */
static void attention_group_task(void *arg, int g, int n_kv_heads) {
    const head_work *w = arg;
    const size_t first = (size_t)g * w->group * w->hd, T = (size_t)w->n_past + 1;
    attention_shared_kv(w->s->att + first, w->s->q + first, w->group, w->k0 + (size_t)g * w->hd, w->v0 + (size_t)g * w->hd,
                        w->kd, (int)T, w->hd, w->scale, w->s->scores + (size_t)g * w->group * T);
    (void)n_kv_heads;
}

/* Self-attention of n new tokens; their k and v (after norm and rope) join the cache first. */
static void attention(modes_ctx *c, int l, const text_layer *L, scratch *s, int n, float *out) {
    const text_config *cf = &c->model->cfg.text;
    const int hd = cf->head_dim, nh = cf->n_heads, nkv = cf->n_kv_heads, kd = nkv * hd, qd = nh * hd;
    const matmul_job qkv[3] = {{s->q, s->xn, n, &L->q, NULL}, {s->k, s->xn, n, &L->k, NULL}, {s->v, s->xn, n, &L->v, NULL}};
    matmul_batch_mt(c->pool, qkv, 3); /* one parallel region: each region ends with threads waiting */
    float *kc = c->k_cache + ((size_t)l * c->n_ctx + c->n_past) * kd;
    float *vc = c->v_cache + ((size_t)l * c->n_ctx + c->n_past) * kd;
    for (int i = 0; i < n; i++) {
        const float *cs = s->cs + (size_t)i * hd;
        for (int h = 0; h < nh; h++) {
            float *qh = s->q + (size_t)i * qd + (size_t)h * hd;
            rmsnorm(qh, qh, L->q_norm, hd, cf->rms_eps);
            rope_apply(qh, hd, cs);
        }
        for (int h = 0; h < nkv; h++) {
            float *kh = s->k + (size_t)i * kd + (size_t)h * hd;
            rmsnorm(kh, kh, L->k_norm, hd, cf->rms_eps);
            rope_apply(kh, hd, cs);
        }
    }
    memcpy(kc, s->k, (size_t)n * kd * sizeof(float));
    memcpy(vc, s->v, (size_t)n * kd * sizeof(float));
    const float *k0 = c->k_cache + (size_t)l * c->n_ctx * kd, *v0 = c->v_cache + (size_t)l * c->n_ctx * kd;
    head_work hw = {.s = s, .k0 = k0, .v0 = v0, .n = n, .n_past = c->n_past, .hd = hd, .qd = qd, .kd = kd,
                    .group = nh / nkv, .scale = 1.0f / sqrtf((float)hd)};
    if (n == 1) pool_run(c->pool, attention_group_task, &hw, nkv);
    else pool_run(c->pool, attention_task, &hw, nh);
    matmul_mt(c->pool, out, s->att, n, &L->o, NULL);
}

static int feed_forward(modes_ctx *c, int l, const text_layer *L, scratch *s, int n, float *out, tapper *tp,
                        modes_error *err) {
    const text_config *cf = &c->model->cfg.text;
    if (!L->is_moe) {
        const int I = cf->intermediate;
        float *g = malloc((size_t)n * I * sizeof *g), *u = malloc((size_t)n * I * sizeof *u);
        if (!g || !u) {
            free(g);
            free(u);
            return modes_fail(err, MODES_E_INTERNAL, "out of memory in layer %d", l);
        }
        matmul_mt(c->pool, g, s->xn, n, &L->mlp.gate, NULL);
        matmul_mt(c->pool, u, s->xn, n, &L->mlp.up, NULL);
        silu_mul(g, g, u, n * I);
        matmul_mt(c->pool, out, g, n, &L->mlp.down, NULL);
        free(g);
        free(u);
        return 0;
    }
    const moe_layer *moe = &L->moe;
    moe_route(moe, s->xn, n, s->router_logits, s->topk_idx, s->topk_w, c->pool);
    tap_f(tp, "text.layer%d.router_logits", l, s->router_logits, 2, n, moe->n_experts, 0);
    if (c->tap) {
        snprintf(tp->name, sizeof tp->name, "text.layer%d.router_topk_idx", l);
        const int64_t shape[2] = {n, moe->top_k};
        c->tap(c->tap_user, tp->name, 1, s->topk_idx, 2, shape);
    }
    tap_f(tp, "text.layer%d.router_topk_weights", l, s->topk_w, 2, n, moe->top_k, 0);
    /* The skip decision sits between routing and dispatch (docs/modes-method.md section 3). */
    const int ml = c->model->moe_index[l];
    skip_decide(c->policy, ml, moe->top_k, s->cls, n, s->topk_idx, s->topk_w);
    skip_stats_add(&c->stats, ml, n == 1, s->cls, n, moe->top_k, s->topk_idx);
    if (c->tap && c->policy) {
        snprintf(tp->name, sizeof tp->name, "text.layer%d.kept_idx", l);
        const int64_t shape[2] = {n, moe->top_k};
        c->tap(c->tap_user, tp->name, 1, s->topk_idx, 2, shape);
    }
    moe_counters mc = {0};
    int rc = moe_dispatch(moe, s->xn, n, s->topk_idx, s->topk_w, out, &mc, c->pool, err);
    const modes_policy *p = c->policy;
    if (p && p->method == SKIP_REMOVE_LAYER && p->remove_identity && p->remove_layer == ml)
        for (int i = 0; i < n; i++) /* the authors' removal: the routed output becomes the MLP input */
            if (s->cls[i] == p->remove_class || (p->remove_class < 0 && s->cls[i] != MODES_TOKEN_SPECIAL))
                for (int d = 0; d < moe->hidden; d++) out[(size_t)i * moe->hidden + d] += s->xn[(size_t)i * moe->hidden + d];
    c->stats.expert_rows += mc.rows;
    c->stats.expert_bytes += mc.bytes;
    c->stats.expert_activations += mc.activations;
    return rc;
}

/* Image rows take the vision features (docs/qwen3-vl-moe.md section 5); `add` adds instead of replacing
 * (DeepStack, docs/qwen3-vl-moe.md section 7.3). */
static void scatter_vision(const modes_model *m, const text_batch *b, const float *feat, float *x, int add) {
    const int H = m->cfg.text.hidden;
    int r = 0;
    for (int i = 0; i < b->n && r < b->n_vision; i++) {
        if (b->ids[i] != m->cfg.image_token_id) continue;
        float *xi = x + (size_t)i * H;
        const float *f = feat + (size_t)r++ * H;
        if (add)
            for (int d = 0; d < H; d++) xi[d] += f[d];
        else
            memcpy(xi, f, (size_t)H * sizeof *xi);
    }
}

int qwen3vl_text_forward(modes_ctx *c, const text_batch *b, float *logits, int n_logits, modes_error *err) {
    const modes_model *m = c->model;
    const int32_t *ids = b->ids, *pos = b->pos;
    const int n = b->n;
    const text_config *cf = &m->cfg.text;
    const int H = cf->hidden;
    scratch s;
    if (scratch_alloc(&s, cf, n, c->n_past + n)) {
        scratch_free(&s);
        return modes_fail(err, MODES_E_INTERNAL, "out of memory for a batch of %d tokens", n);
    }
    tapper tp = {.c = c, .n = n};
    for (int i = 0; i < n; i++) s.cls[i] = m->token_class[ids[i]];
    if (b->start_layer > 0) {
        memcpy(s.x, b->start_x, (size_t)n * H * sizeof *s.x);
    } else {
        for (int i = 0; i < n; i++) widen(s.x + (size_t)i * H, m->embed.data, m->embed.dtype, (size_t)ids[i] * H, (size_t)H);
        tap_f(&tp, "text.embed_tokens_out", 0, s.x, 3, 1, n, H);
        if (b->vision) scatter_vision(m, b, b->vision, s.x, 0);
    }
    mrope_tables(cf, pos, n, s.cs);
    tap_rope(&tp, s.cs, n, cf->head_dim);
    int rc = 0;
    for (int l = b->start_layer; l < cf->n_layers && !rc; l++) {
        const text_layer *L = &m->layers[l];
        tap_f(&tp, "text.layer%d.in", l, s.x, 3, 1, n, H);
        if (b->capture) memcpy(b->capture[l], s.x, (size_t)n * H * sizeof *s.x);
        for (int i = 0; i < n; i++) rmsnorm(s.xn + (size_t)i * H, s.x + (size_t)i * H, L->attn_norm, H, cf->rms_eps);
        tap_f(&tp, "text.layer%d.attn_norm_out", l, s.xn, 3, 1, n, H);
        attention(c, l, L, &s, n, s.tmp);
        tap_f(&tp, "text.layer%d.attn_out", l, s.tmp, 3, 1, n, H);
        for (size_t i = 0; i < (size_t)n * H; i++) s.x[i] += s.tmp[i];
        for (int i = 0; i < n; i++) rmsnorm(s.xn + (size_t)i * H, s.x + (size_t)i * H, L->ffn_norm, H, cf->rms_eps);
        tap_f(&tp, "text.layer%d.ffn_norm_out", l, s.xn, 3, 1, n, H);
        rc = feed_forward(c, l, L, &s, n, s.tmp, &tp, err);
        if (rc) break;
        tap_f(&tp, "text.layer%d.moe_out", l, s.tmp, 3, 1, n, H);
        for (size_t i = 0; i < (size_t)n * H; i++) s.x[i] += s.tmp[i];
        tap_f(&tp, "text.layer%d.out", l, s.x, 3, 1, n, H);
        if (l < b->n_deepstack && b->vision) scatter_vision(m, b, b->deepstack[l], s.x, 1);
    }
    if (!rc) {
        const int first = n - n_logits;
        for (int i = first; i < n; i++) rmsnorm(s.xn + (size_t)i * H, s.x + (size_t)i * H, m->final_norm, H, cf->rms_eps);
        tap_f(&tp, "text.final_norm_out", 0, s.xn, 3, 1, n, H);
        if (n_logits > 0) matmul_mt(c->pool, logits, s.xn + (size_t)first * H, n_logits, &m->lm_head, NULL);
        if (n_logits == n) tap_f(&tp, "logits", 0, logits, 3, 1, n, cf->vocab);
    }
    scratch_free(&s);
    return rc;
}
