/* GGUF reader and writer (src/io/gguf.h): a file with every metadata type and several tensor types
 * written and read back; files encoded here byte by byte (independently of the writer) read as
 * the format says; and malformed files of every kind refused with one line naming the file. */
#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "io/gguf.h"

static char tmpdir[256];

static const char *tmp_path(const char *name) {
    static char buf[4][512];
    static int slot;
    char *b = buf[slot++ & 3];
    snprintf(b, sizeof buf[0], "%s/%s", tmpdir, name);
    return b;
}

static void write_bytes(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f || (len && fwrite(data, 1, len, f) != len)) {
        perror(path);
        exit(2);
    }
    fclose(f);
}

static unsigned char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = malloc(*len + 1);
    if (!p || fread(p, 1, *len, f) != *len) exit(2);
    fclose(f);
    return p;
}

/* ---- A hand encoder, independent of the writer ------------------------------------------------ */

typedef struct {
    unsigned char b[8192];
    size_t n;
} enc;

static void e_le(enc *e, uint64_t v, int n) {
    for (int i = 0; i < n; i++) e->b[e->n++] = (unsigned char)(v >> (8 * i));
}
static void e_str(enc *e, const char *s) {
    e_le(e, strlen(s), 8);
    memcpy(e->b + e->n, s, strlen(s));
    e->n += strlen(s);
}
static void e_head(enc *e, uint64_t n_tensors, uint64_t n_kv) {
    memcpy(e->b, "GGUF", 4);
    e->n = 4;
    e_le(e, 3, 4);
    e_le(e, n_tensors, 8);
    e_le(e, n_kv, 8);
}
static void e_kv_u32(enc *e, const char *key, uint32_t v) {
    e_str(e, key);
    e_le(e, GGUF_U32, 4);
    e_le(e, v, 4);
}
static void e_tensor(enc *e, const char *name, int ndim, const int64_t *ne, uint32_t type, uint64_t offset) {
    e_str(e, name);
    e_le(e, (uint64_t)ndim, 4);
    for (int d = 0; d < ndim; d++) e_le(e, (uint64_t)ne[d], 8);
    e_le(e, type, 4);
    e_le(e, offset, 8);
}
static void e_pad(enc *e, size_t align, size_t extra) {
    while (e->n % align) e->b[e->n++] = 0;
    for (size_t i = 0; i < extra; i++) e->b[e->n++] = (unsigned char)(i * 7 + 1);
}

/* The file must be refused with MODES_E_INPUT, one line naming it and containing `want`. */
static void refused(const char *what, const void *data, size_t len, const char *want) {
    const char *path = tmp_path("bad.gguf");
    write_bytes(path, data, len);
    gguf_file *f = (gguf_file *)1;
    modes_error err = {0};
    const int rc = gguf_open(path, &f, &err);
    CHECKF(rc == MODES_E_INPUT && f == NULL, "%s: rc %d", what, rc);
    CHECKF(strstr(err.msg, path) && !strchr(err.msg, '\n'), "%s: message '%s'", what, err.msg);
    CHECKF(!want || strstr(err.msg, want), "%s: message '%s' lacks '%s'", what, err.msg, want);
    gguf_close(rc ? NULL : f);
}

static gguf_file *opened(const char *what, const void *data, size_t len) {
    const char *path = tmp_path("good.gguf");
    write_bytes(path, data, len);
    gguf_file *f = NULL;
    modes_error err = {0};
    CHECKF(gguf_open(path, &f, &err) == 0 && f, "%s: %s", what, err.msg);
    return f;
}

/* ---- Hand-encoded files ----------------------------------------------------------------------- */

