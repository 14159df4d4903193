/* llama.cpp's block formats in scalar C (quants.h): conversions both ways and the matrix product
 * the traits table names for them. Layouts and quantizers follow ggml-quants.c (dequantize_row_*,
 * quantize_row_*_ref); the code is ours. */
#include "tensor/quants.h"

#include <math.h>
#include <string.h>

#include "tensor/simd.h"

/* ---- Shared pieces -------------------------------------------------------------------------- */

static inline float half_at(const unsigned char *p) { return f16_to_f32((uint16_t)(p[0] | p[1] << 8)); }

static inline void put_half(unsigned char *p, float v) {
    const uint16_t h = f32_to_f16(v);
    p[0] = (unsigned char)h;
    p[1] = (unsigned char)(h >> 8);
}

/* ggml's nearest_int: to nearest, ties to even (what rintf does in the default rounding mode). */
static inline int nearest_int(float v) { return (int)rintf(v); }

static inline int clamp_int(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* The 6-bit scale and min of sub-block j of a q4_k / q5_k super-block (quants.h). */
static inline void scale_min_k4(int j, const unsigned char *q, int *sc, int *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

static void pack_scale_min_k4(unsigned char *q, const uint8_t *ls, const uint8_t *lm) {
    memset(q, 0, 12);
    for (int j = 0; j < 8; j++) {
        if (j < 4) {
            q[j] = ls[j];
            q[j + 4] = lm[j];
        } else {
            q[j + 4] = (unsigned char)((ls[j] & 0xF) | ((lm[j] & 0xF) << 4));
            q[j - 4] |= (unsigned char)((ls[j] >> 4) << 6);
            q[j] |= (unsigned char)((lm[j] >> 4) << 6);
        }
    }
}

/* ---- To fp32 -------------------------------------------------------------------------------- */

void q8_0_to_float(const void *src, float *out, size_t n) {
    const unsigned char *b = src;
    for (size_t i = 0; i < n / QK8_0; i++, b += Q8_0_BYTES, out += QK8_0) {
        const float d = half_at(b);
        for (int j = 0; j < QK8_0; j++) out[j] = (float)(int8_t)b[2 + j] * d;
    }
}

void q4_0_to_float(const void *src, float *out, size_t n) {
    const unsigned char *b = src;
    for (size_t i = 0; i < n / QK4_0; i++, b += Q4_0_BYTES, out += QK4_0) {
        const float d = half_at(b);
        for (int j = 0; j < QK4_0 / 2; j++) {
            out[j] = (float)((b[2 + j] & 0xF) - 8) * d;
            out[j + QK4_0 / 2] = (float)((b[2 + j] >> 4) - 8) * d;
        }
    }
}

/* q4_k and q5_k: d, dmin, 12 bytes of scales, [qh[32] for q5_k,] q[128]. */
static void k4_to_float(const unsigned char *b, const unsigned char *qh, const unsigned char *q, float *out) {
    const float d = half_at(b), dmin = half_at(b + 2);
    for (int i = 0; i < 4; i++, q += 32) {
        int sc0, m0, sc1, m1;
        scale_min_k4(2 * i, b + 4, &sc0, &m0);
        scale_min_k4(2 * i + 1, b + 4, &sc1, &m1);
        const float d0 = d * (float)sc0, min0 = dmin * (float)m0, d1 = d * (float)sc1, min1 = dmin * (float)m1;
        for (int l = 0; l < 32; l++) {
            const int hi0 = qh && (qh[l] >> (2 * i)) & 1 ? 16 : 0, hi1 = qh && (qh[l] >> (2 * i + 1)) & 1 ? 16 : 0;
            out[64 * i + l] = d0 * (float)((q[l] & 0xF) + hi0) - min0;
            out[64 * i + 32 + l] = d1 * (float)((q[l] >> 4) + hi1) - min1;
        }
    }
}

void q4_k_to_float(const void *src, float *out, size_t n) {
    const unsigned char *b = src;
    for (size_t i = 0; i < n / QK_K; i++, b += Q4_K_BYTES, out += QK_K) k4_to_float(b, NULL, b + 16, out);
}

void q5_k_to_float(const void *src, float *out, size_t n) {
    const unsigned char *b = src;
    for (size_t i = 0; i < n / QK_K; i++, b += Q5_K_BYTES, out += QK_K) k4_to_float(b, b + 16, b + 48, out);
}

void q6_k_to_float(const void *src, float *out, size_t n) {
    const unsigned char *b = src;
    for (size_t i = 0; i < n / QK_K; i++, b += Q6_K_BYTES, out += QK_K) {
        const unsigned char *ql = b, *qh = b + 128;
        const int8_t *sc = (const int8_t *)(b + 192);
        const float d = half_at(b + 208);
        /* Each half of 128 elements: ql[0..63], qh[0..31], scales[0..7]. */
        for (int h = 0; h < 2; h++, ql += 64, qh += 32, sc += 8) {
            float *y = out + 128 * h;
            for (int l = 0; l < 32; l++) {
                const int is = l / 16;
                const int q1 = ((ql[l] & 0xF) | ((qh[l] & 3) << 4)) - 32;
                const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l] = d * (float)sc[is] * (float)q1;
                y[l + 32] = d * (float)sc[is + 2] * (float)q2;
                y[l + 64] = d * (float)sc[is + 4] * (float)q3;
                y[l + 96] = d * (float)sc[is + 6] * (float)q4;
            }
        }
    }
}

/* ---- From fp32 ------------------------------------------------------------------------------ */

void q8_0_from_float(const float *src, void *dst, size_t n) {
    unsigned char *b = dst;
    for (size_t i = 0; i < n / QK8_0; i++, b += Q8_0_BYTES, src += QK8_0) {
        float amax = 0;
        for (int j = 0; j < QK8_0; j++) amax = fmaxf(amax, fabsf(src[j]));
        const float d = amax / 127, id = d ? 1.0f / d : 0.0f;
        put_half(b, d);
        for (int j = 0; j < QK8_0; j++) b[2 + j] = (unsigned char)(int8_t)roundf(src[j] * id);
    }
}

void q4_0_from_float(const float *src, void *dst, size_t n) {
    unsigned char *b = dst;
    for (size_t i = 0; i < n / QK4_0; i++, b += Q4_0_BYTES, src += QK4_0) {
        float amax = 0, max = 0; /* the value of largest magnitude, with its sign */
        for (int j = 0; j < QK4_0; j++)
            if (amax < fabsf(src[j])) amax = fabsf(src[j]), max = src[j];
        const float d = max / -8, id = d ? 1.0f / d : 0.0f;
        put_half(b, d);
        for (int j = 0; j < QK4_0 / 2; j++) {
            /* Truncation of values in [0.5, 16.5], as ggml's (int8_t) cast. */
            const int lo = (int8_t)(src[j] * id + 8.5f), hi = (int8_t)(src[j + QK4_0 / 2] * id + 8.5f);
            b[2 + j] = (unsigned char)((lo < 15 ? lo : 15) | (hi < 15 ? hi : 15) << 4);
        }
    }
}

/* ggml's make_qkx2_quants: levels L in [0, nmax] and (scale, -min) fitting x = scale * L + min
 * with weights w, the best of a first guess and nstep + 1 rescaled tries by weighted squared
 * error. Returns the scale; *neg_min is -min (>= 0). */
static float fit_scale_min(int n, int nmax, const float *x, const float *w, uint8_t *L, float *neg_min, uint8_t *Laux,
                           float rmin, float rdelta, int nstep) {
    float min = x[0], max = x[0], sum_w = w[0], sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (min > 0) min = 0;
    if (max == min) {
        memset(L, 0, (size_t)n);
        *neg_min = -min;
        return 0.0f;
    }
    float iscale = (float)nmax / (max - min), scale = 1 / iscale, best_error = 0;
    for (int i = 0; i < n; i++) {
        L[i] = (uint8_t)clamp_int(nearest_int(iscale * (x[i] - min)), 0, nmax);
        const float diff = scale * (float)L[i] + min - x[i];
        best_error += w[i] * (diff * diff);
    }
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * (float)is + (float)nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            const int l = clamp_int(nearest_int(iscale * (x[i] - min)), 0, nmax);
            Laux[i] = (uint8_t)l;
            sum_l += w[i] * (float)l;
            sum_l2 += w[i] * (float)l * (float)l;
            sum_xl += w[i] * (float)l * x[i];
        }
        const float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D <= 0) continue;
        float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D, this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
        if (this_min > 0) {
            this_min = 0;
            this_scale = sum_xl / sum_l2;
        }
        float error = 0;
        for (int i = 0; i < n; i++) {
            const float diff = this_scale * (float)Laux[i] + this_min - x[i];
            error += w[i] * (diff * diff);
        }
        if (error < best_error) {
            memcpy(L, Laux, (size_t)n);
            best_error = error;
            scale = this_scale;
            min = this_min;
        }
    }
    *neg_min = -min;
    return scale;
}

