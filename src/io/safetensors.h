/* safetensors: a memory-mapped reader for one file or a sharded folder, validated in full before any
 * tensor is used, and a writer (for `modes forward` outputs and tests).
 *
 * Format: 8-byte little-endian header length N, N bytes of JSON
 * {"name": {"dtype": "BF16", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}},
 * then the data area; offsets are relative to the data area. */
#ifndef MODES_IO_SAFETENSORS_H
#define MODES_IO_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "modes.h"

typedef enum { ST_F32, ST_F16, ST_BF16, ST_F64, ST_I64, ST_I32, ST_I16, ST_I8, ST_U8, ST_BOOL } st_dtype;

#define ST_MAX_DIMS 8

typedef struct {
    const char *name;       /* owned by the archive */
    st_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    int64_t numel;
    const void *data;       /* points into the mapped file; not aligned beyond the dtype's need in general */
    size_t nbytes;
    int shard;              /* index of the file it came from */
} st_tensor;

typedef struct st_archive st_archive;

/* path: a .safetensors file, a model.safetensors.index.json, or a folder holding either
 * (model.safetensors.index.json is preferred when both exist). */
int st_open(const char *path, st_archive **out, modes_error *err);
void st_close(st_archive *a);
size_t st_count(const st_archive *a);
const st_tensor *st_tensor_at(const st_archive *a, size_t i); /* in name order */
const st_tensor *st_find(const st_archive *a, const char *name);
const char *st_shard_path(const st_archive *a, int shard);

size_t st_dtype_size(st_dtype t);
const char *st_dtype_name(st_dtype t);

/* Writer: tensors are copied in, written in insertion order, file written atomically. */
typedef struct st_writer st_writer;
st_writer *st_writer_new(void);
int st_writer_add(st_writer *w, const char *name, st_dtype dtype, int ndim, const int64_t *shape,
                  const void *data, modes_error *err);
int st_writer_save(const st_writer *w, const char *path, modes_error *err);
void st_writer_free(st_writer *w);

#endif
