/* Scalar reference matrix products. Mapped checkpoint data is only 2-byte aligned in general, so
 * rows are read with memcpy-free typed loads only after checking alignment at load time (the model
 * loader copies misaligned tensors). */
#include "tensor/tensor.h"

static float dot_f32(const float *x, const float *w, int n) {
    float acc[4] = {0, 0, 0, 0};
    int c = 0;
    for (; c + 4 <= n; c += 4)
        for (int j = 0; j < 4; j++) acc[j] += x[c + j] * w[c + j];
    float s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for (; c < n; c++) s += x[c] * w[c];
    return s;
}

static float dot_bf16(const float *x, const uint16_t *w, int n) {
    float acc[4] = {0, 0, 0, 0};
    int c = 0;
    for (; c + 4 <= n; c += 4)
        for (int j = 0; j < 4; j++) acc[j] += x[c + j] * bf16_to_f32(w[c + j]);
    float s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for (; c < n; c++) s += x[c] * bf16_to_f32(w[c]);
    return s;
}

static float dot_f16(const float *x, const uint16_t *w, int n) {
    float s = 0;
    for (int c = 0; c < n; c++) s += x[c] * f16_to_f32(w[c]);
    return s;
}

void matmul(float *y, const float *x, int n, const wmat *w, const float *bias) {
    const int R = w->rows, C = w->cols;
    for (int r = 0; r < R; r++) {
        const void *row = wmat_row(w, r);
        const float b = bias ? bias[r] : 0.0f;
        for (int i = 0; i < n; i++) {
            const float *xi = x + (size_t)i * C;
            float s;
            switch (w->dtype) {
            case DT_F32: s = dot_f32(xi, row, C); break;
            case DT_BF16: s = dot_bf16(xi, row, C); break;
            default: s = dot_f16(xi, row, C); break;
            }
            y[(size_t)i * R + r] = s + b;
        }
    }
}
