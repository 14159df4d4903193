/* The public services of io/ behind include/modes.h: whole files, atomic writes, tensor files. */
#include <stdlib.h>

#include "core/error.h"
#include "io/file.h"
#include "io/safetensors.h"

int modes_read_file(const char *path, size_t max_bytes, char **data, size_t *len, modes_error *err) {
    MODES_REQUIRE(err, data);
    *data = NULL;
    MODES_REQUIRE(err, path);
    size_t n = 0;
    int rc = read_file(path, max_bytes, data, &n, err);
    if (len) *len = rc ? 0 : n;
    return rc;
}

int modes_write_file_atomic(const char *path, const void *data, size_t len, modes_error *err) {
    MODES_REQUIRE(err, path);
    if (len) MODES_REQUIRE(err, data);
    return write_file_atomic(path, data, len, err);
}

int modes_check_writable(const char *path, modes_error *err) {
    MODES_REQUIRE(err, path);
    return path_check_writable(path, err);
}

struct modes_tensor_writer {
    st_writer *w;
};

int modes_tensor_writer_new(modes_tensor_writer **out, modes_error *err) {
    MODES_REQUIRE(err, out);
    *out = calloc(1, sizeof **out);
    if (*out && ((*out)->w = st_writer_new())) return 0;
    free(*out);
    *out = NULL;
    return modes_fail(err, MODES_E_INTERNAL, "out of memory");
}

int modes_tensor_writer_add(modes_tensor_writer *w, const char *name, modes_value_type type, int ndim,
                            const int64_t *shape, const void *data, modes_error *err) {
    MODES_REQUIRE(err, w);
    MODES_REQUIRE(err, name);
    if (ndim > 0) MODES_REQUIRE(err, shape);
    if (type != MODES_VALUES_F32 && type != MODES_VALUES_I64)
        return modes_fail(err, MODES_E_INPUT, "modes_tensor_writer_add: unknown value type %d", (int)type);
    return st_writer_add(w->w, name, type == MODES_VALUES_F32 ? ST_F32 : ST_I64, ndim, shape, data, err);
}

int modes_tensor_writer_save(const modes_tensor_writer *w, const char *path, modes_error *err) {
    MODES_REQUIRE(err, w);
    MODES_REQUIRE(err, path);
    return st_writer_save(w->w, path, err);
}

void modes_tensor_writer_free(modes_tensor_writer *w) {
    if (!w) return;
    st_writer_free(w->w);
    free(w);
}
