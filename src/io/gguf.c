/* The GGUF reader (gguf.h): the file is mapped, parsed once with every count, length and range
 * checked against what is left of the file before it is used, then served from the mapping. */
#include "io/gguf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/file.h"

/* ---- Types ------------------------------------------------------------------------------------ */

static const unsigned char vtype_sizes[GGUF_N_VTYPES] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
static const char *const vtype_names[GGUF_N_VTYPES] = {"u8",   "i8",  "u16", "i16", "u32", "i32", "f32",
                                                        "bool", "str", "arr", "u64", "i64", "f64"};

const char *gguf_vtype_name(gguf_vtype t) { return (unsigned)t < GGUF_N_VTYPES ? vtype_names[t] : "?"; }
int gguf_vtype_size(gguf_vtype t) { return (unsigned)t < GGUF_N_VTYPES ? vtype_sizes[t] : 0; }

/* Every ggml type id in use (ggml.h), with the geometry of its blocks (ggml-common.h), so that the
 * ranges of tensors modes cannot compute are still checked. Ids 4, 5, 31-33 and 36-38 were
 * removed from ggml and stay unknown. */
static const struct {
    const char *name;
    unsigned short block, bytes;
} ggml_types[] = {
    [0] = {"F32", 1, 4},         [1] = {"F16", 1, 2},        [2] = {"Q4_0", 32, 18},     [3] = {"Q4_1", 32, 20},
    [6] = {"Q5_0", 32, 22},      [7] = {"Q5_1", 32, 24},     [8] = {"Q8_0", 32, 34},     [9] = {"Q8_1", 32, 36},
    [10] = {"Q2_K", 256, 84},    [11] = {"Q3_K", 256, 110},  [12] = {"Q4_K", 256, 144},  [13] = {"Q5_K", 256, 176},
    [14] = {"Q6_K", 256, 210},   [15] = {"Q8_K", 256, 292},  [16] = {"IQ2_XXS", 256, 66}, [17] = {"IQ2_XS", 256, 74},
    [18] = {"IQ3_XXS", 256, 98}, [19] = {"IQ1_S", 256, 50},  [20] = {"IQ4_NL", 32, 18},  [21] = {"IQ3_S", 256, 110},
    [22] = {"IQ2_S", 256, 82},   [23] = {"IQ4_XS", 256, 136}, [24] = {"I8", 1, 1},       [25] = {"I16", 1, 2},
    [26] = {"I32", 1, 4},        [27] = {"I64", 1, 8},       [28] = {"F64", 1, 8},       [29] = {"IQ1_M", 256, 56},
    [30] = {"BF16", 1, 2},       [34] = {"TQ1_0", 256, 54},  [35] = {"TQ2_0", 256, 66},  [39] = {"MXFP4", 32, 17},
};
#define N_GGML_TYPES (sizeof ggml_types / sizeof *ggml_types)

const char *gguf_type_name(uint32_t type) { return type < N_GGML_TYPES ? ggml_types[type].name : NULL; }
int gguf_type_block(uint32_t type) { return gguf_type_name(type) ? ggml_types[type].block : 0; }
int gguf_type_block_bytes(uint32_t type) { return gguf_type_name(type) ? ggml_types[type].bytes : 0; }

/* The ggml types modes computes with, each mapped explicitly: any other is refused where bound. */
static const struct {
    uint32_t ggml;
    modes_dtype dt;
} weight_types[] = {{GGML_F32, DT_F32},   {GGML_F16, DT_F16},   {GGML_BF16, DT_BF16}, {GGML_Q8_0, DT_Q8_0},
                    {GGML_Q4_0, DT_Q4_0}, {GGML_Q4_K, DT_Q4_K}, {GGML_Q5_K, DT_Q5_K}, {GGML_Q6_K, DT_Q6_K}};

modes_dtype gguf_weight_dtype(uint32_t type) {
    for (size_t i = 0; i < sizeof weight_types / sizeof *weight_types; i++)
        if (weight_types[i].ggml == type) return weight_types[i].dt;
    return DT_N_TYPES;
}