static void test_hand_encoded(void) {
    /* One key, two tensors at aligned offsets with a gap, trailing bytes after the data. */
    enc e;
    e_head(&e, 2, 2);
    e_kv_u32(&e, "general.alignment", 64);
    e_str(&e, "general.name");
    e_le(&e, GGUF_STRING, 4);
    e_str(&e, "tiny");
    const int64_t ne_a[2] = {3, 2}, ne_b[1] = {32};
    e_tensor(&e, "b", 1, ne_b, GGML_Q8_0, 64);
    e_tensor(&e, "a", 2, ne_a, GGML_F32, 0);
    e_pad(&e, 64, 0);
    const size_t data = e.n;
    e_pad(&e, 1, 64 + 34 + 5);
    gguf_file *f = opened("hand-encoded", e.b, e.n);
    if (!f) return;
    CHECK(gguf_alignment(f) == 64 && gguf_kv_count(f) == 2 && gguf_tensor_count(f) == 2);
    const gguf_tensor *a = gguf_find_tensor(f, "a"), *b = gguf_find_tensor(f, "b");
    CHECK(a && b && gguf_tensor_at(f, 0) == b && gguf_tensor_at(f, 1) == a && !gguf_tensor_at(f, 2));
    if (a && b) {
        CHECK(a->type == GGML_F32 && a->ndim == 2 && a->ne[0] == 3 && a->ne[1] == 2 && a->ne[2] == 1);
        CHECK(a->nelements == 6 && a->nbytes == 24 && a->offset == 0);
        CHECK(b->type == GGML_Q8_0 && b->nbytes == 34 && b->nelements == 32);
        CHECK((const unsigned char *)b->data - (const unsigned char *)a->data == 64);
        CHECK(((const unsigned char *)a->data)[0] == 1 && ((const unsigned char *)b->data)[0] == (unsigned char)(64 * 7 + 1));
        CHECK((uintptr_t)a->data % 64 == 0);
    }
    (void)data;
    const char *name = NULL;
    modes_error err = {0};
    CHECK(gguf_get_str(f, "general.name", &name, &err) == 0 && !strcmp(name, "tiny"));
    CHECK(!gguf_find_tensor(f, "c") && !gguf_find_kv(f, "general") && !gguf_find_tensor(f, NULL));
    gguf_close(f);

    /* No tensors, no metadata: the smallest file. */
    e_head(&e, 0, 0);
    f = opened("empty", e.b, e.n);
    CHECK(f && gguf_tensor_count(f) == 0 && gguf_kv_count(f) == 0 && gguf_alignment(f) == 32);
    gguf_close(f);
}

/* A valid file to corrupt: two F32 tensors at 0 and 32, one key. */
static void base_file(enc *e, uint32_t type_b, uint64_t off_b, int64_t ne0_b) {
    e_head(e, 2, 1);
    e_kv_u32(e, "x.count", 7);
    const int64_t ne_a[1] = {8}, ne_b[1] = {ne0_b};
    e_tensor(e, "t.a", 1, ne_a, GGML_F32, 0);
    e_tensor(e, "t.b", 1, ne_b, type_b, off_b);
    e_pad(e, 32, 64);
}

