/* Matrix products: the scalar reference, the driver that tiles a product over an instruction set's
 * micro-kernels, and the public entry points (single-threaded and split across a pool).
 *
 * The product y = x W^T has both operands contiguous along the reduction, so a tile keeps one
 * vector accumulator per (x row, W row) pair and reduces it horizontally at the end: no packing of
 * x or W is needed, and weights are read in their storage layout. Decode (one x row) is bound by
 * reading W, so W is streamed once, several rows at a time, widened in registers. Prefill (many x
 * rows) is bound by multiply-adds, so 2-byte weights are widened once per block of rows into an
 * L2-sized scratch and every x tile reuses the widened rows. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/pool.h"
#include "tensor/simd.h"

/* ---- Scalar reference ---------------------------------------------------------------------- */

static float dot_f32(const float *x, const void *wv, int n) {
    const float *w = wv;
    float acc[4] = {0, 0, 0, 0};
    int c = 0;
    for (; c + 4 <= n; c += 4)
        for (int j = 0; j < 4; j++) acc[j] += x[c + j] * w[c + j];
    float s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for (; c < n; c++) s += x[c] * w[c];
    return s;
}

static float dot_bf16(const float *x, const void *wv, int n) {
    const uint16_t *w = wv;
    float acc[4] = {0, 0, 0, 0};
    int c = 0;
    for (; c + 4 <= n; c += 4)
        for (int j = 0; j < 4; j++) acc[j] += x[c + j] * bf16_to_f32(w[c + j]);
    float s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for (; c < n; c++) s += x[c] * bf16_to_f32(w[c]);
    return s;
}

static float dot_f16(const float *x, const void *wv, int n) {
    const uint16_t *w = wv;
    float s = 0;
    for (int c = 0; c < n; c++) s += x[c] * f16_to_f32(w[c]);
    return s;
}

static inline __attribute__((always_inline)) void scalar_rows(float (*dot)(const float *, const void *, int), float *y,
                                                              const float *x, int n, const wmat *w, const float *bias,
                                                              int r0, int r1) {
    const int R = w->rows, C = w->cols;
    const size_t stride = wmat_row_bytes(w);
    for (int r = r0; r < r1; r++) {
        const void *row = (const char *)w->data + (size_t)r * stride;
        const float b = bias ? bias[r] : 0.0f;
        for (int i = 0; i < n; i++) y[(size_t)i * R + r] = dot(x + (size_t)i * C, row, C) + b;
    }
}

/* A matrix product entry point that hands its arguments to FN with ARG first: the scalar kernel
 * of each type, each path's dispatch. */
#define MATMUL_ROWS_VIA(NAME, FN, ARG)                                                                        \
    void NAME(float *y, const float *x, int n, const wmat *w, const float *bias, int r0, int r1) {            \
        FN(ARG, y, x, n, w, bias, r0, r1);                                                                    \
    }
MATMUL_ROWS_VIA(matmul_rows_scalar_f32, scalar_rows, dot_f32)
MATMUL_ROWS_VIA(matmul_rows_scalar_f16, scalar_rows, dot_f16)
MATMUL_ROWS_VIA(matmul_rows_scalar_bf16, scalar_rows, dot_bf16)

void mm_no_kernel(float *y, size_t ldy, int n, int r0, int r1) {
    for (int i = 0; i < n; i++)
        for (int r = r0; r < r1; r++) y[(size_t)i * ldy + r] = NAN;
}

/* ---- Driver --------------------------------------------------------------------------------- */

/* Widened rows live in scratch of about this size, so a block stays in L2 while every x tile
 * passes over it. */
#define MM_BLOCK_BYTES (192 * 1024)

typedef struct {
    const mm_isa *isa;
    float *y;
    const void *x; /* fp32, or bf16 when the set converts x */
    size_t ldx;
    int n;
    const wmat *w;
    const float *bias;
    size_t row_bytes; /* of w, computed once per product */
} mm_args;