int64_t gguf_ggml_type(modes_dtype dt) {
    for (size_t i = 0; i < sizeof weight_types / sizeof *weight_types; i++)
        if (weight_types[i].dt == dt) return weight_types[i].ggml;
    return -1;
}

int gguf_tensor_bytes(uint32_t type, int ndim, const int64_t *ne, size_t *nbytes) {
    *nbytes = 0;
    if (!gguf_type_name(type) || ndim < 0 || ndim > GGUF_MAX_DIMS) return 0;
    uint64_t n = 1;
    for (int d = 0; d < ndim; d++) {
        if (ne[d] <= 0 || (uint64_t)ne[d] > (uint64_t)INT64_MAX / n) return 0;
        n *= (uint64_t)ne[d];
    }
    const uint64_t block = ggml_types[type].block, bytes = ggml_types[type].bytes;
    if (ndim > 0 && (uint64_t)ne[0] % block) return 0;
    if (ndim == 0 && block != 1) return 0;
    if (n / block > (uint64_t)SIZE_MAX / bytes) return 0;
    *nbytes = (size_t)(n / block * bytes);
    return 1;
}

/* ---- The parsed file -------------------------------------------------------------------------- */

struct gguf_file {
    char *path;
    mapped_file mf;
    uint32_t alignment;
    gguf_kv *kv;
    size_t n_kv;
    gguf_tensor *tensors;
    size_t n_tensors;
    size_t *kv_order, *tensor_order; /* indices sorted by key / name, for lookups */
    gguf_str *strs;                  /* the string values, all arrays one after another */
    size_t n_strs, cap_strs;
    const char **cstr;               /* per entry: a string scalar NUL-terminated (NULL: none, or a NUL inside) */
    char **owned;                    /* NUL-terminated keys, names and string scalars */
    size_t n_owned, cap_owned;
};

/* A reading position with what is left of the file. */
typedef struct {
    gguf_file *f;
    const unsigned char *p;
    size_t len, pos;
    modes_error *err;
} cursor;

static int oom(const cursor *c) { return modes_fail(c->err, MODES_E_INTERNAL, "%s: out of memory", c->f->path); }

static size_t left(const cursor *c) { return c->len - c->pos; }

static int need(cursor *c, uint64_t n, const char *what, const char *name) {
    if (n <= left(c)) return 0;
    return modes_fail(c->err, MODES_E_INPUT, "%s: truncated: %s%s%s%s needs %llu bytes at offset %zu, %zu are left",
                      c->f->path, what, name ? " '" : "", name ? name : "", name ? "'" : "", (unsigned long long)n,
                      c->pos, left(c));
}

