/* AVX-512 (F, BW, VL, DQ) matmul micro-kernels: 4 x rows by 6 weight rows, 24 accumulators of 16
 * lanes, so each loaded weight vector feeds 4 FMAs and each x vector 6; 29 of the 32 registers.
 * Row tails use masked loads, which never touch memory past the mask, so rows that end at the end
 * of a mapping are safe. Compiled with -mavx512f -mavx512bw -mavx512vl -mavx512dq -mfma -mf16c. */
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include "tensor/simd.h"
#include "tensor/simd_x86.h"

enum { MR = 4, NR = 6, VL = 16 };

static inline __mmask16 tail_mask(int n) { return (__mmask16)((1u << n) - 1); }

static inline __m512 load_w(const void *p, int k, modes_dtype dt) {
    if (dt == DT_F32) return _mm512_loadu_ps((const float *)p + k);
    const __m256i h = _mm256_loadu_si256((const __m256i *)((const uint16_t *)p + k));
    if (dt == DT_F16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

static inline __m512 load_w_tail(const void *p, int k, modes_dtype dt, __mmask16 m) {
    if (dt == DT_F32) return _mm512_maskz_loadu_ps(m, (const float *)p + k);
    const __m256i h = _mm256_maskz_loadu_epi16(m, (const uint16_t *)p + k);
    if (dt == DT_F16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

/* Inlined into one function per (dtype, m), so the loops over i and j unroll into registers. */
static inline __attribute__((always_inline)) void tile(int M, modes_dtype dt, const float *x, size_t ldx,
                                                       const void *const *w, int K, float *out) {
    __m512 acc[MR][NR];
#pragma GCC unroll 4
    for (int i = 0; i < M; i++)
#pragma GCC unroll 6
        for (int j = 0; j < NR; j++) acc[i][j] = _mm512_setzero_ps();
    int k = 0;
    for (; k + VL <= K; k += VL) {
        __m512 xv[MR];
#pragma GCC unroll 4
        for (int i = 0; i < M; i++) xv[i] = _mm512_loadu_ps(x + i * ldx + k);
#pragma GCC unroll 6
        for (int j = 0; j < NR; j++) {
            const __m512 wv = load_w(w[j], k, dt);
#pragma GCC unroll 4
            for (int i = 0; i < M; i++) acc[i][j] = _mm512_fmadd_ps(xv[i], wv, acc[i][j]);
        }
    }
    if (k < K) {
        const __mmask16 m = tail_mask(K - k);
        __m512 xv[MR];
#pragma GCC unroll 4
        for (int i = 0; i < M; i++) xv[i] = _mm512_maskz_loadu_ps(m, x + i * ldx + k);
#pragma GCC unroll 6
        for (int j = 0; j < NR; j++) {
            const __m512 wv = load_w_tail(w[j], k, dt, m);
#pragma GCC unroll 4
            for (int i = 0; i < M; i++) acc[i][j] = _mm512_fmadd_ps(xv[i], wv, acc[i][j]);
        }
    }
    reduce_tile_4x6(M, acc, out);
}

#define TILE(NAME, M, DT)                                                                      \
    static void NAME(const void *x, size_t ldx, const void *const *w, int K, float *out) {   \
        tile(M, DT, x, ldx, w, K, out);                                                        \
    }
TILE(t_f32_1, 1, DT_F32)
TILE(t_f32_2, 2, DT_F32)
TILE(t_f32_3, 3, DT_F32)
TILE(t_f32_4, 4, DT_F32)
TILE(t_bf16_1, 1, DT_BF16)
TILE(t_bf16_2, 2, DT_BF16)
TILE(t_bf16_3, 3, DT_BF16)
TILE(t_bf16_4, 4, DT_BF16)
TILE(t_f16_1, 1, DT_F16)
TILE(t_f16_2, 2, DT_F16)
TILE(t_f16_3, 3, DT_F16)
TILE(t_f16_4, 4, DT_F16)

static inline __attribute__((always_inline)) void widen_row_as(float *dst, const void *src, modes_dtype dt, int K) {
    int k = 0;
    for (; k + VL <= K; k += VL) _mm512_store_ps(dst + k, load_w(src, k, dt));
    if (k < K) _mm512_mask_storeu_ps(dst + k, tail_mask(K - k), load_w_tail(src, k, dt, tail_mask(K - k)));
}

static void widen_row(float *dst, const void *src, modes_dtype dt, int K) {
    switch (dt) {
    case DT_BF16: widen_row_as(dst, src, DT_BF16, K); break;
    case DT_F16: widen_row_as(dst, src, DT_F16, K); break;
    default: mm_no_kernel(dst, 0, 1, 0, K); break; /* f32 is used in place, never widened */
    }
}

const mm_isa mm_isa_avx512 = {
    .mr = MR,
    .nr = NR,
    .tile = {[DT_F32] = {NULL, t_f32_1, t_f32_2, t_f32_3, t_f32_4},
             [DT_BF16] = {NULL, t_bf16_1, t_bf16_2, t_bf16_3, t_bf16_4},
             [DT_F16] = {NULL, t_f16_1, t_f16_2, t_f16_3, t_f16_4}},
    /* A 512-bit row kernel (half the instructions per weight byte) decoded no faster, 11.4-13.0
     * against 13.7-14.2 tok/s in alternating one-thread runs: the row stream is memory-bound. */
    .rows = mm_rows_avx2,
    .widen_row = widen_row,
    .widen_min_n = 5,
};

void matmul_rows_avx512(float *y, const float *x, int n, const wmat *w, const float *bias, int r0, int r1) {
    mm_drive(&mm_isa_avx512, y, x, n, w, bias, r0, r1);
}
/* Peak probe (probe.c): 12 independent FMA chains cover 2 pipes x 4-5 cycles of latency. */
float probe_fma_avx512(long iters) {
    __m512 a[12];
    const __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-6f);
#pragma GCC unroll 12
    for (int j = 0; j < 12; j++) a[j] = _mm512_set1_ps((float)j);
    for (long i = 0; i < iters; i++)
#pragma GCC unroll 12
        for (int j = 0; j < 12; j++) a[j] = _mm512_fmadd_ps(a[j], m, c);
    __m512 s = a[0];
#pragma GCC unroll 12
    for (int j = 1; j < 12; j++) s = _mm512_add_ps(s, a[j]);
    return _mm512_reduce_add_ps(s);
}

#endif
