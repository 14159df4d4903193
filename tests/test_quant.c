/* llama.cpp's block formats (src/tensor/quants.h): hand-made blocks of every type against values
 * worked out from the layout, fp32 -> fp16 rounding, quantization error bounds and fixed points,
 * and the matrix product of block weights against the fp32 product of their dequantized values. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "tensor/quants.h"
#include "tensor/tensor.h"

static const modes_dtype block_types[] = {DT_Q8_0, DT_Q4_0, DT_Q4_K, DT_Q5_K, DT_Q6_K};
#define N_BLOCK_TYPES (sizeof block_types / sizeof *block_types)

static void put16(unsigned char *p, uint16_t h) {
    p[0] = (unsigned char)h;
    p[1] = (unsigned char)(h >> 8);
}

static void test_table(void) {
    static const struct {
        modes_dtype t;
        const char *name;
        int block, bytes;
    } want[] = {{DT_Q8_0, "q8_0", 32, 34},
                {DT_Q4_0, "q4_0", 32, 18},
                {DT_Q4_K, "q4_k", 256, 144},
                {DT_Q5_K, "q5_k", 256, 176},
                {DT_Q6_K, "q6_k", 256, 210}};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        const weight_type *wt = dtype_traits(want[i].t);
        CHECKF(wt && !strcmp(wt->name, want[i].name) && wt->block == want[i].block && wt->block_bytes == want[i].bytes,
               "traits of %s", want[i].name);
        if (!wt) continue;
        CHECK(wt->to_float && wt->from_float && wt->act == ACT_F32);
        for (int p = 0; p < SIMD_N_PATHS; p++)
            if (kernels_for((simd_path)p)) CHECKF(wt->matmul[p], "%s has no kernel on %s", wt->name, simd_path_name(p));
        CHECK(dtype_row_bytes(want[i].t, 2048) == 2048 / (size_t)want[i].block * (size_t)want[i].bytes);
        CHECK(!dtype_valid_row(want[i].t, (size_t)want[i].block / 2) && dtype_row_bytes(want[i].t, 16) == 0);
    }
    /* The float types convert from fp32 too. */
    for (int t = DT_F32; t <= DT_BF16; t++) CHECK(dtype_traits((modes_dtype)t)->from_float);
}

static void test_f16_rounding(void) {
    static const struct {
        float f;
        uint16_t h;
    } cases[] = {{1.0f, 0x3c00},         {-2.0f, 0xc000},           {65504.0f, 0x7bff},       {65519.0f, 0x7bff},
                 {65520.0f, 0x7c00},     {1e9f, 0x7c00},            {-INFINITY, 0xfc00},      {0x1p-24f, 0x0001},
                 {0x1p-25f, 0x0000},     {0x1.8p-24f, 0x0002},      {0x1p-14f, 0x0400},       {0x1.ffcp-15f, 0x0400},
                 {1.0f + 0x1p-11f, 0x3c00}, {1.0f + 0x3p-11f, 0x3c02}, {-0.0f, 0x8000},        {0.333333f, 0x3555}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        CHECKF(f32_to_f16(cases[i].f) == cases[i].h, "f32_to_f16(%a) = 0x%04x, want 0x%04x", cases[i].f,
               f32_to_f16(cases[i].f), cases[i].h);
    CHECK((f32_to_f16(NAN) & 0x7c00) == 0x7c00 && (f32_to_f16(NAN) & 0x3ff));
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        const float f = f16_to_f32((uint16_t)h);
        if (!isnan(f) && f32_to_f16(f) != h) bad++;
    }
    CHECKF(bad == 0, "%d fp16 values do not survive fp16 -> fp32 -> fp16", bad);
}

/* ---- Hand-made blocks ------------------------------------------------------------------------- */

static void expect_block(const char *what, modes_dtype t, const void *block, const float *want, int n) {
    float out[256];
    CHECK(widen(out, block, t, 0, (size_t)n) == 0);
    int bad = 0;
    for (int i = 0; i < n; i++)
        if (out[i] != want[i] && bad++ < 4) fprintf(stderr, "%s element %d: %g, want %g\n", what, i, out[i], want[i]);
    CHECKF(bad == 0, "%s: %d elements differ", what, bad);
}

