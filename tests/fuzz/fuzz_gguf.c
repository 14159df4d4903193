/* A GGUF file (src/io/gguf.c): the input is the whole file, opened through gguf_open. On success
 * every documented guarantee is checked (lookups, shapes against sizes, ranges inside the file,
 * alignment), every value and tensor byte is read, and the file goes through the writer and back:
 * the copy must open and hold the same metadata and tensors. */
#include "fuzz.h"
#include "io/gguf.h"

static char *path, *copy_path;

static unsigned sum_bytes(const void *p, size_t n) {
    unsigned s = 0;
    for (size_t i = 0; i < n; i++) s += ((const unsigned char *)p)[i];
    return s;
}

static void check_tensors(const gguf_file *f, size_t file_len) {
    const size_t n = gguf_tensor_count(f);
    const uint32_t align = gguf_alignment(f);
    FUZZ_CHECK(align && !(align & (align - 1)), "alignment %u", align);
    for (size_t i = 0; i < n; i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        FUZZ_CHECK(t && t->name && *t->name, "tensor %zu", i);
        FUZZ_CHECK(gguf_find_tensor(f, t->name) == t, "lookup of '%s'", t->name);
        FUZZ_CHECK(t->ndim >= 0 && t->ndim <= GGUF_MAX_DIMS && gguf_type_name(t->type), "'%s'", t->name);
        size_t nbytes;
        FUZZ_CHECK(gguf_tensor_bytes(t->type, t->ndim, t->ne, &nbytes) && nbytes == t->nbytes, "size of '%s'", t->name);
        int64_t ne = 1;
        for (int d = 0; d < GGUF_MAX_DIMS; d++) {
            FUZZ_CHECK(t->ne[d] > 0 && (d < t->ndim || t->ne[d] == 1), "'%s' dimension %d", t->name, d);
            ne *= t->ne[d];
        }
        FUZZ_CHECK(ne == t->nelements, "'%s' elements", t->name);
        FUZZ_CHECK(t->offset % align == 0 && (uintptr_t)t->data % align == 0, "'%s' alignment", t->name);
        (void)file_len;
        (void)sum_bytes(t->data, t->nbytes);
    }
    FUZZ_CHECK(gguf_tensor_at(f, n) == NULL, "gguf_tensor_at past the end");
}

/* Whether the writer can take the entry: strings as C strings hold no NUL. */
static int writable(const gguf_kv *kv) {
    for (size_t i = 0; kv->elem == GGUF_STRING && i < kv->n; i++)
        if (memchr(kv->str[i].s, 0, kv->str[i].len)) return 0;
    return 1;
}

static void check_metadata(const gguf_file *f, int *round_trip) {
    const size_t n = gguf_kv_count(f);
    modes_error err = {0};
    for (size_t i = 0; i < n; i++) {
        const gguf_kv *kv = gguf_kv_at(f, i);
        FUZZ_CHECK(kv && kv->key && *kv->key && gguf_find_kv(f, kv->key) == kv, "entry %zu", i);
        FUZZ_CHECK(kv->elem < GGUF_N_VTYPES && kv->elem != GGUF_ARRAY, "'%s' element type", kv->key);
        FUZZ_CHECK(kv->type == GGUF_ARRAY || (kv->type == kv->elem && kv->n == 1), "'%s' scalar", kv->key);
        for (size_t j = 0; kv->elem == GGUF_STRING && j < kv->n; j++) (void)sum_bytes(kv->str[j].s, kv->str[j].len);
        int64_t v;
        for (size_t j = 0; kv->elem != GGUF_STRING && j < kv->n; j++) (void)gguf_int_at(kv, j, &v);
        *round_trip &= writable(kv);
        uint32_t u;
        const char *s;
        /* Messages name the file; a key is shown with its control bytes as '?', so it is not searched for. */
        int rc = gguf_get_u32(f, kv->key, &u, &err);
        if (rc) fuzz_check_error(rc, &err, path);
        if ((rc = gguf_get_str(f, kv->key, &s, &err))) fuzz_check_error(rc, &err, path);
        else FUZZ_CHECK(strlen(s) == kv->str[0].len, "'%s' string", kv->key);
    }
}

