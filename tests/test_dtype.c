/* The weight-type traits table (src/tensor/dtype.h): sizes per row of blocks, conversions of
 * hand-made rows against their known values, the transposition of the x·W expert layout against a
 * naive one, and the refusals: an unknown type everywhere, a block type's transposition. The block
 * type here is a test-only row (32 elements in 34 bytes, as GGUF's Q8_0), never in the shipped table. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "tensor/tensor.h"

static const modes_dtype shipped[] = {DT_F32, DT_F16, DT_BF16};

static void test_table(void) {
    static const struct {
        modes_dtype t;
        const char *name;
        int bytes;
    } want[] = {{DT_F32, "f32", 4}, {DT_F16, "f16", 2}, {DT_BF16, "bf16", 2}};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        const weight_type *wt = dtype_traits(want[i].t);
        CHECKF(wt && !strcmp(wt->name, want[i].name), "traits of %s", want[i].name);
        if (!wt) continue;
        CHECK(wt->block == 1 && wt->block_bytes == want[i].bytes && wt->align == want[i].bytes);
        CHECK(wt->to_float && wt->act == ACT_F32);
        const size_t cols[] = {0, 1, 7, 768, 2049};
        for (size_t c = 0; c < sizeof cols / sizeof *cols; c++) {
            CHECKF(dtype_valid_row(want[i].t, cols[c]), "%s row of %zu", want[i].name, cols[c]);
            CHECKF(dtype_row_bytes(want[i].t, cols[c]) == cols[c] * (size_t)want[i].bytes, "%s row of %zu bytes",
                   want[i].name, cols[c]);
        }
        /* Every path this CPU runs has a kernel for every shipped type. */
        for (int p = 0; p < SIMD_N_PATHS; p++)
            if (kernels_for((simd_path)p)) CHECKF(wt->matmul[p], "%s has no kernel on %s", wt->name, simd_path_name(p));
    }
    const wmat w = {DT_BF16, (const void *)0x1000, 5, 6};
    CHECK(wmat_row_bytes(&w) == 12 && wmat_bytes(&w) == 60);
    CHECK((const char *)wmat_row(&w, 3) - (const char *)w.data == 36);
}

static void test_unknown(void) {
    const modes_dtype bad[] = {DT_N_TYPES, (modes_dtype)(DT_N_TYPES + 7), (modes_dtype)-1};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        CHECK(dtype_traits(bad[i]) == NULL);
        CHECK(!dtype_valid_row(bad[i], 4) && dtype_row_bytes(bad[i], 4) == 0);
        float out[4] = {7, 7, 7, 7};
        const uint16_t src[4] = {0x3f80, 0x3f80, 0x3f80, 0x3f80};
        CHECK(widen(out, src, bad[i], 0, 4) == -1 && out[0] == 7 && out[3] == 7);
        uint16_t dst[4];
        modes_error err = {0};
        CHECK(dtype_transpose(dst, src, bad[i], 1, 2, 2, "w", &err) == MODES_E_INPUT);
        CHECKF(strstr(err.msg, "'w'") && strstr(err.msg, "unknown"), "message: %s", err.msg);
    }
    /* A product of an unknown type yields NaN on every path, in its rows only. */
    const float x[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    const uint16_t data[3 * 8] = {0};
    const wmat w = {DT_N_TYPES, data, 3, 8};
    for (int p = 0; p < SIMD_N_PATHS; p++) {
        const kernel_set *ks = kernels_for((simd_path)p);
        if (!ks) continue;
        float y[3] = {5, 5, 5};
        ks->matmul_rows(y, x, 1, &w, NULL, 1, 3);
        CHECKF(y[0] == 5 && isnan(y[1]) && isnan(y[2]), "unknown type on %s: %g %g %g", ks->name, y[0], y[1], y[2]);
    }
}

static void test_block_type(void) {
    const weight_type q = {"q8_test", 32, 34, 2, NULL, ACT_F32, {NULL}, NULL};
    CHECK(wtype_valid_row(&q, 0) && wtype_valid_row(&q, 64) && !wtype_valid_row(&q, 33) && !wtype_valid_row(&q, 16));
    CHECK(wtype_row_bytes(&q, 32) == 34 && wtype_row_bytes(&q, 2048) == 64 * 34 && wtype_row_bytes(&q, 48) == 0);
    CHECK(!wtype_valid_row(NULL, 32) && wtype_row_bytes(NULL, 32) == 0);
    unsigned char src[2 * 34], dst[2 * 34];
    memset(src, 1, sizeof src);
    memset(dst, 0, sizeof dst);
    modes_error err = {0};
    CHECK(wtype_transpose(dst, src, &q, 1, 2, 32, "experts.down_proj", &err) == MODES_E_INPUT);
    CHECKF(strstr(err.msg, "'experts.down_proj'") && strstr(err.msg, "q8_test") && strstr(err.msg, "offline"),
           "message: %s", err.msg);
    CHECK(dst[0] == 0 && dst[sizeof dst - 1] == 0);
}