static inline const void *mm_row(const mm_args *a, int r) { return (const char *)a->w->data + (size_t)r * a->row_bytes; }

/* Runs every x tile against weight rows [r, r + nr) whose storage is rows[0..nr), padded to isa->nr
 * by repeating the last row. */
static void mm_tiles(const mm_args *a, const mm_tile_fn *fns, const void *const *rows, int r, int nr) {
    const mm_isa *isa = a->isa;
    const size_t xsz = isa->convert_x ? 2 : 4;
    float out[MM_MAX_MR * MM_MAX_NR];
    const int R = a->w->rows, K = a->w->cols;
    for (int i0 = 0; i0 < a->n; i0 += isa->mr) {
        const int m = a->n - i0 < isa->mr ? a->n - i0 : isa->mr;
        fns[m]((const char *)a->x + (size_t)i0 * a->ldx * xsz, a->ldx, rows, K, out);
        for (int i = 0; i < m; i++) {
            float *yi = a->y + (size_t)(i0 + i) * R + r;
            for (int j = 0; j < nr; j++) yi[j] = out[i * isa->nr + j] + (a->bias ? a->bias[r + j] : 0.0f);
        }
    }
}

/* Brings the next block's weights into L2 a slice at a time while this block computes, so widening
 * the next block does not wait for memory. */
typedef struct {
    const char *p, *end;
    size_t step; /* bytes per slice */
} prefetcher;

static prefetcher prefetch_rows(const wmat *w, int r, int count, int slices) {
    prefetcher f = {NULL, NULL, 0};
    if (count <= 0) return f;
    const size_t bytes = (size_t)count * wmat_row_bytes(w);
    f.p = wmat_row(w, r);
    f.end = f.p + bytes;
    f.step = (bytes / (size_t)slices + 64) & ~(size_t)63;
    return f;
}

static void prefetch_slice(prefetcher *f) {
    if (!f->p) return;
    const char *stop = f->end - f->p > (ptrdiff_t)f->step ? f->p + f->step : f->end;
    for (; f->p < stop; f->p += 64) __builtin_prefetch(f->p, 0, 2);
}

/* Few x rows, weights x-tile by W-tile, widened in registers (see mm_direct). */
static void mm_direct_tiles(const mm_args *a, int r0, int r1) {
    const void *rows[MM_MAX_NR];
    const int NR = a->isa->nr;
    for (int r = r0; r < r1; r += NR) {
        const int nr = r1 - r < NR ? r1 - r : NR;
        for (int j = 0; j < NR; j++) rows[j] = mm_row(a, r + (j < nr ? j : nr - 1));
        mm_tiles(a, a->isa->tile[a->w->dtype], rows, r, nr);
    }
}

/* Beyond this many bytes of x per pass, x no longer stays in L1 beside the weight stream. */
#define MM_X_L1_BYTES (16 * 1024)

/* Decode and other small n: weights read in their storage dtype, widened in registers, streamed
 * once per chunk of x rows. Row by row (isa->rows) is what the hardware prefetcher follows best,
 * but it reloads the chunk's x rows for every weight row: once they outgrow L1 (4 rows of 2048),
 * tiles, which use each weight vector for mr x rows, were twice as fast on the machine we measured. */
static void mm_direct(const mm_args *a, int r0, int r1) {
    const size_t xsz = a->isa->convert_x ? 2 : 4;
    const int chunk = a->n < MM_MAX_MR ? a->n : MM_MAX_MR;
    if (chunk > 1 && (size_t)chunk * a->ldx * xsz > MM_X_L1_BYTES) {
        mm_direct_tiles(a, r0, r1);
        return;
    }
    for (int i0 = 0; i0 < a->n; i0 += MM_MAX_MR) {
        const int m = a->n - i0 < MM_MAX_MR ? a->n - i0 : MM_MAX_MR;
        a->isa->rows(a->y + (size_t)i0 * a->w->rows, (size_t)a->w->rows, (const char *)a->x + (size_t)i0 * a->ldx * xsz,
                     a->ldx, m, a->w, a->bias, r0, r1);
    }
}