/* q4_k and q5_k (nmax 15 or 31): eight sub-blocks of 32 fitted, their scales and mins quantized to
 * 6 bits against the largest, the levels recomputed with the rounded scales; L gets the levels. */
static void k4_from_float(const float *x, unsigned char *b, int nmax, float rmin, float rdelta, int nstep,
                          uint8_t L[QK_K]) {
    float scales[8], mins[8], w[32], max_scale = 0, max_min = 0;
    uint8_t Laux[32], ls[8], lm[8];
    for (int j = 0; j < 8; j++) {
        const float *xj = x + 32 * j;
        float sum_x2 = 0;
        for (int l = 0; l < 32; l++) sum_x2 += xj[l] * xj[l];
        const float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; l++) w[l] = av_x + fabsf(xj[l]);
        scales[j] = fit_scale_min(32, nmax, xj, w, L + 32 * j, &mins[j], Laux, rmin, rdelta, nstep);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f, inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    for (int j = 0; j < 8; j++) {
        const uint8_t s = (uint8_t)nearest_int(inv_scale * scales[j]), m = (uint8_t)nearest_int(inv_min * mins[j]);
        ls[j] = s < 63 ? s : 63;
        lm[j] = m < 63 ? m : 63;
    }
    pack_scale_min_k4(b + 4, ls, lm);
    put_half(b, max_scale / 63.f);
    put_half(b + 2, max_min / 63.f);
    for (int j = 0; j < 8; j++) {
        int sc, m;
        scale_min_k4(j, b + 4, &sc, &m);
        const float d = half_at(b) * (float)sc;
        if (!d) continue;
        const float dm = half_at(b + 2) * (float)m;
        for (int i = 0; i < 32; i++) L[32 * j + i] = (uint8_t)clamp_int(nearest_int((x[32 * j + i] + dm) / d), 0, nmax);
    }
}

