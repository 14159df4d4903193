/* safetensors reader and writer: the reference files, round trips, sharded folders, and malformed
 * input of every kind (each must fail cleanly with MODES_E_INPUT and a message naming the file). */
#include <dirent.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "io/safetensors.h"

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
    if (!f) {
        perror(path);
        exit(2);
    }
    if (len && fwrite(data, 1, len, f) != len) exit(2);
    fclose(f);
}

static void put_u64le(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* A file with the given header text, a declared header length (true or not) and data_len bytes of
 * data (0, 1, 2, ... so ranges can be told apart). */
static void write_raw(const char *path, const char *header, uint64_t declared, size_t data_len) {
    size_t hl = strlen(header);
    size_t total = 8 + hl + data_len;
    unsigned char *buf = calloc(1, total);
    put_u64le(buf, declared);
    memcpy(buf + 8, header, hl);
    for (size_t i = 0; i < data_len; i++) buf[8 + hl + i] = (unsigned char)i;
    write_bytes(path, buf, total);
    free(buf);
}

static void write_st(const char *path, const char *header, size_t data_len) {
    write_raw(path, header, strlen(header), data_len);
}

/* Opens a file that must be rejected as bad input; checks the message names it (and `want`). */
static void expect_bad(const char *path, const char *want, const char *label) {
    st_archive *a = (st_archive *)1;
    modes_error err = {0};
    int rc = st_open(path, &a, &err);
    CHECKF(rc == MODES_E_INPUT, "%s: expected MODES_E_INPUT, got %d (%s)", label, rc, err.msg);
    CHECKF(a == NULL, "%s: archive not NULL on failure", label);
    CHECKF(err.code == rc, "%s: err.code %d", label, err.code);
    CHECKF(strstr(err.msg, path) != NULL, "%s: message does not name the file: %s", label, err.msg);
    CHECKF(!want || strstr(err.msg, want) != NULL, "%s: message lacks '%s': %s", label, want, err.msg);
    if (rc == 0) st_close(a);
}

static int count_tmp_leftovers(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (strstr(e->d_name, ".tmp-")) n++;
    closedir(d);
    return n;
}

static void remove_tree(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) remove_tree(p);
        else unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static int shape_is(const st_tensor *t, int ndim, int64_t d0, int64_t d1, int64_t d2) {
    const int64_t want[3] = {d0, d1, d2};
    if (!t || t->ndim != ndim) return 0;
    for (int i = 0; i < ndim && i < 3; i++)
        if (t->shape[i] != want[i]) return 0;
    return 1;
}

/* Reads a file's header (independently of the library) to find a tensor's byte range. */
static int raw_offsets(const char *path, const char *name, long long *begin, long long *end, long long *data_off) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    unsigned char p[8];
    if (fread(p, 1, 8, f) != 8) { fclose(f); return -1; }
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = (hl << 8) | p[i];
    char *h = calloc(1, hl + 1);
    int ok = h && fread(h, 1, hl, f) == hl;
    fclose(f);
    char key[512];
    snprintf(key, sizeof key, "\"%s\":", name);
    const char *at = ok ? strstr(h, key) : NULL;
    const char *offs = at ? strstr(at, "\"data_offsets\":[") : NULL;
    ok = offs && sscanf(offs + strlen("\"data_offsets\":["), "%lld,%lld", begin, end) == 2;
    *data_off = 8 + (long long)hl;
    free(h);
    return ok ? 0 : -1;
}