/* Every x tile against weight rows [b, b + nb) (widened in scratch, or in place when scratch is
 * NULL); x tiles outermost, so a tile's x rows stay in L1 across the block. */
static void block_tiles(const mm_args *a, int b, int nb, const float *scratch, size_t ld, prefetcher *pf) {
    const void *rows[MM_MAX_NR];
    const int NR = a->isa->nr, MR = a->isa->mr;
    const mm_tile_fn *fns = a->isa->tile[scratch ? DT_F32 : a->w->dtype];
    for (int i0 = 0; i0 < a->n; i0 += MR) {
        mm_args t = *a;
        t.x = (const char *)a->x + (size_t)i0 * a->ldx * (a->isa->convert_x ? 2 : 4);
        t.y = a->y + (size_t)i0 * a->w->rows;
        t.n = a->n - i0 < MR ? a->n - i0 : MR;
        for (int r = b; r < b + nb; r += NR) {
            const int nr = b + nb - r < NR ? b + nb - r : NR;
            for (int j = 0; j < NR; j++) {
                const int rr = r - b + (j < nr ? j : nr - 1);
                rows[j] = scratch ? (const void *)(scratch + (size_t)rr * ld) : mm_row(a, b + rr);
            }
            mm_tiles(&t, fns, rows, r, nr);
            prefetch_slice(pf);
        }
    }
}

/* Prefill: rows in blocks that stay in L2 while every x tile passes over them; 2-byte weights are
 * widened once per block into scratch (rows of stride ld floats), f32 rows are used in place. */
static void mm_blocked(const mm_args *a, int r0, int r1, float *scratch, size_t ld, int block) {
    const int K = a->w->cols;
    for (int b = r0; b < r1; b += block) {
        const int nb = r1 - b < block ? r1 - b : block, next = r1 - (b + nb) < block ? r1 - (b + nb) : block;
        if (scratch)
            for (int j = 0; j < nb; j++) a->isa->widen_row(scratch + (size_t)j * ld, mm_row(a, b + j), a->w->dtype, K);
        const int calls = (a->n + a->isa->mr - 1) / a->isa->mr * ((nb + a->isa->nr - 1) / a->isa->nr);
        prefetcher pf = prefetch_rows(a->w, b + nb, next, calls);
        block_tiles(a, b, nb, scratch, ld, &pf);
    }
}

static void *alloc64(size_t bytes) { return aligned_alloc(64, (bytes + 63) / 64 * 64); }

/* Rows per block: a whole number of tiles, at least one, about MM_BLOCK_BYTES of fp32. */
static int block_rows(const mm_isa *isa, size_t ld) {
    const int tiles = (int)(MM_BLOCK_BYTES / (ld * 4 * (size_t)isa->nr));
    return isa->nr * (tiles < 1 ? 1 : tiles > 16 ? 16 : tiles);
}

/* An empty reduction: y is the bias (or 0). */
static void mm_no_cols(float *y, int n, const wmat *w, const float *bias, int r0, int r1) {
    for (int i = 0; i < n; i++)
        for (int r = r0; r < r1; r++) y[(size_t)i * w->rows + r] = bias ? bias[r] : 0.0f;
}

void mm_drive(const mm_isa *isa, float *y, const float *x, int n, const wmat *w, const float *bias, int r0, int r1) {
    if (n <= 0 || r0 >= r1) return;
    const int K = w->cols;
    if (K <= 0) {
        mm_no_cols(y, n, w, bias, r0, r1);
        return;
    }
    mm_args a = {isa, y, x, (size_t)K, n, w, bias, wmat_row_bytes(w)};
    void *xconv = NULL;
    if (isa->convert_x) {
        a.ldx = isa->x_stride(K);
        if (!(xconv = alloc64((size_t)n * a.ldx * 2))) {
            isa->fallback(y, x, n, w, bias, r0, r1); /* the exact path needs no copy of x */
            return;
        }
        isa->convert_x(xconv, x, n, K, a.ldx);
        a.x = xconv;
    }
    if (n < isa->widen_min_n) {
        mm_direct(&a, r0, r1);
    } else {
        const size_t ld = ((size_t)K + 15) / 16 * 16;
        const int block = block_rows(isa, ld);
        float *scratch = NULL;
        if (isa->widen_row && w->dtype != DT_F32 && !(scratch = alloc64((size_t)block * ld * 4)))
            mm_direct(&a, r0, r1); /* out of memory: widen in registers instead */
        else
            mm_blocked(&a, r0, r1, scratch, ld, block);
        free(scratch);
    }
    free(xconv);
}

