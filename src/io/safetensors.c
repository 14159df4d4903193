#define _POSIX_C_SOURCE 200809L
#include "io/safetensors.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "core/json.h"
#include "io/file.h"

/* Indexed by st_dtype; the names are the ones the format spells. */
static const char *const dtype_names[] = {"F32", "F16", "BF16", "F64", "I64", "I32", "I16", "I8", "U8", "BOOL"};
static const unsigned char dtype_sizes[] = {4, 2, 2, 8, 8, 4, 2, 1, 1, 1};
#define ST_NDTYPES ((int)(sizeof dtype_sizes / sizeof *dtype_sizes))

/* A header holds at most: top object, tensor object, shape array. Room to spare, none to abuse. */
#define ST_JSON_DEPTH 8
/* JSON numbers are doubles: integers beyond 2^53 cannot be written or read exactly. */
#define ST_MAX_EXACT ((int64_t)1 << 53)

size_t st_dtype_size(st_dtype t) { return (unsigned)t < (unsigned)ST_NDTYPES ? dtype_sizes[t] : 0; }

const char *st_dtype_name(st_dtype t) { return (unsigned)t < (unsigned)ST_NDTYPES ? dtype_names[t] : "?"; }

/* ------------------------------------------------------------------------------------------------ */
/* Reader */

typedef struct {
    char *path;  /* as opened (joined with the index's folder for shards) */
    const char *name; /* the file name part of path */
    mapped_file mf;
    char *names; /* pool holding this shard's tensor names */
} shard_file;

typedef struct {
    char *key, *val;
    int shard;
} meta_kv;

struct st_archive {
    shard_file *shards;
    int nshards;
    st_tensor *tensors; /* sorted by name once open */
    size_t n, cap;
    void **copies; /* realigned tensor data owned by the archive */
    size_t ncopies;
    meta_kv *meta;
    size_t nmeta;
};

typedef struct {
    uint64_t begin, end;
    size_t idx; /* into the archive's tensors */
} byte_range;

static int oom(modes_error *err, const char *path) {
    return modes_fail(err, MODES_E_INTERNAL, "%s: out of memory", path);
}

static int is_regular_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