static void test_q8_0_block(void) {
    unsigned char b[34];
    float want[32];
    put16(b, 0x3800); /* d = 0.5 */
    for (int j = 0; j < 32; j++) {
        const int q = j == 0 ? -128 : j == 1 ? 127 : j * 7 - 100;
        b[2 + j] = (unsigned char)(int8_t)q;
        want[j] = 0.5f * (float)q;
    }
    expect_block("q8_0", DT_Q8_0, b, want, 32);
    CHECK(want[0] == -64.0f && want[1] == 63.5f && want[5] == -32.5f);
}

static void test_q4_0_block(void) {
    unsigned char b[18];
    float want[32];
    put16(b, 0xc000); /* d = -2 */
    for (int j = 0; j < 16; j++) {
        b[2 + j] = (unsigned char)(j | (15 - j) << 4); /* element j: nibble j; element j + 16: 15 - j */
        want[j] = (float)(j - 8) * -2.0f;
        want[j + 16] = (float)(15 - j - 8) * -2.0f;
    }
    expect_block("q4_0", DT_Q4_0, b, want, 32);
    CHECK(want[0] == 16.0f && want[15] == -14.0f && want[16] == -14.0f && want[31] == 16.0f);
}

/* Scales and mins of the eight sub-blocks of the K blocks below: values over 15 exercise the high
 * bits packed into bytes 0..7. */
static const int k_sc[8] = {1, 2, 3, 63, 17, 33, 48, 5}, k_m[8] = {0, 7, 62, 1, 20, 63, 9, 40};

/* The 12 scale bytes, packed as the layout says (quants.h). */
static void pack_k_scales(unsigned char *s) {
    memset(s, 0, 12);
    for (int j = 0; j < 4; j++) {
        s[j] = (unsigned char)k_sc[j];
        s[j + 4] = (unsigned char)k_m[j];
    }
    for (int j = 4; j < 8; j++) {
        s[j + 4] = (unsigned char)((k_sc[j] & 15) | (k_m[j] & 15) << 4);
        s[j - 4] |= (unsigned char)((k_sc[j] >> 4) << 6);
        s[j] |= (unsigned char)((k_m[j] >> 4) << 6);
    }
}

/* q4_k with d = 1, dmin = 0.5 and level (e % 16) for element e; q5_k adds 16 where e % 3 == 0. */
static void test_k4_blocks(void) {
    unsigned char b4[144], b5[176];
    float want4[256], want5[256];
    put16(b4, 0x3c00);
    put16(b4 + 2, 0x3800);
    pack_k_scales(b4 + 4);
    memcpy(b5, b4, 16);
    memset(b5 + 16, 0, 32);
    for (int i = 0; i < 4; i++)
        for (int l = 0; l < 32; l++) {
            const int lo = 64 * i + l, hi = 64 * i + 32 + l; /* the two elements of byte 32i + l */
            b4[16 + 32 * i + l] = b5[48 + 32 * i + l] = (unsigned char)((lo % 16) | (hi % 16) << 4);
            if (lo % 3 == 0) b5[16 + l] |= (unsigned char)(1 << (2 * i));
            if (hi % 3 == 0) b5[16 + l] |= (unsigned char)(1 << (2 * i + 1));
        }
    for (int e = 0; e < 256; e++) {
        const int sub = e / 32, q4 = e % 16, q5 = q4 + (e % 3 == 0 ? 16 : 0);
        want4[e] = 1.0f * (float)k_sc[sub] * (float)q4 - 0.5f * (float)k_m[sub];
        want5[e] = 1.0f * (float)k_sc[sub] * (float)q5 - 0.5f * (float)k_m[sub];
    }
    /* A few worked by hand: d * sc * q - dmin * m. */
    CHECK(want4[0] == 0.0f && want4[37] == 6.5f && want4[100] == 251.5f && want4[130] == 24.0f);
    CHECK(want4[180] == 100.5f && want4[200] == 379.5f && want4[255] == 55.0f);
    CHECK(want5[0] == 16.0f && want5[37] == 6.5f && want5[99] == 1196.5f && want5[255] == 135.0f);
    expect_block("q4_k", DT_Q4_K, b4, want4, 256);
    expect_block("q5_k", DT_Q5_K, b5, want5, 256);
}

