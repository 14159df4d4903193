/* Horizontal sums shared by the x86 kernel files; each part is compiled only in files built with
 * the matching target flags (the __AVX2__ / __AVX512F__ macros those flags define). */
#ifndef MODES_TENSOR_SIMD_X86_H
#define MODES_TENSOR_SIMD_X86_H

#include <immintrin.h>

#ifdef __AVX2__
static inline float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* {sum a, sum b, sum c, sum d} in 11 instructions instead of 4 separate sums' 20: pairs are
 * interleaved and added inside 128-bit lanes first, so every shuffle feeds an add of full width. */
static inline __m128 reduce4_256(__m256 a, __m256 b, __m256 c, __m256 d) {
    const __m256 ab = _mm256_add_ps(_mm256_unpacklo_ps(a, b), _mm256_unpackhi_ps(a, b));
    const __m256 cd = _mm256_add_ps(_mm256_unpacklo_ps(c, d), _mm256_unpackhi_ps(c, d));
    const __m256 s = _mm256_add_ps(_mm256_shuffle_ps(ab, cd, 0x44), _mm256_shuffle_ps(ab, cd, 0xee));
    return _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
}
#endif

#ifdef __AVX512F__
/* The same for 16 lanes: 13 instructions for four sums. */
static inline __m128 reduce4_512(__m512 a, __m512 b, __m512 c, __m512 d) {
    const __m512 ab = _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));
    const __m512 cd = _mm512_add_ps(_mm512_unpacklo_ps(c, d), _mm512_unpackhi_ps(c, d));
    const __m512 s = _mm512_add_ps(_mm512_shuffle_ps(ab, cd, 0x44), _mm512_shuffle_ps(ab, cd, 0xee));
    const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(s),
                                   _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(s), 1)));
    return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

/* Stores the sums of a tile's M x NR accumulators (NR = 6) into out[i * 6 + j]: rows' first four
 * in one reduction each, the last two of two rows together. */
static inline __attribute__((always_inline)) void reduce_tile_4x6(int M, __m512 acc[][6], float *out) {
    const __m512 z = _mm512_setzero_ps();
#pragma GCC unroll 4
    for (int i = 0; i < M; i++) _mm_storeu_ps(out + i * 6, reduce4_512(acc[i][0], acc[i][1], acc[i][2], acc[i][3]));
#pragma GCC unroll 2
    for (int i = 0; i < M; i += 2) {
        float t[4];
        _mm_storeu_ps(t, reduce4_512(acc[i][4], acc[i][5], i + 1 < M ? acc[i + 1][4] : z, i + 1 < M ? acc[i + 1][5] : z));
        out[i * 6 + 4] = t[0], out[i * 6 + 5] = t[1];
        if (i + 1 < M) out[i * 6 + 10] = t[2], out[i * 6 + 11] = t[3];
    }
}
#endif

#endif