static uint64_t le(const unsigned char *p, int bytes) {
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static int read_uint(cursor *c, int bytes, uint64_t *v, const char *what, const char *name) {
    int rc = need(c, (uint64_t)bytes, what, name);
    if (rc) return rc;
    *v = le(c->p + c->pos, bytes);
    c->pos += (size_t)bytes;
    return 0;
}

static int read_str(cursor *c, gguf_str *s, const char *what, const char *name) {
    uint64_t n;
    int rc = read_uint(c, 8, &n, what, name);
    if (!rc) rc = need(c, n, what, name);
    if (rc) return rc;
    s->s = (const char *)c->p + c->pos;
    s->len = (size_t)n;
    c->pos += (size_t)n;
    return 0;
}

static int keep(gguf_file *f, char *s) {
    if (f->n_owned == f->cap_owned) {
        size_t cap = f->cap_owned ? 2 * f->cap_owned : 64;
        char **o = realloc(f->owned, cap * sizeof *o);
        if (!o) return -1;
        f->owned = o;
        f->cap_owned = cap;
    }
    f->owned[f->n_owned++] = s;
    return 0;
}

/* A NUL-terminated copy owned by the file; *out NULL when s holds a NUL byte. */
static int own_cstr(cursor *c, gguf_str s, const char **out) {
    *out = NULL;
    if (memchr(s.s, 0, s.len)) return 0;
    char *p = malloc(s.len + 1);
    if (!p || keep(c->f, p)) {
        free(p);
        return oom(c);
    }
    memcpy(p, s.s, s.len);
    p[s.len] = 0;
    *out = p;
    return 0;
}

/* A key or tensor name: non-empty, NUL-free, copied. */
static int read_name(cursor *c, const char *what, size_t index, const char **out) {
    gguf_str s;
    char label[64];
    snprintf(label, sizeof label, "%s %zu", what, index);
    int rc = read_str(c, &s, label, NULL);
    if (rc) return rc;
    if (!s.len) return modes_fail(c->err, MODES_E_INPUT, "%s: %s is empty", c->f->path, label);
    if ((rc = own_cstr(c, s, out))) return rc;
    if (!*out) return modes_fail(c->err, MODES_E_INPUT, "%s: %s holds a NUL byte", c->f->path, label);
    return 0;
}

/* ---- Header and metadata ---------------------------------------------------------------------- */

/* Smallest encodings, to bound counts by the file size before allocating for them. */
enum { MIN_KV_BYTES = 8 + 1 + 4 + 1, MIN_TENSOR_BYTES = 8 + 1 + 4 + 4 + 8 };

static int read_header(cursor *c, uint64_t *n_tensors, uint64_t *n_kv) {
    const char *path = c->f->path;
    if (c->len < 4 || memcmp(c->p, "GGUF", 4))
        return modes_fail(c->err, MODES_E_INPUT, "%s: not a GGUF file (no GGUF magic)", path);
    c->pos = 4;
    uint64_t version;
    int rc;
    if ((rc = read_uint(c, 4, &version, "the header", NULL))) return rc;
    if (version != GGUF_VERSION)
        return modes_fail(c->err, MODES_E_INPUT, "%s: GGUF version %llu; only version %d is supported", path,
                          (unsigned long long)version, GGUF_VERSION);
    if ((rc = read_uint(c, 8, n_tensors, "the header", NULL)) || (rc = read_uint(c, 8, n_kv, "the header", NULL)))
        return rc;
    if (*n_kv > left(c) / MIN_KV_BYTES)
        return modes_fail(c->err, MODES_E_INPUT, "%s: %llu metadata entries cannot fit in the %zu bytes left", path,
                          (unsigned long long)*n_kv, left(c));
    if (*n_tensors > left(c) / MIN_TENSOR_BYTES)
        return modes_fail(c->err, MODES_E_INPUT, "%s: %llu tensors cannot fit in the %zu bytes left", path,
                          (unsigned long long)*n_tensors, left(c));
    return 0;
}

static int add_strs(cursor *c, size_t n, size_t *first) {
    gguf_file *f = c->f;
    if (n > f->cap_strs - f->n_strs) {
        size_t cap = f->cap_strs ? f->cap_strs : 64;
        while (cap - f->n_strs < n) cap *= 2;
        gguf_str *s = realloc(f->strs, cap * sizeof *s);
        if (!s) return oom(c);
        f->strs = s;
        f->cap_strs = cap;
    }
    *first = f->n_strs;
    f->n_strs += n;
    return 0;
}

/* n values of element type t (not an array) at the cursor. String views are stored by index into
 * f->strs (the array may move as it grows); the pointers are set once all are read. */
static int read_values(cursor *c, gguf_kv *kv, uint64_t type, uint64_t n) {
    const char *key = kv->key;
    if (type >= GGUF_N_VTYPES || type == GGUF_ARRAY)
        return modes_fail(c->err, MODES_E_INPUT, "%s: key '%s': %s %llu", c->f->path, key,
                          kv->type == GGUF_ARRAY ? "arrays of arrays or an unknown element type" : "unknown value type",
                          (unsigned long long)type);
    const gguf_vtype t = (gguf_vtype)type;
    kv->elem = t;
    kv->n = (size_t)n;
    kv->data = c->p + c->pos;
    /* A string takes 8 bytes at least: both bounds keep n * size from overflowing. */
    const uint64_t size = t == GGUF_STRING ? 8 : vtype_sizes[t];
    if (n > left(c) / size)
        return modes_fail(c->err, MODES_E_INPUT, "%s: truncated: the value of '%s' (%llu elements of %s) runs past the end",
                          c->f->path, key, (unsigned long long)n, vtype_names[t]);
    if (t != GGUF_STRING) {
        c->pos += (size_t)(n * size);
        return 0;
    }
    size_t first = 0;
    int rc = add_strs(c, (size_t)n, &first);
    for (uint64_t i = 0; !rc && i < n; i++) rc = read_str(c, &c->f->strs[first + i], "a string of", key);
    kv->str = (const gguf_str *)(uintptr_t)(first + 1); /* an index until fix_strings */
    return rc;
}

static int read_kv(cursor *c, size_t i, gguf_kv *kv) {
    int rc = read_name(c, "metadata key", i, &kv->key);
    uint64_t type, elem, n = 1;
    if (!rc) rc = read_uint(c, 4, &type, "the type of", kv->key);
    if (rc) return rc;
    kv->type = type < GGUF_N_VTYPES ? (gguf_vtype)type : GGUF_N_VTYPES;
    if (type != GGUF_ARRAY) return read_values(c, kv, type, 1);
    if ((rc = read_uint(c, 4, &elem, "the array of", kv->key)) || (rc = read_uint(c, 8, &n, "the array of", kv->key)))
        return rc;
    return read_values(c, kv, elem, n);
}

static void fix_strings(gguf_file *f) {
    for (size_t i = 0; i < f->n_kv; i++)
        if (f->kv[i].elem == GGUF_STRING)
            f->kv[i].str = f->kv[i].n ? f->strs + ((uintptr_t)f->kv[i].str - 1) : NULL;
}

/* Entries in name order (keys or tensor names), to look names up and to find duplicates. */
typedef struct {
    const char *name;
    size_t idx;
} named;

static int cmp_named(const void *a, const void *b) { return strcmp(((const named *)a)->name, ((const named *)b)->name); }

/* The index of n entries whose names are at base + i * stride, sorted by name; fails naming a
 * name that appears twice. */
static int sort_index(cursor *c, const void *base, size_t stride, size_t n, size_t **out, const char *what) {
    named *v = malloc((n ? n : 1) * sizeof *v);
    size_t *ix = malloc((n ? n : 1) * sizeof *ix);
    if (!v || !ix) {
        free(v), free(ix);
        return oom(c);
    }
    for (size_t i = 0; i < n; i++) v[i] = (named){*(const char *const *)((const char *)base + i * stride), i};
    qsort(v, n, sizeof *v, cmp_named);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        ix[i] = v[i].idx;
        if (!rc && i && !strcmp(v[i - 1].name, v[i].name))
            rc = modes_fail(c->err, MODES_E_INPUT, "%s: %s '%s' appears twice", c->f->path, what, v[i].name);
    }
    free(v);
    *out = ix;
    return rc;
}