/* ---- Public entry points -------------------------------------------------------------------- */

static inline void rows_on(simd_path p, float *y, const float *x, int n, const wmat *w, const float *bias, int r0,
                           int r1) {
    const weight_type *wt = dtype_traits(w->dtype);
    if (wt && wt->matmul[p]) wt->matmul[p](y, x, n, w, bias, r0, r1);
    else mm_no_kernel(y, (size_t)w->rows, n, r0, r1);
}

MATMUL_ROWS_VIA(matmul_rows_on_scalar, rows_on, SIMD_SCALAR)
MATMUL_ROWS_VIA(matmul_rows_on_avx2, rows_on, SIMD_AVX2)
MATMUL_ROWS_VIA(matmul_rows_on_avx512, rows_on, SIMD_AVX512)
MATMUL_ROWS_VIA(matmul_rows_on_avx512bf16, rows_on, SIMD_AVX512BF16)

void matmul_rows(float *y, const float *x, int n, const wmat *w, const float *bias, int r0, int r1) {
    kernels_default()->matmul_rows(y, x, n, w, bias, r0, r1);
}

void matmul(float *y, const float *x, int n, const wmat *w, const float *bias) {
    kernels_default()->matmul_rows(y, x, n, w, bias, 0, w->rows);
}

typedef struct {
    const kernel_set *ks;
    float *y;
    const float *x;
    int n;
    const wmat *w;
    const float *bias;
} mt_job;

/* Below this many multiply-adds, waking the pool costs more than it saves. */
#define MT_MIN_MACS (64 * 1024)

int matmul_stream_pieces(double bytes, int threads) {
    if (threads < 1) threads = 1;
    const double per_thread = bytes / ((double)threads * (double)MATMUL_STREAM_PIECE_BYTES);
    return threads * (per_thread <= 1 ? 1 : per_thread >= 1e6 ? 1000000 : (int)ceil(per_thread));
}

/* Pieces of a product of `macs` multiply-adds (n x rows, `bytes` of weights), out of `total` in
 * its parallel region: streamed products by bytes (see MATMUL_STREAM_PIECE_BYTES), others about
 * four per thread over the region, so that uneven pieces still balance. */
static int piece_count(double macs, double bytes, int n, double total, int threads) {
    if (n <= MATMUL_STREAM_MAX_N) return matmul_stream_pieces(bytes, threads);
    const double want = total > 0 ? macs / (total / (4.0 * threads)) : 1;
    return want < 1.5 ? 1 : want >= 1e6 ? 1000000 : (int)(want + 0.5);
}

/* Rows per piece when `rows` are cut in `count` equal pieces (a remainder piece would leave a
 * thread idle at the end) of whole row blocks. */
static int piece_rows(int rows, int count, int block) {
    const int step = (rows + count - 1) / count;
    return (step + block - 1) / block * block;
}

static void mt_task(void *vp, int task, int n_tasks) {
    const mt_job *j = vp;
    const int rows = piece_rows(j->w->rows, n_tasks, j->ks->row_block), r0 = task * rows;
    const int r1 = r0 + rows < j->w->rows ? r0 + rows : j->w->rows;
    if (r0 < r1) j->ks->matmul_rows(j->y, j->x, j->n, j->w, j->bias, r0, r1);
}

