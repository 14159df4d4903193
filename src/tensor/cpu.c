/* Run-time choice of kernel paths. The kernel sets are constant tables; the only state is the
 * default path, computed once (pthread_once) from the CPU and MODES_SIMD and never changed. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "tensor/simd.h"

#if defined(__x86_64__) || defined(__i386__)
#define MODES_X86 1
#include <cpuid.h>
#endif

static const char *const path_names[SIMD_N_PATHS] = {"scalar", "avx2", "avx512", "avx512bf16"};

const char *simd_path_name(simd_path p) { return (unsigned)p < SIMD_N_PATHS ? path_names[p] : "?"; }

int simd_path_parse(const char *s, simd_path *out) {
    for (int p = 0; p < SIMD_N_PATHS; p++)
        if (s && !strcmp(s, path_names[p])) {
            *out = (simd_path)p;
            return 0;
        }
    return 1;
}

static const kernel_set sets[SIMD_N_PATHS] = {
    [SIMD_SCALAR] = {SIMD_SCALAR, "scalar", 1, matmul_rows_on_scalar, rmsnorm_scalar, layernorm_scalar,
                     softmax_scalar, silu_mul_scalar, gelu_tanh_scalar, gelu_erf_scalar, rope_apply_scalar,
                     attention_head_scalar},
#ifdef MODES_X86
    [SIMD_AVX2] = {SIMD_AVX2, "avx2", 4, matmul_rows_on_avx2, rmsnorm_avx2, layernorm_avx2, softmax_avx2,
                   silu_mul_avx2, gelu_tanh_avx2, gelu_erf_avx2, rope_apply_avx2, attention_head_avx2},
    [SIMD_AVX512] = {SIMD_AVX512, "avx512", 6, matmul_rows_on_avx512, rmsnorm_avx2, layernorm_avx2, softmax_avx2,
                     silu_mul_avx2, gelu_tanh_avx2, gelu_erf_avx2, rope_apply_avx2, attention_head_avx2},
    [SIMD_AVX512BF16] = {SIMD_AVX512BF16, "avx512bf16", 6, matmul_rows_on_avx512bf16, rmsnorm_avx2, layernorm_avx2,
                         softmax_avx2, silu_mul_avx2, gelu_tanh_avx2, gelu_erf_avx2, rope_apply_avx2,
                         attention_head_avx2},
#endif
};

#ifdef MODES_X86
/* __builtin_cpu_supports checks that the OS saves the wide registers too; F16C is not among its
 * names on every compiler, so it is read from CPUID (leaf 1, ECX). */
static int has_f16c(void) {
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
}

static int cpu_has(simd_path p) {
    __builtin_cpu_init();
    switch (p) {
    case SIMD_SCALAR: return 1;
    case SIMD_AVX2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && has_f16c();
    case SIMD_AVX512:
        return cpu_has(SIMD_AVX2) && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
    case SIMD_AVX512BF16: return cpu_has(SIMD_AVX512) && __builtin_cpu_supports("avx512bf16");
    default: return 0;
    }
}
#else
static int cpu_has(simd_path p) { return p == SIMD_SCALAR; }
#endif

const kernel_set *kernels_for(simd_path p) {
    return (unsigned)p < SIMD_N_PATHS && cpu_has(p) ? &sets[p] : NULL;
}

static simd_path default_path = SIMD_SCALAR;
static pthread_once_t default_once = PTHREAD_ONCE_INIT;

static void choose_default(void) {
    simd_path p;
    if (!simd_path_parse(getenv("MODES_SIMD"), &p) && cpu_has(p)) {
        default_path = p;
        return;
    }
    default_path = cpu_has(SIMD_AVX512) ? SIMD_AVX512 : cpu_has(SIMD_AVX2) ? SIMD_AVX2 : SIMD_SCALAR;
}

const kernel_set *kernels_default(void) {
    pthread_once(&default_once, choose_default);
    return &sets[default_path];
}