static void test_malformed(void) {
    enc e;
    base_file(&e, GGML_F32, 32, 8);
    gguf_file *f = opened("base", e.b, e.n);
    gguf_close(f);
    const enc good = e;

    /* Every strict prefix that cuts into the header or the tensors' bytes is refused. */
    for (size_t len = 0; len < good.n; len++) { /* t.b ends where the file ends */
        char what[64];
        snprintf(what, sizeof what, "prefix of %zu bytes", len);
        refused(what, good.b, len, NULL);
    }
    e = good;
    memcpy(e.b, "GGUG", 4);
    refused("bad magic", e.b, e.n, "magic");
    e = good;
    e.b[4] = 2;
    refused("version 2", e.b, e.n, "version 2");
    e = good;
    e.b[4] = 1;
    refused("version 1", e.b, e.n, "version 1");
    e = good;
    memset(e.b + 16, 0xff, 8); /* n_kv */
    refused("huge metadata count", e.b, e.n, "metadata entries");
    e = good;
    memset(e.b + 8, 0x7f, 8); /* n_tensors */
    refused("huge tensor count", e.b, e.n, "tensors cannot fit");
    e = good;
    e.b[24] = 0xff, e.b[25] = 0xff, e.b[26] = 0xff; /* the key's length */
    refused("key length past the end", e.b, e.n, "truncated");
    e = good;
    memset(e.b + 24, 0, 8); /* empty key */
    refused("empty key", e.b, e.n, "empty");

    /* The tensors' offsets and types (t.b's info is the last 8 + 3 + 4 + 8 + 4 + 8 bytes before the padding). */
    base_file(&e, GGML_F32, 64, 8);
    refused("offset past the end", e.b, e.n, "past the end");
    base_file(&e, GGML_F32, 1ull << 62, 8);
    refused("offset far past the end", e.b, e.n, "past the end");
    base_file(&e, GGML_F32, 0, 8);
    refused("overlapping tensors", e.b, e.n, "overlap");
    base_file(&e, GGML_F32, 16, 8);
    refused("misaligned offset", e.b, e.n, "aligned");
    base_file(&e, 4, 32, 8);
    refused("removed type 4", e.b, e.n, "'t.b' has unknown ggml type 4");
    base_file(&e, 99, 32, 8);
    refused("unknown type 99", e.b, e.n, "'t.b' has unknown ggml type 99");
    base_file(&e, GGML_Q8_0, 32, 16);
    refused("partial block", e.b, e.n, "whole blocks");
    base_file(&e, GGML_F32, 32, 0);
    refused("zero dimension", e.b, e.n, "not positive");
    base_file(&e, GGML_F32, 32, -3);
    refused("negative dimension", e.b, e.n, "not positive");

    /* Shapes, names and keys. */
    const int64_t big[4] = {1ll << 40, 1ll << 40, 1, 1}, five[5] = {1, 1, 1, 1, 1}, one[1] = {8};
    e_head(&e, 1, 0);
    e_tensor(&e, "big", 2, big, GGML_F32, 0);
    refused("element count overflow", e.b, e.n, "too many");
    e_head(&e, 1, 0);
    e_tensor(&e, "five", 5, five, GGML_F32, 0);
    refused("five dimensions", e.b, e.n, "5 dimensions");
    e_head(&e, 2, 0);
    e_tensor(&e, "same", 1, one, GGML_F32, 0);
    e_tensor(&e, "same", 1, one, GGML_F32, 32);
    e_pad(&e, 32, 64);
    refused("duplicate tensor", e.b, e.n, "'same' appears twice");
    e_head(&e, 0, 2);
    e_kv_u32(&e, "k", 1);
    e_kv_u32(&e, "k", 2);
    refused("duplicate key", e.b, e.n, "'k' appears twice");
    e_head(&e, 0, 1);
    e_kv_u32(&e, "general.alignment", 48);
    refused("alignment not a power of two", e.b, e.n, "power of two");
    e_head(&e, 0, 1);
    e_str(&e, "general.alignment");
    e_le(&e, GGUF_U64, 4);
    e_le(&e, 32, 8);
    refused("alignment of the wrong type", e.b, e.n, "not u32");
    e_head(&e, 0, 1);
    e_str(&e, "nested");
    e_le(&e, GGUF_ARRAY, 4);
    e_le(&e, GGUF_ARRAY, 4);
    e_le(&e, 1, 8);
    refused("array of arrays", e.b, e.n, "arrays of arrays");
    e_head(&e, 0, 1);
    e_str(&e, "odd");
    e_le(&e, 13, 4);
    refused("unknown value type", e.b, e.n, "unknown value type 13");
    e_head(&e, 0, 1);
    e_str(&e, "arr");
    e_le(&e, GGUF_ARRAY, 4);
    e_le(&e, GGUF_U64, 4);
    e_le(&e, 1ull << 61, 8);
    refused("array count past the end", e.b, e.n, "'arr' (2305843009213693952 elements of u64) runs past the end");
    e_head(&e, 0, 1);
    e_str(&e, "strs");
    e_le(&e, GGUF_ARRAY, 4);
    e_le(&e, GGUF_STRING, 4);
    e_le(&e, 3, 8);
    e_str(&e, "x");
    e_le(&e, 1000, 8);
    refused("string length past the end", e.b, e.n, "'strs'");
    e_head(&e, 1, 0);
    e_str(&e, "");
    e_pad(&e, 1, 32);
    refused("empty tensor name", e.b, e.n, "empty");
    e_head(&e, 0, 1);
    e_le(&e, 3, 8);
    memcpy(e.b + e.n, "a\0b", 3);
    e.n += 3;
    e_le(&e, GGUF_U8, 4);
    e_le(&e, 0, 1);
    refused("key with a NUL", e.b, e.n, "NUL");
    refused("not a file", NULL, 0, NULL);
}