/* q6_k with d = 0.25, alternating power-of-two scales and level (e % 64) for element e. */
static void test_q6_k_block(void) {
    static const int8_t sc[16] = {1, -1, 2, -2, 4, -4, 8, -8, 16, -16, 32, -32, 64, -64, 127, -128};
    unsigned char b[210];
    float want[256];
    memset(b, 0, sizeof b);
    for (int h = 0; h < 2; h++)
        for (int l = 0; l < 32; l++) {
            const int e = 128 * h + l, q1 = e % 64, q2 = (e + 32) % 64, q3 = (e + 64) % 64, q4 = (e + 96) % 64;
            b[64 * h + l] = (unsigned char)((q1 & 15) | (q3 & 15) << 4);
            b[64 * h + l + 32] = (unsigned char)((q2 & 15) | (q4 & 15) << 4);
            b[128 + 32 * h + l] = (unsigned char)((q1 >> 4) | (q2 >> 4) << 2 | (q3 >> 4) << 4 | (q4 >> 4) << 6);
        }
    memcpy(b + 192, sc, 16);
    put16(b + 208, 0x3400);
    for (int e = 0; e < 256; e++) want[e] = 0.25f * (float)sc[e / 16] * (float)(e % 64 - 32);
    CHECK(want[0] == -8.0f && want[17] == 3.75f && want[200] == -384.0f && want[255] == -992.0f);
    expect_block("q6_k", DT_Q6_K, b, want, 256);
}

/* ---- Quantization ----------------------------------------------------------------------------- */

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static float rnd(void) { /* about N(0, 1): a sum of uniforms */
    float s = 0;
    for (int k = 0; k < 4; k++) {
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        s += (float)(rng >> 40) / (float)(1 << 24) - 0.5f;
    }
    return s * 1.7f;
}

static double rms_error(modes_dtype t, const float *x, size_t n, void *q, float *back) {
    const weight_type *wt = dtype_traits(t);
    wt->from_float(x, q, n);
    wt->to_float(q, back, n);
    double e = 0, s = 0;
    for (size_t i = 0; i < n; i++) e += (double)(back[i] - x[i]) * (back[i] - x[i]), s += (double)x[i] * x[i];
    return sqrt(e / s);
}

static void test_quantize(void) {
    enum { N = 4096 };
    static float x[N], back[N], back2[N];
    static unsigned char q[N * 2], q2[N * 2];
    for (int i = 0; i < N; i++) x[i] = rnd() * (i % 512 < 256 ? 1.0f : 0.01f); /* two magnitudes of rows */
    /* Relative RMS error bounds with margin over what each format reaches on this data (0.0050,
     * 0.083, 0.070, 0.035, 0.017, the same as llama.cpp's quantizers: tests/llama/ggml-check.sh). */
    const double bound[N_BLOCK_TYPES] = {0.0075, 0.12, 0.09, 0.045, 0.022};
    for (size_t k = 0; k < N_BLOCK_TYPES; k++) {
        const modes_dtype t = block_types[k];
        const double e = rms_error(t, x, N, q, back);
        printf("%-5s relative rms error %.5f\n", dtype_traits(t)->name, e);
        CHECKF(e < bound[k] && e > 0, "%s: rms error %g, bound %g", dtype_traits(t)->name, e, bound[k]);
        /* Zeros stay zeros (no NaN from a zero scale). */
        float zeros[256] = {0}, out[256];
        dtype_traits(t)->from_float(zeros, q2, 256);
        dtype_traits(t)->to_float(q2, out, 256);
        int nonzero = 0;
        for (int i = 0; i < 256; i++) nonzero += out[i] != 0.0f;
        CHECKF(nonzero == 0, "%s: zeros come back as %d non-zeros", dtype_traits(t)->name, nonzero);
    }
    /* q8_0 and q4_0 keep their own values: quantizing a dequantized row gives the same bytes. */
    for (int k = 0; k < 2; k++) {
        const modes_dtype t = k ? DT_Q4_0 : DT_Q8_0;
        const weight_type *wt = dtype_traits(t);
        wt->from_float(x, q, N);
        wt->to_float(q, back, N);
        wt->from_float(back, q2, N);
        wt->to_float(q2, back2, N);
        CHECKF(!memcmp(q, q2, dtype_row_bytes(t, N)), "%s: requantized bytes differ", wt->name);
    }
    /* q8_0 by hand: the block's largest magnitude becomes +-127, d = amax / 127 rounded to fp16. */
    float row[32];
    for (int j = 0; j < 32; j++) row[j] = (float)(j - 10);
    row[7] = -254.0f;
    unsigned char b[34];
    q8_0_from_float(row, b, 32);
    CHECK(b[0] == 0x00 && b[1] == 0x40); /* d = 2.0 */
    CHECK((int8_t)b[2 + 7] == -127 && (int8_t)b[2 + 0] == -5 && (int8_t)b[2 + 31] == 11);
    CHECK((int8_t)b[2 + 13] == 2 && (int8_t)b[2 + 11] == 1); /* 3 / 2 = 1.5 rounds away from zero, 1 / 2 too */
    /* q4_0 by hand: d = max / -8 with max the signed value of largest magnitude. */
    for (int j = 0; j < 32; j++) row[j] = (float)(j % 8) - 4.0f;
    row[3] = 16.0f;
    unsigned char b4[18];
    q4_0_from_float(row, b4, 32);
    CHECK(b4[0] == 0x00 && b4[1] == 0xc0);             /* d = -2 */
    CHECK((b4[2 + 3] & 15) == 0 && (b4[2 + 0] & 15) == 10); /* 16 -> 0; -4 -> 2 + 8 */
}

