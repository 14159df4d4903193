/* The GGUF writer (gguf.h): metadata and tensor infos are encoded as they are added, tensor data
 * copied in or produced at save time, and the file written atomically in llama.cpp's layout. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/file.h"
#include "io/gguf.h"

typedef struct {
    char *key;
    unsigned char *bytes; /* the encoded value: type, then the value or the array */
    size_t len;
} w_kv;

typedef struct {
    char *name;
    uint32_t type;
    int ndim;
    int64_t ne[GGUF_MAX_DIMS];
    size_t nbytes;
    void *data; /* owned copy, or NULL with fill */
    gguf_fill_fn fill;
    void *ctx;
} w_tensor;

struct gguf_writer {
    w_kv *kv;
    size_t n_kv, cap_kv;
    w_tensor *t;
    size_t n_t, cap_t;
    uint32_t alignment;
};

gguf_writer *gguf_writer_new(void) {
    gguf_writer *w = calloc(1, sizeof *w);
    if (w) w->alignment = GGUF_DEFAULT_ALIGNMENT;
    return w;
}

void gguf_writer_free(gguf_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n_kv; i++) free(w->kv[i].key), free(w->kv[i].bytes);
    for (size_t i = 0; i < w->n_t; i++) free(w->t[i].name), free(w->t[i].data);
    free(w->kv);
    free(w->t);
    free(w);
}

static int oom(modes_error *err) { return modes_fail(err, MODES_E_INTERNAL, "gguf writer: out of memory"); }

/* A growable byte buffer for one encoded value. */
typedef struct {
    unsigned char *p;
    size_t len, cap;
    int failed;
} bytes;

static void put(bytes *b, const void *src, size_t n) {
    if (b->failed) return;
    if (n > b->cap - b->len) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap - b->len < n) {
            if (cap > SIZE_MAX / 2) {
                b->failed = 1;
                return;
            }
            cap *= 2;
        }
        unsigned char *p = realloc(b->p, cap);
        if (!p) {
            b->failed = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->len, src, n);
    b->len += n;
}

static void put_le(bytes *b, uint64_t v, int n) {
    unsigned char s[8];
    for (int i = 0; i < n; i++) s[i] = (unsigned char)(v >> (8 * i));
    put(b, s, (size_t)n);
}

static void put_str(bytes *b, const char *s) {
    const size_t n = strlen(s);
    put_le(b, n, 8);
    put(b, s, n);
}

static int key_known(const gguf_writer *w, const char *key) {
    for (size_t i = 0; i < w->n_kv; i++)
        if (!strcmp(w->kv[i].key, key)) return 1;
    return 0;
}

/* Takes b's bytes (freed on failure). */
static int add_kv(gguf_writer *w, const char *key, bytes *b, modes_error *err) {
    int rc = 0;
    if (!w || !key || !*key) rc = modes_fail(err, MODES_E_INPUT, "gguf writer: empty metadata key");
    else if (key_known(w, key)) rc = modes_fail(err, MODES_E_INPUT, "gguf writer: metadata key '%s' set twice", key);
    else if (b->failed) rc = oom(err);
    if (!rc && w->n_kv == w->cap_kv) {
        size_t cap = w->cap_kv ? 2 * w->cap_kv : 32;
        w_kv *kv = realloc(w->kv, cap * sizeof *kv);
        if (kv) w->kv = kv, w->cap_kv = cap;
        else rc = oom(err);
    }
    char *k = rc ? NULL : strdup(key);
    if (!rc && !k) rc = oom(err);
    if (rc) {
        free(b->p);
        return rc;
    }
    w->kv[w->n_kv++] = (w_kv){k, b->p, b->len};
    return 0;
}

static int not_alignment(const char *key, modes_error *err) {
    return key && !strcmp(key, "general.alignment")
               ? modes_fail(err, MODES_E_INPUT, "gguf writer: general.alignment must be a u32")
               : 0;
}

/* A native value of `size` bytes at src, as an integer to write little-endian. */
static uint64_t native(const void *src, int size) {
    const unsigned char *p = src;
    if (size == 1) return p[0];
    if (size == 2) {
        uint16_t x;
        memcpy(&x, p, 2);
        return x;
    }
    if (size == 4) {
        uint32_t x;
        memcpy(&x, p, 4);
        return x;
    }
    uint64_t x;
    memcpy(&x, p, 8);
    return x;
}

int gguf_set_value(gguf_writer *w, const char *key, gguf_vtype type, const void *value, modes_error *err) {
    const int size = gguf_vtype_size(type);
    if (!size) return modes_fail(err, MODES_E_INPUT, "gguf writer: metadata key '%s': %s is not a numeric type",
                                 key ? key : "", gguf_vtype_name(type));
    if (!value) return modes_fail(err, MODES_E_INPUT, "gguf writer: metadata key '%s' has no value", key ? key : "");
    const uint64_t v = type == GGUF_BOOL ? native(value, 1) != 0 : native(value, size);
    const int align = key && !strcmp(key, "general.alignment");
    if (align && (type != GGUF_U32 || !v || (v & (v - 1))))
        return modes_fail(err, MODES_E_INPUT, "gguf writer: general.alignment must be a u32 power of two");
    bytes b = {0};
    put_le(&b, type, 4);
    put_le(&b, v, size);
    int rc = add_kv(w, key, &b, err);
    if (!rc && align) w->alignment = (uint32_t)v;
    return rc;
}