void q4_k_from_float(const float *src, void *dst, size_t n) {
    unsigned char *b = dst;
    uint8_t L[QK_K];
    for (size_t i = 0; i < n / QK_K; i++, b += Q4_K_BYTES, src += QK_K) {
        k4_from_float(src, b, 15, -1.f, 0.1f, 20, L);
        for (int j = 0; j < 4; j++)
            for (int l = 0; l < 32; l++) b[16 + 32 * j + l] = (unsigned char)(L[64 * j + l] | L[64 * j + 32 + l] << 4);
    }
}

void q5_k_from_float(const float *src, void *dst, size_t n) {
    unsigned char *b = dst;
    uint8_t L[QK_K];
    for (size_t i = 0; i < n / QK_K; i++, b += Q5_K_BYTES, src += QK_K) {
        k4_from_float(src, b, 31, -0.5f, 0.1f, 15, L);
        unsigned char *qh = b + 16, *ql = b + 48;
        memset(qh, 0, 32);
        for (int j = 0; j < 4; j++)
            for (int l = 0; l < 32; l++) {
                const int l1 = L[64 * j + l], l2 = L[64 * j + 32 + l];
                qh[l] |= (unsigned char)((l1 > 15) << (2 * j) | (l2 > 15) << (2 * j + 1));
                ql[32 * j + l] = (unsigned char)((l1 & 0xF) | (l2 & 0xF) << 4);
            }
    }
}

/* ggml's make_qx_quants with rmse_type 1 (weights x^2, no importance): signed levels in
 * [-nmax, nmax - 1] stored as L + nmax, the scale of the best of 19 tries. */