static void test_reference_model(void) {
    const char *path = shared_path("ref/qwen3vlmoe-tiny-a/model/model.safetensors");
    st_archive *a = NULL;
    modes_error err = {0};
    int rc = st_open(path, &a, &err);
    CHECKF(rc == 0, "open %s: %s", path, err.msg);
    if (rc) return;
    CHECK(st_count(a) == 93);
    CHECK(st_shard_count(a) == 1 && !strcmp(st_shard_path(a, 0), path) && st_shard_path(a, 1) == NULL);
    CHECK(st_metadata(a, "format") && !strcmp(st_metadata(a, "format"), "pt"));
    CHECK(st_metadata(a, "nope") == NULL);
    const st_tensor *gu = st_find(a, "model.language_model.layers.0.mlp.experts.gate_up_proj");
    CHECK(shape_is(gu, 3, 8, 64, 96) && gu->dtype == ST_F32 && gu->numel == 8 * 64 * 96 &&
          gu->nbytes == 8 * 64 * 96 * 4 && gu->shard == 0);
    const st_tensor *dn = st_find(a, "model.language_model.layers.0.mlp.experts.down_proj");
    CHECK(shape_is(dn, 3, 8, 48, 64));
    CHECK(shape_is(st_find(a, "lm_head.weight"), 2, 512, 64, 0));
    CHECK(shape_is(st_find(a, "model.language_model.layers.0.input_layernorm.weight"), 1, 64, 0, 0));
    CHECK(st_find(a, "model.language_model") == NULL && st_find(a, "") == NULL && st_find(a, "zzz") == NULL);
    CHECK(st_find(a, "__metadata__") == NULL);
    CHECK(st_tensor_at(a, 93) == NULL);
    int sorted = 1, aligned = 1, found_all = 1;
    for (size_t i = 0; i < st_count(a); i++) {
        const st_tensor *t = st_tensor_at(a, i);
        if (i && strcmp(st_tensor_at(a, i - 1)->name, t->name) >= 0) sorted = 0;
        if ((uintptr_t)t->data % 4) aligned = 0;
        if (st_find(a, t->name) != t) found_all = 0;
    }
    CHECK(sorted);
    CHECK(aligned);
    CHECK(found_all);
    /* The data pointer must show exactly the bytes the header's range names. */
    long long b = 0, e = 0, off = 0;
    CHECK(raw_offsets(path, "lm_head.weight", &b, &e, &off) == 0);
    const st_tensor *lm = st_find(a, "lm_head.weight");
    FILE *f = fopen(path, "rb");
    unsigned char *buf = malloc(lm->nbytes);
    CHECK(f && fseek(f, (long)(off + b), SEEK_SET) == 0 && fread(buf, 1, lm->nbytes, f) == lm->nbytes);
    CHECK(e - b == (long long)lm->nbytes && !memcmp(buf, lm->data, lm->nbytes));
    if (f) fclose(f);
    free(buf);
    st_close(a);

    /* The folder holds only model.safetensors. */
    const char *dir = shared_path("ref/qwen3vlmoe-tiny-a/model");
    rc = st_open(dir, &a, &err);
    CHECKF(rc == 0, "open folder: %s", err.msg);
    if (!rc) {
        CHECK(st_count(a) == 93 && strstr(st_shard_path(a, 0), "model/model.safetensors"));
        st_close(a);
    }
}

static void test_reference_cases(void) {
    st_archive *a = NULL;
    modes_error err = {0};
    const char *text = shared_path("ref/qwen3vlmoe-tiny-a/text.safetensors");
    int rc = st_open(text, &a, &err);
    CHECKF(rc == 0, "open text: %s", err.msg);
    if (!rc) {
        const st_tensor *ids = st_find(a, "input_ids");
        CHECK(ids && ids->dtype == ST_I64 && shape_is(ids, 2, 1, 16, 0) && ids->nbytes == 128);
        int nonneg = 1;
        for (int i = 0; ids && i < 16; i++) nonneg &= ((const int64_t *)ids->data)[i] >= 0;
        CHECK(nonneg);
        CHECK(st_metadata(a, "producer") && strstr(st_metadata(a, "producer"), "case=text"));
        st_close(a);
    }
    const char *pre = shared_path("ref/qwen3vlmoe-tiny-a/preproc_default.safetensors");
    rc = st_open(pre, &a, &err);
    CHECKF(rc == 0, "open preproc: %s", err.msg);
    if (!rc) {
        const st_tensor *img = st_find(a, "image_uint8_hwc");
        CHECK(img && img->dtype == ST_U8 && shape_is(img, 3, 64, 96, 3) && img->nbytes == 64 * 96 * 3);
        const st_tensor *grid = st_find(a, "image_grid_thw"), *pv = st_find(a, "pixel_values_pil");
        CHECK(grid && grid->dtype == ST_I64 && shape_is(grid, 2, 1, 3, 0));
        CHECK(pv && pv->dtype == ST_F32 && pv->ndim == 2);
        if (grid && pv) {
            const int64_t *g = grid->data;
            CHECK(g[0] * g[1] * g[2] == pv->shape[0]);
        }
        CHECK(st_metadata(a, "producer") == NULL);
        st_close(a);
    }
}

