/* Weight views and the kernels the model files call. Kernels know nothing about models: they see
 * row-major matrices of a storage dtype and fp32 activations. Weights are widened to fp32 inside the
 * kernels and accumulated in fp32 (DESIGN.md section 4, Numerics). */
#ifndef MODES_TENSOR_TENSOR_H
#define MODES_TENSOR_TENSOR_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef enum { DT_F32, DT_F16, DT_BF16 } modes_dtype;

static inline size_t dtype_size(modes_dtype t) { return t == DT_F32 ? 4 : 2; }

static inline float bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline uint16_t f32_to_bf16(float f) { /* round to nearest even, NaN kept quiet */
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

float f16_to_f32(uint16_t h);

/* A row-major matrix [rows, cols] of weights, y = W x. `data` may point into a mapped checkpoint. */
typedef struct {
    modes_dtype dtype;
    const void *data;
    int rows, cols;
} wmat;

static inline const void *wmat_row(const wmat *w, int r) {
    return (const char *)w->data + (size_t)r * (size_t)w->cols * dtype_size(w->dtype);
}

/* Widens n weights of dtype t starting at element offset `first` into out. */
void widen(float *out, const void *src, modes_dtype t, size_t first, size_t n);

/* y[i, r] = sum_c x[i, c] * W[r, c] (+ bias[r]) for i < n: y = x W^T, as a PyTorch Linear. */
void matmul(float *y, const float *x, int n, const wmat *w, const float *bias);

/* RMSNorm over the last dim: y = w * (x / sqrt(mean(x^2) + eps)); y may alias x. */
void rmsnorm(float *y, const float *x, const float *w, int dim, float eps);

/* LayerNorm over the last dim with affine weight and bias: y = (x - mean) / sqrt(var + eps) * w + b. */
void layernorm(float *y, const float *x, const float *w, const float *b, int dim, float eps);

void softmax_inplace(float *x, int n);
void gelu_tanh(float *x, size_t n); /* 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) */
void gelu_erf(float *x, size_t n);  /* 0.5 x (1 + erf(x / sqrt(2))) */
void silu_mul(float *out, const float *gate, const float *up, int n); /* out = silu(gate) * up */

/* Rotary embedding, rotate-half convention: dims d and d + hd/2 form a pair with angle index d.
 * cs holds cos[hd/2] then sin[hd/2] for one position. */
void rope_apply(float *v, int hd, const float *cs);

/* Attention of n query rows for one head: q [n, hd] (stride q_stride), keys/values at
 * k + t * kv_stride, out [n, hd] (stride o_stride); scores is scratch of n_past + n floats.
 * Causal: query i sees keys 0 .. n_past + i (the decoder, with its cache). Otherwise every query
 * sees all n_past + n keys (the vision tower, within one image). */
void attention_head(float *out, int o_stride, const float *q, int q_stride, const float *k, const float *v,
                    int kv_stride, int n, int n_past, int hd, float scale, int causal, float *scores);

#endif
