/* Binding checkpoint tensors to weight views, validating name, dtype and shape against what the
 * config implies (docs/design.md section 4: validate everything before any compute). */
#include "io/weights.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/mem.h"

/* The checkpoint dtypes that are weight types, each mapped explicitly: any other is refused. */
static const struct {
    st_dtype st;
    modes_dtype dt;
} weight_dtypes[] = {{ST_F32, DT_F32}, {ST_BF16, DT_BF16}, {ST_F16, DT_F16}};

/* A tensor's weight type; for a dtype that is none, DT_N_TYPES, which dtype_traits (and with it
 * every size and kernel) refuses. */
modes_dtype weight_dtype(const st_tensor *t) {
    for (size_t i = 0; i < sizeof weight_dtypes / sizeof *weight_dtypes; i++)
        if (weight_dtypes[i].st == t->dtype) return weight_dtypes[i].dt;
    return DT_N_TYPES;
}

static int shape_str(char *buf, size_t cap, int ndim, const int64_t *shape) {
    int o = snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && o < (int)cap; i++) o += snprintf(buf + o, cap - (size_t)o, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (o < (int)cap) snprintf(buf + o, cap - (size_t)o, "]");
    return 0;
}

int ws_own(weight_src *w, void *p, modes_error *err) {
    if (w->n_owned == w->cap_owned) {
        const size_t cap = w->cap_owned ? 2 * w->cap_owned : 64;
        void **o = realloc(w->owned, cap * sizeof *o);
        if (!o) {
            free(p);
            return modes_fail(err, MODES_E_INTERNAL, "out of memory");
        }
        w->owned = o;
        w->cap_owned = cap;
    }
    w->owned[w->n_owned++] = p;
    return 0;
}

void weight_src_free(weight_src *w) {
    for (size_t i = 0; i < w->n_owned; i++) free(w->owned[i]);
    free(w->owned);
    st_close(w->st);
    memset(w, 0, sizeof *w);
}

/* Finds a float tensor and checks its shape against what the config implies. */
int find_tensor(const weight_src *m, const char *name, int ndim, const int64_t *shape, const st_tensor **out,
                       modes_error *err) {
    const st_tensor *t = st_find(m->st, name);
    if (!t) return modes_fail(err, MODES_E_INPUT, "%s: tensor '%s' is missing", m->dir, name);
    const modes_dtype dt = weight_dtype(t);
    if (!dtype_traits(dt))
        return modes_fail(err, MODES_E_INPUT, "%s: tensor '%s' has dtype %s; weights must be F32, BF16 or F16", m->dir,
                          name, st_dtype_name(t->dtype));
    int same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = t->shape[i] == shape[i];
    if (!same) {
        char want[128], got[128];
        shape_str(want, sizeof want, ndim, shape);
        shape_str(got, sizeof got, t->ndim, t->shape);
        return modes_fail(err, MODES_E_INPUT, "%s: tensor '%s' has shape %s, the config implies %s", m->dir, name, got,
                          want);
    }
    /* Rows run along the last dimension, and a row must be whole blocks of its type. */
    if (ndim >= 1 && !dtype_valid_row(dt, (size_t)shape[ndim - 1]))
        return modes_fail(err, MODES_E_INPUT, "%s: tensor '%s' has rows of %lld elements, not whole blocks of %d (%s)",
                          m->dir, name, (long long)shape[ndim - 1], dtype_traits(dt)->block, dtype_traits(dt)->name);
    *out = t;
    return 0;
}

/* A view into the mapping when the data is aligned for its dtype (or the model is only checked), else an
 * owned copy. */
int tensor_data(weight_src *m, const st_tensor *t, const void **data, modes_error *err) {
    const weight_type *wt = dtype_traits(weight_dtype(t));
    if (!wt) return modes_fail(err, MODES_E_INPUT, "%s: tensor '%s' has dtype %s, not a weight type", m->dir, t->name,
                               st_dtype_name(t->dtype));
    if ((uintptr_t)t->data % (uintptr_t)wt->align == 0 || m->check_only) {
        *data = t->data;
        return 0;
    }
    void *copy = mem_alloc_streamed(t->nbytes);
    if (!copy) return modes_fail(err, MODES_E_INTERNAL, "out of memory copying '%s'", t->name);
    memcpy(copy, t->data, t->nbytes);
    *data = copy;
    return ws_own(m, copy, err);
}

int bind_matrix(weight_src *m, const char *name, int rows, int cols, wmat *w, modes_error *err) {
    const st_tensor *t;
    int64_t shape[2] = {rows, cols};
    int rc = find_tensor(m, name, 2, shape, &t, err);
    if (rc) return rc;
    w->dtype = weight_dtype(t);
    w->rows = rows;
    w->cols = cols;
    return tensor_data(m, t, &w->data, err);
}

int bind_vector(weight_src *m, const char *name, int n, float **out, modes_error *err) {
    const st_tensor *t;
    int64_t shape[1] = {n};
    int rc = find_tensor(m, name, 1, shape, &t, err);
    if (rc) return rc;
    float *v = malloc((size_t)n * sizeof *v);
    void *stored = malloc(t->nbytes ? t->nbytes : 1); /* an aligned copy: the mapping may be misaligned */
    if (!v || !stored) {
        free(v), free(stored);
        return modes_fail(err, MODES_E_INTERNAL, "out of memory");
    }
    memcpy(stored, t->data, t->nbytes);
    rc = widen(v, stored, weight_dtype(t), 0, (size_t)n); /* find_tensor checked the type and length */
    free(stored);
    if (rc) {
        free(v);
        return modes_fail(err, MODES_E_INTERNAL, "%s: tensor '%s' cannot be converted to fp32", m->dir, name);
    }
    *out = v;
    return ws_own(m, v, err);
}

