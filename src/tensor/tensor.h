/* Weight views and the kernels the model files call. Kernels know nothing about models: they see
 * row-major matrices of a storage dtype and fp32 activations. Weights are widened to fp32 inside the
 * kernels and accumulated in fp32 (docs/design.md section 4, Numerics). */
#ifndef MODES_TENSOR_TENSOR_H
#define MODES_TENSOR_TENSOR_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "tensor/dtype.h"

/* A row-major matrix [rows, cols] of weights, y = W x, each row whole blocks of its dtype
 * (dtype.h). `data` may point into a mapped checkpoint: the kernels need it aligned only to the
 * type's `align` (rows of odd length in bf16 are fine) and never read past its last block. */
typedef struct wmat {
    modes_dtype dtype;
    const void *data;
    int rows, cols;
} wmat;

static inline size_t wmat_row_bytes(const wmat *w) { return dtype_row_bytes(w->dtype, (size_t)w->cols); }

static inline const void *wmat_row(const wmat *w, int r) {
    return (const char *)w->data + (size_t)r * wmat_row_bytes(w);
}

/* Bytes of the whole matrix. */
static inline size_t wmat_bytes(const wmat *w) { return (size_t)w->rows * wmat_row_bytes(w); }

typedef struct modes_pool modes_pool; /* core/pool.h */

/* y[i, r] = sum_c x[i, c] * W[r, c] (+ bias[r]) for i < n: y = x W^T, as a PyTorch Linear.
 * x is [n, cols] and y [n, rows], both dense; fp32 accumulation. Single-threaded. Every kernel in
 * this header is reentrant (no shared state), so threads may call them at once on different
 * outputs. matmul may allocate scratch (about 200 KiB from n = 5); without memory it takes a slower
 * path, never fails. */
void matmul(float *y, const float *x, int n, const wmat *w, const float *bias);

/* The same product with W's rows split across the pool's threads (pool may be NULL). */
void matmul_mt(modes_pool *pool, float *y, const float *x, int n, const wmat *w, const float *bias);

/* Only output columns r in [r0, r1) of the product (y keeps its row stride of w->rows floats), so
 * a caller can put several matrices (the active experts of a layer) in one parallel region. Ranges
 * that start at multiples of kernels_default()->row_block keep whole tiles. */
void matmul_rows(float *y, const float *x, int n, const wmat *w, const float *bias, int r0, int r1);

/* A product of at most this many x rows (decode) is bound by streaming its weights. Split across
 * threads, it goes fastest in pieces of about MATMUL_STREAM_PIECE_BYTES of weights, the same
 * number per thread: every piece restarts the hardware prefetcher's stream (about 0.5 us on the
 * machine of bench/results), and a region's last piece leaves the other threads waiting. */
#define MATMUL_STREAM_MAX_N 4
#define MATMUL_STREAM_PIECE_BYTES ((size_t)1 << 20)

/* How many pieces to cut a streamed product (or several read in one region) of `bytes` of weights
 * into on `threads` threads: a multiple of threads, each piece at most MATMUL_STREAM_PIECE_BYTES. */
int matmul_stream_pieces(double bytes, int threads);

/* One product of a batch: y = x W^T (+ bias), as matmul. */
typedef struct {
    float *y;
    const float *x;
    int n;
    const wmat *w;
    const float *bias;
} matmul_job;

/* Every job's product, with the output rows of all of them split across the pool in one parallel
 * region (docs/design.md section 4: the active experts of a MoE layer), pieces sized by multiply-adds
 * so that jobs of different n balance. Jobs must not write the same y. Pool may be NULL. */
void matmul_batch_mt(modes_pool *pool, const matmul_job *jobs, int n_jobs);

/* RMSNorm over the last dim: y = w * (x / sqrt(mean(x^2) + eps)); y may alias x. */
void rmsnorm(float *y, const float *x, const float *w, int dim, float eps);

/* LayerNorm over the last dim with affine weight and bias: y = (x - mean) / sqrt(var + eps) * w + b. */
void layernorm(float *y, const float *x, const float *w, const float *b, int dim, float eps);

void softmax_inplace(float *x, int n);
void gelu_tanh(float *x, size_t n); /* 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) */
void gelu_erf(float *x, size_t n);  /* 0.5 x (1 + erf(x / sqrt(2))) */
void silu_mul(float *out, const float *gate, const float *up, int n); /* out = silu(gate) * up */

/* Rotary embedding, rotate-half convention: dims d and d + hd/2 form a pair with angle index d.
 * cs holds cos[hd/2] then sin[hd/2] for one position. */
void rope_apply(float *v, int hd, const float *cs);

/* Attention of n query rows for one head: q [n, hd] (stride q_stride), keys/values at
 * k + t * kv_stride, out [n, hd] (stride o_stride); scores is scratch of n_past + n floats.
 * Causal: query i sees keys 0 .. n_past + i (the decoder, with its cache). Otherwise every query
 * sees all n_past + n keys (the vision tower, within one image). */