/* ---- Writer round trip ------------------------------------------------------------------------ */

static void fill_pattern(unsigned char *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++) p[i] = (unsigned char)(i * 31 + seed);
}

static int fill_fn(void *ctx, void *buf, size_t nbytes, modes_error *err) {
    if (!ctx) return modes_fail(err, MODES_E_INPUT, "no source");
    fill_pattern(buf, nbytes, *(const unsigned *)ctx);
    return 0;
}

static void write_sample(gguf_writer *w, uint32_t alignment) {
    modes_error err = {0};
    if (alignment) CHECK(gguf_set_u32(w, "general.alignment", alignment, &err) == 0);
    CHECK(gguf_set_str(w, "general.architecture", "qwen3vlmoe", &err) == 0);
    CHECK(gguf_set_u32(w, "qwen3vlmoe.block_count", 48, &err) == 0);
    CHECK(gguf_set_i32(w, "test.i32", -5, &err) == 0);
    CHECK(gguf_set_u64(w, "test.u64", 1ull << 40, &err) == 0);
    CHECK(gguf_set_f32(w, "test.f32", 1e-6f, &err) == 0);
    CHECK(gguf_set_bool(w, "test.bool", 1, &err) == 0);
    const int32_t sections[4] = {24, 20, 20, 0};
    CHECK(gguf_set_array(w, "test.sections", GGUF_I32, sections, 4, &err) == 0);
    const char *tokens[3] = {"a", "", "\xc4\xa0the"};
    CHECK(gguf_set_array(w, "tokenizer.ggml.tokens", GGUF_STRING, tokens, 3, &err) == 0);
    const float scores[2] = {0.5f, -1.0f};
    CHECK(gguf_set_array(w, "test.scores", GGUF_F32, scores, 2, &err) == 0);
    const uint8_t u8s[3] = {1, 200, 0};
    CHECK(gguf_set_array(w, "test.u8s", GGUF_U8, u8s, 3, &err) == 0);
    const int16_t i16s[2] = {-300, 7};
    CHECK(gguf_set_array(w, "test.i16s", GGUF_I16, i16s, 2, &err) == 0);
    const uint64_t u64s[1] = {UINT64_MAX};
    CHECK(gguf_set_array(w, "test.u64s", GGUF_U64, u64s, 1, &err) == 0);
    const double f64s[1] = {0.25};
    CHECK(gguf_set_array(w, "test.f64s", GGUF_F64, f64s, 1, &err) == 0);
    CHECK(gguf_set_array(w, "test.empty", GGUF_U32, NULL, 0, &err) == 0);

    static unsigned char buf[4096];
    fill_pattern(buf, sizeof buf, 3);
    const int64_t ne_f32[2] = {3, 5}, ne_q8[2] = {64, 2}, ne_q4k[3] = {256, 1, 2}, ne_bf16[1] = {7};
    CHECK(gguf_add_tensor(w, "blk.0.attn_q.weight", GGML_F32, 2, ne_f32, buf, &err) == 0);
    CHECK(gguf_add_tensor(w, "blk.0.ffn_down.weight", GGML_Q8_0, 2, ne_q8, buf + 1, &err) == 0);
    static unsigned seed = 9;
    CHECK(gguf_add_tensor_fn(w, "blk.0.ffn_gate_exps.weight", GGML_Q4_K, 3, ne_q4k, fill_fn, &seed, &err) == 0);
    CHECK(gguf_add_tensor(w, "output_norm.weight", GGML_BF16, 1, ne_bf16, buf + 2, &err) == 0);
}