static void test_round_trip(void) {
    st_writer *w = st_writer_new();
    modes_error err = {0};
    float f32[6] = {1.5f, -2.0f, 3.25f, 0.0f, -0.0f, 1e30f};
    uint16_t bf16[4] = {0x3f80, 0xbf80, 0x7f80, 0x0001};
    int64_t i64[3] = {INT64_MIN, -1, INT64_MAX};
    int32_t i32[2] = {INT32_MIN, 42};
    uint8_t u8[5] = {0, 1, 127, 128, 255};
    double f64 = 3.141592653589793;
    const int64_t s23[] = {2, 3}, s22[] = {2, 2}, s3[] = {3}, s2[] = {2}, s5[] = {1, 5}, s0[] = {4, 0, 7};
    CHECK(st_writer_add(w, "a.f32", ST_F32, 2, s23, f32, &err) == 0);
    CHECK(st_writer_add(w, "u8 first/odd", ST_U8, 2, s5, u8, &err) == 0); /* leaves the next misaligned */
    CHECK(st_writer_add(w, "b.bf16", ST_BF16, 2, s22, bf16, &err) == 0);
    CHECK(st_writer_add(w, "c.i64", ST_I64, 1, s3, i64, &err) == 0);
    CHECK(st_writer_add(w, "d.i32", ST_I32, 1, s2, i32, &err) == 0);
    CHECK(st_writer_add(w, "empty", ST_F32, 3, s0, NULL, &err) == 0);
    CHECK(st_writer_add(w, "scalar", ST_F64, 0, NULL, &f64, &err) == 0);
    CHECK(st_writer_add(w, "quote\"and\\slash\ttab \xc3\xa9", ST_U8, 1, s3, u8, &err) == 0);
    CHECK(st_writer_set_metadata(w, "producer", "test", &err) == 0);
    CHECK(st_writer_set_metadata(w, "format", "x", &err) == 0);
    CHECK(st_writer_set_metadata(w, "format", "pt", &err) == 0); /* replaces */
    const char *path = tmp_path("rt.safetensors");
    CHECKF(st_writer_save(w, path, &err) == 0, "save: %s", err.msg);
    st_writer_free(w);
    CHECK(count_tmp_leftovers(tmpdir) == 0);

    /* The layout Hugging Face writes: header padded with spaces to 8, offsets contiguous in insertion order. */
    FILE *f = fopen(path, "rb");
    unsigned char pre[8];
    CHECK(f && fread(pre, 1, 8, f) == 8);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = (hl << 8) | pre[i];
    char *h = calloc(1, hl + 1);
    CHECK(hl % 8 == 0 && fread(h, 1, hl, f) == hl);
    if (f) fclose(f);
    CHECK(!strncmp(h, "{\"__metadata__\":{\"producer\":\"test\",\"format\":\"pt\"},\"a.f32\":{\"dtype\":\"F32\","
                      "\"shape\":[2,3],\"data_offsets\":[0,24]},\"u8 first/odd\":",
                   strlen("{\"__metadata__\":{\"producer\":\"test\",\"format\":\"pt\"},\"a.f32\":{\"dtype\":\"F32\","
                          "\"shape\":[2,3],\"data_offsets\":[0,24]},\"u8 first/odd\":")));
    CHECK(strstr(h, "\"b.bf16\":{\"dtype\":\"BF16\",\"shape\":[2,2],\"data_offsets\":[29,37]}"));
    CHECK(strstr(h, "\"scalar\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[69,77]}"));
    size_t hlen = strlen(h), text = hlen;
    while (text && h[text - 1] == ' ') text--;
    CHECK(hlen == hl && text && h[text - 1] == '}' && hlen - text < 8);
    free(h);

    st_archive *a = NULL;
    int rc = st_open(path, &a, &err);
    CHECKF(rc == 0, "open round trip: %s", err.msg);
    if (rc) return;
    CHECK(st_count(a) == 8);
    CHECK(!strcmp(st_metadata(a, "format"), "pt") && !strcmp(st_metadata(a, "producer"), "test"));
    const st_tensor *t = st_find(a, "a.f32");
    CHECK(t && t->dtype == ST_F32 && shape_is(t, 2, 2, 3, 0) && t->nbytes == 24 && !memcmp(t->data, f32, 24));
    t = st_find(a, "b.bf16");
    CHECK(t && t->dtype == ST_BF16 && t->nbytes == 8 && !memcmp(t->data, bf16, 8));
    CHECK(t && (uintptr_t)t->data % 2 == 0); /* at an odd file offset, so realigned by a copy */
    t = st_find(a, "c.i64");
    CHECK(t && t->dtype == ST_I64 && t->numel == 3 && !memcmp(t->data, i64, 24) && (uintptr_t)t->data % 8 == 0);
    t = st_find(a, "d.i32");
    CHECK(t && t->dtype == ST_I32 && !memcmp(t->data, i32, 8) && (uintptr_t)t->data % 4 == 0);
    t = st_find(a, "u8 first/odd");
    CHECK(t && t->dtype == ST_U8 && shape_is(t, 2, 1, 5, 0) && !memcmp(t->data, u8, 5));
    t = st_find(a, "empty");
    CHECK(t && shape_is(t, 3, 4, 0, 7) && t->numel == 0 && t->nbytes == 0 && t->data != NULL);
    t = st_find(a, "scalar");
    CHECK(t && t->ndim == 0 && t->numel == 1 && t->nbytes == 8 && !memcmp(t->data, &f64, 8));
    t = st_find(a, "quote\"and\\slash\ttab \xc3\xa9");
    CHECK(t && t->nbytes == 3 && !memcmp(t->data, u8, 3));
    st_close(a);

    /* An empty writer makes a valid empty file. */
    w = st_writer_new();
    path = tmp_path("empty.safetensors");
    CHECK(st_writer_save(w, path, &err) == 0);
    st_writer_free(w);
    rc = st_open(path, &a, &err);
    CHECKF(rc == 0 && st_count(a) == 0 && st_tensor_at(a, 0) == NULL, "empty file: %s", err.msg);
    st_close(a);
    struct stat st;
    CHECK(stat(path, &st) == 0 && st.st_size == 16); /* 8 + "{}" padded to 8 */
}

