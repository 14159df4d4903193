/* GGUF v3 (llama.cpp's model files): a memory-mapped reader that validates the whole header before
 * anything is used, and a writer (gguf_write.c).
 *
 * Layout, all little-endian: "GGUF", u32 version (3), i64 tensor count, i64 metadata count; then
 * the metadata (key string, u32 value type, value), then per tensor (name string, u32 ndim,
 * i64 ne[ndim], u32 ggml type, u64 offset); then padding to the alignment (the u32 key
 * "general.alignment", 32 when absent) and the data section, which tensor offsets are relative to.
 * A string is a u64 byte length and the bytes (no NUL); an array is a u32 element type, a u64
 * count and the elements. ne[0] is the length of a row (the fastest-varying dimension), so a
 * PyTorch [out, in] matrix is ne = {in, out}. */
#ifndef MODES_IO_GGUF_H
#define MODES_IO_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "modes.h"
#include "tensor/dtype.h"

#define GGUF_VERSION 3
#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_DIMS 4
/* llama.cpp refuses tensor names this long or longer (GGML_MAX_NAME), so the writer does too. */
#define GGUF_MAX_NAME 64

/* Metadata value types, numbered as in the format. */
typedef enum {
    GGUF_U8 = 0, GGUF_I8 = 1, GGUF_U16 = 2, GGUF_I16 = 3, GGUF_U32 = 4, GGUF_I32 = 5, GGUF_F32 = 6,
    GGUF_BOOL = 7, GGUF_STRING = 8, GGUF_ARRAY = 9, GGUF_U64 = 10, GGUF_I64 = 11, GGUF_F64 = 12,
    GGUF_N_VTYPES
} gguf_vtype;

/* ggml tensor types modes computes with (the rest of the ids are in gguf.c's table). */
enum {
    GGML_F32 = 0, GGML_F16 = 1, GGML_Q4_0 = 2, GGML_Q8_0 = 8, GGML_Q4_K = 12, GGML_Q5_K = 13, GGML_Q6_K = 14,
    GGML_BF16 = 30
};

/* A string in the mapping: not NUL-terminated, may hold any bytes. */
typedef struct {
    const char *s;
    size_t len;
} gguf_str;

/* A metadata entry. For a scalar, n is 1 and elem == type; for an array, type is GGUF_ARRAY and
 * elem the element type. Numeric values are at `data` in the mapping (little-endian, maybe
 * unaligned: read them through the accessors); string values are in `str` (n of them). */
typedef struct {
    const char *key; /* NUL-terminated, owned by the file */
    gguf_vtype type, elem;
    size_t n;
    const unsigned char *data;
    const gguf_str *str;
} gguf_kv;

typedef struct {
    const char *name;            /* NUL-terminated, owned by the file */
    uint32_t type;               /* ggml type id, one gguf_type_name knows */
    int ndim;                    /* 0..GGUF_MAX_DIMS */
    int64_t ne[GGUF_MAX_DIMS];   /* ne[0] = row length; 1 past ndim */
    int64_t nelements;
    uint64_t offset;             /* in the data section, a multiple of the alignment */
    const void *data;            /* in the mapping, aligned to the file's alignment */
    size_t nbytes;
} gguf_tensor;

typedef struct gguf_file gguf_file;

/* Maps and validates path: magic, version 3 (2 and 1 are refused), counts against the file size,
 * every string and array inside the file, keys non-empty and distinct, general.alignment (u32, a
 * power of two), tensor names non-empty and distinct, ndim <= 4, dimensions > 0 with products that
 * do not overflow, known ggml types with rows of whole blocks, offsets aligned, ranges inside the
 * data section and not overlapping. Names and keys holding a NUL byte are refused. Any failure is
 * one line naming the file (and the key or tensor); *out is NULL then. */
int gguf_open(const char *path, gguf_file **out, modes_error *err);
void gguf_close(gguf_file *f); /* accepts NULL; every pointer handed out dies with the file */

const char *gguf_path(const gguf_file *f);
uint32_t gguf_alignment(const gguf_file *f);
size_t gguf_kv_count(const gguf_file *f);
const gguf_kv *gguf_kv_at(const gguf_file *f, size_t i); /* file order; NULL past the end */
const gguf_kv *gguf_find_kv(const gguf_file *f, const char *key); /* NULL when absent */
size_t gguf_tensor_count(const gguf_file *f);
const gguf_tensor *gguf_tensor_at(const gguf_file *f, size_t i); /* file order; NULL past the end */
const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name); /* NULL when absent */

/* Typed getters: 0, or an error naming the file and key when the key is missing or its value does
 * not fit. Integer getters take any integer type whose value is in range; gguf_get_f32 takes f32
 * or f64; gguf_get_str a string without NUL bytes (the pointer lives as long as the file). */
int gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out, modes_error *err);
int gguf_get_i32(const gguf_file *f, const char *key, int32_t *out, modes_error *err);
int gguf_get_u64(const gguf_file *f, const char *key, uint64_t *out, modes_error *err);
int gguf_get_f32(const gguf_file *f, const char *key, float *out, modes_error *err);
int gguf_get_bool(const gguf_file *f, const char *key, int *out, modes_error *err);
int gguf_get_str(const gguf_file *f, const char *key, const char **out, modes_error *err);
/* An array whose elements are of type elem exactly; *out points into the file. */
int gguf_get_array(const gguf_file *f, const char *key, gguf_vtype elem, const gguf_kv **out, modes_error *err);
/* Element i (< kv->n) of a numeric entry of that element type, or 0 when it is not one. */
uint32_t gguf_u32_at(const gguf_kv *kv, size_t i);
int32_t gguf_i32_at(const gguf_kv *kv, size_t i);
uint64_t gguf_u64_at(const gguf_kv *kv, size_t i);
float gguf_f32_at(const gguf_kv *kv, size_t i);
int gguf_bool_at(const gguf_kv *kv, size_t i);
/* Element i of an integer array of any integer type, as int64 (u64 values above INT64_MAX: -1 and
 * 0 returned); returns -1 when kv holds no integers or i is out of range. */
int gguf_int_at(const gguf_kv *kv, size_t i, int64_t *out);

const char *gguf_vtype_name(gguf_vtype t); /* "u32", ...; "?" when unknown */
int gguf_vtype_size(gguf_vtype t);         /* bytes of a numeric value; 0 for strings, arrays, unknown */
/* The ggml type's name ("Q4_K"), elements per block and bytes per block; NULL / 0 when the id is
 * unknown (removed from ggml, or newer than this table). */
const char *gguf_type_name(uint32_t type);
int gguf_type_block(uint32_t type);
int gguf_type_block_bytes(uint32_t type);

/* The one map between ggml tensor types and modes weight types: DT_N_TYPES for a ggml type modes
 * has no kernels for; gguf_ggml_type returns -1 for a weight type GGUF cannot hold. */
modes_dtype gguf_weight_dtype(uint32_t type);
int64_t gguf_ggml_type(modes_dtype dt);

/* ---- Writer (gguf_write.c) --------------------------------------------------------------------
 * Metadata in insertion order, then tensor infos with offsets packed in insertion order, each
 * tensor padded to the alignment (general.alignment when set, else 32), as llama.cpp writes and
 * expects. Written to a temporary sibling and renamed over the path only when complete. */
typedef struct gguf_writer gguf_writer;

/* Produces a tensor's nbytes at save time, so a converter can make one tensor at a time. */
typedef int (*gguf_fill_fn)(void *ctx, void *buf, size_t nbytes, modes_error *err);

gguf_writer *gguf_writer_new(void); /* NULL when out of memory */
void gguf_writer_free(gguf_writer *w); /* accepts NULL */
/* Keys must be non-empty, distinct and NUL-free; general.alignment only as a power-of-two u32. */
/* A numeric scalar of any type, from a native value of its size (uint8_t 0/1 for GGUF_BOOL). */
int gguf_set_value(gguf_writer *w, const char *key, gguf_vtype type, const void *value, modes_error *err);
int gguf_set_u32(gguf_writer *w, const char *key, uint32_t v, modes_error *err);
int gguf_set_i32(gguf_writer *w, const char *key, int32_t v, modes_error *err);
int gguf_set_u64(gguf_writer *w, const char *key, uint64_t v, modes_error *err);
int gguf_set_f32(gguf_writer *w, const char *key, float v, modes_error *err);
int gguf_set_bool(gguf_writer *w, const char *key, int v, modes_error *err);
int gguf_set_str(gguf_writer *w, const char *key, const char *v, modes_error *err);
/* n elements of a numeric type (native little-endian values: uint32_t for GGUF_U32, uint8_t 0/1
 * for GGUF_BOOL, ...) or, for GGUF_STRING, n NUL-terminated strings (const char *const *). */
int gguf_set_array(gguf_writer *w, const char *key, gguf_vtype elem, const void *values, size_t n, modes_error *err);
/* A tensor of a known ggml type: names distinct, shorter than GGUF_MAX_NAME; 0..4 dimensions, each
 * > 0, rows of whole blocks. add_tensor copies the data (nbytes of the type and shape); the _fn
 * form calls fill at save time instead. */
int gguf_add_tensor(gguf_writer *w, const char *name, uint32_t type, int ndim, const int64_t *ne, const void *data,
                    modes_error *err);
int gguf_add_tensor_fn(gguf_writer *w, const char *name, uint32_t type, int ndim, const int64_t *ne,
                       gguf_fill_fn fill, void *ctx, modes_error *err);
int gguf_writer_save(const gguf_writer *w, const char *path, modes_error *err);

/* Bytes of a tensor of that type and shape; 0 (and false) when the type is unknown, a dimension
 * is not positive, the rows are not whole blocks or the size overflows. */
int gguf_tensor_bytes(uint32_t type, int ndim, const int64_t *ne, size_t *nbytes);

#endif
