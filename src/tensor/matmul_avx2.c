/* AVX2+FMA matmul micro-kernels: 3 x rows by 4 weight rows, 12 accumulators of 8 lanes; with the 3
 * x vectors and one weight vector that is all 16 registers. Row tails are read through vmaskmovps
 * (fp32, never faults on masked lanes) or a small zero-padded copy (2-byte weights), so no load
 * passes the end of a row. Compiled with -mavx2 -mfma -mf16c. */
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include "tensor/simd.h"
#include "tensor/simd_x86.h"

enum { MR = 3, NR = 4, VL = 8 };

static inline __m256 widen_bf16(__m128i h) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

static inline __m256 load_w(const void *p, int k, modes_dtype dt) {
    if (dt == DT_F32) return _mm256_loadu_ps((const float *)p + k);
    const __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)p + k));
    return dt == DT_F16 ? _mm256_cvtph_ps(h) : widen_bf16(h);
}

static inline __m256i tail_mask(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

static inline __m256 load_w_tail(const void *p, int k, modes_dtype dt, int n) {
    if (dt == DT_F32) return _mm256_maskload_ps((const float *)p + k, tail_mask(n));
    uint16_t tmp[VL] = {0};
    for (int i = 0; i < n; i++) tmp[i] = ((const uint16_t *)p)[k + i];
    const __m128i h = _mm_loadu_si128((const __m128i *)tmp);
    return dt == DT_F16 ? _mm256_cvtph_ps(h) : widen_bf16(h);
}

static inline __attribute__((always_inline)) void tile(int M, modes_dtype dt, const float *x, size_t ldx,
                                                       const void *const *w, int K, float *out) {
    __m256 acc[MR][NR];
#pragma GCC unroll 3
    for (int i = 0; i < M; i++)
#pragma GCC unroll 4
        for (int j = 0; j < NR; j++) acc[i][j] = _mm256_setzero_ps();
    int k = 0;
    for (; k + VL <= K; k += VL) {
        __m256 xv[MR];
#pragma GCC unroll 3
        for (int i = 0; i < M; i++) xv[i] = _mm256_loadu_ps(x + i * ldx + k);
#pragma GCC unroll 4
        for (int j = 0; j < NR; j++) {
            const __m256 wv = load_w(w[j], k, dt);
#pragma GCC unroll 3
            for (int i = 0; i < M; i++) acc[i][j] = _mm256_fmadd_ps(xv[i], wv, acc[i][j]);
        }
    }
    if (k < K) {
        const __m256i m = tail_mask(K - k);
        __m256 xv[MR];
#pragma GCC unroll 3
        for (int i = 0; i < M; i++) xv[i] = _mm256_maskload_ps(x + i * ldx + k, m);
#pragma GCC unroll 4
        for (int j = 0; j < NR; j++) {
            const __m256 wv = load_w_tail(w[j], k, dt, K - k);
#pragma GCC unroll 3
            for (int i = 0; i < M; i++) acc[i][j] = _mm256_fmadd_ps(xv[i], wv, acc[i][j]);
        }
    }
#pragma GCC unroll 3
    for (int i = 0; i < M; i++) _mm_storeu_ps(out + i * NR, reduce4_256(acc[i][0], acc[i][1], acc[i][2], acc[i][3]));
}

/* One weight row against M x rows. Each accumulator is a chain of dependent FMAs, so A chains per
 * x row move at most A vectors per FMA latency: one x row needs four to keep up with memory. */
static inline __attribute__((always_inline)) void one_row(int M, modes_dtype dt, const float *x, size_t ldx,
                                                          const void *w, int K, float *out) {
    enum { A = 4 };
    const int na = M <= 2 ? A : 2; /* more x rows: more chains already, and only 16 registers */
    __m256 acc[MM_MAX_MR][A];
#pragma GCC unroll 4
    for (int i = 0; i < M; i++)
#pragma GCC unroll 4
        for (int j = 0; j < na; j++) acc[i][j] = _mm256_setzero_ps();
    int k = 0;
    for (; k + na * VL <= K; k += na * VL)
#pragma GCC unroll 4
        for (int j = 0; j < na; j++) {
            const __m256 wv = load_w(w, k + j * VL, dt);
#pragma GCC unroll 4
            for (int i = 0; i < M; i++) acc[i][j] = _mm256_fmadd_ps(_mm256_loadu_ps(x + i * ldx + k + j * VL), wv, acc[i][j]);
        }
    for (; k < K; k += VL) {
        const int left = K - k < VL ? K - k : VL;
        const __m256 wv = left == VL ? load_w(w, k, dt) : load_w_tail(w, k, dt, left);
        const __m256i m = tail_mask(left);
#pragma GCC unroll 4
        for (int i = 0; i < M; i++) acc[i][0] = _mm256_fmadd_ps(_mm256_maskload_ps(x + i * ldx + k, m), wv, acc[i][0]);
    }
#pragma GCC unroll 4
    for (int i = 0; i < M; i++) {
        __m256 s = acc[i][0];
#pragma GCC unroll 4
        for (int j = 1; j < na; j++) s = _mm256_add_ps(s, acc[i][j]);
        out[i] = hsum256(s);
    }
}

static inline __attribute__((always_inline)) void rows_m(int M, modes_dtype dt, float *y, size_t ldy, const float *x,
                                                         size_t ldx, const wmat *w, const float *bias, int r0, int r1) {
    float out[MM_MAX_MR];
    const size_t stride = wmat_row_bytes(w);
    const char *row = wmat_row(w, r0);
    for (int r = r0; r < r1; r++, row += stride) {
        one_row(M, dt, x, ldx, row, w->cols, out);
        const float b = bias ? bias[r] : 0.0f;
        for (int i = 0; i < M; i++) y[i * ldy + r] = out[i] + b;
    }
}

#define ROWS(NAME, DT)                                                                                     \
    static void NAME(float *y, size_t ldy, const float *x, size_t ldx, int m, const wmat *w, const float *bias, \
                     int r0, int r1) {                                                                      \
        switch (m) {                                                                                        \
        case 1: rows_m(1, DT, y, ldy, x, ldx, w, bias, r0, r1); break;                                      \
        case 2: rows_m(2, DT, y, ldy, x, ldx, w, bias, r0, r1); break;                                      \
        case 3: rows_m(3, DT, y, ldy, x, ldx, w, bias, r0, r1); break;                                      \
        default: rows_m(4, DT, y, ldy, x, ldx, w, bias, r0, r1); break;                                     \
        }                                                                                                   \
    }
ROWS(rows_f32, DT_F32)
ROWS(rows_bf16, DT_BF16)
ROWS(rows_f16, DT_F16)

void mm_rows_avx2(float *y, size_t ldy, const void *x, size_t ldx, int m, const wmat *w, const float *bias, int r0,
                  int r1) {
    switch (w->dtype) {
    case DT_F32: rows_f32(y, ldy, x, ldx, m, w, bias, r0, r1); break;
    case DT_BF16: rows_bf16(y, ldy, x, ldx, m, w, bias, r0, r1); break;
    case DT_F16: rows_f16(y, ldy, x, ldx, m, w, bias, r0, r1); break;
    default: mm_no_kernel(y, ldy, m, r0, r1); break;
    }
}

#define TILE(NAME, M, DT)                                                                      \
    static void NAME(const void *x, size_t ldx, const void *const *w, int K, float *out) {   \
        tile(M, DT, x, ldx, w, K, out);                                                        \
    }
TILE(t_f32_1, 1, DT_F32)
TILE(t_f32_2, 2, DT_F32)
TILE(t_f32_3, 3, DT_F32)
TILE(t_bf16_1, 1, DT_BF16)
TILE(t_bf16_2, 2, DT_BF16)
TILE(t_bf16_3, 3, DT_BF16)
TILE(t_f16_1, 1, DT_F16)
TILE(t_f16_2, 2, DT_F16)
TILE(t_f16_3, 3, DT_F16)

static inline __attribute__((always_inline)) void widen_row_as(float *dst, const void *src, modes_dtype dt, int K) {
    int k = 0;
    for (; k + VL <= K; k += VL) _mm256_store_ps(dst + k, load_w(src, k, dt));
    if (k < K) _mm256_maskstore_ps(dst + k, tail_mask(K - k), load_w_tail(src, k, dt, K - k));
}

static void widen_row(float *dst, const void *src, modes_dtype dt, int K) {
    switch (dt) {
    case DT_BF16: widen_row_as(dst, src, DT_BF16, K); break;
    case DT_F16: widen_row_as(dst, src, DT_F16, K); break;
    default: mm_no_kernel(dst, 0, 1, 0, K); break; /* f32 is used in place, never widened */
    }
}

const mm_isa mm_isa_avx2 = {
    .mr = MR,
    .nr = NR,
    .tile = {[DT_F32] = {NULL, t_f32_1, t_f32_2, t_f32_3},
             [DT_BF16] = {NULL, t_bf16_1, t_bf16_2, t_bf16_3},
             [DT_F16] = {NULL, t_f16_1, t_f16_2, t_f16_3}},
    .rows = mm_rows_avx2,
    .widen_row = widen_row,
    .widen_min_n = 5,
};

void matmul_rows_avx2(float *y, const float *x, int n, const wmat *w, const float *bias, int r0, int r1) {
    mm_drive(&mm_isa_avx2, y, x, n, w, bias, r0, r1);
}
/* Peak probe (probe.c): 12 independent FMA chains cover 2 pipes x 4-5 cycles of latency. */
float probe_fma_avx2(long iters) {
    __m256 a[12];
    const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-6f);
#pragma GCC unroll 12
    for (int j = 0; j < 12; j++) a[j] = _mm256_set1_ps((float)j);
    for (long i = 0; i < iters; i++)
#pragma GCC unroll 12
        for (int j = 0; j < 12; j++) a[j] = _mm256_fmadd_ps(a[j], m, c);
    __m256 s = a[0];
#pragma GCC unroll 12
    for (int j = 1; j < 12; j++) s = _mm256_add_ps(s, a[j]);
    return hsum256(s);
}

#endif
