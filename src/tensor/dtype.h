/* Weight-type traits: everything the engine may know about how a type of weights is stored, in one
 * table with a row per type (dtype.c). A type stores each row of a matrix as whole blocks: one
 * element per block for the float types (f32, f16, bf16), 32 or 256 for llama.cpp's block types
 * (q8_0 is 32 elements in 34 bytes). So every size is computed per row of blocks, never per element,
 * and a type the table lacks is an error wherever it is met, never taken for a 2-byte float. */
#ifndef MODES_TENSOR_DTYPE_H
#define MODES_TENSOR_DTYPE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/error.h"

/* The float types, then llama.cpp's block types (tensor/quants.h has their layouts). */
typedef enum { DT_F32, DT_F16, DT_BF16, DT_Q8_0, DT_Q4_0, DT_Q4_K, DT_Q5_K, DT_Q6_K, DT_N_TYPES } modes_dtype;

/* The form the activations take in a type's dot products. fp32 for the float types; a quantized
 * type may want x quantized to int8 blocks of its own block size. */
typedef enum { ACT_F32 } dtype_act;

/* The instruction-set paths of the kernels (tensor.h tells what each one computes). */
typedef enum { SIMD_SCALAR, SIMD_AVX2, SIMD_AVX512, SIMD_AVX512BF16, SIMD_N_PATHS } simd_path;

struct wmat; /* tensor.h */

/* y[i, r] = x_i . W_r (+ bias[r]) for i < n and r in [r0, r1): a path's matrix product. */
typedef void (*dtype_matmul_fn)(float *y, const float *x, int n, const struct wmat *w, const float *bias, int r0,
                                int r1);

typedef struct {
    const char *name;
    int block;       /* elements per block: a row's length must be a multiple of it */
    int block_bytes; /* bytes per block */
    int align;       /* bytes of alignment the kernels need of a row's start */
    /* n elements (whole blocks) from the block at src (aligned to `align`) to fp32. */
    void (*to_float)(const void *src, float *out, size_t n);
    dtype_act act;
    /* The matrix product each path runs for this type; NULL where the path has none. A path may
     * run another's kernel (avx512bf16 runs the exact avx512 one for f32 and f16). */
    dtype_matmul_fn matmul[SIMD_N_PATHS];
    /* n fp32 elements (whole blocks) to blocks at dst: what a converter writes. */
    void (*from_float)(const float *src, void *dst, size_t n);
} weight_type;

extern const weight_type dtype_table[DT_N_TYPES];

/* The traits of t, or NULL when t is not a type of the table. */
static inline const weight_type *dtype_traits(modes_dtype t) {
    return (unsigned)t < (unsigned)DT_N_TYPES ? &dtype_table[t] : NULL;
}

/* Whether a row of `cols` elements of wt (NULL: none) is whole blocks. */
static inline int wtype_valid_row(const weight_type *wt, size_t cols) { return wt && cols % (size_t)wt->block == 0; }

/* Bytes of a row of `cols` elements of wt; 0 when !wtype_valid_row(wt, cols). */
static inline size_t wtype_row_bytes(const weight_type *wt, size_t cols) {
    return wtype_valid_row(wt, cols) ? cols / (size_t)wt->block * (size_t)wt->block_bytes : 0;
}

/* The same by type: false, and 0 bytes, for a type the table lacks. */
static inline int dtype_valid_row(modes_dtype t, size_t cols) { return wtype_valid_row(dtype_traits(t), cols); }
static inline size_t dtype_row_bytes(modes_dtype t, size_t cols) { return wtype_row_bytes(dtype_traits(t), cols); }

/* Converts the n elements of t that start at element `first` of src to fp32: whole blocks, so
 * whole rows of a matrix (one embedding row, or all of them). Returns 0, or -1 (out untouched)
 * when t is unknown or first or n is not a multiple of its block. */
int widen(float *out, const void *src, modes_dtype t, size_t first, size_t n);

/* count matrices [a, b] of t at src to [b, a] at dst (not overlapping): the x·W layout of some
 * checkpoints to the rows the kernels read. Only element types can be: a block type's blocks run
 * along a row, so its layout must be converted offline; that, or an unknown t, fails naming
 * `what` (the tensor). wtype_transpose takes the traits themselves (NULL: unknown). */
int dtype_transpose(void *dst, const void *src, modes_dtype t, size_t count, size_t a, size_t b, const char *what,
                    modes_error *err);
int wtype_transpose(void *dst, const void *src, const weight_type *wt, size_t count, size_t a, size_t b,
                    const char *what, modes_error *err);

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
uint16_t f32_to_f16(float f); /* round to nearest even; overflow to inf, NaN kept quiet */

#endif
