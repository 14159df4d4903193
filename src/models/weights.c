/* Binding checkpoint tensors to the model's weight views, validating name, dtype and shape against
 * what the config implies (docs/design.md section 4: validate everything before any compute). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/mem.h"
#include "models/model.h"

static int is_weight_dtype(st_dtype t) { return t == ST_F32 || t == ST_BF16 || t == ST_F16; }

/* Only called on tensors find_tensor accepted. */
modes_dtype weight_dtype(const st_tensor *t) {
    return t->dtype == ST_BF16 ? DT_BF16 : t->dtype == ST_F16 ? DT_F16 : DT_F32;
}

static int shape_str(char *buf, size_t cap, int ndim, const int64_t *shape) {
    int o = snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && o < (int)cap; i++) o += snprintf(buf + o, cap - (size_t)o, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (o < (int)cap) snprintf(buf + o, cap - (size_t)o, "]");
    return 0;
}

/* Finds a float tensor and checks its shape against what the config implies. */
int find_tensor(const modes_model *m, const char *name, int ndim, const int64_t *shape, const st_tensor **out,
                       modes_error *err) {
    const st_tensor *t = st_find(m->weights, name);
    if (!t) return modes_fail(err, MODES_E_INPUT, "%s: tensor '%s' is missing", m->dir, name);
    if (!is_weight_dtype(t->dtype))
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
    *out = t;
    return 0;
}

/* A view into the mapping when the data is aligned for its dtype (or the model is only checked), else an
 * owned copy. */
int tensor_data(modes_model *m, const st_tensor *t, const void **data, modes_error *err) {
    const modes_dtype dt = weight_dtype(t);
    if ((uintptr_t)t->data % dtype_size(dt) == 0 || m->check_only) {
        *data = t->data;
        return 0;
    }
    void *copy = mem_alloc_streamed(t->nbytes);
    if (!copy) return modes_fail(err, MODES_E_INTERNAL, "out of memory copying '%s'", t->name);
    memcpy(copy, t->data, t->nbytes);
    *data = copy;
    return model_own(m, copy, err);
}

int bind_matrix(modes_model *m, const char *name, int rows, int cols, wmat *w, modes_error *err) {
    const st_tensor *t;
    int64_t shape[2] = {rows, cols};
    int rc = find_tensor(m, name, 2, shape, &t, err);
    if (rc) return rc;
    w->dtype = weight_dtype(t);
    w->rows = rows;
    w->cols = cols;
    return tensor_data(m, t, &w->data, err);
}

int bind_vector(modes_model *m, const char *name, int n, float **out, modes_error *err) {
    const st_tensor *t;
    int64_t shape[1] = {n};
    int rc = find_tensor(m, name, 1, shape, &t, err);
    if (rc) return rc;
    float *v = malloc((size_t)n * sizeof *v);
    if (!v) return modes_fail(err, MODES_E_INTERNAL, "out of memory");
    const modes_dtype dt = weight_dtype(t);
    if (dt == DT_F32) memcpy(v, t->data, (size_t)n * sizeof *v); /* memcpy: the mapping may be misaligned */
    else {
        uint16_t *h = malloc((size_t)n * sizeof *h);
        if (!h) { free(v); return modes_fail(err, MODES_E_INTERNAL, "out of memory"); }
        memcpy(h, t->data, (size_t)n * sizeof *h);
        widen(v, h, dt, 0, (size_t)n);
        free(h);
    }
    *out = v;
    return model_own(m, v, err);
}