static void check_sample(const gguf_file *f, uint32_t alignment) {
    modes_error err = {0};
    CHECK(gguf_alignment(f) == alignment);
    CHECK(gguf_kv_count(f) == 14u + (alignment != 32));
    const char *s = NULL;
    uint32_t u32 = 0;
    int32_t i32 = 0;
    uint64_t u64 = 0;
    float f32 = 0;
    int b = 0;
    CHECK(gguf_get_str(f, "general.architecture", &s, &err) == 0 && !strcmp(s, "qwen3vlmoe"));
    CHECK(gguf_get_u32(f, "qwen3vlmoe.block_count", &u32, &err) == 0 && u32 == 48);
    CHECK(gguf_get_i32(f, "test.i32", &i32, &err) == 0 && i32 == -5);
    CHECK(gguf_get_u64(f, "test.u64", &u64, &err) == 0 && u64 == 1ull << 40);
    CHECK(gguf_get_f32(f, "test.f32", &f32, &err) == 0 && f32 == 1e-6f);
    CHECK(gguf_get_bool(f, "test.bool", &b, &err) == 0 && b == 1);
    /* Integer getters convert in range and refuse out of range, naming the file and key. */
    CHECK(gguf_get_u64(f, "qwen3vlmoe.block_count", &u64, &err) == 0 && u64 == 48);
    CHECK(gguf_get_i32(f, "qwen3vlmoe.block_count", &i32, &err) == 0 && i32 == 48);
    CHECK(gguf_get_u32(f, "test.i32", &u32, &err) == MODES_E_INPUT && strstr(err.msg, "'test.i32'") &&
          strstr(err.msg, "out of range") && strstr(err.msg, gguf_path(f)));
    CHECK(gguf_get_i32(f, "test.u64", &i32, &err) == MODES_E_INPUT && strstr(err.msg, "out of range"));
    CHECK(gguf_get_u32(f, "test.f32", &u32, &err) == MODES_E_INPUT && strstr(err.msg, "is f32, not u32"));
    CHECK(gguf_get_str(f, "test.bool", &s, &err) == MODES_E_INPUT && strstr(err.msg, "is bool, not str"));
    CHECK(gguf_get_u32(f, "no.such.key", &u32, &err) == MODES_E_INPUT && strstr(err.msg, "'no.such.key' is missing"));
    CHECK(gguf_get_u32(f, "test.sections", &u32, &err) == MODES_E_INPUT && strstr(err.msg, "array"));

    const gguf_kv *kv = NULL;
    CHECK(gguf_get_array(f, "test.sections", GGUF_I32, &kv, &err) == 0 && kv->n == 4);
    if (kv) CHECK(gguf_i32_at(kv, 0) == 24 && gguf_i32_at(kv, 1) == 20 && gguf_i32_at(kv, 3) == 0 && gguf_i32_at(kv, 4) == 0);
    int64_t v = 0;
    CHECK(kv && gguf_int_at(kv, 1, &v) == 0 && v == 20 && gguf_int_at(kv, 4, &v) == -1);
    CHECK(gguf_get_array(f, "test.sections", GGUF_U32, &kv, &err) == MODES_E_INPUT &&
          strstr(err.msg, "an array of i32, not an array of u32"));
    CHECK(gguf_get_array(f, "tokenizer.ggml.tokens", GGUF_STRING, &kv, &err) == 0 && kv->n == 3);
    if (kv) {
        CHECK(kv->str[0].len == 1 && kv->str[0].s[0] == 'a' && kv->str[1].len == 0);
        CHECK(kv->str[2].len == 5 && !memcmp(kv->str[2].s, "\xc4\xa0the", 5));
    }
    CHECK(gguf_get_array(f, "test.scores", GGUF_F32, &kv, &err) == 0 && gguf_f32_at(kv, 0) == 0.5f &&
          gguf_f32_at(kv, 1) == -1.0f);
    CHECK(gguf_get_array(f, "test.u8s", GGUF_U8, &kv, &err) == 0 && gguf_int_at(kv, 1, &v) == 0 && v == 200);
    CHECK(gguf_get_array(f, "test.i16s", GGUF_I16, &kv, &err) == 0 && gguf_int_at(kv, 0, &v) == 0 && v == -300);
    CHECK(gguf_get_array(f, "test.u64s", GGUF_U64, &kv, &err) == 0 && gguf_u64_at(kv, 0) == UINT64_MAX &&
          gguf_int_at(kv, 0, &v) == -1);
    CHECK(gguf_get_array(f, "test.f64s", GGUF_F64, &kv, &err) == 0 && kv->n == 1);
    CHECK(gguf_get_array(f, "test.empty", GGUF_U32, &kv, &err) == 0 && kv->n == 0);
    CHECK(gguf_kv_at(f, 0) && gguf_kv_at(f, gguf_kv_count(f)) == NULL);

    static unsigned char want[4096];
    fill_pattern(want, sizeof want, 3);
    const struct {
        const char *name;
        uint32_t type;
        int ndim;
        int64_t ne0, ne1, ne2;
        size_t nbytes;
        const unsigned char *data;
    } t[4] = {{"blk.0.attn_q.weight", GGML_F32, 2, 3, 5, 1, 60, want},
              {"blk.0.ffn_down.weight", GGML_Q8_0, 2, 64, 2, 1, 4 * 34, want + 1},
              {"blk.0.ffn_gate_exps.weight", GGML_Q4_K, 3, 256, 1, 2, 2 * 144, NULL},
              {"output_norm.weight", GGML_BF16, 1, 7, 1, 1, 14, want + 2}};
    unsigned char q4k[288];
    fill_pattern(q4k, sizeof q4k, 9);
    CHECK(gguf_tensor_count(f) == 4);
    uint64_t expect_offset = 0;
    for (int i = 0; i < 4; i++) {
        const gguf_tensor *x = gguf_find_tensor(f, t[i].name);
        CHECKF(x && x == gguf_tensor_at(f, (size_t)i), "tensor %s", t[i].name);
        if (!x) continue;
        CHECK(x->type == t[i].type && x->ndim == t[i].ndim && x->ne[0] == t[i].ne0 && x->ne[1] == t[i].ne1 &&
              x->ne[2] == t[i].ne2 && x->ne[3] == 1 && x->nbytes == t[i].nbytes);
        CHECK(!memcmp(x->data, t[i].data ? t[i].data : q4k, x->nbytes));
        /* Packed in order, each padded to the alignment, as llama.cpp requires. */
        CHECKF(x->offset == expect_offset, "%s at %llu, want %llu", x->name, (unsigned long long)x->offset,
               (unsigned long long)expect_offset);
        CHECK((uintptr_t)x->data % alignment == 0);
        expect_offset += (x->nbytes + alignment - 1) / alignment * alignment;
    }
}