static int read_metadata(cursor *c, uint64_t n) {
    gguf_file *f = c->f;
    f->kv = calloc(n ? (size_t)n : 1, sizeof *f->kv);
    if (!f->kv) return oom(c);
    for (size_t i = 0; i < n; i++) {
        f->n_kv = i + 1;
        int rc = read_kv(c, i, &f->kv[i]);
        if (rc) return rc;
    }
    fix_strings(f);
    if (!(f->cstr = calloc(n ? (size_t)n : 1, sizeof *f->cstr))) return oom(c);
    for (size_t i = 0; i < f->n_kv; i++) {
        int rc = f->kv[i].type == GGUF_STRING ? own_cstr(c, f->kv[i].str[0], &f->cstr[i]) : 0;
        if (rc) return rc;
    }
    return sort_index(c, &f->kv[0].key, sizeof *f->kv, f->n_kv, &f->kv_order, "metadata key");
}

static int read_alignment(cursor *c) {
    gguf_file *f = c->f;
    const gguf_kv *kv = gguf_find_kv(f, "general.alignment");
    f->alignment = GGUF_DEFAULT_ALIGNMENT;
    if (!kv) return 0;
    if (kv->type != GGUF_U32)
        return modes_fail(c->err, MODES_E_INPUT, "%s: general.alignment is %s, not u32", f->path,
                          gguf_vtype_name(kv->type));
    const uint32_t a = gguf_u32_at(kv, 0);
    if (!a || (a & (a - 1)))
        return modes_fail(c->err, MODES_E_INPUT, "%s: general.alignment %u is not a power of two", f->path, a);
    f->alignment = a;
    return 0;
}

