/* AVX512-BF16 matmul for bf16 weights: x is rounded to bf16 once per call and vdpbf16ps multiplies
 * 32 bf16 pairs per instruction into fp32 sums, twice the multiply-adds of an fp32 FMA and no
 * widening of the weights. The rounding of x costs about three significant digits, which is why
 * this path is opt-in (tensor.h). Other weight dtypes take the exact AVX-512 path (dtype.c's table).
 * Compiled with the AVX-512 flags plus -mavx512bf16. */
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include "tensor/simd.h"
#include "tensor/simd_x86.h"

enum { MR = 4, NR = 6, VL = 32 };

static inline __mmask32 tail_mask(int n) { return (__mmask32)((1ull << n) - 1); }

/* x rows are zero-padded to a multiple of 32, so only the weights need a mask at the tail. */
static inline __attribute__((always_inline)) void tile(int M, const uint16_t *x, size_t ldx, const void *const *w,
                                                       int K, float *out) {
    __m512 acc[MR][NR];
#pragma GCC unroll 4
    for (int i = 0; i < M; i++)
#pragma GCC unroll 6
        for (int j = 0; j < NR; j++) acc[i][j] = _mm512_setzero_ps();
    for (int k = 0; k < K; k += VL) {
        const __mmask32 m = K - k >= VL ? (__mmask32)~0u : tail_mask(K - k);
        __m512bh xv[MR];
#pragma GCC unroll 4
        for (int i = 0; i < M; i++) xv[i] = (__m512bh)_mm512_loadu_si512(x + i * ldx + k);
#pragma GCC unroll 6
        for (int j = 0; j < NR; j++) {
            const __m512bh wv = (__m512bh)_mm512_maskz_loadu_epi16(m, (const uint16_t *)w[j] + k);
#pragma GCC unroll 4
            for (int i = 0; i < M; i++) acc[i][j] = _mm512_dpbf16_ps(acc[i][j], xv[i], wv);
        }
    }
    reduce_tile_4x6(M, acc, out);
}

/* One weight row against M x rows, for decode (see rowwise in simd.h). */
static inline __attribute__((always_inline)) void one_row(int M, const uint16_t *x, size_t ldx, const uint16_t *w, int K,
                                                          float *out) {
    __m512 a0[MM_MAX_MR], a1[MM_MAX_MR];
#pragma GCC unroll 4
    for (int i = 0; i < M; i++) a0[i] = a1[i] = _mm512_setzero_ps();
    int k = 0;
    for (; k + 2 * VL <= K; k += 2 * VL) {
        const __m512bh w0 = (__m512bh)_mm512_loadu_si512(w + k), w1 = (__m512bh)_mm512_loadu_si512(w + k + VL);
#pragma GCC unroll 4
        for (int i = 0; i < M; i++) {
            a0[i] = _mm512_dpbf16_ps(a0[i], (__m512bh)_mm512_loadu_si512(x + i * ldx + k), w0);
            a1[i] = _mm512_dpbf16_ps(a1[i], (__m512bh)_mm512_loadu_si512(x + i * ldx + k + VL), w1);
        }
    }
    for (; k < K; k += VL) {
        const __mmask32 m = K - k >= VL ? (__mmask32)~0u : tail_mask(K - k);
        const __m512bh w0 = (__m512bh)_mm512_maskz_loadu_epi16(m, w + k);
#pragma GCC unroll 4
        for (int i = 0; i < M; i++) a0[i] = _mm512_dpbf16_ps(a0[i], (__m512bh)_mm512_loadu_si512(x + i * ldx + k), w0);
    }
#pragma GCC unroll 4
    for (int i = 0; i < M; i++) out[i] = _mm512_reduce_add_ps(_mm512_add_ps(a0[i], a1[i]));
}

