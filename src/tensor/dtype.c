/* The weight-type table (dtype.h) and the conversions that go through it. */
#include "tensor/dtype.h"

#include <math.h>

#include "tensor/quants.h"
#include "tensor/simd.h"

float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, man = h & 0x3ff, u;
    if (exp == 0) {
        if (man == 0) {
            u = sign;
        } else { /* subnormal: value = man * 2^-24 */
            float f = ldexpf((float)man, -24);
            return sign ? -f : f;
        }
    } else if (exp == 31) {
        u = sign | 0x7f800000u | (man << 13);
    } else {
        u = sign | ((exp + 112) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t f32_to_f16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    const uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    const uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return sign | 0x7e00;  /* NaN */
    if (a >= 0x477ff000u) return sign | 0x7c00; /* from 65520 up, rounds to inf */
    if (a < 0x38800000u) {                      /* below 2^-14: a multiple of 2^-24, rounded */
        float v;
        memcpy(&v, &a, 4);
        return sign | (uint16_t)rintf(v * 0x1p24f);
    }
    uint32_t r = a - 0x38000000u; /* exponent rebiased from 127 to 15 */
    r += 0xfffu + ((r >> 13) & 1);
    return sign | (uint16_t)(r >> 13);
}

static void f32_to_float(const void *src, float *out, size_t n) { memcpy(out, src, n * sizeof *out); }

static void bf16_to_float(const void *src, float *out, size_t n) {
    const uint16_t *h = src;
    for (size_t i = 0; i < n; i++) out[i] = bf16_to_f32(h[i]);
}

static void f16_to_float(const void *src, float *out, size_t n) {
    const uint16_t *h = src;
    for (size_t i = 0; i < n; i++) out[i] = f16_to_f32(h[i]);
}

static void f32_from_float(const float *src, void *dst, size_t n) { memcpy(dst, src, n * sizeof *src); }

static void f16_from_float(const float *src, void *dst, size_t n) {
    uint16_t *h = dst;
    for (size_t i = 0; i < n; i++) h[i] = f32_to_f16(src[i]);
}

static void bf16_from_float(const float *src, void *dst, size_t n) {
    uint16_t *h = dst;
    for (size_t i = 0; i < n; i++) h[i] = f32_to_bf16(src[i]);
}

/* The kernels of every path: the SIMD ones exist only in x86 builds (cpu.c never offers them
 * elsewhere). vdpbf16ps multiplies bf16 by bf16 only, so avx512bf16 runs f32 and f16 weights on
 * the exact avx512 kernels. */
#if defined(__x86_64__) || defined(__i386__)
#define SIMD_KERNELS(AVX512BF16) \
    [SIMD_AVX2] = matmul_rows_avx2, [SIMD_AVX512] = matmul_rows_avx512, [SIMD_AVX512BF16] = AVX512BF16
#else
#define SIMD_KERNELS(AVX512BF16) [SIMD_AVX2] = NULL
#endif

/* Block types run the scalar kernel on every path until they have SIMD ones: a product is
 * slower, never missing. */
#define BLOCK_KERNELS                                                                                             \
    {[SIMD_SCALAR] = matmul_rows_scalar_blocks, [SIMD_AVX2] = matmul_rows_scalar_blocks,                        \
     [SIMD_AVX512] = matmul_rows_scalar_blocks, [SIMD_AVX512BF16] = matmul_rows_scalar_blocks}

/* Block types read their bytes one at a time (fp16 scales too), so they need no alignment. */
const weight_type dtype_table[DT_N_TYPES] = {
    [DT_F32] = {"f32", 1, 4, 4, f32_to_float, ACT_F32,
                {[SIMD_SCALAR] = matmul_rows_scalar_f32, SIMD_KERNELS(matmul_rows_avx512)}, f32_from_float},
    [DT_F16] = {"f16", 1, 2, 2, f16_to_float, ACT_F32,
                {[SIMD_SCALAR] = matmul_rows_scalar_f16, SIMD_KERNELS(matmul_rows_avx512)}, f16_from_float},
    [DT_BF16] = {"bf16", 1, 2, 2, bf16_to_float, ACT_F32,
                 {[SIMD_SCALAR] = matmul_rows_scalar_bf16, SIMD_KERNELS(matmul_rows_avx512bf16)}, bf16_from_float},
    [DT_Q8_0] = {"q8_0", QK8_0, Q8_0_BYTES, 1, q8_0_to_float, ACT_F32, BLOCK_KERNELS, q8_0_from_float},
    [DT_Q4_0] = {"q4_0", QK4_0, Q4_0_BYTES, 1, q4_0_to_float, ACT_F32, BLOCK_KERNELS, q4_0_from_float},
    [DT_Q4_K] = {"q4_k", QK_K, Q4_K_BYTES, 1, q4_k_to_float, ACT_F32, BLOCK_KERNELS, q4_k_from_float},
    [DT_Q5_K] = {"q5_k", QK_K, Q5_K_BYTES, 1, q5_k_to_float, ACT_F32, BLOCK_KERNELS, q5_k_from_float},
    [DT_Q6_K] = {"q6_k", QK_K, Q6_K_BYTES, 1, q6_k_to_float, ACT_F32, BLOCK_KERNELS, q6_k_from_float},
};

int widen(float *out, const void *src, modes_dtype t, size_t first, size_t n) {
    const weight_type *wt = dtype_traits(t);
    if (!wt || first % (size_t)wt->block || n % (size_t)wt->block) return -1;
    wt->to_float((const char *)src + dtype_row_bytes(t, first), out, n);
    return 0;
}

/* ---- Transposition ------------------------------------------------------------------------- */

/* Square tiles of this many elements keep the rows read and the rows written in L1. */
enum { TILE = 32 };

/* One [a, b] matrix of es-byte elements to [b, a], tile by tile; inlined per element size so the
 * copies become plain loads and stores. */
static inline __attribute__((always_inline)) void transpose_matrix(unsigned char *dst, const unsigned char *src,
                                                                   size_t a, size_t b, size_t es) {
    for (size_t a0 = 0; a0 < a; a0 += TILE) {
        const size_t a1 = a - a0 < TILE ? a : a0 + TILE;
        for (size_t b0 = 0; b0 < b; b0 += TILE) {
            const size_t b1 = b - b0 < TILE ? b : b0 + TILE;
            for (size_t j = b0; j < b1; j++)
                for (size_t i = a0; i < a1; i++) memcpy(dst + (j * a + i) * es, src + (i * b + j) * es, es);
        }
    }
}

static void transpose_2(unsigned char *dst, const unsigned char *src, size_t a, size_t b) {
    transpose_matrix(dst, src, a, b, 2);
}

static void transpose_4(unsigned char *dst, const unsigned char *src, size_t a, size_t b) {
    transpose_matrix(dst, src, a, b, 4);
}

static void transpose_any(unsigned char *dst, const unsigned char *src, size_t a, size_t b, size_t es) {
    transpose_matrix(dst, src, a, b, es);
}

int wtype_transpose(void *dst, const void *src, const weight_type *wt, size_t count, size_t a, size_t b,
                    const char *what, modes_error *err) {
    if (!wt) return modes_fail(err, MODES_E_INPUT, "tensor '%s' has an unknown weight type", what);
    if (wt->block != 1)
        return modes_fail(err, MODES_E_INPUT,
                          "tensor '%s' is %s in the [in, out] layout, which needs transposing, but its blocks of %d "
                          "cannot be: convert it offline to [out, in]",
                          what, wt->name, wt->block);
    const size_t es = (size_t)wt->block_bytes, bytes = a * b * es;
    for (size_t e = 0; e < count; e++) {
        unsigned char *d = (unsigned char *)dst + e * bytes;
        const unsigned char *s = (const unsigned char *)src + e * bytes;
        if (es == 2) transpose_2(d, s, a, b);
        else if (es == 4) transpose_4(d, s, a, b);
        else transpose_any(d, s, a, b, es);
    }
    return 0;
}

int dtype_transpose(void *dst, const void *src, modes_dtype t, size_t count, size_t a, size_t b, const char *what,
                    modes_error *err) {
    return wtype_transpose(dst, src, dtype_traits(t), count, a, b, what, err);
}