/* ---- Matrix products -------------------------------------------------------------------------- */

static void test_matmul(void) {
    enum { R = 7, C = 512, NX = 5 };
    static float w32[R * C], x[NX * C], bias[R];
    static unsigned char wq[R * C * 2];
    for (int i = 0; i < R * C; i++) w32[i] = rnd();
    for (int i = 0; i < NX * C; i++) x[i] = rnd();
    for (int r = 0; r < R; r++) bias[r] = (float)r - 3.0f;
    for (size_t k = 0; k < N_BLOCK_TYPES; k++) {
        const modes_dtype t = block_types[k];
        const weight_type *wt = dtype_traits(t);
        wt->from_float(w32, wq, (size_t)R * C);
        /* The reference: the dequantized matrix as f32 weights on the scalar path. */
        static float deq[R * C];
        CHECK(widen(deq, wq, t, 0, (size_t)R * C) == 0);
        const wmat wf = {DT_F32, deq, R, C}, wb = {t, wq, R, C};
        CHECK(wmat_row_bytes(&wb) == dtype_row_bytes(t, C) && wmat_bytes(&wb) == R * wmat_row_bytes(&wb));
        float want[NX * R], got[NX * R];
        kernels_for(SIMD_SCALAR)->matmul_rows(want, x, NX, &wf, bias, 0, R);
        for (int p = 0; p < SIMD_N_PATHS; p++) {
            const kernel_set *ks = kernels_for((simd_path)p);
            if (!ks) continue;
            for (int n = 1; n <= NX; n += NX - 1) {
                memset(got, 0, sizeof got);
                ks->matmul_rows(got, x, n, &wb, p ? bias : NULL, 0, R);
                double worst = 0;
                for (int i = 0; i < n; i++)
                    for (int r = 0; r < R; r++) {
                        const double ref = want[i * R + r] - (p ? 0 : bias[r]);
                        const double d = fabs(got[i * R + r] - ref) / (fabs(ref) + 1.0);
                        if (d > worst) worst = d;
                    }
                CHECKF(worst < 2e-5, "%s on %s, n %d: relative error %g", wt->name, ks->name, n, worst);
            }
        }
        /* A row range leaves the other rows alone; one row of the matrix widens by itself. */
        float part[R];
        for (int r = 0; r < R; r++) part[r] = -1;
        matmul_rows(part, x, 1, &wb, NULL, 2, 4);
        CHECK(part[0] == -1 && part[1] == -1 && part[4] == -1 && part[6] == -1 && part[2] != -1 && part[3] != -1);
        float row3[C];
        CHECK(widen(row3, wq, t, (size_t)3 * C, C) == 0 && !memcmp(row3, deq + 3 * C, sizeof row3));
        CHECK(widen(row3, wq, t, 16, C) == -1);
    }
}

int main(void) {
    test_table();
    test_f16_rounding();
    test_q8_0_block();
    test_q4_0_block();
    test_k4_blocks();
    test_q6_k_block();
    test_quantize();
    test_matmul();
    return check_done();
}