int gguf_set_u32(gguf_writer *w, const char *key, uint32_t v, modes_error *err) {
    return gguf_set_value(w, key, GGUF_U32, &v, err);
}

int gguf_set_i32(gguf_writer *w, const char *key, int32_t v, modes_error *err) {
    return gguf_set_value(w, key, GGUF_I32, &v, err);
}

int gguf_set_u64(gguf_writer *w, const char *key, uint64_t v, modes_error *err) {
    return gguf_set_value(w, key, GGUF_U64, &v, err);
}

int gguf_set_f32(gguf_writer *w, const char *key, float v, modes_error *err) {
    return gguf_set_value(w, key, GGUF_F32, &v, err);
}

int gguf_set_bool(gguf_writer *w, const char *key, int v, modes_error *err) {
    const uint8_t b = v != 0;
    return gguf_set_value(w, key, GGUF_BOOL, &b, err);
}

int gguf_set_str(gguf_writer *w, const char *key, const char *v, modes_error *err) {
    if (not_alignment(key, err)) return MODES_E_INPUT;
    if (!v) return modes_fail(err, MODES_E_INPUT, "gguf writer: metadata key '%s' has no value", key ? key : "");
    bytes b = {0};
    put_le(&b, GGUF_STRING, 4);
    put_str(&b, v);
    return add_kv(w, key, &b, err);
}

int gguf_set_array(gguf_writer *w, const char *key, gguf_vtype elem, const void *values, size_t n, modes_error *err) {
    if (not_alignment(key, err)) return MODES_E_INPUT;
    const int size = gguf_vtype_size(elem);
    if (!size && elem != GGUF_STRING)
        return modes_fail(err, MODES_E_INPUT, "gguf writer: metadata key '%s': arrays of %s are not written",
                          key ? key : "", gguf_vtype_name(elem));
    if (n && !values) return modes_fail(err, MODES_E_INPUT, "gguf writer: metadata key '%s' has no values", key ? key : "");
    bytes b = {0};
    put_le(&b, GGUF_ARRAY, 4);
    put_le(&b, elem, 4);
    put_le(&b, n, 8);
    for (size_t i = 0; i < n; i++) {
        if (elem == GGUF_STRING) {
            const char *s = ((const char *const *)values)[i];
            if (!s) {
                free(b.p);
                return modes_fail(err, MODES_E_INPUT, "gguf writer: metadata key '%s': string %zu is NULL", key, i);
            }
            put_str(&b, s);
        } else {
            put_le(&b, native((const unsigned char *)values + i * (size_t)size, size), size);
        }
    }
    return add_kv(w, key, &b, err);
}

/* ---- Tensors ---------------------------------------------------------------------------------- */

static int check_tensor(const gguf_writer *w, const char *name, uint32_t type, int ndim, const int64_t *ne,
                        size_t *nbytes, modes_error *err) {
    if (!w || !name || !*name) return modes_fail(err, MODES_E_INPUT, "gguf writer: empty tensor name");
    if (strlen(name) >= GGUF_MAX_NAME)
        return modes_fail(err, MODES_E_INPUT, "gguf writer: tensor name '%s' is %d bytes or longer", name, GGUF_MAX_NAME);
    for (size_t i = 0; i < w->n_t; i++)
        if (!strcmp(w->t[i].name, name))
            return modes_fail(err, MODES_E_INPUT, "gguf writer: tensor '%s' added twice", name);
    if (!gguf_type_name(type))
        return modes_fail(err, MODES_E_INPUT, "gguf writer: tensor '%s' has unknown ggml type %u", name, type);
    if (ndim < 0 || ndim > GGUF_MAX_DIMS || (ndim && !ne))
        return modes_fail(err, MODES_E_INPUT, "gguf writer: tensor '%s' has %d dimensions (0..%d)", name, ndim,
                          GGUF_MAX_DIMS);
    if (!gguf_tensor_bytes(type, ndim, ne, nbytes))
        return modes_fail(err, MODES_E_INPUT,
                          "gguf writer: tensor '%s': a shape of non-positive dimensions, rows of partial %s blocks "
                          "(%d elements) or too many bytes",
                          name, gguf_type_name(type), gguf_type_block(type));
    return 0;
}

static int add_entry(gguf_writer *w, w_tensor t, modes_error *err) {
    if (w->n_t == w->cap_t) {
        size_t cap = w->cap_t ? 2 * w->cap_t : 64;
        w_tensor *v = realloc(w->t, cap * sizeof *v);
        if (!v) return oom(err);
        w->t = v;
        w->cap_t = cap;
    }
    if (!(t.name = strdup(t.name))) return oom(err);
    w->t[w->n_t++] = t;
    return 0;
}

