/* The Qwen3 decoder shared by the Qwen3 families (decoder.h; docs/qwen3-vl-moe.md sections 1 and 7). */
#include "models/decoder.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/mem.h"

/* ---- Weight binding ------------------------------------------------------------------------ */

/* [E, A, B] -> [E, B, A] into owned memory: the released x·W expert layout becomes rows for GEMV. */
static int transpose_experts(modes_model *m, const st_tensor *t, modes_dtype dt, const void **out, modes_error *err) {
    unsigned char *dst = mem_alloc_streamed(t->nbytes);
    if (!dst) return modes_fail(err, MODES_E_INTERNAL, "out of memory transposing '%s'", t->name);
    int rc = ws_own(&m->w, dst, err);
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
    const st_tensor *gu = st_find(m->w.st, gname), *dn = st_find(m->w.st, dname);
    if (!gu || !dn) return modes_fail(err, MODES_E_INPUT, "%s: tensor '%s' is missing", m->dir, gu ? dname : gname);
    const int64_t released_gu[3] = {E, H, 2 * I}, v5_gu[3] = {E, 2 * I, H};
    const int64_t released_dn[3] = {E, I, H}, v5_dn[3] = {E, H, I};
    modes_error e1;
    const st_tensor *t;
    /* When H == 2I the shapes cannot tell; the released layout is assumed (docs/qwen3-vl-moe.md section 1). */
    int released = find_tensor(&m->w, gname, 3, released_gu, &t, &e1) == 0;
    int rc = released ? 0 : find_tensor(&m->w, gname, 3, v5_gu, &t, err);
    if (rc) return rc;
    const st_tensor *td;
    if ((rc = find_tensor(&m->w, dname, 3, released ? released_dn : v5_dn, &td, err))) return rc;
    const modes_dtype dg = weight_dtype(t), dd = weight_dtype(td);
    const void *gdata, *ddata;
    if (released && !m->w.check_only) {
        if ((rc = transpose_experts(m, t, dg, &gdata, err)) || (rc = transpose_experts(m, td, dd, &ddata, err))) return rc;
    } else if ((rc = tensor_data(&m->w, t, &gdata, err)) || (rc = tensor_data(&m->w, td, &ddata, err))) {
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
        rc = bind_matrix(&m->w, name, moe->inter, moe->hidden, &x->gate, err);
        snprintf(name, sizeof name, "%sexperts.%d.up_proj.weight", pfx, e);
        if (!rc) rc = bind_matrix(&m->w, name, moe->inter, moe->hidden, &x->up, err);
        snprintf(name, sizeof name, "%sexperts.%d.down_proj.weight", pfx, e);
        if (!rc) rc = bind_matrix(&m->w, name, moe->hidden, moe->inter, &x->down, err);
    }
    return rc;
}

