/* An independent check against llama.cpp itself (issue 18), not part of the test suite: loads
 * llama.cpp's libggml-base.so (as shipped in npm's @node-llama-cpp/linux-x64) and checks that
 *   - ggml's dequantize_row_* give the same fp32 bits as ours on random blocks of every block type;
 *   - ggml's reference quantizers (quantize_row_*_ref) write the same bytes as ours;
 *   - ggml's GGUF reader opens a file our writer wrote and finds its keys, values and tensors.
 * Run by tests/llama/ggml-check.sh; prints one line per check and exits 1 on any difference. */
#include <dlfcn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/gguf.h"
#include "tensor/quants.h"
#include "tensor/tensor.h"

static void *lib;
static int failures;

static void *sym(const char *name) {
    void *p = dlsym(lib, name);
    if (!p) {
        fprintf(stderr, "ggml_check: %s not in the library\n", name);
        exit(2);
    }
    return p;
}

static uint64_t rng = 0x2545f4914f6cdd1dull;
static uint32_t next32(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}
static float uniform(void) { return (float)(next32() >> 8) / (float)(1 << 24); }

/* Test data of several shapes: Gaussian-like, uniform, positive only, with outliers, with zero or
 * constant sub-blocks. */
static void make_data(float *x, size_t n, int kind) {
    for (size_t i = 0; i < n; i++) {
        float g = 0;
        for (int k = 0; k < 4; k++) g += uniform() - 0.5f;
        switch (kind) {
        case 0: x[i] = g * 1.7f; break;
        case 1: x[i] = uniform() * 2 - 1; break;
        case 2: x[i] = uniform() * 0.05f + 0.01f; break;
        case 3: x[i] = g * 0.02f * (next32() % 97 == 0 ? 300.0f : 1.0f); break;
        default: x[i] = (i / 16) % 3 == 0 ? 0.0f : (i / 16) % 3 == 1 ? 0.5f : g; break;
        }
    }
}

/* A random half-precision scale that is finite and not tiny, so products stay ordinary numbers. */
static uint16_t random_scale(void) {
    const uint16_t exp = (uint16_t)(5 + next32() % 20), man = (uint16_t)(next32() & 0x3ff), sign = next32() & 1;
    return (uint16_t)(sign << 15 | exp << 10 | man);
}

typedef void (*quantize_fn)(const float *, void *, int64_t);
typedef void (*dequantize_fn)(const void *, float *, int64_t);

static const struct {
    modes_dtype dt;
    const char *quantize, *dequantize;
    int half_at[2]; /* byte offsets of the fp16 scales in a block (-1: none) */
} types[] = {{DT_Q8_0, "quantize_row_q8_0_ref", "dequantize_row_q8_0", {0, -1}},
             {DT_Q4_0, "quantize_row_q4_0_ref", "dequantize_row_q4_0", {0, -1}},
             {DT_Q4_K, "quantize_row_q4_K_ref", "dequantize_row_q4_K", {0, 2}},
             {DT_Q5_K, "quantize_row_q5_K_ref", "dequantize_row_q5_K", {0, 2}},
             {DT_Q6_K, "quantize_row_q6_K_ref", "dequantize_row_q6_K", {208, -1}}};

enum { N = 256 * 64 };

static void check_type(int k) {
    const weight_type *wt = dtype_traits(types[k].dt);
    const quantize_fn ggml_q = (quantize_fn)sym(types[k].quantize);
    const dequantize_fn ggml_dq = (dequantize_fn)sym(types[k].dequantize);
    const size_t bytes = dtype_row_bytes(types[k].dt, N);
    static float x[N], a[N], b[N];
    static unsigned char qa[N * 2], qb[N * 2];
    /* Dequantization of random blocks. */
    for (size_t i = 0; i < bytes; i++) qa[i] = (unsigned char)next32();
    for (size_t blk = 0; blk < bytes / (size_t)wt->block_bytes; blk++)
        for (int h = 0; h < 2; h++)
            if (types[k].half_at[h] >= 0) {
                const uint16_t s = random_scale();
                memcpy(qa + blk * (size_t)wt->block_bytes + types[k].half_at[h], &s, 2);
            }
    ggml_dq(qa, a, N);
    wt->to_float(qa, b, N);
    const int dq_same = !memcmp(a, b, sizeof a);
    printf("%-5s dequantize of %d random blocks: %s\n", wt->name, N / wt->block, dq_same ? "same bits" : "DIFFERENT");
    failures += !dq_same;
    /* Quantization, data of five kinds. */
    for (int kind = 0; kind < 5; kind++) {
        make_data(x, N, kind);
        ggml_q(x, qa, N);
        wt->from_float(x, qb, N);
        size_t differ = 0;
        for (size_t blk = 0; blk < bytes / (size_t)wt->block_bytes; blk++)
            differ += memcmp(qa + blk * (size_t)wt->block_bytes, qb + blk * (size_t)wt->block_bytes,
                             (size_t)wt->block_bytes) != 0;
        printf("%-5s quantize, data kind %d: %zu of %zu blocks differ\n", wt->name, kind, differ,
               bytes / (size_t)wt->block_bytes);
        failures += differ != 0;
    }
}

/* ---- GGUF ------------------------------------------------------------------------------------- */

struct gguf_context;
struct gguf_init_params {
    bool no_alloc;
    void **ctx;
};