static w_tensor entry(const char *name, uint32_t type, int ndim, const int64_t *ne, size_t nbytes) {
    w_tensor t = {.name = (char *)name, .type = type, .ndim = ndim, .nbytes = nbytes};
    for (int d = 0; d < GGUF_MAX_DIMS; d++) t.ne[d] = d < ndim ? ne[d] : 1;
    return t;
}

int gguf_add_tensor(gguf_writer *w, const char *name, uint32_t type, int ndim, const int64_t *ne, const void *data,
                    modes_error *err) {
    size_t nbytes;
    int rc = check_tensor(w, name, type, ndim, ne, &nbytes, err);
    if (rc) return rc;
    if (!data) return modes_fail(err, MODES_E_INPUT, "gguf writer: tensor '%s' has no data", name);
    w_tensor t = entry(name, type, ndim, ne, nbytes);
    if (!(t.data = malloc(nbytes))) return oom(err);
    memcpy(t.data, data, nbytes);
    if ((rc = add_entry(w, t, err))) free(t.data);
    return rc;
}

int gguf_add_tensor_fn(gguf_writer *w, const char *name, uint32_t type, int ndim, const int64_t *ne,
                       gguf_fill_fn fill, void *ctx, modes_error *err) {
    size_t nbytes;
    int rc = check_tensor(w, name, type, ndim, ne, &nbytes, err);
    if (rc) return rc;
    if (!fill) return modes_fail(err, MODES_E_INPUT, "gguf writer: tensor '%s' has no data", name);
    w_tensor t = entry(name, type, ndim, ne, nbytes);
    t.fill = fill;
    t.ctx = ctx;
    return add_entry(w, t, err);
}

/* ---- Saving ----------------------------------------------------------------------------------- */

static size_t padding(uint64_t pos, uint32_t alignment) { return (size_t)((alignment - pos % alignment) % alignment); }

/* Header, metadata and tensor infos, padded so the data section starts aligned. */
static void encode_head(const gguf_writer *w, bytes *b) {
    put(b, "GGUF", 4);
    put_le(b, GGUF_VERSION, 4);
    put_le(b, w->n_t, 8);
    put_le(b, w->n_kv, 8);
    for (size_t i = 0; i < w->n_kv; i++) {
        put_str(b, w->kv[i].key);
        put(b, w->kv[i].bytes, w->kv[i].len);
    }
    uint64_t offset = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        const w_tensor *t = &w->t[i];
        put_str(b, t->name);
        put_le(b, (uint64_t)t->ndim, 4);
        for (int d = 0; d < t->ndim; d++) put_le(b, (uint64_t)t->ne[d], 8);
        put_le(b, t->type, 4);
        put_le(b, offset, 8);
        offset += t->nbytes + padding(t->nbytes, w->alignment);
    }
    static const unsigned char zeros[64];
    for (size_t pad = w->n_t ? padding(b->len, w->alignment) : 0; pad;) {
        const size_t n = pad < sizeof zeros ? pad : sizeof zeros;
        put(b, zeros, n);
        pad -= n;
    }
}

static int write_bytes(FILE *f, const void *p, size_t n) { return n == 0 || fwrite(p, 1, n, f) == n; }

static int write_zeros(FILE *f, size_t n) {
    static const unsigned char zeros[256];
    for (; n; n -= n < sizeof zeros ? n : sizeof zeros)
        if (!write_bytes(f, zeros, n < sizeof zeros ? n : sizeof zeros)) return 0;
    return 1;
}

/* One tensor's data and its padding; a fill callback writes into a buffer of its own. */
static int write_tensor(const gguf_writer *w, const w_tensor *t, FILE *f, const char *path, modes_error *err) {
    void *buf = t->data;
    if (t->fill) {
        if (!(buf = malloc(t->nbytes ? t->nbytes : 1))) return oom(err);
        int rc = t->fill(t->ctx, buf, t->nbytes, err);
        if (rc) {
            free(buf);
            modes_error_prefix(err, "%s: tensor '%s'", path, t->name);
            return rc;
        }
    }
    const int ok = write_bytes(f, buf, t->nbytes) && write_zeros(f, padding(t->nbytes, w->alignment));
    const int e = errno;
    if (t->fill) free(buf);
    return ok ? 0 : modes_fail(err, MODES_E_INPUT, "%s: write failed: %s", path, strerror(e));
}

int gguf_writer_save(const gguf_writer *w, const char *path, modes_error *err) {
    if (!w || !path) return modes_fail(err, MODES_E_INTERNAL, "gguf writer: no writer or no path");
    bytes head = {0};
    encode_head(w, &head);
    if (head.failed) {
        free(head.p);
        return oom(err);
    }
    atomic_file af;
    int rc = atomic_open(&af, path, err);
    if (!rc && !write_bytes(af.f, head.p, head.len))
        rc = modes_fail(err, MODES_E_INPUT, "%s: write failed: %s", path, strerror(errno));
    for (size_t i = 0; !rc && i < w->n_t; i++) rc = write_tensor(w, &w->t[i], af.f, path, err);
    free(head.p);
    if (rc) {
        if (af.f) atomic_abort(&af);
        return rc;
    }
    return atomic_commit(&af, err);
}