static int bind_layer(modes_model *m, const char *prefix, int l, decoder_layer *L, modes_error *err) {
    const text_config *c = &m->cfg.text;
    const int H = c->hidden, hd = c->head_dim;
    char p[128], name[256];
    snprintf(p, sizeof p, "%slayers.%d.", prefix, l);
#define NAME(s) (snprintf(name, sizeof name, "%s%s", p, s), name)
    int rc;
    if ((rc = bind_vector(&m->w, NAME("input_layernorm.weight"), H, &L->attn_norm, err)) ||
        (rc = bind_vector(&m->w, NAME("post_attention_layernorm.weight"), H, &L->ffn_norm, err)) ||
        (rc = bind_vector(&m->w, NAME("self_attn.q_norm.weight"), hd, &L->q_norm, err)) ||
        (rc = bind_vector(&m->w, NAME("self_attn.k_norm.weight"), hd, &L->k_norm, err)) ||
        (rc = bind_matrix(&m->w, NAME("self_attn.q_proj.weight"), c->n_heads * hd, H, &L->q, err)) ||
        (rc = bind_matrix(&m->w, NAME("self_attn.k_proj.weight"), c->n_kv_heads * hd, H, &L->k, err)) ||
        (rc = bind_matrix(&m->w, NAME("self_attn.v_proj.weight"), c->n_kv_heads * hd, H, &L->v, err)) ||
        (rc = bind_matrix(&m->w, NAME("self_attn.o_proj.weight"), H, c->n_heads * hd, &L->o, err)))
        return rc;
    L->is_moe = c->is_moe[l];
    if (!L->is_moe) {
        if ((rc = bind_matrix(&m->w, NAME("mlp.gate_proj.weight"), c->intermediate, H, &L->mlp.gate, err)) ||
            (rc = bind_matrix(&m->w, NAME("mlp.up_proj.weight"), c->intermediate, H, &L->mlp.up, err)))
            return rc;
        return bind_matrix(&m->w, NAME("mlp.down_proj.weight"), H, c->intermediate, &L->mlp.down, err);
    }
    moe_layer *moe = &L->moe;
    *moe = (moe_layer){.n_experts = c->n_experts, .top_k = c->top_k, .hidden = H, .inter = c->moe_intermediate,
                       .rule = {.scoring = MOE_SCORE_SOFTMAX, .norm_topk = c->norm_topk_prob, .routed_scale = 1.0f}};
    if ((rc = bind_matrix(&m->w, NAME("mlp.gate.weight"), c->n_experts, H, &moe->router, err))) return rc;
    moe->experts = calloc((size_t)c->n_experts, sizeof *moe->experts);
    if (!moe->experts) return modes_fail(err, MODES_E_INTERNAL, "out of memory");
    if ((rc = ws_own(&m->w, moe->experts, err))) return rc;
    snprintf(p, sizeof p, "%slayers.%d.mlp.", prefix, l);
    snprintf(name, sizeof name, "%sexperts.0.gate_proj.weight", p);
    return st_find(m->w.st, name) ? bind_split_experts(m, p, moe, err) : bind_fused_experts(m, p, moe, err);
#undef NAME
}

int decoder_bind(modes_model *m, const char *prefix, const char *lm_head, decoder *d, modes_error *err) {
    const text_config *c = &m->cfg.text;
    char name[256];
    int rc;
    d->cfg = c;
    snprintf(name, sizeof name, "%sembed_tokens.weight", prefix);
    if ((rc = bind_matrix(&m->w, name, c->vocab, c->hidden, &d->embed, err))) return rc;
    snprintf(name, sizeof name, "%snorm.weight", prefix);
    if ((rc = bind_vector(&m->w, name, c->hidden, &d->final_norm, err))) return rc;
    if (c->tie_embeddings && !st_find(m->w.st, lm_head)) d->lm_head = d->embed;
    else if ((rc = bind_matrix(&m->w, lm_head, c->vocab, c->hidden, &d->lm_head, err))) return rc;
    if ((rc = model_set_layers(m, c->n_layers, c->is_moe, err))) return rc;
    if (!(d->layers = calloc((size_t)c->n_layers, sizeof *d->layers))) return modes_fail(err, MODES_E_INTERNAL, "out of memory");
    for (int l = 0; l < c->n_layers; l++)
        if ((rc = bind_layer(m, prefix, l, &d->layers[l], err))) return rc;
    return 0;
}

void decoder_free(decoder *d) {
    free(d->layers);
    d->layers = NULL;
}
/* ---- Forward ------------------------------------------------------------------------------- */

void decoder_rope_1d(const text_config *c, const int32_t *pos, int n, float *cs) {
    const int half = c->head_dim / 2;
    for (int i = 0; i < n; i++) {
        float *cos_ = cs + (size_t)i * c->head_dim, *sin_ = cos_ + half;
        for (int j = 0; j < half; j++) {
            const float inv_freq = 1.0f / powf((float)c->rope_theta, (float)(2 * j) / (float)c->head_dim);
            const float theta = (float)pos[i] * inv_freq;
            cos_[j] = cosf(theta);
            sin_[j] = sinf(theta);
        }
    }
}

typedef struct {
    modes_ctx *c;
    int layer;
    char name[96];
} tapper;

static void tap_f(tapper *t, const char *fmt, int layer, const float *data, int ndim, int64_t d0, int64_t d1,
                  int64_t d2) {
    if (!t->c->tap) return;
    snprintf(t->name, sizeof t->name, fmt, layer);
    const int64_t shape[3] = {d0, d1, d2};
    t->c->tap(t->c->tap_user, t->name, 0, data, ndim, shape);
}