static inline __attribute__((always_inline)) void rows_m(int M, float *y, size_t ldy, const uint16_t *x, size_t ldx,
                                                         const wmat *w, const float *bias, int r0, int r1) {
    float out[MM_MAX_MR];
    const size_t stride = wmat_row_bytes(w);
    const char *row = wmat_row(w, r0);
    for (int r = r0; r < r1; r++, row += stride) {
        one_row(M, x, ldx, (const uint16_t *)row, w->cols, out);
        const float b = bias ? bias[r] : 0.0f;
        for (int i = 0; i < M; i++) y[i * ldy + r] = out[i] + b;
    }
}

static void rows(float *y, size_t ldy, const void *x, size_t ldx, int m, const wmat *w, const float *bias, int r0,
                 int r1) {
    switch (m) {
    case 1: rows_m(1, y, ldy, x, ldx, w, bias, r0, r1); break;
    case 2: rows_m(2, y, ldy, x, ldx, w, bias, r0, r1); break;
    case 3: rows_m(3, y, ldy, x, ldx, w, bias, r0, r1); break;
    default: rows_m(4, y, ldy, x, ldx, w, bias, r0, r1); break;
    }
}

#define TILE(NAME, M)                                                                          \
    static void NAME(const void *x, size_t ldx, const void *const *w, int K, float *out) {   \
        tile(M, x, ldx, w, K, out);                                                            \
    }
TILE(t_1, 1)
TILE(t_2, 2)
TILE(t_3, 3)
TILE(t_4, 4)

static size_t x_stride(int K) { return ((size_t)K + VL - 1) / VL * VL; }

/* Round to nearest even, as f32_to_bf16 does (vcvtne2ps2bf16). */
static void convert_x(uint16_t *dst, const float *x, int n, int K, size_t ld) {
    for (int i = 0; i < n; i++) {
        const float *xi = x + (size_t)i * K;
        uint16_t *di = dst + (size_t)i * ld;
        for (int k = 0; k < (int)ld; k += VL) {
            const int left = K - k;
            const __mmask16 lo = left >= 16 ? 0xffff : left <= 0 ? 0 : (__mmask16)((1u << left) - 1);
            const __mmask16 hi = left >= 32 ? 0xffff : left <= 16 ? 0 : (__mmask16)((1u << (left - 16)) - 1);
            const __m512 a = _mm512_maskz_loadu_ps(lo, xi + k), b = _mm512_maskz_loadu_ps(hi, xi + k + 16);
            _mm512_storeu_si512(di + k, (__m512i)_mm512_cvtne2ps_pbh(b, a));
        }
    }
}

const mm_isa mm_isa_avx512bf16 = {
    .mr = MR,
    .nr = NR,
    .tile = {[DT_BF16] = {NULL, t_1, t_2, t_3, t_4}},
    .rows = rows,
    .widen_row = NULL,
    .widen_min_n = 5,
    .convert_x = convert_x,
    .x_stride = x_stride,
    .fallback = matmul_rows_avx512,
};

void matmul_rows_avx512bf16(float *y, const float *x, int n, const wmat *w, const float *bias, int r0, int r1) {
    if (w->dtype == DT_BF16) mm_drive(&mm_isa_avx512bf16, y, x, n, w, bias, r0, r1);
    else mm_no_kernel(y, (size_t)w->rows, n, r0, r1); /* the traits table sends other types elsewhere */
}
/* Peak probe (probe.c): 12 independent vdpbf16ps chains. */
float probe_dpbf16(long iters) {
    __m512 a[12];
    const __m512bh x = (__m512bh)_mm512_set1_epi16(0x3f80), y = (__m512bh)_mm512_set1_epi16(0x3400); /* 1, 2^-23 */
#pragma GCC unroll 12
    for (int j = 0; j < 12; j++) a[j] = _mm512_set1_ps((float)j);
    for (long i = 0; i < iters; i++)
#pragma GCC unroll 12
        for (int j = 0; j < 12; j++) a[j] = _mm512_dpbf16_ps(a[j], x, y);
    __m512 s = a[0];
#pragma GCC unroll 12
    for (int j = 1; j < 12; j++) s = _mm512_add_ps(s, a[j]);
    return _mm512_reduce_add_ps(s);
}

#endif
