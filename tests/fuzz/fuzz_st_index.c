/* A sharded checkpoint's model.safetensors.index.json (src/io/safetensors.c): the input is the
 * index, in a folder that also holds two valid shards (a.safetensors: "w.a" F32 [2], "w.b" BF16
 * [3]; b.safetensors: "w.c" I64 [1], "w.d" U8 [0]). Shard names that leave the folder, name missing
 * files or disagree with the shards must be refused; on success every tensor of the named shards is
 * there, once. */
#include "fuzz.h"
#include "io/safetensors.h"

static char *dir, *index_path;

static void make_shard(const char *name, const char *t1, st_dtype d1, int64_t n1, const char *t2, st_dtype d2,
                       int64_t n2) {
    static const uint8_t bytes[64] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    st_writer *w = st_writer_new();
    modes_error err = {0};
    char *p = fuzz_path(name);
    FUZZ_CHECK(w && st_writer_add(w, t1, d1, 1, &n1, bytes, &err) == 0 && st_writer_add(w, t2, d2, 1, &n2, bytes, &err) == 0 &&
                   st_writer_save(w, p, &err) == 0,
               "making %s: %s", name, err.msg);
    st_writer_free(w);
    free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!index_path) {
        make_shard("idx/a.safetensors", "w.a", ST_F32, 2, "w.b", ST_BF16, 3);
        make_shard("idx/b.safetensors", "w.c", ST_I64, 1, "w.d", ST_U8, 0);
        index_path = fuzz_path("idx/model.safetensors.index.json");
        dir = fuzz_path("idx");
    }
    fuzz_write(index_path, data, size);
    modes_error err = {0};
    for (int pass = 0; pass < 2; pass++) { /* the index itself, and the folder holding it */
        st_archive *a = NULL;
        int rc = st_open(pass ? dir : index_path, &a, &err);
        if (rc) {
            FUZZ_CHECK(!a, "archive returned on failure");
            fuzz_check_error(rc, &err, index_path);
            continue;
        }
        size_t n = st_count(a);
        FUZZ_CHECK(st_shard_count(a) >= 1 && st_shard_count(a) <= 2, "%d shards", st_shard_count(a));
        FUZZ_CHECK(n == 2 || n == 4, "%zu tensors", n);
        for (size_t i = 0; i < n; i++) {
            const st_tensor *t = st_tensor_at(a, i);
            FUZZ_CHECK(st_find(a, t->name) == t && st_shard_path(a, t->shard), "tensor %zu", i);
            if (i) FUZZ_CHECK(strcmp(st_tensor_at(a, i - 1)->name, t->name) < 0, "names not sorted and distinct");
        }
        st_close(a);
    }
    return 0;
}