static int count_tmp_leftovers(void) {
    DIR *d = opendir(tmpdir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strstr(e->d_name, ".tmp-")) n++;
    if (d) closedir(d);
    return n;
}

static void test_round_trip(void) {
    const uint32_t aligns[3] = {32, 64, 1};
    for (int a = 0; a < 3; a++) {
        gguf_writer *w = gguf_writer_new();
        write_sample(w, aligns[a] == 32 ? 0 : aligns[a]);
        const char *path = tmp_path("rt.gguf");
        modes_error err = {0};
        CHECKF(gguf_writer_save(w, path, &err) == 0, "save: %s", err.msg);
        gguf_writer_free(w);
        gguf_file *f = NULL;
        CHECKF(gguf_open(path, &f, &err) == 0, "open: %s", err.msg);
        if (f) check_sample(f, aligns[a]);
        gguf_close(f);
        /* The file ends with the last tensor's padding, as llama.cpp writes it. */
        size_t len = 0;
        unsigned char *bytes = read_all(path, &len);
        CHECK(bytes && len % aligns[a] == 0);
        free(bytes);
    }
    CHECK(count_tmp_leftovers() == 0);
}

static void test_writer_refusals(void) {
    gguf_writer *w = gguf_writer_new();
    modes_error err = {0};
    const int64_t ne[2] = {32, 2}, bad[2] = {16, 2}, zero[1] = {0};
    static const unsigned char data[256];
    CHECK(gguf_set_u32(w, "k", 1, &err) == 0);
    CHECK(gguf_set_str(w, "k", "x", &err) == MODES_E_INPUT && strstr(err.msg, "twice"));
    CHECK(gguf_set_u32(w, "", 1, &err) == MODES_E_INPUT);
    CHECK(gguf_set_u32(w, "general.alignment", 24, &err) == MODES_E_INPUT && strstr(err.msg, "power of two"));
    CHECK(gguf_set_u64(w, "general.alignment", 32, &err) == MODES_E_INPUT);
    CHECK(gguf_set_array(w, "a", GGUF_ARRAY, data, 1, &err) == MODES_E_INPUT);
    CHECK(gguf_add_tensor(w, "t", GGML_Q8_0, 2, ne, data, &err) == 0);
    CHECK(gguf_add_tensor(w, "t", GGML_Q8_0, 2, ne, data, &err) == MODES_E_INPUT && strstr(err.msg, "twice"));
    CHECK(gguf_add_tensor(w, "u", GGML_Q8_0, 2, bad, data, &err) == MODES_E_INPUT && strstr(err.msg, "blocks"));
    CHECK(gguf_add_tensor(w, "u", GGML_F32, 1, zero, data, &err) == MODES_E_INPUT);
    CHECK(gguf_add_tensor(w, "u", 4, 1, ne, data, &err) == MODES_E_INPUT && strstr(err.msg, "unknown ggml type 4"));
    CHECK(gguf_add_tensor(w, "u", GGML_F32, 5, ne, data, &err) == MODES_E_INPUT);
    char longname[80];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    CHECK(gguf_add_tensor(w, longname, GGML_F32, 1, ne, data, &err) == MODES_E_INPUT);
    /* A fill that fails leaves no file behind. */
    CHECK(gguf_add_tensor_fn(w, "late", GGML_F32, 1, ne, fill_fn, NULL, &err) == 0);
    const char *path = tmp_path("failed.gguf");
    CHECK(gguf_writer_save(w, path, &err) == MODES_E_INPUT && strstr(err.msg, "'late'") && strstr(err.msg, "no source"));
    CHECK(access(path, F_OK) != 0 && count_tmp_leftovers() == 0);
    gguf_writer_free(w);
}

