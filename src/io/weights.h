/* Weights from a checkpoint, bound to the views the kernels read (tensor/tensor.h): every tensor
 * looked up by name, its dtype mapped to a weight type explicitly and its shape checked against
 * what the config implies, a mismatch refused with a message naming the folder and the tensor.
 * Model families and vision towers bind through this; it knows no model. */
#ifndef MODES_IO_WEIGHTS_H
#define MODES_IO_WEIGHTS_H

#include <stdint.h>

#include "io/safetensors.h"
#include "modes.h"
#include "tensor/tensor.h"

typedef struct {
    st_archive *st;       /* the checkpoint, owned; NULL for a synthetic model */
    const char *dir;      /* the folder, for messages */
    int check_only;       /* views only, nothing copied or transposed: the model is read, never run */
    void **owned;         /* buffers made at load (converted, copied or transposed tensors) */
    size_t n_owned, cap_owned;
} weight_src;

/* Remembers a buffer freed with the source; frees p and fails when it cannot. */
int ws_own(weight_src *w, void *p, modes_error *err);
/* Frees the owned buffers and closes the checkpoint. */
void weight_src_free(weight_src *w);

/* A tensor's weight type; DT_N_TYPES (which dtype_traits refuses) for a dtype that is none. */
modes_dtype weight_dtype(const st_tensor *t);
/* The tensor `name` of the given shape, or a message saying what differs. */
int find_tensor(const weight_src *w, const char *name, int ndim, const int64_t *shape, const st_tensor **out,
                modes_error *err);
/* An aligned view into the mapping (or, only checking, any view), else an owned copy. */
int tensor_data(weight_src *w, const st_tensor *t, const void **data, modes_error *err);
int bind_matrix(weight_src *w, const char *name, int rows, int cols, wmat *out, modes_error *err);
int bind_vector(weight_src *w, const char *name, int n, float **out, modes_error *err); /* owned fp32 copy */

#endif