/* ---- Tensor infos ----------------------------------------------------------------------------- */

static int read_shape(cursor *c, gguf_tensor *t) {
    const char *path = c->f->path, *name = t->name;
    uint64_t ndim;
    int rc = read_uint(c, 4, &ndim, "the shape of tensor", name);
    if (rc) return rc;
    if (ndim > GGUF_MAX_DIMS)
        return modes_fail(c->err, MODES_E_INPUT, "%s: tensor '%s' has %llu dimensions, more than %d", path, name,
                          (unsigned long long)ndim, GGUF_MAX_DIMS);
    t->ndim = (int)ndim;
    uint64_t n = 1;
    for (int d = 0; d < GGUF_MAX_DIMS; d++) {
        uint64_t v = 1;
        if (d < t->ndim && (rc = read_uint(c, 8, &v, "the shape of tensor", name))) return rc;
        if (v == 0 || v > (uint64_t)INT64_MAX)
            return modes_fail(c->err, MODES_E_INPUT, "%s: tensor '%s': dimension %d is %lld, not positive", path, name, d,
                              (long long)v);
        if (v > (uint64_t)INT64_MAX / n)
            return modes_fail(c->err, MODES_E_INPUT, "%s: tensor '%s' has too many elements", path, name);
        n *= v;
        t->ne[d] = (int64_t)v;
    }
    t->nelements = (int64_t)n;
    return 0;
}

static int read_type(cursor *c, gguf_tensor *t) {
    const char *path = c->f->path, *name = t->name;
    uint64_t type;
    int rc = read_uint(c, 4, &type, "the type of tensor", name);
    if (rc) return rc;
    if (type > UINT32_MAX || !gguf_type_name((uint32_t)type))
        return modes_fail(c->err, MODES_E_INPUT, "%s: tensor '%s' has unknown ggml type %llu", path, name,
                          (unsigned long long)type);
    t->type = (uint32_t)type;
    if (!gguf_tensor_bytes(t->type, t->ndim, t->ne, &t->nbytes)) {
        const int block = gguf_type_block(t->type);
        if (t->ne[0] % block)
            return modes_fail(c->err, MODES_E_INPUT, "%s: tensor '%s' has rows of %lld elements, not whole blocks of %d (%s)",
                              path, name, (long long)t->ne[0], block, gguf_type_name(t->type));
        return modes_fail(c->err, MODES_E_INPUT, "%s: tensor '%s' is too many bytes", path, name);
    }
    return 0;
}

static int read_tensor_info(cursor *c, size_t i, gguf_tensor *t) {
    int rc;
    if ((rc = read_name(c, "tensor name", i, &t->name)) || (rc = read_shape(c, t)) || (rc = read_type(c, t)) ||
        (rc = read_uint(c, 8, &t->offset, "the offset of tensor", t->name)))
        return rc;
    if (t->offset % c->f->alignment)
        return modes_fail(c->err, MODES_E_INPUT, "%s: tensor '%s' at offset %llu is not aligned to %u", c->f->path,
                          t->name, (unsigned long long)t->offset, c->f->alignment);
    return 0;
}

typedef struct {
    uint64_t begin, end;
    size_t idx;
} byte_range;

static int cmp_range(const void *a, const void *b) {
    const byte_range *x = a, *y = b;
    return x->begin != y->begin ? (x->begin < y->begin ? -1 : 1) : (x->end > y->end) - (x->end < y->end);
}

