/* llama.cpp's block formats (ggml-common.h), bit for bit, so GGUF files are read and written as
 * llama.cpp does: the scalar conversions to fp32, the scalar matrix product the traits table
 * (dtype.c) names for them, and quantization from fp32.
 *
 *   q8_0  32 elements in 34 bytes: fp16 d, int8 q[32];                     x = q * d
 *   q4_0  32 elements in 18 bytes: fp16 d, q[16] nibbles, element j in the low nibble of byte j and
 *         element j + 16 in its high nibble;                               x = (q - 8) * d
 *   q4_k  256 elements in 144 bytes: fp16 d, fp16 dmin, 12 bytes of eight 6-bit scales and mins,
 *         q[128] nibbles; elements 64i..64i+31 are the low nibbles of bytes 32i..32i+31 (sub-block
 *         2i), 64i+32..64i+63 the high ones (sub-block 2i+1);         x = d * sc * q - dmin * m
 *   q5_k  256 in 176 bytes: as q4_k, plus qh[32] before q[128]: bit 2i of qh[l] is the fifth bit of
 *         element 64i + l, bit 2i+1 that of 64i + 32 + l
 *   q6_k  256 in 210 bytes: ql[128] low nibbles, qh[64] high two bits, int8 scales[16], fp16 d;
 *         x = d * scale * (q - 32), a scale per 16 elements
 *
 * The 6-bit scales and mins of sub-block j < 4 are the low six bits of bytes j and j + 4; for
 * j >= 4, the low (scale) and high (min) nibbles of byte j + 4 with the top two bits of bytes j - 4
 * (scale) and j (min) above them. */
#ifndef MODES_TENSOR_QUANTS_H
#define MODES_TENSOR_QUANTS_H

#include <stddef.h>
#include <stdint.h>

struct wmat;

enum { QK8_0 = 32, QK4_0 = 32, QK_K = 256 };
enum { Q8_0_BYTES = 34, Q4_0_BYTES = 18, Q4_K_BYTES = 144, Q5_K_BYTES = 176, Q6_K_BYTES = 210 };

/* n elements (whole blocks) from the blocks at src to fp32, as ggml's dequantize_row_*. */
void q8_0_to_float(const void *src, float *out, size_t n);
void q4_0_to_float(const void *src, float *out, size_t n);
void q4_k_to_float(const void *src, float *out, size_t n);
void q5_k_to_float(const void *src, float *out, size_t n);
void q6_k_to_float(const void *src, float *out, size_t n);

/* n elements (whole blocks, finite) of fp32 to blocks, following ggml's reference quantizers
 * (quantize_row_*_ref, which llama-quantize uses without an importance matrix): the same search
 * for scales and mins, the same rounding (to nearest, ties to even, as ggml's nearest_int; roundf
 * for q8_0), the same order of fp32 operations, so the same bytes (tests/llama/ggml-check.sh
 * compares them with llama.cpp's library). */
void q8_0_from_float(const float *src, void *dst, size_t n);
void q4_0_from_float(const float *src, void *dst, size_t n);
void q4_k_from_float(const float *src, void *dst, size_t n);
void q5_k_from_float(const float *src, void *dst, size_t n);
void q6_k_from_float(const float *src, void *dst, size_t n);

/* The scalar matrix product of every block type: each block of a weight row widened once through
 * the type's to_float and dotted with all n x rows, fp32 accumulation. */
void matmul_rows_scalar_blocks(float *y, const float *x, int n, const struct wmat *w, const float *bias, int r0,
                               int r1);

#endif
