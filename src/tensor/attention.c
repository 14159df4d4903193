#include <math.h>

#include "tensor/simd.h"

/* One query row at a time keeps memory linear in the sequence (scores holds one row). */
void attention_head_scalar(float *out, int o_stride, const float *q, int q_stride, const float *k, const float *v,
                           int kv_stride, int n, int n_past, int hd, float scale, int causal, float *scores) {
    for (int i = 0; i < n; i++) {
        const float *qi = q + (size_t)i * q_stride;
        const int T = causal ? n_past + i + 1 : n_past + n;
        float m = -INFINITY;
        for (int t = 0; t < T; t++) {
            const float *kt = k + (size_t)t * kv_stride;
            float s = 0;
            for (int d = 0; d < hd; d++) s += qi[d] * kt[d];
            s *= scale;
            scores[t] = s;
            m = s > m ? s : m;
        }
        double sum = 0;
        for (int t = 0; t < T; t++) {
            scores[t] = expf(scores[t] - m);
            sum += scores[t];
        }
        const float inv = (float)(1.0 / sum);
        float *oi = out + (size_t)i * o_stride;
        for (int d = 0; d < hd; d++) oi[d] = 0;
        for (int t = 0; t < T; t++) {
            const float p = scores[t] * inv;
            const float *vt = v + (size_t)t * kv_stride;
            for (int d = 0; d < hd; d++) oi[d] += p * vt[d];
        }
    }
}

void attention_head(float *out, int o_stride, const float *q, int q_stride, const float *k, const float *v,
                    int kv_stride, int n, int n_past, int hd, float scale, int causal, float *scores) {
    kernels_default()->attention_head(out, o_stride, q, q_stride, k, v, kv_stride, n, n_past, hd, scale, causal, scores);
}

void attention_shared_kv(float *out, const float *q, int group, const float *k, const float *v, int kv_stride, int T,
                         int hd, float scale, float *scores) {
    /* The heads as `group` rows that are not causal: each sees n_past + n keys, which is T when
     * n_past is T - group (negative for the first tokens, which the non-causal kernels allow). */
    kernels_default()->attention_head(out, hd, q, hd, k, v, kv_stride, group, T - group, hd, scale, 0, scores);
}