/* Ranges inside the data section of data_len bytes and pairwise disjoint; data pointers set. */
static int check_ranges(cursor *c, const unsigned char *data, uint64_t data_len) {
    gguf_file *f = c->f;
    byte_range *r = malloc((f->n_tensors ? f->n_tensors : 1) * sizeof *r);
    if (!r) return oom(c);
    int rc = 0;
    for (size_t i = 0; i < f->n_tensors && !rc; i++) {
        gguf_tensor *t = &f->tensors[i];
        if (t->offset > data_len || t->nbytes > data_len - t->offset)
            rc = modes_fail(c->err, MODES_E_INPUT,
                            "%s: tensor '%s' (%zu bytes at offset %llu) runs past the end of the data section (%llu bytes)",
                            f->path, t->name, t->nbytes, (unsigned long long)t->offset,
                            (unsigned long long)data_len);
        else t->data = data + t->offset;
        r[i] = (byte_range){t->offset, t->offset + t->nbytes, i};
    }
    if (!rc && f->n_tensors > 1) qsort(r, f->n_tensors, sizeof *r, cmp_range);
    for (size_t i = 1; i < f->n_tensors && !rc; i++)
        if (r[i].begin < r[i - 1].end)
            rc = modes_fail(c->err, MODES_E_INPUT, "%s: tensors '%s' and '%s' overlap", f->path,
                            f->tensors[r[i - 1].idx].name, f->tensors[r[i].idx].name);
    free(r);
    return rc;
}

static int read_tensors(cursor *c, uint64_t n) {
    gguf_file *f = c->f;
    f->tensors = calloc(n ? (size_t)n : 1, sizeof *f->tensors);
    if (!f->tensors) return oom(c);
    for (size_t i = 0; i < n; i++) {
        f->n_tensors = i + 1;
        int rc = read_tensor_info(c, i, &f->tensors[i]);
        if (rc) return rc;
    }
    int rc = sort_index(c, &f->tensors[0].name, sizeof *f->tensors, f->n_tensors, &f->tensor_order, "tensor");
    if (rc) return rc;
    /* The data section starts at the next multiple of the alignment (without tensors, right here). */
    uint64_t start = c->pos;
    if (n) start = (start + f->alignment - 1) / f->alignment * f->alignment;
    if (start > c->len)
        return modes_fail(c->err, MODES_E_INPUT, "%s: truncated: the data section would start at %llu, past the end (%zu)",
                          f->path, (unsigned long long)start, c->len);
    return check_ranges(c, c->p + start, c->len - start);
}

/* ---- Open, close, lookups --------------------------------------------------------------------- */

int gguf_open(const char *path, gguf_file **out, modes_error *err) {
    *out = NULL;
    if (!path || !*path) return modes_fail(err, MODES_E_INPUT, "gguf: empty path");
    gguf_file *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path))) {
        free(f);
        return modes_fail(err, MODES_E_INTERNAL, "%s: out of memory", path);
    }
    int rc = mapped_file_open(path, &f->mf, err);
    cursor c = {f, f->mf.data, f->mf.len, 0, err};
    uint64_t n_tensors = 0, n_kv = 0;
    if (!rc) rc = read_header(&c, &n_tensors, &n_kv);
    if (!rc) rc = read_metadata(&c, n_kv);
    if (!rc) rc = read_alignment(&c);
    if (!rc) rc = read_tensors(&c, n_tensors);
    if (rc) {
        gguf_close(f);
        return rc;
    }
    *out = f;
    return 0;
}

void gguf_close(gguf_file *f) {
    if (!f) return;
    mapped_file_close(&f->mf);
    for (size_t i = 0; i < f->n_owned; i++) free(f->owned[i]);
    free(f->owned);
    free(f->strs);
    free(f->kv);
    free(f->kv_order);
    free(f->cstr);
    free(f->tensors);
    free(f->tensor_order);
    free(f->path);
    free(f);
}

const char *gguf_path(const gguf_file *f) { return f ? f->path : NULL; }
uint32_t gguf_alignment(const gguf_file *f) { return f ? f->alignment : 0; }
size_t gguf_kv_count(const gguf_file *f) { return f ? f->n_kv : 0; }
const gguf_kv *gguf_kv_at(const gguf_file *f, size_t i) { return f && i < f->n_kv ? &f->kv[i] : NULL; }
size_t gguf_tensor_count(const gguf_file *f) { return f ? f->n_tensors : 0; }
const gguf_tensor *gguf_tensor_at(const gguf_file *f, size_t i) { return f && i < f->n_tensors ? &f->tensors[i] : NULL; }