void attention_head(float *out, int o_stride, const float *q, int q_stride, const float *k, const float *v,
                    int kv_stride, int n, int n_past, int hd, float scale, int causal, float *scores);

/* One new token's attention for `group` query heads that share a key/value head (GQA, decode): q
 * and out hold the heads one after another (stride hd), and every head sees the same T keys at
 * k + t * kv_stride. The SIMD paths read the keys and values once for up to 16 heads, not once per
 * head. scores is scratch of T floats. */
void attention_shared_kv(float *out, const float *q, int group, const float *k, const float *v, int kv_stride, int T,
                         int hd, float scale, float *scores);

/* ---- Instruction-set paths ------------------------------------------------------------------
 * Every kernel has a scalar reference and SIMD versions chosen at run time. The default path is the
 * best the CPU has among scalar, avx2 (AVX2+FMA+F16C) and avx512 (F/BW/VL/DQ); all of them keep the
 * numerics above (fp32 products of widened weights, fp32 sums; only the order of additions differs).
 * avx512bf16 rounds the activations to bf16 (8 significant bits: relative error up to 2^-8 per
 * element) to multiply bf16 weights with vdpbf16ps, up to twice as fast for prefill, so it is never
 * the default: it is chosen by MODES_SIMD=avx512bf16 or by passing kernels_for(SIMD_AVX512BF16)
 * explicitly; its other kernels, and products with f32/f16 weights, are the exact avx512 ones.
 * MODES_SIMD=scalar|avx2|avx512|avx512bf16 picks the default path (tests, benchmarks); a path the
 * CPU lacks falls back to the best it has. Which kernel a path runs for which weight type is the
 * traits table's to say (dtype.h); a product with no kernel for its type yields NaN. simd_path is
 * declared in dtype.h. */

typedef struct kernel_set {
    simd_path path;
    const char *name;
    int row_block; /* weight rows per matmul tile: a good alignment for row ranges */
    void (*matmul_rows)(float *y, const float *x, int n, const wmat *w, const float *bias, int r0, int r1);
    void (*rmsnorm)(float *y, const float *x, const float *w, int dim, float eps);
    void (*layernorm)(float *y, const float *x, const float *w, const float *b, int dim, float eps);
    void (*softmax)(float *x, int n);
    void (*silu_mul)(float *out, const float *gate, const float *up, int n);
    void (*gelu_tanh)(float *x, size_t n);
    void (*gelu_erf)(float *x, size_t n);
    void (*rope_apply)(float *v, int hd, const float *cs);
    void (*attention_head)(float *out, int o_stride, const float *q, int q_stride, const float *k, const float *v,
                           int kv_stride, int n, int n_past, int hd, float scale, int causal, float *scores);
} kernel_set;

/* The kernels of path p, or NULL when this CPU (or this build) cannot run them. Read-only, static. */
const kernel_set *kernels_for(simd_path p);
/* The path every plain kernel call above uses, decided once per process (thread-safe). */
const kernel_set *kernels_default(void);
const char *simd_path_name(simd_path p);
/* Parses "scalar", "avx2", "avx512" or "avx512bf16"; returns 0 on success. */
int simd_path_parse(const char *s, simd_path *out);

/* Machine limits, to report speeds as fractions of them (docs/design.md section 5). */
/* GB/s of a streaming read split across the pool's threads: a buffer of `bytes` read in eighths
 * (make an eighth several times the last-level cache), the best eighth of three rounds. Returns 0
 * when the buffer cannot be allocated. */
double probe_read_bandwidth(modes_pool *pool, size_t bytes);
/* The same over a caller's buffer of `bytes` (64-byte aligned, faulted in), `rounds` rounds: for
 * probing again and again next to the runs being measured, without a new allocation each time. */
double probe_read_bandwidth_in(modes_pool *pool, const void *buf, size_t bytes, int rounds);
/* GB/s of reading the caller's buffer over and over until `total` bytes are read (at least once),
 * whole time counted: the sustained rate, the yardstick for a decode step that reads `total`. */
double probe_read_bandwidth_sustained(modes_pool *pool, const void *buf, size_t bytes, double total);
/* GFLOP/s (a multiply-add counts 2) of the path's widest multiply-add on all the pool's threads:
 * scalar 0 (not measured), avx2 8-lane FMA, avx512 16-lane FMA, avx512bf16 vdpbf16ps (32 bf16
 * pairs). 0 when the CPU lacks the path. */
double probe_peak_gflops(simd_path p, modes_pool *pool);

/* matmul_mt and matmul_batch_mt with an explicit kernel set (ks NULL: the default). */
void matmul_mt_using(const kernel_set *ks, modes_pool *pool, float *y, const float *x, int n, const wmat *w,
                     const float *bias);
void matmul_batch_mt_using(const kernel_set *ks, modes_pool *pool, const matmul_job *jobs, int n_jobs);

#endif