static void copy_kv(gguf_writer *w, const gguf_kv *kv) {
    modes_error err = {0};
    int rc;
    if (kv->type != GGUF_ARRAY && kv->elem == GGUF_STRING) {
        char *s = strndup(kv->str[0].s, kv->str[0].len);
        rc = gguf_set_str(w, kv->key, s, &err);
        free(s);
    } else if (kv->type != GGUF_ARRAY) {
        unsigned char v[8]; /* values are little-endian, as this machine */
        memcpy(v, kv->data, (size_t)gguf_vtype_size(kv->elem));
        rc = gguf_set_value(w, kv->key, kv->elem, v, &err);
    } else if (kv->elem == GGUF_STRING) {
        char **s = calloc(kv->n ? kv->n : 1, sizeof *s);
        for (size_t i = 0; i < kv->n; i++) s[i] = strndup(kv->str[i].s, kv->str[i].len);
        rc = gguf_set_array(w, kv->key, GGUF_STRING, s, kv->n, &err);
        for (size_t i = 0; i < kv->n; i++) free(s[i]);
        free(s);
    } else {
        rc = gguf_set_array(w, kv->key, kv->elem, kv->data, kv->n, &err);
    }
    FUZZ_CHECK(rc == 0, "writer refuses '%s': %s", kv->key, err.msg);
}

static void same_files(const gguf_file *a, const gguf_file *b) {
    FUZZ_CHECK(gguf_kv_count(a) == gguf_kv_count(b) && gguf_tensor_count(a) == gguf_tensor_count(b), "counts");
    FUZZ_CHECK(gguf_alignment(a) == gguf_alignment(b), "alignment");
    for (size_t i = 0; i < gguf_kv_count(a); i++) {
        const gguf_kv *x = gguf_kv_at(a, i), *y = gguf_kv_at(b, i);
        FUZZ_CHECK(!strcmp(x->key, y->key) && x->type == y->type && x->elem == y->elem && x->n == y->n, "'%s'", x->key);
        for (size_t j = 0; x->elem == GGUF_STRING && j < x->n; j++)
            FUZZ_CHECK(x->str[j].len == y->str[j].len && !memcmp(x->str[j].s, y->str[j].s, x->str[j].len), "'%s'",
                       x->key);
        if (x->elem == GGUF_BOOL)
            for (size_t j = 0; j < x->n; j++) FUZZ_CHECK(gguf_bool_at(x, j) == gguf_bool_at(y, j), "'%s'", x->key);
        else if (x->elem != GGUF_STRING)
            FUZZ_CHECK(!memcmp(x->data, y->data, x->n * (size_t)gguf_vtype_size(x->elem)), "'%s'", x->key);
    }
    for (size_t i = 0; i < gguf_tensor_count(a); i++) {
        const gguf_tensor *x = gguf_tensor_at(a, i), *y = gguf_tensor_at(b, i);
        FUZZ_CHECK(!strcmp(x->name, y->name) && x->type == y->type && x->ndim == y->ndim &&
                       !memcmp(x->ne, y->ne, sizeof x->ne) && x->nbytes == y->nbytes &&
                       !memcmp(x->data, y->data, x->nbytes),
                   "tensor '%s' changed in the copy", x->name);
    }
}

static void round_trip(const gguf_file *f) {
    gguf_writer *w = gguf_writer_new();
    FUZZ_CHECK(w, "out of memory");
    modes_error err = {0};
    for (size_t i = 0; i < gguf_kv_count(f); i++) copy_kv(w, gguf_kv_at(f, i));
    for (size_t i = 0; i < gguf_tensor_count(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        if (strlen(t->name) >= GGUF_MAX_NAME) { /* llama.cpp cannot read those: the writer refuses them */
            gguf_writer_free(w);
            return;
        }
        FUZZ_CHECK(gguf_add_tensor(w, t->name, t->type, t->ndim, t->ne, t->data, &err) == 0, "writer refuses '%s': %s",
                   t->name, err.msg);
    }
    FUZZ_CHECK(gguf_writer_save(w, copy_path, &err) == 0, "save: %s", err.msg);
    gguf_writer_free(w);
    gguf_file *b = NULL;
    FUZZ_CHECK(gguf_open(copy_path, &b, &err) == 0, "the copy does not open: %s", err.msg);
    same_files(f, b);
    gguf_close(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!path) {
        path = fuzz_path("in.gguf");
        copy_path = fuzz_path("copy.gguf");
    }
    fuzz_write(path, data, size);
    gguf_file *f = NULL;
    modes_error err = {0};
    int rc = gguf_open(path, &f, &err);
    if (rc) {
        FUZZ_CHECK(!f, "file returned on failure");
        fuzz_check_error(rc, &err, path);
        return 0;
    }
    int writable_all = 1;
    check_metadata(f, &writable_all);
    check_tensors(f, size);
    if (writable_all) round_trip(f);
    gguf_close(f);
    return 0;
}