static void test_writer_errors(void) {
    st_writer *w = st_writer_new();
    modes_error err = {0};
    const int64_t s2[] = {2}, neg[] = {-1}, big[] = {(int64_t)1 << 54}, huge[] = {(int64_t)1 << 40, (int64_t)1 << 40};
    const int64_t nine[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    float x[2] = {1, 2};
    CHECK(st_writer_add(w, "x", ST_F32, 1, s2, x, &err) == 0);
    CHECK(st_writer_add(w, "x", ST_F32, 1, s2, x, &err) == MODES_E_INPUT && strstr(err.msg, "'x'"));
    CHECK(st_writer_add(w, "__metadata__", ST_F32, 1, s2, x, &err) == MODES_E_INPUT);
    CHECK(st_writer_add(w, "bad\xff", ST_F32, 1, s2, x, &err) == MODES_E_INPUT && strstr(err.msg, "UTF-8"));
    CHECK(st_writer_add(w, "y", (st_dtype)99, 1, s2, x, &err) == MODES_E_INPUT && strstr(err.msg, "'y'"));
    CHECK(st_writer_add(w, "y", ST_F32, 9, nine, x, &err) == MODES_E_INPUT);
    CHECK(st_writer_add(w, "y", ST_F32, -1, s2, x, &err) == MODES_E_INPUT);
    CHECK(st_writer_add(w, "y", ST_F32, 1, neg, x, &err) == MODES_E_INPUT);
    CHECK(st_writer_add(w, "y", ST_F32, 1, big, x, &err) == MODES_E_INPUT);
    CHECK(st_writer_add(w, "y", ST_U8, 2, huge, x, &err) == MODES_E_INPUT);
    CHECK(st_writer_add(w, "y", ST_F32, 1, s2, NULL, &err) == MODES_E_INPUT);
    CHECK(st_writer_set_metadata(w, "k", "bad\xc0\xaf", &err) == MODES_E_INPUT);
    /* Many names exercise the hash table's growth; a failed add leaves nothing behind. */
    char name[32];
    int ok = 1;
    for (int i = 0; i < 1000; i++) {
        snprintf(name, sizeof name, "t%d", i);
        ok &= st_writer_add(w, name, ST_F32, 1, s2, x, &err) == 0;
    }
    CHECK(ok);
    CHECK(st_writer_add(w, "t500", ST_F32, 1, s2, x, &err) == MODES_E_INPUT);
    const char *path = tmp_path("many.safetensors");
    CHECK(st_writer_save(w, path, &err) == 0);
    st_writer_free(w);
    st_writer_free(NULL);
    st_archive *a = NULL;
    CHECK(st_open(path, &a, &err) == 0 && st_count(a) == 1001 && st_find(a, "t999") && st_find(a, "y") == NULL);
    st_close(a);
    st_close(NULL);
    CHECK(st_count(NULL) == 0 && st_find(NULL, "x") == NULL && st_tensor_at(NULL, 0) == NULL);
    CHECK(st_dtype_size(ST_BF16) == 2 && st_dtype_size(ST_I64) == 8 && st_dtype_size(ST_BOOL) == 1);
    CHECK(st_dtype_size((st_dtype)42) == 0 && !strcmp(st_dtype_name((st_dtype)42), "?"));
    CHECK(!strcmp(st_dtype_name(ST_BF16), "BF16") && !strcmp(st_dtype_name(ST_BOOL), "BOOL"));
}

static void test_writer_atomic(void) {
    modes_error err = {0};
    st_writer *w = st_writer_new();
    const int64_t s1[] = {1};
    float v = 7;
    CHECK(st_writer_add(w, "v", ST_F32, 1, s1, &v, &err) == 0);

    /* A missing folder: an error naming the path, nothing created. */
    const char *missing = tmp_path("no/such/dir/out.safetensors");
    CHECK(st_writer_save(w, missing, &err) == MODES_E_INPUT && strstr(err.msg, missing));

    /* A target that cannot be replaced (a folder): the rename fails, the folder stays, no temporary. */
    const char *dir = tmp_path("target_is_dir");
    mkdir(dir, 0755);
    CHECK(st_writer_save(w, dir, &err) != 0 && strstr(err.msg, dir));
    struct stat st;
    CHECK(stat(dir, &st) == 0 && S_ISDIR(st.st_mode));
    CHECK(count_tmp_leftovers(tmpdir) == 0);

    /* Overwriting a good file replaces it whole. */
    const char *path = tmp_path("over.safetensors");
    write_bytes(path, "old contents", 12);
    CHECK(st_writer_save(w, path, &err) == 0);
    st_archive *a = NULL;
    CHECK(st_open(path, &a, &err) == 0 && st_count(a) == 1 && *(const float *)st_find(a, "v")->data == 7);
    st_close(a);
    CHECK(count_tmp_leftovers(tmpdir) == 0);
    st_writer_free(w);
}

static void write_shard(const char *path, const char *const *names, int n, float base) {
    st_writer *w = st_writer_new();
    modes_error err = {0};
    const int64_t s[] = {2};
    for (int i = 0; i < n; i++) {
        float v[2] = {base + (float)i, -(base + (float)i)};
        if (st_writer_add(w, names[i], ST_F32, 1, s, v, &err)) fprintf(stderr, "%s\n", err.msg);
    }
    if (st_writer_save(w, path, &err)) fprintf(stderr, "%s\n", err.msg);
    st_writer_free(w);
}

static void expect_bad_index(const char *index_json, const char *want, const char *label) {
    const char *p = tmp_path("sharded/model.safetensors.index.json");
    write_bytes(p, index_json, strlen(index_json));
    expect_bad(p, want, label);
}

static void test_sharded(void) {
    char dir[512], ip[512];
    snprintf(dir, sizeof dir, "%s", tmp_path("sharded"));
    snprintf(ip, sizeof ip, "%s", tmp_path("sharded/model.safetensors.index.json"));
    mkdir(dir, 0755);
    const char *n1[] = {"layer.0.w", "layer.0.b", "extra.not.in.map"};
    const char *n2[] = {"layer.1.w"};
    const char *n3[] = {"layer.0.w"};
    write_shard(tmp_path("sharded/model-00001-of-00002.safetensors"), n1, 3, 10);
    write_shard(tmp_path("sharded/model-00002-of-00002.safetensors"), n2, 1, 20);
    write_shard(tmp_path("sharded/dup.safetensors"), n3, 1, 30);
    /* A single-file checkpoint beside the index must lose to the index. */
    write_shard(tmp_path("sharded/model.safetensors"), n2, 1, 99);
    const char *index = "{\"metadata\": {\"total_size\": 32}, \"weight_map\": {"
                        "\"layer.1.w\": \"model-00002-of-00002.safetensors\","
                        "\"layer.0.w\": \"model-00001-of-00002.safetensors\","
                        "\"layer.0.b\": \"model-00001-of-00002.safetensors\"}}";
    write_bytes(ip, index, strlen(index));
    const char *paths[] = {dir, ip};
    for (int k = 0; k < 2; k++) {
        st_archive *a = NULL;
        modes_error err = {0};
        int rc = st_open(paths[k], &a, &err);
        CHECKF(rc == 0, "open sharded via %s: %s", paths[k], err.msg);
        if (rc) continue;
        CHECK(st_count(a) == 4 && st_shard_count(a) == 2);
        CHECK(strstr(st_shard_path(a, 0), "sharded/model-00001-of-00002.safetensors"));
        CHECK(strstr(st_shard_path(a, 1), "sharded/model-00002-of-00002.safetensors"));
        const st_tensor *t = st_find(a, "layer.1.w");
        CHECK(t && t->shard == 1 && ((const float *)t->data)[0] == 20 && ((const float *)t->data)[1] == -20);
        t = st_find(a, "layer.0.b");
        CHECK(t && t->shard == 0 && ((const float *)t->data)[0] == 11);
        t = st_find(a, "extra.not.in.map"); /* in a named shard but not in the map: included */
        CHECK(t && t->shard == 0 && ((const float *)t->data)[0] == 12);
        CHECK(!strcmp(st_tensor_at(a, 0)->name, "extra.not.in.map") && !strcmp(st_tensor_at(a, 3)->name, "layer.1.w"));
        st_close(a);
    }

    expect_bad_index("{\"weight_map\": {\"a\": \"missing.safetensors\"}}", "missing.safetensors", "missing shard");
    expect_bad_index("{\"weight_map\": {\"layer.9.w\": \"model-00001-of-00002.safetensors\"}}", "'layer.9.w'",
                     "tensor missing from its shard");
    expect_bad_index("{\"weight_map\": {\"layer.0.w\": \"model-00002-of-00002.safetensors\","
                     "\"layer.1.w\": \"model-00002-of-00002.safetensors\"}}",
                     "'layer.0.w'", "tensor in a shard the map does not name");
    expect_bad_index("{\"weight_map\": {\"layer.0.w\": \"model-00001-of-00002.safetensors\","
                     "\"layer.1.w\": \"model-00001-of-00002.safetensors\","
                     "\"layer.0.b\": \"model-00002-of-00002.safetensors\"}}",
                     "'layer.1.w' is in model-00002-of-00002.safetensors, not in model-00001-of-00002.safetensors",
                     "tensor in another shard than the map says");
    expect_bad_index("{\"weight_map\": {\"a\": \"../sharded/model-00001-of-00002.safetensors\"}}", "not a plain",
                     "path traversal");
    expect_bad_index("{\"weight_map\": {\"a\": \"..\"}}", "not a plain", "dot dot");
    expect_bad_index("{\"weight_map\": {\"a\": \"/etc/passwd\"}}", "not a plain", "absolute");
    expect_bad_index("{\"weight_map\": {\"a\": \"sub/x.safetensors\"}}", "not a plain", "subfolder");
    expect_bad_index("{\"weight_map\": {\"a\": \"\"}}", "not a plain", "empty shard name");
    expect_bad_index("{\"weight_map\": {\"layer.0.w\": \"model-00001-of-00002.safetensors\","
                     "\"layer.1.w\": \"dup.safetensors\"}}",
                     "two shards", "tensor in two shards");
    expect_bad_index("{\"weight_map\": {}}", "empty", "empty weight map");
    expect_bad_index("{\"weight_map\": [1]}", "weight_map", "weight map not an object");
    expect_bad_index("{\"metadata\": {}}", "weight_map", "no weight map");
    expect_bad_index("{\"metadata\": 3, \"weight_map\": {\"a\": \"b\"}}", "metadata", "metadata not an object");
    expect_bad_index("{\"weight_map\": {\"a\": 5}}", "'a'", "shard not a string");
    expect_bad_index("[]", "object", "index not an object");
    expect_bad_index("{\"weight_map\": ", "invalid JSON", "index not JSON");
    expect_bad_index("", "invalid JSON", "empty index");

    /* A shard that is itself broken is reported under its own name. */
    write_bytes(tmp_path("sharded/broken.safetensors"), "1234567", 7);
    expect_bad_index("{\"weight_map\": {\"a\": \"broken.safetensors\"}}", "broken.safetensors", "broken shard");
    {
        st_archive *a = NULL;
        modes_error err = {0};
        CHECK(st_open(tmp_path("sharded/model.safetensors.index.json"), &a, &err) == MODES_E_INPUT &&
              strstr(err.msg, "broken.safetensors: file of 7 bytes"));
    }

    /* Folders without a checkpoint, and paths that do not exist. */
    const char *emptydir = tmp_path("nothing");
    mkdir(emptydir, 0755);
    expect_bad(emptydir, "neither", "empty folder");
    expect_bad(tmp_path("does-not-exist.safetensors"), "cannot open", "missing file");
    expect_bad(tmp_path("does-not-exist.index.json"), "cannot open", "missing index");
}

static void test_malformed(void) {
    static const struct {
        const char *name, *header, *want;
        size_t data;
    } cases[] = {
        {"notjson", "not json at all!", "invalid JSON", 0},
        {"array", "[1, 2, 3]", "object", 0},
        {"string", "\"abc\"", "object", 0},
        {"entry_not_object", "{\"a\": 1}", "'a'", 0},
        {"unknown_dtype", "{\"w.x\": {\"dtype\": \"F8_E4M3\", \"shape\": [1], \"data_offsets\": [0, 1]}}", "'F8_E4M3'",
         1},
        {"lower_dtype", "{\"w\": {\"dtype\": \"f32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", "'f32'", 4},
        {"no_dtype", "{\"w\": {\"shape\": [1], \"data_offsets\": [0, 4]}}", "dtype", 4},
        {"dtype_number", "{\"w\": {\"dtype\": 4, \"shape\": [1], \"data_offsets\": [0, 4]}}", "dtype", 4},
        {"no_shape", "{\"w\": {\"dtype\": \"F32\", \"data_offsets\": [0, 4]}}", "shape", 4},
        {"negative_dim", "{\"w\": {\"dtype\": \"F32\", \"shape\": [-1], \"data_offsets\": [0, 4]}}", "shape[0]", 4},
        {"fraction_dim", "{\"w\": {\"dtype\": \"F32\", \"shape\": [1.5], \"data_offsets\": [0, 4]}}", "shape[0]", 4},
        {"string_dim", "{\"w\": {\"dtype\": \"F32\", \"shape\": [\"1\"], \"data_offsets\": [0, 4]}}", "shape[0]", 4},
        {"nine_dims", "{\"w\": {\"dtype\": \"U8\", \"shape\": [1,1,1,1,1,1,1,1,1], \"data_offsets\": [0, 1]}}",
         "9 dimensions", 1},
        {"shape_overflow", "{\"w\": {\"dtype\": \"U8\", \"shape\": [1099511627776, 1099511627776], "
                           "\"data_offsets\": [0, 0]}}",
         "too many", 0},
        {"bytes_overflow", "{\"w\": {\"dtype\": \"F64\", \"shape\": [4503599627370496, 1024], "
                           "\"data_offsets\": [0, 0]}}",
         "too many bytes", 0},
        {"no_offsets", "{\"w\": {\"dtype\": \"F32\", \"shape\": [1]}}", "data_offsets", 4},
        {"three_offsets", "{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4, 8]}}",
         "data_offsets", 8},
        {"negative_offset", "{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [-4, 0]}}",
         "data_offsets", 8},
        {"offsets_out_of_range", "{\"w\": {\"dtype\": \"F32\", \"shape\": [25], \"data_offsets\": [0, 100]}}",
         "past the end of the data area (4 bytes)", 4},
        {"offsets_mismatch", "{\"x.weight\": {\"dtype\": \"F32\", \"shape\": [2, 3], \"data_offsets\": [0, 12]}}",
         "tensor 'x.weight': data_offsets [0, 12] do not match shape [2, 3] x F32 (24 bytes)", 24},
        {"begin_after_end", "{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [8, 4]}}", "[8, 4]: begin is after end", 8},
        {"overlap", "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
                    " \"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [4, 12]}}",
         "overlap", 12},
        {"same_range", "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
                       " \"b\": {\"dtype\": \"I32\", \"shape\": [2], \"data_offsets\": [0, 8]}}",
         "overlap", 8},
        {"truncated_data", "{\"w\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]}}", "past the end",
         8},
        {"duplicate_name", "{\"a\": {\"dtype\": \"U8\", \"shape\": [1], \"data_offsets\": [0, 1]},"
                           " \"a\": {\"dtype\": \"U8\", \"shape\": [1], \"data_offsets\": [1, 2]}}",
         "twice", 2},
        {"nul_in_name", "{\"a\\u0000b\": {\"dtype\": \"U8\", \"shape\": [1], \"data_offsets\": [0, 1]}}", "NUL", 1},
        {"metadata_not_object", "{\"__metadata__\": [1]}", "__metadata__", 0},
        {"metadata_not_string", "{\"__metadata__\": {\"total\": 5}}", "'total'", 0},
        {"metadata_twice", "{\"__metadata__\": {}, \"__metadata__\": {}}", "twice", 0},
        {"too_deep", "{\"w\": {\"dtype\": \"U8\", \"shape\": [[[[[[[[[1]]]]]]]]], \"data_offsets\": [0, 1]}}",
         "nesting", 1},
        {"trailing_garbage", "{} x", "invalid JSON", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char name[128];
        snprintf(name, sizeof name, "bad_%s.safetensors", cases[i].name);
        const char *p = tmp_path(name);
        write_st(p, cases[i].header, cases[i].data);
        expect_bad(p, cases[i].want, cases[i].name);
    }

    /* Length prefixes that lie. */
    const char *p = tmp_path("bad_empty.safetensors");
    write_bytes(p, "", 0);
    expect_bad(p, "empty", "empty file");
    p = tmp_path("bad_7bytes.safetensors");
    write_bytes(p, "\x02\0\0\0\0\0\0", 7);
    expect_bad(p, "too short", "7-byte file");
    p = tmp_path("bad_hlen_past_end.safetensors");
    write_raw(p, "{}", 100, 0);
    expect_bad(p, "past the end of the file", "header length larger than file");
    p = tmp_path("bad_hlen_huge.safetensors");
    write_raw(p, "{}", (uint64_t)1 << 63, 0);
    expect_bad(p, "over the limit", "huge header length");
    p = tmp_path("bad_hlen_max.safetensors");
    write_raw(p, "{}", UINT64_MAX, 0);
    expect_bad(p, "over the limit", "max header length");
    p = tmp_path("bad_hlen_zero.safetensors");
    write_raw(p, "{}", 0, 0);
    expect_bad(p, "too small", "zero header length");
    p = tmp_path("bad_hlen_one.safetensors");
    write_raw(p, "{}", 1, 0);
    expect_bad(p, "too small", "one-byte header");
    p = tmp_path("bad_hlen_short.safetensors"); /* cuts the JSON short */
    write_raw(p, "{\"a\": {}}", 5, 0);
    expect_bad(p, "invalid JSON", "header length cuts the JSON");

    /* Accepted on purpose: gaps, spare bytes after the last tensor, zero-sized tensors anywhere,
     * unknown keys in an entry, and padding spaces after the JSON. */
    p = tmp_path("ok_gaps.safetensors");
    write_st(p,
             "{\"a\": {\"dtype\": \"U8\", \"shape\": [2], \"data_offsets\": [0, 2], \"extra\": true},"
             " \"z\": {\"dtype\": \"F32\", \"shape\": [0, 5], \"data_offsets\": [1, 1]},"
             " \"b\": {\"dtype\": \"U8\", \"shape\": [2], \"data_offsets\": [4, 6]}}        ",
             10);
    st_archive *a = NULL;
    modes_error err = {0};
    int rc = st_open(p, &a, &err);
    CHECKF(rc == 0, "gaps: %s", err.msg);
    if (!rc) {
        const st_tensor *b = st_find(a, "b");
        CHECK(st_count(a) == 3 && b && ((const unsigned char *)b->data)[0] == 4 && st_find(a, "z")->nbytes == 0);
        st_close(a);
    }
}

/* Every prefix of a real checkpoint shorter than the whole must be refused, never read past. */
static void test_truncated_model(void) {
    const char *src = shared_path("ref/qwen3vlmoe-tiny-a/model/model.safetensors");
    FILE *f = fopen(src, "rb");
    CHECK(f != NULL);
    if (!f) return;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)len);
    CHECK(fread(buf, 1, (size_t)len, f) == (size_t)len);
    fclose(f);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = (hl << 8) | buf[i];
    long cuts[] = {1, 7, 8, 9, 100, 8 + (long)hl / 2, 8 + (long)hl - 1, 8 + (long)hl, 8 + (long)hl + 1,
                   8 + (long)hl + 4096, len / 2, len - 4, len - 1};
    const char *p = tmp_path("truncated.safetensors");
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        write_bytes(p, buf, (size_t)cuts[i]);
        char label[64];
        snprintf(label, sizeof label, "model cut at %ld", cuts[i]);
        expect_bad(p, NULL, label);
    }
    /* The whole file still opens from the temp folder. */
    write_bytes(p, buf, (size_t)len);
    st_archive *a = NULL;
    modes_error err = {0};
    CHECK(st_open(p, &a, &err) == 0 && st_count(a) == 93);
    st_close(a);
    free(buf);
}

