/* A safetensors file (src/io/safetensors.c): the input is the whole file, opened through st_open as
 * `modes forward --input` and model loading do. On success every documented guarantee is checked
 * (sizes match shapes, data aligned to its dtype, name order, st_find), every tensor byte is read,
 * and the tensors go through the writer and back: the copy must open and hold the same tensors. */
#include "fuzz.h"
#include "io/safetensors.h"

static char *path, *copy_path;

static void check_archive(const st_archive *a) {
    size_t n = st_count(a);
    FUZZ_CHECK(n <= ST_MAX_TENSORS, "%zu tensors", n);
    FUZZ_CHECK(st_shard_count(a) == 1, "%d shards", st_shard_count(a));
    unsigned sum = 0;
    for (size_t i = 0; i < n; i++) {
        const st_tensor *t = st_tensor_at(a, i);
        FUZZ_CHECK(t && t->name, "tensor %zu", i);
        if (i) FUZZ_CHECK(strcmp(st_tensor_at(a, i - 1)->name, t->name) < 0, "names not sorted and distinct");
        FUZZ_CHECK(st_find(a, t->name) == t, "st_find misses '%s'", t->name);
        FUZZ_CHECK(t->ndim >= 0 && t->ndim <= ST_MAX_DIMS, "ndim %d", t->ndim);
        int64_t numel = 1;
        for (int d = 0; d < t->ndim; d++) {
            FUZZ_CHECK(t->shape[d] >= 0, "negative dimension");
            numel = t->shape[d] == 0 || numel == 0 ? 0 : numel * t->shape[d];
        }
        FUZZ_CHECK(numel == t->numel, "numel %lld, shape says %lld", (long long)t->numel, (long long)numel);
        FUZZ_CHECK(t->nbytes == (size_t)t->numel * st_dtype_size(t->dtype), "nbytes");
        FUZZ_CHECK(t->data && (uintptr_t)t->data % st_dtype_size(t->dtype) == 0, "data of '%s' misaligned", t->name);
        FUZZ_CHECK(t->shard == 0, "shard %d", t->shard);
        for (size_t b = 0; b < t->nbytes; b++) sum += ((const unsigned char *)t->data)[b];
    }
    (void)sum;
    FUZZ_CHECK(st_tensor_at(a, n) == NULL, "st_tensor_at past the end");
}

/* Writer round trip. Names the writer refuses (not valid UTF-8 once in JSON) cannot have come from
 * a file, so every add must succeed. */
static void round_trip(const st_archive *a) {
    st_writer *w = st_writer_new();
    modes_error err = {0};
    FUZZ_CHECK(w, "out of memory");
    for (size_t i = 0; i < st_count(a); i++) {
        const st_tensor *t = st_tensor_at(a, i);
        int rc = st_writer_add(w, t->name, t->dtype, t->ndim, t->shape, t->data, &err);
        FUZZ_CHECK(rc == 0, "writer refuses tensor '%s' that was read: %s", t->name, err.msg);
    }
    const char *fmt = st_metadata(a, "format");
    if (fmt) FUZZ_CHECK(st_writer_set_metadata(w, "format", fmt, &err) == 0, "metadata: %s", err.msg);
    int rc = st_writer_save(w, copy_path, &err);
    st_writer_free(w);
    if (rc) { /* the only legitimate failure: the header grows over the limit when written out */
        FUZZ_CHECK(strstr(err.msg, "over the limit"), "writer failed: %s", err.msg);
        return;
    }
    st_archive *b = NULL;
    rc = st_open(copy_path, &b, &err);
    FUZZ_CHECK(rc == 0, "written copy does not open: %s", err.msg);
    FUZZ_CHECK(st_count(b) == st_count(a), "copy has %zu tensors, not %zu", st_count(b), st_count(a));
    for (size_t i = 0; i < st_count(a); i++) {
        const st_tensor *x = st_tensor_at(a, i), *y = st_tensor_at(b, i);
        FUZZ_CHECK(!strcmp(x->name, y->name) && x->dtype == y->dtype && x->ndim == y->ndim &&
                       !memcmp(x->shape, y->shape, (size_t)x->ndim * sizeof *x->shape) && x->nbytes == y->nbytes &&
                       (x->nbytes == 0 || !memcmp(x->data, y->data, x->nbytes)),
                   "tensor '%s' changed in the copy", x->name);
    }
    if (fmt) FUZZ_CHECK(st_metadata(b, "format") && !strcmp(st_metadata(b, "format"), fmt), "metadata changed");
    st_close(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!path) {
        path = fuzz_path("in.safetensors");
        copy_path = fuzz_path("copy.safetensors");
    }
    fuzz_write(path, data, size);
    st_archive *a = NULL;
    modes_error err = {0};
    int rc = st_open(path, &a, &err);
    if (rc) {
        FUZZ_CHECK(!a, "archive returned on failure");
        fuzz_check_error(rc, &err, path);
        return 0;
    }
    check_archive(a);
    round_trip(a);
    st_close(a);
    return 0;
}