void matmul_mt_using(const kernel_set *ks, modes_pool *pool, float *y, const float *x, int n, const wmat *w,
                     const float *bias) {
    if (!ks) ks = kernels_default();
    const double macs = (double)n * w->rows * w->cols;
    const int threads = pool_size(pool);
    if (threads == 1 || macs < MT_MIN_MACS) {
        ks->matmul_rows(y, x, n, w, bias, 0, w->rows);
        return;
    }
    mt_job j = {ks, y, x, n, w, bias};
    const int blocks = (w->rows + ks->row_block - 1) / ks->row_block;
    const int pieces = piece_count(macs, (double)wmat_bytes(w), n, macs, threads);
    pool_run(pool, mt_task, &j, pieces < blocks ? pieces : blocks);
}

void matmul_mt(modes_pool *pool, float *y, const float *x, int n, const wmat *w, const float *bias) {
    matmul_mt_using(NULL, pool, y, x, n, w, bias);
}

/* ---- Batches -------------------------------------------------------------------------------- */

typedef struct {
    int job, r0, r1;
} batch_piece;

typedef struct {
    const kernel_set *ks;
    const matmul_job *jobs;
    const batch_piece *pieces;
} batch_run;

static void batch_task(void *vp, int task, int n_tasks) {
    const batch_run *b = vp;
    const batch_piece *pc = &b->pieces[task];
    const matmul_job *j = &b->jobs[pc->job];
    b->ks->matmul_rows(j->y, j->x, j->n, j->w, j->bias, pc->r0, pc->r1);
}

static double job_macs(const matmul_job *j) { return (double)j->n * j->w->rows * j->w->cols; }

/* Cuts each job's rows into pieces; with out NULL only counts them. */
static int cut_pieces(const matmul_job *jobs, int n_jobs, double total, int threads, int block, batch_piece *out) {
    int np = 0;
    for (int i = 0; i < n_jobs; i++) {
        const matmul_job *j = &jobs[i];
        const int R = j->w->rows;
        const double bytes = (double)wmat_bytes(j->w);
        const int step = piece_rows(R, piece_count(job_macs(j), bytes, j->n, total, threads), block);
        for (int r = 0; r < R; r += step, np++)
            if (out) out[np] = (batch_piece){i, r, R - r > step ? r + step : R};
    }
    return np;
}

void matmul_batch_mt_using(const kernel_set *ks, modes_pool *pool, const matmul_job *jobs, int n_jobs) {
    if (!ks) ks = kernels_default();
    double total = 0;
    for (int i = 0; i < n_jobs; i++) total += job_macs(&jobs[i]);
    const int threads = pool_size(pool);
    if (threads == 1 || total < MT_MIN_MACS) {
        for (int i = 0; i < n_jobs; i++)
            ks->matmul_rows(jobs[i].y, jobs[i].x, jobs[i].n, jobs[i].w, jobs[i].bias, 0, jobs[i].w->rows);
        return;
    }
    const int np = cut_pieces(jobs, n_jobs, total, threads, ks->row_block, NULL);
    /* A decoded token's batches are a few hundred pieces at most: those stay off the heap, so the
     * steady state of decoding allocates nothing (docs/design.md section 4). */
    batch_piece few[512];
    batch_piece *pieces = np <= 512 ? few : malloc((size_t)np * sizeof *pieces);
    if (!pieces) { /* out of memory: one job at a time, each split across the pool */
        for (int i = 0; i < n_jobs; i++)
            matmul_mt_using(ks, pool, jobs[i].y, jobs[i].x, jobs[i].n, jobs[i].w, jobs[i].bias);
        return;
    }
    cut_pieces(jobs, n_jobs, total, threads, ks->row_block, pieces);
    batch_run b = {ks, jobs, pieces};
    pool_run(pool, batch_task, &b, np);
    if (pieces != few) free(pieces);
}

void matmul_batch_mt(modes_pool *pool, const matmul_job *jobs, int n_jobs) {
    matmul_batch_mt_using(NULL, pool, jobs, n_jobs);
}