/* Binary search of an index sorted by the names at base + i * stride. */
static const void *lookup(const void *base, size_t stride, const size_t *order, size_t n, const char *name) {
    if (!order || !name) return NULL;
    size_t lo = 0, hi = n;
    while (lo < hi) {
        const size_t mid = lo + (hi - lo) / 2;
        const char *p = (const char *)base + order[mid] * stride;
        const int cmp = strcmp(*(const char *const *)p, name);
        if (!cmp) return p;
        if (cmp < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

const gguf_kv *gguf_find_kv(const gguf_file *f, const char *key) {
    return f ? lookup(f->kv, sizeof *f->kv, f->kv_order, f->n_kv, key) : NULL;
}

const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name) {
    return f ? lookup(f->tensors, sizeof *f->tensors, f->tensor_order, f->n_tensors, name) : NULL;
}

/* ---- Typed values ----------------------------------------------------------------------------- */

static uint64_t raw_at(const gguf_kv *kv, gguf_vtype t, size_t i) {
    return kv && kv->elem == t && i < kv->n ? le(kv->data + i * vtype_sizes[t], vtype_sizes[t]) : 0;
}

uint32_t gguf_u32_at(const gguf_kv *kv, size_t i) { return (uint32_t)raw_at(kv, GGUF_U32, i); }
int32_t gguf_i32_at(const gguf_kv *kv, size_t i) { return (int32_t)(uint32_t)raw_at(kv, GGUF_I32, i); }
uint64_t gguf_u64_at(const gguf_kv *kv, size_t i) { return raw_at(kv, GGUF_U64, i); }
int gguf_bool_at(const gguf_kv *kv, size_t i) { return raw_at(kv, GGUF_BOOL, i) != 0; }

float gguf_f32_at(const gguf_kv *kv, size_t i) {
    const uint32_t u = (uint32_t)raw_at(kv, GGUF_F32, i);
    float v;
    memcpy(&v, &u, 4);
    return v;
}

int gguf_int_at(const gguf_kv *kv, size_t i, int64_t *out) {
    if (!kv || i >= kv->n) return -1;
    const int size = vtype_sizes[kv->elem];
    const uint64_t u = kv->elem == GGUF_STRING || kv->elem == GGUF_F32 || kv->elem == GGUF_F64 || kv->elem == GGUF_BOOL
                           ? 0
                           : le(kv->data + i * (size_t)size, size);
    switch (kv->elem) {
    case GGUF_U8: case GGUF_U16: case GGUF_U32: *out = (int64_t)u; return 0;
    case GGUF_U64: return u > (uint64_t)INT64_MAX ? -1 : (*out = (int64_t)u, 0);
    case GGUF_I8: *out = (int8_t)u; return 0;
    case GGUF_I16: *out = (int16_t)u; return 0;
    case GGUF_I32: *out = (int32_t)(uint32_t)u; return 0;
    case GGUF_I64: *out = (int64_t)u; return 0;
    default: return -1;
    }
}

static int get_scalar(const gguf_file *f, const char *key, const gguf_kv **out, modes_error *err) {
    const gguf_kv *kv = gguf_find_kv(f, key);
    if (!kv) return modes_fail(err, MODES_E_INPUT, "%s: metadata key '%s' is missing", gguf_path(f), key);
    if (kv->type == GGUF_ARRAY)
        return modes_fail(err, MODES_E_INPUT, "%s: metadata key '%s' is an array, not a single value", f->path, key);
    *out = kv;
    return 0;
}

static int wrong_type(const gguf_file *f, const gguf_kv *kv, const char *want, modes_error *err) {
    return modes_fail(err, MODES_E_INPUT, "%s: metadata key '%s' is %s, not %s", f->path, kv->key,
                      gguf_vtype_name(kv->elem), want);
}

/* An integer value in [lo, hi]. */
static int get_int(const gguf_file *f, const char *key, int64_t lo, uint64_t hi, uint64_t *bits, const char *want,
                   modes_error *err) {
    const gguf_kv *kv = NULL;
    int rc = get_scalar(f, key, &kv, err);
    if (rc) return rc;
    if (kv->elem == GGUF_U64) { /* the one type whose values int64 cannot hold */
        const uint64_t u = gguf_u64_at(kv, 0);
        if (u > hi) return modes_fail(err, MODES_E_INPUT, "%s: metadata key '%s' = %llu is out of range for %s", f->path,
                                      key, (unsigned long long)u, want);
        *bits = u;
        return 0;
    }
    int64_t v;
    if (gguf_int_at(kv, 0, &v)) return wrong_type(f, kv, want, err);
    if (v < lo || (v > 0 && (uint64_t)v > hi))
        return modes_fail(err, MODES_E_INPUT, "%s: metadata key '%s' = %lld is out of range for %s", f->path, key,
                          (long long)v, want);
    *bits = (uint64_t)v;
    return 0;
}

int gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out, modes_error *err) {
    uint64_t v;
    int rc = get_int(f, key, 0, UINT32_MAX, &v, "u32", err);
    if (!rc) *out = (uint32_t)v;
    return rc;
}

int gguf_get_i32(const gguf_file *f, const char *key, int32_t *out, modes_error *err) {
    uint64_t v;
    int rc = get_int(f, key, INT32_MIN, INT32_MAX, &v, "i32", err);
    if (!rc) *out = (int32_t)(int64_t)v;
    return rc;
}

int gguf_get_u64(const gguf_file *f, const char *key, uint64_t *out, modes_error *err) {
    return get_int(f, key, 0, UINT64_MAX, out, "u64", err);
}

int gguf_get_f32(const gguf_file *f, const char *key, float *out, modes_error *err) {
    const gguf_kv *kv = NULL;
    int rc = get_scalar(f, key, &kv, err);
    if (rc) return rc;
    if (kv->elem == GGUF_F32) *out = gguf_f32_at(kv, 0);
    else if (kv->elem == GGUF_F64) {
        const uint64_t u = le(kv->data, 8);
        double d;
        memcpy(&d, &u, 8);
        *out = (float)d;
    } else return wrong_type(f, kv, "f32", err);
    return 0;
}

int gguf_get_bool(const gguf_file *f, const char *key, int *out, modes_error *err) {
    const gguf_kv *kv = NULL;
    int rc = get_scalar(f, key, &kv, err);
    if (rc) return rc;
    if (kv->elem != GGUF_BOOL) return wrong_type(f, kv, "bool", err);
    *out = gguf_bool_at(kv, 0);
    return 0;
}

int gguf_get_str(const gguf_file *f, const char *key, const char **out, modes_error *err) {
    const gguf_kv *kv = NULL;
    int rc = get_scalar(f, key, &kv, err);
    if (rc) return rc;
    if (kv->elem != GGUF_STRING) return wrong_type(f, kv, "str", err);
    const char *c = f->cstr[kv - f->kv];
    if (!c) return modes_fail(err, MODES_E_INPUT, "%s: metadata key '%s' holds a NUL byte", f->path, key);
    *out = c;
    return 0;
}

int gguf_get_array(const gguf_file *f, const char *key, gguf_vtype elem, const gguf_kv **out, modes_error *err) {
    const gguf_kv *kv = gguf_find_kv(f, key);
    if (!kv) return modes_fail(err, MODES_E_INPUT, "%s: metadata key '%s' is missing", gguf_path(f), key);
    if (kv->type != GGUF_ARRAY || kv->elem != elem)
        return modes_fail(err, MODES_E_INPUT, "%s: metadata key '%s' is %s%s, not an array of %s", f->path, key,
                          kv->type == GGUF_ARRAY ? "an array of " : "", gguf_vtype_name(kv->elem),
                          gguf_vtype_name(elem));
    *out = kv;
    return 0;
}