static const char *base_name(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static uint64_t read_u64le(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

/* "[2, 3]" for messages; long shapes cannot overflow the buffer since ndim <= ST_MAX_DIMS. */
static const char *fmt_shape(char *buf, size_t cap, const int64_t *shape, int ndim) {
    size_t o = 0;
    o += (size_t)snprintf(buf + o, cap - o, "[");
    for (int i = 0; i < ndim && o < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (o < cap) snprintf(buf + o, cap - o, "]");
    return buf;
}

static int has_nul(const json_node *s) { return strlen(s->u.str) != s->n; }

static int parse_dtype(const char *path, const char *name, const json_node *v, st_dtype *out, modes_error *err) {
    if (!v || v->type != JSON_STRING)
        return modes_fail(err, MODES_E_INPUT, "%s: tensor '%s': \"dtype\" must be a string", path, name);
    for (int i = 0; i < ST_NDTYPES; i++) {
        if (!strcmp(v->u.str, dtype_names[i]) && !has_nul(v)) {
            *out = (st_dtype)i;
            return 0;
        }
    }
    return modes_fail(err, MODES_E_INPUT, "%s: tensor '%s': unsupported dtype '%s'", path, name, v->u.str);
}

/* Fills ndim, shape and numel; numel is exact (a zero dimension makes it 0 whatever the others). */
static int parse_shape(const char *path, const char *name, const json_node *v, st_tensor *t, modes_error *err) {
    if (!v || v->type != JSON_ARRAY)
        return modes_fail(err, MODES_E_INPUT, "%s: tensor '%s': \"shape\" must be an array", path, name);
    if (v->n > ST_MAX_DIMS)
        return modes_fail(err, MODES_E_INPUT, "%s: tensor '%s': shape has %zu dimensions, more than the %d supported",
                          path, name, v->n, ST_MAX_DIMS);
    int zero = 0;
    for (size_t i = 0; i < v->n; i++) {
        const json_node *d = json_at(v, i);
        if (!json_is_int(d) || d->u.num < 0)
            return modes_fail(err, MODES_E_INPUT, "%s: tensor '%s': shape[%zu] must be a non-negative integer", path,
                              name, i);
        t->shape[i] = (int64_t)d->u.num;
        zero |= t->shape[i] == 0;
    }
    t->ndim = (int)v->n;
    int64_t numel = zero ? 0 : 1;
    for (int i = 0; i < t->ndim && numel; i++) {
        if (t->shape[i] > INT64_MAX / numel) {
            char sb[256];
            return modes_fail(err, MODES_E_INPUT, "%s: tensor '%s': shape %s has too many elements", path, name,
                              fmt_shape(sb, sizeof sb, t->shape, t->ndim));
        }
        numel *= t->shape[i];
    }
    t->numel = numel;
    return 0;
}

static int parse_offsets(const char *path, const char *name, const json_node *v, uint64_t *begin, uint64_t *end,
                         modes_error *err) {
    const json_node *b = json_at(v, 0), *e = json_at(v, 1);
    if (!v || v->type != JSON_ARRAY || v->n != 2 || !json_is_int(b) || !json_is_int(e) || b->u.num < 0 ||
        e->u.num < 0)
        return modes_fail(err, MODES_E_INPUT,
                          "%s: tensor '%s': \"data_offsets\" must be two non-negative integers [begin, end]", path,
                          name);
    *begin = (uint64_t)b->u.num;
    *end = (uint64_t)e->u.num;
    return 0;
}

/* Validates one header entry against the data area of data_len bytes. */
static int parse_entry(const char *path, const char *name, const json_node *v, uint64_t data_len, st_tensor *t,
                       byte_range *r, modes_error *err) {
    if (v->type != JSON_OBJECT)
        return modes_fail(err, MODES_E_INPUT, "%s: tensor '%s': entry must be an object, not %s", path, name,
                          json_type_name(v->type));
    int rc;
    if ((rc = parse_dtype(path, name, json_get(v, "dtype"), &t->dtype, err)) ||
        (rc = parse_shape(path, name, json_get(v, "shape"), t, err)) ||
        (rc = parse_offsets(path, name, json_get(v, "data_offsets"), &r->begin, &r->end, err)))
        return rc;
    char sb[256];
    uint64_t esize = dtype_sizes[t->dtype];
    if ((uint64_t)t->numel > (uint64_t)INT64_MAX / esize)
        return modes_fail(err, MODES_E_INPUT, "%s: tensor '%s': shape %s x %s is too many bytes", path, name,
                          fmt_shape(sb, sizeof sb, t->shape, t->ndim), dtype_names[t->dtype]);
    uint64_t nbytes = (uint64_t)t->numel * esize;
    unsigned long long b = r->begin, e = r->end;
    if (b > e)
        return modes_fail(err, MODES_E_INPUT, "%s: tensor '%s': data_offsets [%llu, %llu]: begin is after end", path,
                          name, b, e);
    if (e > data_len)
        return modes_fail(err, MODES_E_INPUT,
                          "%s: tensor '%s': data_offsets [%llu, %llu] run past the end of the data area (%llu bytes)",
                          path, name, b, e, (unsigned long long)data_len);
    if (e - b != nbytes)
        return modes_fail(err, MODES_E_INPUT,
                          "%s: tensor '%s': data_offsets [%llu, %llu] do not match shape %s x %s (%llu bytes)", path,
                          name, b, e, fmt_shape(sb, sizeof sb, t->shape, t->ndim), dtype_names[t->dtype],
                          (unsigned long long)nbytes);
    t->nbytes = (size_t)nbytes;
    return 0;
}

static int parse_metadata(st_archive *a, int si, const json_node *v, modes_error *err) {
    const char *path = a->shards[si].path;
    if (v->type != JSON_OBJECT)
        return modes_fail(err, MODES_E_INPUT, "%s: \"__metadata__\" must be an object, not %s", path,
                          json_type_name(v->type));
    if (!v->n) return 0;
    meta_kv *m = realloc(a->meta, (a->nmeta + v->n) * sizeof *m);
    if (!m) return oom(err, path);
    a->meta = m;
    for (size_t i = 0; i < v->n; i++) {
        const json_node *k = json_key_at(v, i), *s = json_val_at(v, i);
        if (s->type != JSON_STRING)
            return modes_fail(err, MODES_E_INPUT, "%s: \"__metadata__\" value of '%s' must be a string, not %s", path,
                              k->u.str, json_type_name(s->type));
        meta_kv *kv = &a->meta[a->nmeta];
        kv->key = strdup(k->u.str);
        kv->val = strdup(s->u.str);
        kv->shard = si;
        a->nmeta++; /* counted before the check so st_close frees a half-made pair */
        if (!kv->key || !kv->val) return oom(err, path);
    }
    return 0;
}

static int cmp_range(const void *x, const void *y) {
    const byte_range *a = x, *b = y;
    if (a->begin != b->begin) return a->begin < b->begin ? -1 : 1;
    if (a->end != b->end) return a->end < b->end ? -1 : 1;
    return 0;
}

/* Zero-sized tensors own no bytes, so they may sit anywhere, even inside another's range. */
static int check_overlaps(const st_archive *a, const char *path, byte_range *r, size_t n, modes_error *err) {
    if (n > 1) qsort(r, n, sizeof *r, cmp_range);
    const byte_range *prev = NULL;
    for (size_t i = 0; i < n; i++) {
        if (r[i].begin == r[i].end) continue;
        if (prev && r[i].begin < prev->end)
            return modes_fail(err, MODES_E_INPUT, "%s: tensors '%s' [%llu, %llu] and '%s' [%llu, %llu] overlap", path,
                              a->tensors[prev->idx].name, (unsigned long long)prev->begin,
                              (unsigned long long)prev->end, a->tensors[r[i].idx].name,
                              (unsigned long long)r[i].begin, (unsigned long long)r[i].end);
        prev = &r[i];
    }
    return 0;
}

/* Kernels cast data to float or int64 pointers, which C allows only when aligned. Hugging Face's
 * writer orders tensors so that they all are; others may not, and those few get an owned copy. */
static int realign(st_archive *a, size_t first, const char *path, modes_error *err) {
    const unsigned char *base = a->shards[a->tensors[first].shard].mf.data;
    size_t misaligned = 0;
    for (size_t i = first; i < a->n; i++) {
        st_tensor *t = &a->tensors[i];
        if (!t->nbytes) t->data = base;
        else misaligned += (uintptr_t)t->data % dtype_sizes[t->dtype] != 0;
    }
    if (!misaligned) return 0;
    void **c = realloc(a->copies, (a->ncopies + misaligned) * sizeof *c);
    if (!c) return oom(err, path);
    a->copies = c;
    for (size_t i = first; i < a->n; i++) {
        st_tensor *t = &a->tensors[i];
        if (!t->nbytes || (uintptr_t)t->data % dtype_sizes[t->dtype] == 0) continue;
        void *copy = malloc(t->nbytes); /* malloc's alignment covers every dtype */
        if (!copy) return oom(err, path);
        memcpy(copy, t->data, t->nbytes);
        a->copies[a->ncopies++] = copy;
        t->data = copy;
    }
    return 0;
}

static int reserve_tensors(st_archive *a, size_t more, const char *path, modes_error *err) {
    if (more > ST_MAX_TENSORS || a->n + more > ST_MAX_TENSORS)
        return modes_fail(err, MODES_E_INPUT, "%s: more than %d tensors", path, ST_MAX_TENSORS);
    if (a->n + more <= a->cap) return 0;
    size_t cap = a->n + more;
    st_tensor *t = realloc(a->tensors, cap * sizeof *t);
    if (!t) return oom(err, path);
    a->tensors = t;
    a->cap = cap;
    return 0;
}

/* Checks the length prefix and parses the header; *data_off is where the data area starts. */
static int read_header(const shard_file *s, json_doc **doc, size_t *data_off, modes_error *err) {
    const size_t len = s->mf.len;
    if (len < 8)
        return modes_fail(err, MODES_E_INPUT, "%s: file of %zu bytes is too short for a safetensors header", s->path,
                          len);
    uint64_t hlen = read_u64le(s->mf.data);
    if (hlen < 2)
        return modes_fail(err, MODES_E_INPUT, "%s: header length %llu is too small", s->path,
                          (unsigned long long)hlen);
    if (hlen > ST_MAX_HEADER_BYTES)
        return modes_fail(err, MODES_E_INPUT, "%s: header length %llu is over the limit of %zu bytes", s->path,
                          (unsigned long long)hlen, ST_MAX_HEADER_BYTES);
    if (hlen > len - 8)
        return modes_fail(err, MODES_E_INPUT, "%s: header length %llu runs past the end of the file (%zu bytes)",
                          s->path, (unsigned long long)hlen, len);
    /* Every tensor needs at least a handful of values, so this bounds memory well above real headers. */
    json_limits lim = {.max_bytes = ST_MAX_HEADER_BYTES, .max_depth = ST_JSON_DEPTH,
                       .max_nodes = (size_t)16 * ST_MAX_TENSORS};
    int rc = json_parse((const char *)s->mf.data + 8, (size_t)hlen, &lim, s->path, doc, err);
    if (rc) return rc;
    const json_node *root = json_root(*doc);
    if (root->type != JSON_OBJECT)
        return modes_fail(err, MODES_E_INPUT, "%s: header must be a JSON object, not %s", s->path,
                          json_type_name(root->type));
    *data_off = 8 + (size_t)hlen;
    return 0;
}

/* One allocation for all of a shard's tensor names, so the JSON tree can be freed after opening. */
static int pool_names(shard_file *s, const json_node *root, modes_error *err) {
    size_t bytes = 1;
    for (size_t i = 0; i < root->n; i++) bytes += json_key_at(root, i)->n + 1;
    s->names = malloc(bytes);
    if (!s->names) return oom(err, s->path);
    return 0;
}

static int add_entries(st_archive *a, int si, const json_node *root, size_t data_off, byte_range *ranges,
                       size_t *nranges, modes_error *err) {
    shard_file *s = &a->shards[si];
    const uint64_t data_len = s->mf.len - data_off;
    char *pool = s->names;
    int seen_meta = 0;
    for (size_t i = 0; i < root->n; i++) {
        const json_node *k = json_key_at(root, i), *v = json_val_at(root, i);
        if (has_nul(k))
            return modes_fail(err, MODES_E_INPUT, "%s: a tensor name holds a NUL byte", s->path);
        if (!strcmp(k->u.str, "__metadata__")) {
            if (seen_meta++)
                return modes_fail(err, MODES_E_INPUT, "%s: \"__metadata__\" appears twice", s->path);
            int rc = parse_metadata(a, si, v, err);
            if (rc) return rc;
            continue;
        }
        st_tensor *t = &a->tensors[a->n];
        memset(t, 0, sizeof *t);
        memcpy(pool, k->u.str, k->n + 1);
        t->name = pool;
        pool += k->n + 1;
        t->shard = si;
        byte_range *r = &ranges[*nranges];
        int rc = parse_entry(s->path, t->name, v, data_len, t, r, err);
        if (rc) return rc;
        t->data = s->mf.data + data_off + r->begin;
        r->idx = a->n++;
        (*nranges)++;
    }
    return 0;
}

/* Maps and validates shard si, appending its tensors to the archive. */
static int open_shard(st_archive *a, int si, modes_error *err) {
    shard_file *s = &a->shards[si];
    int rc = mapped_file_open(s->path, &s->mf, err);
    if (rc) return rc;
    json_doc *doc = NULL;
    size_t data_off = 0;
    if ((rc = read_header(s, &doc, &data_off, err))) {
        json_free(doc);
        return rc;
    }
    const json_node *root = json_root(doc);
    byte_range *ranges = NULL;
    size_t first = a->n, nranges = 0;
    if (!(rc = reserve_tensors(a, root->n, s->path, err)) && !(rc = pool_names(s, root, err))) {
        ranges = malloc((root->n ? root->n : 1) * sizeof *ranges);
        rc = ranges ? add_entries(a, si, root, data_off, ranges, &nranges, err) : oom(err, s->path);
    }
    if (!rc) rc = check_overlaps(a, s->path, ranges, nranges, err);
    if (!rc && a->n > first) rc = realign(a, first, s->path, err);
    free(ranges);
    json_free(doc);
    return rc;
}

static int cmp_tensor_name(const void *x, const void *y) {
    return strcmp(((const st_tensor *)x)->name, ((const st_tensor *)y)->name);
}

/* index: the index path when there is one, to lead a message about two shards. */
static int sort_and_check_names(st_archive *a, const char *index, modes_error *err) {
    if (a->n > 1) qsort(a->tensors, a->n, sizeof *a->tensors, cmp_tensor_name); /* tensors may be NULL */
    for (size_t i = 1; i < a->n; i++) {
        const st_tensor *p = &a->tensors[i - 1], *t = &a->tensors[i];
        if (strcmp(p->name, t->name)) continue;
        if (p->shard == t->shard)
            return modes_fail(err, MODES_E_INPUT, "%s: tensor '%s' appears twice in the header",
                              a->shards[t->shard].path, t->name);
        return modes_fail(err, MODES_E_INPUT, "%s: tensor '%s' is in two shards: %s and %s", index, t->name,
                          a->shards[p->shard].name, a->shards[t->shard].name);
    }
    return 0;
}

static st_archive *archive_new(int nshards) {
    st_archive *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    a->shards = calloc((size_t)nshards, sizeof *a->shards);
    if (!a->shards) {
        free(a);
        return NULL;
    }
    a->nshards = nshards;
    return a;
}

static int open_single(const char *path, st_archive **out, modes_error *err) {
    st_archive *a = archive_new(1);
    if (!a) return oom(err, path);
    a->shards[0].path = strdup(path);
    if (!a->shards[0].path) {
        st_close(a);
        return oom(err, path);
    }
    a->shards[0].name = base_name(a->shards[0].path);
    int rc = open_shard(a, 0, err);
    if (!rc) rc = sort_and_check_names(a, path, err);
    if (rc) {
        st_close(a);
        return rc;
    }
    *out = a;
    return 0;
}

/* A shard must be a file beside the index: no folders, no way out of the model's folder. */
static int plain_file_name(const json_node *s) {
    return s->n && !has_nul(s) && !strchr(s->u.str, '/') && strcmp(s->u.str, ".") && strcmp(s->u.str, "..");
}

static int cmp_cstr_ptr(const void *x, const void *y) {
    return strcmp(*(const char *const *)x, *(const char *const *)y);
}

static int check_index_shape(const char *path, const json_node *root, const json_node **wm, modes_error *err) {
    if (root->type != JSON_OBJECT)
        return modes_fail(err, MODES_E_INPUT, "%s: index must be a JSON object, not %s", path,
                          json_type_name(root->type));
    const json_node *meta = json_get(root, "metadata");
    if (meta && meta->type != JSON_OBJECT && meta->type != JSON_NULL)
        return modes_fail(err, MODES_E_INPUT, "%s: \"metadata\" must be an object", path);
    *wm = json_get(root, "weight_map");
    if (!*wm || (*wm)->type != JSON_OBJECT)
        return modes_fail(err, MODES_E_INPUT, "%s: \"weight_map\" must be an object of tensor name to file", path);
    if (!(*wm)->n) return modes_fail(err, MODES_E_INPUT, "%s: \"weight_map\" is empty", path);
    for (size_t i = 0; i < (*wm)->n; i++) {
        const json_node *k = json_key_at(*wm, i), *v = json_val_at(*wm, i);
        if (v->type != JSON_STRING)
            return modes_fail(err, MODES_E_INPUT, "%s: weight_map: tensor '%s' must map to a file name, not %s", path,
                              k->u.str, json_type_name(v->type));
        if (!plain_file_name(v))
            return modes_fail(err, MODES_E_INPUT,
                              "%s: weight_map: tensor '%s' names shard '%s', which is not a plain file name in the "
                              "index's folder",
                              path, k->u.str, v->u.str);
    }
    return 0;
}

/* The distinct shard names of the weight map, sorted, so shard numbers do not depend on key order. */
static int shard_names(const char *path, const json_node *wm, const char ***names, int *count, modes_error *err) {
    const char **v = malloc(wm->n * sizeof *v);
    if (!v) return oom(err, path);
    for (size_t i = 0; i < wm->n; i++) v[i] = json_val_at(wm, i)->u.str;
    qsort(v, wm->n, sizeof *v, cmp_cstr_ptr);
    size_t n = 0;
    for (size_t i = 0; i < wm->n; i++)
        if (!n || strcmp(v[n - 1], v[i])) v[n++] = v[i];
    *names = v;
    *count = (int)n; /* at most the weight map's size, itself bounded by the index size limit */
    return 0;
}

static int check_weight_map(const st_archive *a, const char *path, const json_node *wm, modes_error *err) {
    for (size_t i = 0; i < wm->n; i++) {
        const json_node *k = json_key_at(wm, i), *v = json_val_at(wm, i);
        const st_tensor *t = has_nul(k) ? NULL : st_find(a, k->u.str);
        if (!t)
            return modes_fail(err, MODES_E_INPUT, "%s: tensor '%s' is not in %s, the shard the index names for it",
                              path, k->u.str, v->u.str);
        if (strcmp(a->shards[t->shard].name, v->u.str))
            return modes_fail(err, MODES_E_INPUT, "%s: tensor '%s' is in %s, not in %s as the index says", path,
                              k->u.str, a->shards[t->shard].name, v->u.str);
    }
    return 0;
}

static int open_shards(st_archive *a, const char *dir, const char **names, const char *path, modes_error *err) {
    for (int i = 0; i < a->nshards; i++) {
        shard_file *s = &a->shards[i];
        s->path = path_join(dir, names[i]);
        if (!s->path) return oom(err, path);
        s->name = base_name(s->path);
        int rc = open_shard(a, i, err);
        if (rc) {
            /* The shard's own message names it; the index says where the reference came from. */
            modes_error_prefix(err, "%s", path);
            return rc;
        }
    }
    return 0;
}

static int open_from_index(const char *path, const json_node *wm, st_archive **out, modes_error *err) {
    const char **names = NULL;
    int count = 0;
    int rc = shard_names(path, wm, &names, &count, err);
    if (rc) return rc;
    char *dir = path_dirname(path);
    st_archive *a = dir ? archive_new(count) : NULL;
    rc = a ? open_shards(a, dir, names, path, err) : oom(err, path);
    if (!rc) rc = sort_and_check_names(a, path, err);
    if (!rc) rc = check_weight_map(a, path, wm, err);
    free(names);
    free(dir);
    if (rc) {
        st_close(a);
        return rc;
    }
    *out = a;
    return 0;
}

static int open_index(const char *path, st_archive **out, modes_error *err) {
    char *text = NULL;
    size_t len = 0;
    int rc = read_file(path, ST_MAX_INDEX_BYTES, &text, &len, err);
    if (rc) return rc;
    json_limits lim = {.max_bytes = ST_MAX_INDEX_BYTES, .max_depth = ST_JSON_DEPTH};
    json_doc *doc = NULL;
    rc = json_parse(text, len, &lim, path, &doc, err);
    free(text);
    if (rc) return rc;
    const json_node *wm = NULL;
    rc = check_index_shape(path, json_root(doc), &wm, err);
    if (!rc) rc = open_from_index(path, wm, out, err);
    json_free(doc);
    return rc;
}

static int open_folder(const char *dir, st_archive **out, modes_error *err) {
    char *index = path_join(dir, "model.safetensors.index.json");
    char *single = path_join(dir, "model.safetensors");
    int rc;
    if (!index || !single) rc = oom(err, dir);
    else if (is_regular_file(index)) rc = open_index(index, out, err);
    else if (is_regular_file(single)) rc = open_single(single, out, err);
    else rc = modes_fail(err, MODES_E_INPUT, "%s: folder has neither model.safetensors.index.json nor model.safetensors",
                         dir);
    free(index);
    free(single);
    return rc;
}

int st_open(const char *path, st_archive **out, modes_error *err) {
    *out = NULL;
    if (!path || !*path) return modes_fail(err, MODES_E_INPUT, "safetensors: empty path");
    if (path_is_dir(path)) return open_folder(path, out, err);
    if (ends_with(path, ".json")) return open_index(path, out, err);
    return open_single(path, out, err);
}

void st_close(st_archive *a) {
    if (!a) return;
    for (int i = 0; i < a->nshards; i++) {
        mapped_file_close(&a->shards[i].mf);
        free(a->shards[i].path);
        free(a->shards[i].names);
    }
    for (size_t i = 0; i < a->ncopies; i++) free(a->copies[i]);
    for (size_t i = 0; i < a->nmeta; i++) {
        free(a->meta[i].key);
        free(a->meta[i].val);
    }
    free(a->meta);
    free(a->copies);
    free(a->tensors);
    free(a->shards);
    free(a);
}

size_t st_count(const st_archive *a) { return a ? a->n : 0; }

const st_tensor *st_tensor_at(const st_archive *a, size_t i) { return a && i < a->n ? &a->tensors[i] : NULL; }

const st_tensor *st_find(const st_archive *a, const char *name) {
    if (!a || !name) return NULL;
    size_t lo = 0, hi = a->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(a->tensors[mid].name, name);
        if (!c) return &a->tensors[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

const char *st_shard_path(const st_archive *a, int shard) {
    return a && shard >= 0 && shard < a->nshards ? a->shards[shard].path : NULL;
}

int st_shard_count(const st_archive *a) { return a ? a->nshards : 0; }

const char *st_metadata(const st_archive *a, const char *key) {
    if (!a || !key) return NULL;
    /* Entries are appended shard by shard, so the first match is from the lowest shard. */
    for (size_t i = 0; i < a->nmeta; i++)
        if (!strcmp(a->meta[i].key, key)) return a->meta[i].val;
    return NULL;
}

/* ------------------------------------------------------------------------------------------------ */
/* Writer */

typedef struct {
    char *name;
    st_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    void *data;
    size_t nbytes;
} w_entry;

struct st_writer {
    w_entry *v;
    size_t n, cap;
    size_t *slots; /* open-addressing hash of names: entry index + 1, 0 when empty */
    size_t nslots;
    meta_kv *meta;
    size_t nmeta;
};

st_writer *st_writer_new(void) { return calloc(1, sizeof(st_writer)); }

void st_writer_free(st_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n; i++) {
        free(w->v[i].name);
        free(w->v[i].data);
    }
    for (size_t i = 0; i < w->nmeta; i++) {
        free(w->meta[i].key);
        free(w->meta[i].val);
    }
    free(w->v);
    free(w->slots);
    free(w->meta);
    free(w);
}

static uint64_t hash_name(const char *s) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* The slot holding name, or the empty slot where it would go. */
static size_t *find_slot(const st_writer *w, const char *name) {
    size_t mask = w->nslots - 1;
    for (size_t i = (size_t)hash_name(name) & mask;; i = (i + 1) & mask) {
        size_t *s = &w->slots[i];
        if (!*s || !strcmp(w->v[*s - 1].name, name)) return s;
    }
}

static int grow_slots(st_writer *w) {
    if (w->nslots && (w->n + 1) * 2 <= w->nslots) return 0;
    size_t nslots = w->nslots ? 2 * w->nslots : 64;
    size_t *slots = calloc(nslots, sizeof *slots);
    if (!slots) return -1;
    free(w->slots);
    w->slots = slots;
    w->nslots = nslots;
    for (size_t i = 0; i < w->n; i++) *find_slot(w, w->v[i].name) = i + 1;
    return 0;
}

/* Names go into the header as JSON strings, so they must be text the reader can take back: the JSON
 * parser is the one judge of that. */
static int valid_json_text(const char *s) {
    strbuf sb = {0};
    sb_json_string(&sb, s, strlen(s));
    json_doc *doc = NULL;
    int ok = !sb.failed && json_parse(sb.data, sb.len, NULL, "name", &doc, NULL) == 0;
    json_free(doc);
    sb_free(&sb);
    return ok;
}

static int check_new_shape(const char *name, st_dtype dtype, int ndim, const int64_t *shape, size_t *nbytes,
                           modes_error *err) {
    if ((unsigned)dtype >= (unsigned)ST_NDTYPES)
        return modes_fail(err, MODES_E_INPUT, "safetensors writer: tensor '%s': unknown dtype %d", name, (int)dtype);
    if (ndim < 0 || ndim > ST_MAX_DIMS || (ndim && !shape))
        return modes_fail(err, MODES_E_INPUT, "safetensors writer: tensor '%s': %d dimensions (0..%d supported)", name,
                          ndim, ST_MAX_DIMS);
    uint64_t numel = 1;
    int zero = 0;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || shape[i] > ST_MAX_EXACT)
            return modes_fail(err, MODES_E_INPUT, "safetensors writer: tensor '%s': dimension %d is %lld", name, i,
                              (long long)shape[i]);
        zero |= shape[i] == 0;
    }
    for (int i = 0; i < ndim && !zero; i++) {
        if ((uint64_t)shape[i] > (uint64_t)ST_MAX_EXACT / numel)
            return modes_fail(err, MODES_E_INPUT, "safetensors writer: tensor '%s': too many elements", name);
        numel *= (uint64_t)shape[i];
    }
    if (zero) numel = 0;
    /* Offsets must stay exact as JSON numbers too. */
    if (numel > (uint64_t)ST_MAX_EXACT / dtype_sizes[dtype] ||
        (uint64_t)(size_t)(numel * dtype_sizes[dtype]) != numel * dtype_sizes[dtype])
        return modes_fail(err, MODES_E_INPUT, "safetensors writer: tensor '%s': too many bytes", name);
    *nbytes = (size_t)(numel * dtype_sizes[dtype]);
    return 0;
}

static int check_new_name(const st_writer *w, const char *name, modes_error *err) {
    if (!strcmp(name, "__metadata__"))
        return modes_fail(err, MODES_E_INPUT, "safetensors writer: \"__metadata__\" is not a tensor name");
    if (!valid_json_text(name))
        return modes_fail(err, MODES_E_INPUT, "safetensors writer: tensor name '%s' is not valid UTF-8", name);
    if (w->nslots && *find_slot(w, name))
        return modes_fail(err, MODES_E_INPUT, "safetensors writer: tensor '%s' added twice", name);
    return 0;
}

int st_writer_add(st_writer *w, const char *name, st_dtype dtype, int ndim, const int64_t *shape,
                  const void *data, modes_error *err) {
    if (!w || !name) return modes_fail(err, MODES_E_INTERNAL, "safetensors writer: no writer or no name");
    size_t nbytes = 0;
    int rc;
    if ((rc = check_new_name(w, name, err)) || (rc = check_new_shape(name, dtype, ndim, shape, &nbytes, err)))
        return rc;
    if (nbytes && !data)
        return modes_fail(err, MODES_E_INPUT, "safetensors writer: tensor '%s': no data for %zu bytes", name, nbytes);
    if (w->n == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 16;
        w_entry *v = realloc(w->v, cap * sizeof *v);
        if (!v) return modes_fail(err, MODES_E_INTERNAL, "safetensors writer: out of memory");
        w->v = v;
        w->cap = cap;
    }
    if (grow_slots(w)) return modes_fail(err, MODES_E_INTERNAL, "safetensors writer: out of memory");
    w_entry e = {.name = strdup(name), .dtype = dtype, .ndim = ndim, .data = malloc(nbytes ? nbytes : 1),
                 .nbytes = nbytes};
    if (!e.name || !e.data) {
        free(e.name);
        free(e.data);
        return modes_fail(err, MODES_E_INTERNAL, "safetensors writer: tensor '%s': out of memory for %zu bytes", name,
                          nbytes);
    }
    if (ndim) memcpy(e.shape, shape, (size_t)ndim * sizeof *shape);
    if (nbytes) memcpy(e.data, data, nbytes);
    w->v[w->n] = e;
    *find_slot(w, name) = ++w->n;
    return 0;
}

int st_writer_set_metadata(st_writer *w, const char *key, const char *value, modes_error *err) {
    if (!w || !key || !value) return modes_fail(err, MODES_E_INTERNAL, "safetensors writer: missing metadata key");
    if (!valid_json_text(key) || !valid_json_text(value))
        return modes_fail(err, MODES_E_INPUT, "safetensors writer: metadata '%s' is not valid UTF-8", key);
    char *v = strdup(value);
    if (!v) return modes_fail(err, MODES_E_INTERNAL, "safetensors writer: out of memory");
    for (size_t i = 0; i < w->nmeta; i++) {
        if (!strcmp(w->meta[i].key, key)) {
            free(w->meta[i].val);
            w->meta[i].val = v;
            return 0;
        }
    }
    meta_kv *m = realloc(w->meta, (w->nmeta + 1) * sizeof *m);
    char *k = strdup(key);
    if (m) w->meta = m;
    if (!m || !k) {
        free(k);
        free(v);
        return modes_fail(err, MODES_E_INTERNAL, "safetensors writer: out of memory");
    }
    w->meta[w->nmeta++] = (meta_kv){.key = k, .val = v, .shard = 0};
    return 0;
}

static void header_metadata(const st_writer *w, strbuf *sb) {
    if (!w->nmeta) return;
    sb_puts(sb, "\"__metadata__\":{");
    for (size_t i = 0; i < w->nmeta; i++) {
        if (i) sb_puts(sb, ",");
        sb_json_string(sb, w->meta[i].key, strlen(w->meta[i].key));
        sb_puts(sb, ":");
        sb_json_string(sb, w->meta[i].val, strlen(w->meta[i].val));
    }
    sb_puts(sb, "}");
}

/* The JSON header, padded with spaces so the data area starts 8-byte aligned in the file. */
static void build_header(const st_writer *w, strbuf *sb) {
    sb_puts(sb, "{");
    header_metadata(w, sb);
    size_t off = 0;
    for (size_t i = 0; i < w->n; i++) {
        const w_entry *e = &w->v[i];
        if (i || w->nmeta) sb_puts(sb, ",");
        sb_json_string(sb, e->name, strlen(e->name));
        sb_printf(sb, ":{\"dtype\":\"%s\",\"shape\":[", dtype_names[e->dtype]);
        for (int d = 0; d < e->ndim; d++) sb_printf(sb, "%s%lld", d ? "," : "", (long long)e->shape[d]);
        sb_printf(sb, "],\"data_offsets\":[%zu,%zu]}", off, off + e->nbytes);
        off += e->nbytes;
    }
    sb_puts(sb, "}");
    while (sb->len % 8) sb_puts(sb, " ");
}

static int write_all(FILE *f, const void *p, size_t n) { return n == 0 || fwrite(p, 1, n, f) == n; }

int st_writer_save(const st_writer *w, const char *path, modes_error *err) {
    if (!w || !path) return modes_fail(err, MODES_E_INTERNAL, "safetensors writer: no writer or no path");
    strbuf sb = {0};
    build_header(w, &sb);
    if (sb.failed) {
        sb_free(&sb);
        return modes_fail(err, MODES_E_INTERNAL, "%s: out of memory building the header", path);
    }
    if (sb.len > ST_MAX_HEADER_BYTES) {
        size_t len = sb.len;
        sb_free(&sb);
        return modes_fail(err, MODES_E_INPUT, "%s: header of %zu bytes is over the limit of %zu", path, len,
                          ST_MAX_HEADER_BYTES);
    }
    unsigned char prefix[8];
    for (int i = 0; i < 8; i++) prefix[i] = (unsigned char)((uint64_t)sb.len >> (8 * i));
    atomic_file af;
    int rc = atomic_open(&af, path, err);
    if (rc) {
        sb_free(&sb);
        return rc;
    }
    int ok = write_all(af.f, prefix, 8) && write_all(af.f, sb.data, sb.len);
    for (size_t i = 0; ok && i < w->n; i++) ok = write_all(af.f, w->v[i].data, w->v[i].nbytes);
    int e = errno;
    sb_free(&sb);
    if (!ok) {
        atomic_abort(&af);
        return modes_fail(err, MODES_E_INPUT, "%s: write failed: %s", path, strerror(e));
    }
    return atomic_commit(&af, err);
}
