/* Internal to src/tensor: what each instruction-set file provides and how the shared matmul driver
 * uses it. Each *_avx2.c / *_avx512*.c file is compiled with its own target flags (see the
 * top-level CMakeLists.txt), so nothing here may be called before cpu.c has checked the CPU. */
#ifndef MODES_TENSOR_SIMD_H
#define MODES_TENSOR_SIMD_H

#include "tensor/tensor.h"

/* ---- Matrix products: micro-kernels and the driver that tiles a matmul over them ----------- */

enum { MM_MAX_MR = 4, MM_MAX_NR = 8 };

/* A tile: out[i * nr + j] = sum_k x[i * ldx + k] * W_j[k] for i < m (m is fixed per function),
 * j < nr, where W_j = w[j] holds K weights of the tile's dtype (rows may repeat at the matrix's
 * edge; the driver drops those results). x is fp32, or bf16 when the set converts x. */
typedef void (*mm_tile_fn)(const void *x, size_t ldx, const void *const *w, int K, float *out);

typedef struct {
    int mr, nr; /* x rows and weight rows per tile */
    /* tile[dtype][m] for m in 1..mr: weights read straight from their storage dtype, all nr rows
     * side by side, so each weight vector loaded feeds m FMAs and each x vector nr (prefill). Only
     * the types the traits table sends to this set have tiles. */
    mm_tile_fn tile[DT_N_TYPES][MM_MAX_MR + 1];
    /* Decode: rows(y, ldy, x, ldx, m, w, bias, r0, r1) sets y[i * ldy + r] = x_i . W_r (+ bias[r])
     * for i < m (1..MM_MAX_MR) and r in [r0, r1), reading each weight row start to end before the
     * next. Memory then sees one sequential stream, which the hardware prefetcher follows at full
     * bandwidth; a tile's interleaved streams of short rows (2048x768) reached half of it on the
     * machine we measured, and software prefetching made either slower. */
    void (*rows)(float *y, size_t ldy, const void *x, size_t ldx, int m, const wmat *w, const float *bias, int r0,
                 int r1);
    /* Widens one row of K weights (f16 or bf16) to fp32 (dst is 64-byte aligned). NULL: never widen. */
    void (*widen_row)(float *dst, const void *src, modes_dtype dt, int K);
    /* From this many x rows, rows are taken in L2-sized blocks and 2-byte weights are widened once
     * per block into scratch, the fp32 tiles reused for every x row (prefill); below it they are
     * widened in registers, which costs nothing when memory is the limit (decode). With
     * widen_row NULL, blocks are still used but the weights are read as stored. */
    int widen_min_n;
    /* Non-NULL: tiles read x as bf16 (rows of x_stride(K) elements, zero-padded), made by this. */
    void (*convert_x)(uint16_t *dst, const float *x, int n, int K, size_t ld);
    size_t (*x_stride)(int K);
    /* Runs a product this set cannot (no memory for the converted x). */
    void (*fallback)(float *y, const float *x, int n, const wmat *w, const float *bias, int r0, int r1);
} mm_isa;

/* The shared driver: y[i, r] for r in [r0, r1), i < n, with y rows of w->rows floats. */
void mm_drive(const mm_isa *isa, float *y, const float *x, int n, const wmat *w, const float *bias, int r0, int r1);

extern const mm_isa mm_isa_avx2, mm_isa_avx512, mm_isa_avx512bf16;

/* The AVX2 decode kernel, which the AVX-512 set uses too: decode is bound by memory, and on the
 * Zen 4 we measured, widening bf16 in 512-bit registers streamed about 10% slower than in 256-bit. */
void mm_rows_avx2(float *y, size_t ldy, const void *x, size_t ldx, int m, const wmat *w, const float *bias, int r0,
                  int r1);

/* Writes NaN to y[i, r] for i < n, r in [r0, r1) (rows of `ldy` floats): the answer of a product
 * whose weight type has no kernel, so that it shows rather than passing for numbers. */
void mm_no_kernel(float *y, size_t ldy, int n, int r0, int r1);

/* The kernels the traits table (dtype.c) names, per type and path. */
void matmul_rows_scalar_f32(float *y, const float *x, int n, const wmat *w, const float *bias, int r0, int r1);
void matmul_rows_scalar_f16(float *y, const float *x, int n, const wmat *w, const float *bias, int r0, int r1);
void matmul_rows_scalar_bf16(float *y, const float *x, int n, const wmat *w, const float *bias, int r0, int r1);
void matmul_rows_avx2(float *y, const float *x, int n, const wmat *w, const float *bias, int r0, int r1);
void matmul_rows_avx512(float *y, const float *x, int n, const wmat *w, const float *bias, int r0, int r1);
void matmul_rows_avx512bf16(float *y, const float *x, int n, const wmat *w, const float *bias, int r0, int r1);

/* A kernel set's matmul_rows (cpu.c): the kernel the traits table names for the weights' type on
 * that path, or mm_no_kernel. */
void matmul_rows_on_scalar(float *y, const float *x, int n, const wmat *w, const float *bias, int r0, int r1);
void matmul_rows_on_avx2(float *y, const float *x, int n, const wmat *w, const float *bias, int r0, int r1);
void matmul_rows_on_avx512(float *y, const float *x, int n, const wmat *w, const float *bias, int r0, int r1);
void matmul_rows_on_avx512bf16(float *y, const float *x, int n, const wmat *w, const float *bias, int r0, int r1);

/* Peak-rate probes (probe.c): iters rounds of 12 independent multiply-add vectors; the result only
 * keeps the compiler from dropping the work. */
float probe_fma_avx2(long iters);   /* 12 x 8 lanes x 2 flops per round */
float probe_fma_avx512(long iters); /* 12 x 16 lanes x 2 flops per round */
float probe_dpbf16(long iters);     /* 12 x 32 pairs x 2 flops per round */

/* ---- Element-wise, row-wise and attention kernels ----------------------------------------- */

void rmsnorm_scalar(float *y, const float *x, const float *w, int dim, float eps);
void layernorm_scalar(float *y, const float *x, const float *w, const float *b, int dim, float eps);
void softmax_scalar(float *x, int n);
void silu_mul_scalar(float *out, const float *gate, const float *up, int n);
void gelu_tanh_scalar(float *x, size_t n);
void gelu_erf_scalar(float *x, size_t n);
void rope_apply_scalar(float *v, int hd, const float *cs);
void attention_head_scalar(float *out, int o_stride, const float *q, int q_stride, const float *k, const float *v,
                           int kv_stride, int n, int n_past, int hd, float scale, int causal, float *scores);

/* AVX2+FMA versions; the AVX-512 sets use them too, since these kernels are bound by memory or by
 * the exp/erf polynomials rather than by vector width. */
void rmsnorm_avx2(float *y, const float *x, const float *w, int dim, float eps);
void layernorm_avx2(float *y, const float *x, const float *w, const float *b, int dim, float eps);
void softmax_avx2(float *x, int n);
void silu_mul_avx2(float *out, const float *gate, const float *up, int n);
void gelu_tanh_avx2(float *x, size_t n);
void gelu_erf_avx2(float *x, size_t n);
void rope_apply_avx2(float *v, int hd, const float *cs);
void attention_head_avx2(float *out, int o_stride, const float *q, int q_stride, const float *k, const float *v,
                         int kv_stride, int n, int n_past, int hd, float scale, int causal, float *scores);

#endif