static void test_types(void) {
    CHECK(!strcmp(gguf_type_name(GGML_Q4_K), "Q4_K") && gguf_type_block(GGML_Q4_K) == 256 &&
          gguf_type_block_bytes(GGML_Q4_K) == 144);
    CHECK(gguf_type_name(4) == NULL && gguf_type_name(31) == NULL && gguf_type_name(40) == NULL);
    CHECK(gguf_weight_dtype(GGML_BF16) == DT_BF16 && gguf_weight_dtype(GGML_F32) == DT_F32);
    CHECK(gguf_weight_dtype(10 /* Q2_K */) == DT_N_TYPES && gguf_ggml_type(DT_N_TYPES) == -1);
    /* The map and the traits table agree on every weight type GGUF holds. */
    for (int t = 0; t < DT_N_TYPES; t++) {
        const int64_t g = gguf_ggml_type((modes_dtype)t);
        CHECKF(g >= 0, "weight type %s has no ggml type", dtype_traits((modes_dtype)t)->name);
        if (g < 0) continue;
        CHECK(gguf_weight_dtype((uint32_t)g) == (modes_dtype)t);
        CHECKF(gguf_type_block((uint32_t)g) == dtype_traits((modes_dtype)t)->block &&
                   gguf_type_block_bytes((uint32_t)g) == dtype_traits((modes_dtype)t)->block_bytes,
               "geometry of %s", dtype_traits((modes_dtype)t)->name);
    }
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/modes-test-gguf-XXXXXX");
    if (!mkdtemp(tmpdir)) return 2;
    test_types();
    test_hand_encoded();
    test_malformed();
    test_round_trip();
    test_writer_refusals();
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.') unlink(tmp_path(e->d_name));
    if (d) closedir(d);
    rmdir(tmpdir);
    return check_done();
}