static int same_bits(float a, float b) { return !memcmp(&a, &b, sizeof a); }

static void test_to_float(void) {
    /* bf16: 1, -2, 1.5, 3.140625, the smallest subnormal 2^-133, -0, +inf, a NaN */
    const uint16_t bf[] = {0x3f80, 0xc000, 0x3fc0, 0x4049, 0x0001, 0x8000, 0x7f80, 0x7fc0};
    const float bf_want[] = {1.0f, -2.0f, 1.5f, 3.140625f, 0x1p-133f, -0.0f, INFINITY, NAN};
    /* f16: 1, -2, 0.333251953125, 65504, the smallest subnormal 2^-24, -0, +inf, a NaN */
    const uint16_t hf[] = {0x3c00, 0xc000, 0x3555, 0x7bff, 0x0001, 0x8000, 0x7c00, 0x7e00};
    const float hf_want[] = {1.0f, -2.0f, 0.333251953125f, 65504.0f, 0x1p-24f, -0.0f, INFINITY, NAN};
    const float f32[] = {1.0f, -2.5f, 0x1p-140f, 3e38f, -0.0f, 1e-7f, INFINITY, NAN};
    const struct {
        modes_dtype t;
        const void *row;
        const float *want;
    } rows[] = {{DT_BF16, bf, bf_want}, {DT_F16, hf, hf_want}, {DT_F32, f32, f32}};
    for (size_t r = 0; r < sizeof rows / sizeof *rows; r++) {
        float out[8];
        CHECK(widen(out, rows[r].row, rows[r].t, 0, 8) == 0);
        for (int i = 0; i < 8; i++) {
            const float w = rows[r].want[i];
            CHECKF(isnan(w) ? isnan(out[i]) : same_bits(out[i], w), "%s element %d: %g, want %g",
                   dtype_traits(rows[r].t)->name, i, out[i], w);
        }
        /* The traits' own conversion gives the same. */
        float direct[8];
        dtype_traits(rows[r].t)->to_float(rows[r].row, direct, 8);
        CHECK(!memcmp(direct, out, sizeof out));
    }
    /* One row of a matrix, as an embedding lookup takes it: row 1 of [2, 4] bf16. */
    float emb[4];
    CHECK(widen(emb, bf, DT_BF16, 4, 4) == 0);
    CHECK(same_bits(emb[0], 0x1p-133f) && same_bits(emb[1], -0.0f) && isinf(emb[2]) && isnan(emb[3]));
}

static uint64_t rng = 0x2545f4914f6cdd1dull;
static unsigned char next_byte(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (unsigned char)(rng >> 32);
}

/* Every element type against element-by-element copies, on sizes around the tile size. */
static void test_transpose(void) {
    const size_t shapes[][3] = {{1, 1, 1}, {3, 37, 70}, {2, 64, 32}, {1, 1, 33}, {2, 33, 1}, {1, 100, 129}};
    for (size_t ti = 0; ti < sizeof shipped / sizeof *shipped; ti++) {
        const modes_dtype t = shipped[ti];
        const size_t es = dtype_row_bytes(t, 1);
        for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++) {
            const size_t E = shapes[si][0], A = shapes[si][1], B = shapes[si][2], bytes = E * A * B * es;
            unsigned char *src = malloc(bytes), *got = malloc(bytes), *want = malloc(bytes);
            if (!src || !got || !want) {
                CHECK(!"out of memory");
                free(src), free(got), free(want);
                return;
            }
            for (size_t i = 0; i < bytes; i++) src[i] = next_byte();
            memset(got, 0xa5, bytes);
            for (size_t e = 0; e < E; e++)
                for (size_t a = 0; a < A; a++)
                    for (size_t b = 0; b < B; b++)
                        memcpy(want + ((e * B + b) * A + a) * es, src + ((e * A + a) * B + b) * es, es);
            modes_error err = {0};
            CHECK(dtype_transpose(got, src, t, E, A, B, "w", &err) == 0);
            CHECKF(!memcmp(got, want, bytes), "%s transpose of [%zu, %zu, %zu]", dtype_traits(t)->name, E, A, B);
            free(src), free(got), free(want);
        }
    }
}

int main(void) {
    test_table();
    test_unknown();
    test_block_type();
    test_to_float();
    test_transpose();
    return check_done();
}