static void check_gguf(const char *path) {
    gguf_writer *w = gguf_writer_new();
    modes_error err = {0};
    static unsigned char data[4096];
    for (size_t i = 0; i < sizeof data; i++) data[i] = (unsigned char)(i * 13 + 5);
    const int64_t ne_q4k[2] = {512, 2}, ne_q8[2] = {64, 3}, ne_f32[1] = {5}, ne_bf16[3] = {4, 3, 2}, ne_q6k[1] = {256};
    const char *tokens[3] = {"<|im_start|>", "\xc4\xa0" "hello", ""};
    const int32_t sections[4] = {24, 20, 20, 0};
    int rc = gguf_set_str(w, "general.architecture", "qwen3vlmoe", &err) ||
             gguf_set_u32(w, "qwen3vlmoe.block_count", 48, &err) || gguf_set_f32(w, "test.eps", 1e-6f, &err) ||
             gguf_set_array(w, "tokenizer.ggml.tokens", GGUF_STRING, tokens, 3, &err) ||
             gguf_set_array(w, "qwen3vlmoe.rope.dimension_sections", GGUF_I32, sections, 4, &err) ||
             gguf_add_tensor(w, "blk.0.ffn_gate_exps.weight", GGML_Q4_K, 2, ne_q4k, data, &err) ||
             gguf_add_tensor(w, "blk.0.ffn_down_exps.weight", GGML_Q8_0, 2, ne_q8, data, &err) ||
             gguf_add_tensor(w, "output_norm.weight", GGML_F32, 1, ne_f32, data, &err) ||
             gguf_add_tensor(w, "token_embd.weight", GGML_BF16, 3, ne_bf16, data, &err) ||
             gguf_add_tensor(w, "output.weight", GGML_Q6_K, 1, ne_q6k, data, &err) ||
             gguf_writer_save(w, path, &err);
    gguf_writer_free(w);
    if (rc) {
        fprintf(stderr, "ggml_check: %s\n", err.msg);
        exit(2);
    }
    struct gguf_context *(*init)(const char *, struct gguf_init_params) = sym("gguf_init_from_file");
    int64_t (*n_tensors)(const struct gguf_context *) = sym("gguf_get_n_tensors");
    int64_t (*n_kv)(const struct gguf_context *) = sym("gguf_get_n_kv");
    int64_t (*find_key)(const struct gguf_context *, const char *) = sym("gguf_find_key");
    const char *(*val_str)(const struct gguf_context *, int64_t) = sym("gguf_get_val_str");
    uint32_t (*val_u32)(const struct gguf_context *, int64_t) = sym("gguf_get_val_u32");
    size_t (*arr_n)(const struct gguf_context *, int64_t) = sym("gguf_get_arr_n");
    const char *(*arr_str)(const struct gguf_context *, int64_t, size_t) = sym("gguf_get_arr_str");
    const char *(*t_name)(const struct gguf_context *, int64_t) = sym("gguf_get_tensor_name");
    int (*t_type)(const struct gguf_context *, int64_t) = sym("gguf_get_tensor_type");
    size_t (*t_offset)(const struct gguf_context *, int64_t) = sym("gguf_get_tensor_offset");
    size_t (*t_size)(const struct gguf_context *, int64_t) = sym("gguf_get_tensor_size");
    size_t (*data_offset)(const struct gguf_context *) = sym("gguf_get_data_offset");
    void (*gfree)(struct gguf_context *) = sym("gguf_free");

    struct gguf_context *g = init(path, (struct gguf_init_params){true, NULL});
    gguf_file *f = NULL;
    if (!g || gguf_open(path, &f, &err)) {
        printf("gguf: llama.cpp %s our file\n", g ? "opens" : "does NOT open");
        failures++;
        if (g) gfree(g);
        return;
    }
    int same = n_tensors(g) == (int64_t)gguf_tensor_count(f) && n_kv(g) == (int64_t)gguf_kv_count(f);
    const int64_t arch = find_key(g, "general.architecture"), blocks = find_key(g, "qwen3vlmoe.block_count");
    const int64_t toks = find_key(g, "tokenizer.ggml.tokens");
    same = same && arch >= 0 && !strcmp(val_str(g, arch), "qwen3vlmoe") && blocks >= 0 && val_u32(g, blocks) == 48;
    same = same && toks >= 0 && arr_n(g, toks) == 3 && !strcmp(arr_str(g, toks, 1), tokens[1]);
    /* The same bytes where llama.cpp's offsets say each tensor is. */
    FILE *fp = fopen(path, "rb");
    static unsigned char file[1 << 16];
    const size_t len = fp ? fread(file, 1, sizeof file, fp) : 0;
    if (fp) fclose(fp);
    for (size_t i = 0; same && i < gguf_tensor_count(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        const size_t at = data_offset(g) + t_offset(g, (int64_t)i);
        same = !strcmp(t_name(g, (int64_t)i), t->name) && t_type(g, (int64_t)i) == (int)t->type &&
               t_offset(g, (int64_t)i) == t->offset && t_size(g, (int64_t)i) == t->nbytes && at + t->nbytes <= len &&
               !memcmp(file + at, t->data, t->nbytes);
    }
    printf("gguf: llama.cpp opens our file and reads the same keys and tensors: %s\n", same ? "yes" : "NO");
    failures += !same;
    gfree(g);
    gguf_close(f);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: ggml_check PATH/libggml-base.so SCRATCH.gguf\n");
        return 2;
    }
    if (!(lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL))) {
        fprintf(stderr, "ggml_check: %s\n", dlerror());
        return 2;
    }
    for (size_t k = 0; k < sizeof types / sizeof *types; k++) check_type((int)k);
    check_gguf(argv[2]);
    printf("%s\n", failures ? "DIFFERENCES FOUND" : "all the same as llama.cpp");
    return failures ? 1 : 0;
}