/* Random byte changes in a small header: each result is either a clean open or MODES_E_INPUT, and
 * under the sanitizers nothing is read out of bounds. */
static void test_mutations(void) {
    st_writer *w = st_writer_new();
    modes_error err = {0};
    const int64_t s[] = {2, 3}, s1[] = {5};
    float v[6] = {1, 2, 3, 4, 5, 6};
    uint8_t u[5] = {1, 2, 3, 4, 5};
    st_writer_add(w, "alpha", ST_F32, 2, s, v, &err);
    st_writer_add(w, "beta", ST_U8, 1, s1, u, &err);
    st_writer_add(w, "gamma", ST_I32, 1, s1, v, &err);
    const char *good = tmp_path("mut_src.safetensors");
    st_writer_save(w, good, &err);
    st_writer_free(w);
    FILE *f = fopen(good, "rb");
    unsigned char buf[4096];
    size_t len = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (f) fclose(f);
    CHECK(len > 100);
    const char *p = tmp_path("mut.safetensors");
    const char alphabet[] = "{}[]\",:0123456789-.e \x01\xff" "FUIB";
    uint32_t seed = 12345;
    int bad_rc = 0, opened = 0;
    for (int iter = 0; iter < 600; iter++) {
        unsigned char m[4096];
        memcpy(m, buf, len);
        int edits = 1 + iter % 3;
        for (int e = 0; e < edits; e++) {
            seed = seed * 1664525u + 1013904223u;
            size_t at = (seed >> 8) % (len < 200 ? len : 200);
            seed = seed * 1664525u + 1013904223u;
            m[at] = (unsigned char)alphabet[(seed >> 8) % (sizeof alphabet - 1)];
        }
        write_bytes(p, m, len);
        st_archive *a = NULL;
        modes_error e2 = {0};
        int rc = st_open(p, &a, &e2);
        if (rc == 0) {
            opened++;
            for (size_t i = 0; i < st_count(a); i++) { /* touch every byte the archive hands out */
                const st_tensor *t = st_tensor_at(a, i);
                volatile unsigned char sum = 0;
                for (size_t b = 0; b < t->nbytes; b++) sum ^= ((const unsigned char *)t->data)[b];
                (void)sum;
            }
            st_close(a);
        } else if (rc != MODES_E_INPUT || !strstr(e2.msg, p) || a) {
            bad_rc++;
            fprintf(stderr, "mutation %d: rc %d: %s\n", iter, rc, e2.msg);
        }
    }
    CHECK(bad_rc == 0);
    CHECK(opened > 0 && opened < 600);
}

int main(void) {
    require_shared();
    snprintf(tmpdir, sizeof tmpdir, "/tmp/modes_test_st_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 2;
    }
    test_reference_model();
    test_reference_cases();
    test_round_trip();
    test_writer_errors();
    test_writer_atomic();
    test_sharded();
    test_malformed();
    test_truncated_model();
    test_mutations();
    remove_tree(tmpdir);
    return check_done();
}