static float fit_scale_signed(int n, int nmax, const float *x, int8_t *L) {
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++)
        if (fabsf(x[i]) > amax) amax = fabsf(x[i]), max = x[i];
    if (amax < 1e-15f) {
        memset(L, 0, (size_t)n);
        return 0.f;
    }
    float iscale = (float)(-nmax) / max, sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        const int l = clamp_int(nearest_int(iscale * x[i]), -nmax, nmax - 1);
        L[i] = (int8_t)(l + nmax);
        const float w = x[i] * x[i];
        sumlx += w * x[i] * (float)l;
        suml2 += w * (float)l * (float)l;
    }
    float scale = suml2 ? sumlx / suml2 : 0.0f, best = scale * sumlx;
    for (int is = -9; is <= 9; is++) {
        if (!is) continue;
        iscale = -((float)nmax + 0.1f * (float)is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; i++) {
            const int l = clamp_int(nearest_int(iscale * x[i]), -nmax, nmax - 1);
            const float w = x[i] * x[i];
            sumlx += w * x[i] * (float)l;
            suml2 += w * (float)l * (float)l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++) L[i] = (int8_t)(nmax + clamp_int(nearest_int(iscale * x[i]), -nmax, nmax - 1));
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

static void q6_k_block(const float *x, unsigned char *b) {
    int8_t L[QK_K];
    float scales[16], max_scale = 0, max_abs = 0;
    for (int j = 0; j < 16; j++) {
        scales[j] = fit_scale_signed(16, 32, x + 16 * j, L + 16 * j);
        if (fabsf(scales[j]) > max_abs) max_abs = fabsf(scales[j]), max_scale = scales[j];
    }
    memset(b, 0, Q6_K_BYTES);
    if (max_abs < 1e-15f) return; /* all zero: d = 0 */
    const float iscale = -128.f / max_scale;
    int8_t *sc = (int8_t *)(b + 192);
    put_half(b + 208, 1 / iscale);
    for (int j = 0; j < 16; j++) {
        const int s = nearest_int(iscale * scales[j]);
        sc[j] = (int8_t)(s < 127 ? s : 127);
    }
    for (int j = 0; j < 16; j++) {
        const float d = half_at(b + 208) * (float)sc[j];
        if (!d) continue;
        for (int i = 0; i < 16; i++) L[16 * j + i] = (int8_t)(clamp_int(nearest_int(x[16 * j + i] / d), -32, 31) + 32);
    }
    for (int h = 0; h < 2; h++) {
        unsigned char *ql = b + 64 * h, *qh = b + 128 + 32 * h;
        const int8_t *Lh = L + 128 * h;
        for (int l = 0; l < 32; l++) {
            ql[l] = (unsigned char)((Lh[l] & 0xF) | (Lh[l + 64] & 0xF) << 4);
            ql[l + 32] = (unsigned char)((Lh[l + 32] & 0xF) | (Lh[l + 96] & 0xF) << 4);
            qh[l] = (unsigned char)((Lh[l] >> 4) | (Lh[l + 32] >> 4) << 2 | (Lh[l + 64] >> 4) << 4 | (Lh[l + 96] >> 4) << 6);
        }
    }
}

void q6_k_from_float(const float *src, void *dst, size_t n) {
    unsigned char *b = dst;
    for (size_t i = 0; i < n / QK_K; i++, b += Q6_K_BYTES, src += QK_K) q6_k_block(src, b);
}

/* ---- Matrix product ------------------------------------------------------------------------- */

void matmul_rows_scalar_blocks(float *y, const float *x, int n, const wmat *w, const float *bias, int r0, int r1) {
    const weight_type *wt = dtype_traits(w->dtype);
    const int R = w->rows, C = w->cols, B = wt ? wt->block : 0;
    float block[QK_K];
    if (!wt || B > QK_K || !wtype_valid_row(wt, (size_t)C)) {
        mm_no_kernel(y, (size_t)R, n, r0, r1);
        return;
    }
    for (int r = r0; r < r1; r++) {
        const unsigned char *row = wmat_row(w, r);
        for (int i = 0; i < n; i++) y[(size_t)i * R + r] = 0;
        for (int k = 0; k < C; k += B, row += wt->block_bytes) {
            wt->to_float(row, block, (size_t)B);
            for (int i = 0; i < n; i++) {
                const float *xi = x + (size_t)i * C + k;
                float s = 0;
                for (int j = 0; j < B; j++) s += xi[j] * block[j];
                y[(size_t)i * R + r] += s;
            }
        }
        if (bias)
            for (int i = 0; i < n; i++) y[(size_t)i * R + r] += bias[r];
    }
}
