/* Element-wise and row-wise kernels: norms, softmax, activations, rotary embedding. The scalar
 * versions here are the reference the SIMD versions (ops_avx2.c) are tested against; the public
 * names dispatch to the default kernel set. */
#include <math.h>

#include "tensor/simd.h"

void rmsnorm_scalar(float *y, const float *x, const float *w, int dim, float eps) {
    double ss = 0; /* the mean of squares in double costs nothing here and removes one error source */
    for (int i = 0; i < dim; i++) ss += (double)x[i] * x[i];
    const float inv = (float)(1.0 / sqrt(ss / dim + eps));
    for (int i = 0; i < dim; i++) y[i] = w[i] * (x[i] * inv);
}

void softmax_scalar(float *x, int n) {
    float m = -INFINITY;
    for (int i = 0; i < n; i++) m = x[i] > m ? x[i] : m;
    double s = 0;
    for (int i = 0; i < n; i++) {
        x[i] = expf(x[i] - m);
        s += x[i];
    }
    const float inv = (float)(1.0 / s);
    for (int i = 0; i < n; i++) x[i] *= inv;
}

void silu_mul_scalar(float *out, const float *gate, const float *up, int n) {
    for (int i = 0; i < n; i++) {
        const float g = gate[i];
        out[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

void rope_apply_scalar(float *v, int hd, const float *cs) {
    const int half = hd / 2;
    const float *c = cs, *s = cs + half;
    for (int d = 0; d < half; d++) {
        const float a = v[d], b = v[d + half];
        v[d] = a * c[d] - b * s[d];
        v[d + half] = b * c[d] + a * s[d];
    }
}

void layernorm_scalar(float *y, const float *x, const float *w, const float *b, int dim, float eps) {
    double mean = 0, var = 0;
    for (int i = 0; i < dim; i++) mean += x[i];
    mean /= dim;
    for (int i = 0; i < dim; i++) var += ((double)x[i] - mean) * ((double)x[i] - mean);
    const float inv = (float)(1.0 / sqrt(var / dim + eps)), mu = (float)mean;
    for (int i = 0; i < dim; i++) y[i] = (x[i] - mu) * inv * w[i] + b[i];
}

void gelu_tanh_scalar(float *x, size_t n) {
    const float k = 0.7978845608028654f; /* sqrt(2 / pi) */
    for (size_t i = 0; i < n; i++) {
        const float v = x[i];
        x[i] = 0.5f * v * (1.0f + tanhf(k * (v + 0.044715f * v * v * v)));
    }
}

void gelu_erf_scalar(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.7071067811865476f));
}

void rmsnorm(float *y, const float *x, const float *w, int dim, float eps) { kernels_default()->rmsnorm(y, x, w, dim, eps); }

void layernorm(float *y, const float *x, const float *w, const float *b, int dim, float eps) {
    kernels_default()->layernorm(y, x, w, b, dim, eps);
}

void softmax_inplace(float *x, int n) { kernels_default()->softmax(x, n); }
void silu_mul(float *out, const float *gate, const float *up, int n) { kernels_default()->silu_mul(out, gate, up, n); }
void gelu_tanh(float *x, size_t n) { kernels_default()->gelu_tanh(x, n); }
void gelu_erf(float *x, size_t n) { kernels_default()->gelu_erf(x, n); }
void rope_apply(float *v, int hd, const float *cs) { kernels_default()->rope_apply(v, hd, cs); }
