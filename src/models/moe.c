#include "models/moe.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"

void moe_route(const moe_layer *m, const float *x, int n, float *logits, int32_t *topk_idx, float *topk_w) {
    const int E = m->n_experts, K = m->top_k;
    matmul(logits, x, n, &m->router, NULL);
    float *p = malloc((size_t)E * sizeof *p);
    if (!p) return; /* callers allocate far more than this; an E-float failure cannot happen in practice */
    for (int i = 0; i < n; i++) {
        memcpy(p, logits + (size_t)i * E, (size_t)E * sizeof *p);
        softmax_inplace(p, E);
        int32_t *idx = topk_idx + (size_t)i * K;
        float *w = topk_w + (size_t)i * K;
        double sum = 0;
        for (int k = 0; k < K; k++) { /* K is small (8): selection beats a sort */
            int best = -1;
            for (int e = 0; e < E; e++) {
                int taken = 0;
                for (int j = 0; j < k; j++) taken |= idx[j] == e;
                if (!taken && (best < 0 || p[e] > p[best])) best = e;
            }
            idx[k] = best;
            w[k] = p[best];
            sum += p[best];
        }
        for (int k = 0; k < K; k++) w[k] = (float)(w[k] / sum);
    }
    free(p);
}

static void run_expert(const expert_w *ew, const float *x, int m, int H, int I, float *g, float *u, float *y) {
    matmul(g, x, m, &ew->gate, NULL);
    matmul(u, x, m, &ew->up, NULL);
    silu_mul(g, g, u, m * I);
    matmul(y, g, m, &ew->down, NULL);
    (void)H;
}

int moe_dispatch(const moe_layer *m, const float *x, int n, const int32_t *topk_idx, const float *topk_w,
                 float *out, moe_counters *counters, modes_error *err) {
    const int E = m->n_experts, K = m->top_k, H = m->hidden, I = m->inter;
    memset(out, 0, (size_t)n * H * sizeof *out);
    /* Counting sort of kept (token, slot) pairs by expert. */
    int *start = calloc((size_t)E + 1, sizeof *start);
    int *pairs = malloc((size_t)n * K * sizeof *pairs);
    if (!start || !pairs) {
        free(start);
        free(pairs);
        return modes_fail(err, MODES_E_INTERNAL, "out of memory in the MoE block");
    }
    for (int s = 0; s < n * K; s++)
        if (topk_idx[s] != MOE_SKIPPED) start[topk_idx[s] + 1]++;
    int max_m = 0;
    for (int e = 0; e < E; e++) {
        if (start[e + 1] > max_m) max_m = start[e + 1];
        start[e + 1] += start[e];
    }
    int *fill = malloc((size_t)E * sizeof *fill);
    float *xs = malloc((size_t)max_m * H * sizeof *xs), *ys = malloc((size_t)max_m * H * sizeof *ys);
    float *g = malloc((size_t)max_m * I * sizeof *g), *u = malloc((size_t)max_m * I * sizeof *u);
    int rc = 0;
    if (!fill || (max_m && (!xs || !ys || !g || !u))) {
        rc = modes_fail(err, MODES_E_INTERNAL, "out of memory in the MoE block");
        goto done;
    }
    memcpy(fill, start, (size_t)E * sizeof *fill);
    for (int s = 0; s < n * K; s++)
        if (topk_idx[s] != MOE_SKIPPED) pairs[fill[topk_idx[s]]++] = s;
    for (int e = 0; e < E; e++) {
        const int cnt = start[e + 1] - start[e];
        if (!cnt) continue; /* an expert no token kept is never touched */
        const int *ps = pairs + start[e];
        if (counters) {
            const expert_w *ew = &m->experts[e];
            counters->rows += (uint64_t)cnt;
            counters->activations++;
            counters->bytes += (uint64_t)(2 * I * H) * dtype_size(ew->gate.dtype) + (uint64_t)(H * I) * dtype_size(ew->down.dtype);
        }
        for (int r = 0; r < cnt; r++) memcpy(xs + (size_t)r * H, x + (size_t)(ps[r] / K) * H, (size_t)H * sizeof *xs);
        run_expert(&m->experts[e], xs, cnt, H, I, g, u, ys);
        for (int r = 0; r < cnt; r++) {
            float *o = out + (size_t)(ps[r] / K) * H;
            const float w = topk_w[ps[r]];
            const float *y = ys + (size_t)r * H;
            for (int d = 0; d < H; d++) o[d] += w * y[d];
        }
    }
done:
    free(start);
    free(pairs);
    free(fill);
    free(xs);
    free(ys);
    free(g);
    free(u);
    return rc;
}
