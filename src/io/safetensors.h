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

/* Limits checked while reading (and, where they apply, writing): the header limit is the one the
 * Hugging Face reader uses; the tensor count bounds the memory a hostile header can claim. */
#define ST_MAX_HEADER_BYTES ((size_t)100 << 20)
#define ST_MAX_TENSORS 1000000
#define ST_MAX_INDEX_BYTES ((size_t)64 << 20)

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
 * (model.safetensors.index.json is preferred when both exist).
 *
 * Every header is validated before st_open returns: dtypes, shapes (overflow-checked), byte ranges
 * inside the data area, matching the shape and not overlapping; duplicate names are an error, within
 * a file or across shards. Gaps between tensors and unused bytes after the last one are tolerated.
 * With an index, shard names must be plain file names in the index's folder, every tensor the
 * weight_map names must be in the shard it names, and tensors a shard holds beyond the weight_map
 * are included (as transformers loads them) since a name can only live in one shard.
 *
 * Tensor data points into the read-only mapping and is aligned to its dtype's size; the rare tensor
 * whose offset in the file is not (files written without Hugging Face's dtype ordering) is copied
 * into owned memory at open. Zero-sized tensors point at the (aligned) start of their shard's
 * mapping. On failure *out is NULL. */
int st_open(const char *path, st_archive **out, modes_error *err);
void st_close(st_archive *a); /* accepts NULL; every pointer handed out dies with the archive */
size_t st_count(const st_archive *a);
const st_tensor *st_tensor_at(const st_archive *a, size_t i); /* in name order (bytewise); NULL past the end */
const st_tensor *st_find(const st_archive *a, const char *name); /* binary search; NULL when absent */
const char *st_shard_path(const st_archive *a, int shard);      /* NULL when out of range */
int st_shard_count(const st_archive *a);
/* A "__metadata__" string value, from the first shard (in shard order) that has the key; NULL when
 * none has it. The index's own "metadata" (total_size, a number) is not kept. */
const char *st_metadata(const st_archive *a, const char *key);

size_t st_dtype_size(st_dtype t);
const char *st_dtype_name(st_dtype t);

/* Writer: tensors are copied in, written in insertion order, file written atomically. */
typedef struct st_writer st_writer;
st_writer *st_writer_new(void); /* NULL when out of memory */
/* Copies numel(shape) * st_dtype_size(dtype) bytes from data (NULL allowed when that is 0). Fails on
 * a duplicate name, "__metadata__", a name that is not valid UTF-8, ndim outside 0..ST_MAX_DIMS, a
 * negative or over-2^53 dimension, or a byte size that overflows. */
int st_writer_add(st_writer *w, const char *name, st_dtype dtype, int ndim, const int64_t *shape,
                  const void *data, modes_error *err);
/* Sets (or replaces) a "__metadata__" string entry, written before the tensors. */
int st_writer_set_metadata(st_writer *w, const char *key, const char *value, modes_error *err);
/* Header keys in insertion order, data_offsets contiguous in insertion order, header padded with
 * spaces to a multiple of 8 bytes as Hugging Face does. Written to a temporary sibling and renamed
 * over path only when complete. */
int st_writer_save(const st_writer *w, const char *path, modes_error *err);
void st_writer_free(st_writer *w); /* accepts NULL */

#endif