/* The MoE block's intermediates, under the layer's name. */
static void tap_moe(void *user, const char *what, int is_int, const void *data, int rows, int cols) {
    tapper *t = user;
    snprintf(t->name, sizeof t->name, "text.layer%d.%s", t->layer, what);
    const int64_t shape[2] = {rows, cols};
    t->c->tap(t->c->tap_user, t->name, is_int, data, 2, shape);
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

/* One pass's activations, from the context's arena. */
typedef struct {
    float *x, *xn, *q, *k, *v, *att, *tmp, *scores;
    uint8_t *cls;
} scratch;

static int scratch_take(scratch *s, arena *a, const text_config *c, int n, int T) {
    const size_t H = (size_t)c->hidden, qd = (size_t)c->n_heads * c->head_dim, kd = (size_t)c->n_kv_heads * c->head_dim;
    s->x = arena_array(a, n * H, sizeof(float));
    s->xn = arena_array(a, n * H, sizeof(float));
    s->tmp = arena_array(a, n * H, sizeof(float));
    s->q = arena_array(a, n * qd, sizeof(float));
    s->att = arena_array(a, n * qd, sizeof(float));
    s->k = arena_array(a, n * kd, sizeof(float));
    s->v = arena_array(a, n * kd, sizeof(float));
    s->scores = arena_array(a, (size_t)T * c->n_heads, sizeof(float));
    s->cls = arena_alloc(a, (size_t)n);
    return s->cls && s->x && s->xn && s->tmp && s->q && s->att && s->k && s->v && s->scores ? 0 : -1;
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
static void attention(modes_ctx *c, const text_config *cf, int l, const decoder_layer *L, scratch *s, const float *rope,
                      int n, float *out) {
    const int hd = cf->head_dim, nh = cf->n_heads, nkv = cf->n_kv_heads, kd = nkv * hd, qd = nh * hd;
    const matmul_job qkv[3] = {{s->q, s->xn, n, &L->q, NULL}, {s->k, s->xn, n, &L->k, NULL}, {s->v, s->xn, n, &L->v, NULL}};
    matmul_batch_mt(c->pool, qkv, 3); /* one parallel region: each region ends with threads waiting */
    float *kc = c->k_cache + ((size_t)l * c->n_ctx + c->n_past) * kd;
    float *vc = c->v_cache + ((size_t)l * c->n_ctx + c->n_past) * kd;
    for (int i = 0; i < n; i++) {
        const float *cs = rope + (size_t)i * hd;
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

static int feed_forward(modes_ctx *c, int l, const decoder_layer *L, scratch *s, int n, float *out, tapper *tp,
                        modes_error *err) {
    if (!L->is_moe) return mlp_forward(&L->mlp, s->xn, n, out, c->pool, &c->scratch, err);
    tp->layer = l;
    const moe_env env = {.layer = c->model->moe_index[l], .cls = s->cls, .policy = c->policy, .stats = &c->stats,
                         .observer = c->observer, .tap = c->tap ? tap_moe : NULL, .tap_user = tp, .pool = c->pool,
                         .scratch = &c->scratch};
    return moe_forward(&L->moe, &env, s->xn, n, out, err);
}

int decoder_forward(modes_ctx *c, const decoder *d, const decoder_input *in, float *logits, int n_logits,
                    modes_error *err) {
    const modes_model *m = c->model;
    const int32_t *ids = in->ids;
    const int n = in->n;
    const text_config *cf = d->cfg;
    const int H = cf->hidden;
    const size_t mark = arena_mark(&c->scratch);
    scratch s;
    if (scratch_take(&s, &c->scratch, cf, n, c->n_past + n)) {
        arena_release(&c->scratch, mark);
        return modes_fail(err, MODES_E_INTERNAL, "out of memory for a batch of %d tokens", n);
    }
    tapper tp = {.c = c};
    for (int i = 0; i < n; i++) s.cls[i] = m->token_class[ids[i]];
    if (in->start_layer > 0) {
        memcpy(s.x, in->start_x, (size_t)n * H * sizeof *s.x);
    } else {
        for (int i = 0; i < n; i++) widen(s.x + (size_t)i * H, d->embed.data, d->embed.dtype, (size_t)ids[i] * H, (size_t)H);
        tap_f(&tp, "text.embed_tokens_out", 0, s.x, 3, 1, n, H);
        if (in->inject) in->inject(in->inject_user, -1, ids, n, s.x);
    }
    tap_rope(&tp, in->rope, n, cf->head_dim);
    int rc = 0;
    for (int l = in->start_layer; l < cf->n_layers && !rc; l++) {
        const decoder_layer *L = &d->layers[l];
        tap_f(&tp, "text.layer%d.in", l, s.x, 3, 1, n, H);
        if (in->capture) memcpy(in->capture[l], s.x, (size_t)n * H * sizeof *s.x);
        for (int i = 0; i < n; i++) rmsnorm(s.xn + (size_t)i * H, s.x + (size_t)i * H, L->attn_norm, H, cf->rms_eps);
        tap_f(&tp, "text.layer%d.attn_norm_out", l, s.xn, 3, 1, n, H);
        attention(c, cf, l, L, &s, in->rope, n, s.tmp);
        tap_f(&tp, "text.layer%d.attn_out", l, s.tmp, 3, 1, n, H);
        for (size_t i = 0; i < (size_t)n * H; i++) s.x[i] += s.tmp[i];
        for (int i = 0; i < n; i++) rmsnorm(s.xn + (size_t)i * H, s.x + (size_t)i * H, L->ffn_norm, H, cf->rms_eps);
        tap_f(&tp, "text.layer%d.ffn_norm_out", l, s.xn, 3, 1, n, H);
        rc = feed_forward(c, l, L, &s, n, s.tmp, &tp, err);
        if (rc) break;
        tap_f(&tp, "text.layer%d.moe_out", l, s.tmp, 3, 1, n, H);
        for (size_t i = 0; i < (size_t)n * H; i++) s.x[i] += s.tmp[i];
        tap_f(&tp, "text.layer%d.out", l, s.x, 3, 1, n, H);
        if (in->inject) in->inject(in->inject_user, l, ids, n, s.x);
    }
    if (!rc) {
        const int first = n - n_logits;
        for (int i = first; i < n; i++) rmsnorm(s.xn + (size_t)i * H, s.x + (size_t)i * H, d->final_norm, H, cf->rms_eps);
        tap_f(&tp, "text.final_norm_out", 0, s.xn, 3, 1, n, H);
        if (n_logits > 0) matmul_mt(c->pool, logits, s.xn + (size_t)first * H, n_logits, &d->lm_head, NULL);
        if (n_logits == n) tap_f(&tp, "logits", 0, logits, 3, 1, n, cf->vocab);
    }
    arena_release(&c->scratch, mark);
    return rc;
}

/* ---- Costs --------------------------------------------------------------------------------- */

void decoder_kv_width(const text_config *c, int *k, int *v) { *k = *v = c->n_kv_heads * c->head_dim; }

static double wbytes(const wmat *w) { return (double)wmat_bytes(w); }
static double wparams(const wmat *w) { return (double)w->rows * w->cols; }

void decoder_costs(const decoder *d, model_costs *o) {
    const text_config *c = d->cfg;
    *o = (model_costs){.fixed_bytes = wbytes(&d->lm_head), .fixed_params = wparams(&d->lm_head),
                       .head_params = wparams(&d->lm_head)};
    for (int l = 0; l < c->n_layers; l++) {
        const decoder_layer *L = &d->layers[l];
        const wmat *ws[] = {&L->q, &L->k, &L->v, &L->o, L->is_moe ? &L->moe.router : &L->mlp.gate,
                            L->is_moe ? NULL : &L->mlp.up, L->is_moe ? NULL : &L->mlp.down};
        for (int i = 0; i < 7; i++)
            if (ws[i]) o->fixed_bytes += wbytes(ws[i]), o->fixed_params += wparams(ws[i]);
    }
    o->kv_bytes_per_token = 2.0 * c->n_kv_heads * c->head_dim * sizeof(float) * c->n_layers;
    o->attn_macs_per_pair = 2.0 * c->head_dim * c->n_heads * c->n_layers;
    o->expert_macs_per_row = 3.0 * c->hidden * c->moe_intermediate;
}
