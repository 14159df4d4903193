/* AVX2+FMA versions of the element-wise, row-wise and attention kernels (the AVX-512 kernel sets
 * use them too). exp is a Cephes-style polynomial (about 2 ulp on the range used); tanh and the
 * sigmoid are built on it; erf is Abramowitz and Stegun 7.1.26 (absolute error below 1.5e-7).
 * Sums are kept in several fp32 vector accumulators instead of the reference's doubles, so results
 * differ from the scalar reference by a few ulp (tests/test_kernels.c states the tolerances).
 * Compiled with -mavx2 -mfma -mf16c. */
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#include <math.h>

#include "tensor/simd.h"
#include "tensor/simd_x86.h"

enum { VL = 8 };

static inline float hmax(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* e^x. Inputs above 88 saturate near FLT_MAX rather than overflow the exponent field; inputs below
 * ln(FLT_MIN) give 0 (the reference's denormals are below any tolerance), so exp(-inf) is 0 as
 * softmax of masked scores needs. NaN stays NaN: min/max return their second operand on NaN. */
static inline __m256 exp_ps(__m256 x) {
    const __m256 lo = _mm256_set1_ps(-87.33654f);
    const __m256 tiny = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
    x = _mm256_max_ps(lo, _mm256_min_ps(_mm256_set1_ps(88.0f), x));
    const __m256 fx = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                      _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(fx), _mm256_set1_epi32(127)), 23);
    return _mm256_andnot_ps(tiny, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
}

static inline __m256 sigmoid_ps(__m256 x) {
    const __m256 one = _mm256_set1_ps(1.0f);
    return _mm256_div_ps(one, _mm256_add_ps(one, exp_ps(_mm256_sub_ps(_mm256_setzero_ps(), x))));
}

/* ---- Norms ---------------------------------------------------------------------------------- */

static float sum_squares(const float *x, int n) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int i = 0;
    for (; i + 4 * VL <= n; i += 4 * VL) {
        const __m256 v0 = _mm256_loadu_ps(x + i), v1 = _mm256_loadu_ps(x + i + 8);
        const __m256 v2 = _mm256_loadu_ps(x + i + 16), v3 = _mm256_loadu_ps(x + i + 24);
        a0 = _mm256_fmadd_ps(v0, v0, a0);
        a1 = _mm256_fmadd_ps(v1, v1, a1);
        a2 = _mm256_fmadd_ps(v2, v2, a2);
        a3 = _mm256_fmadd_ps(v3, v3, a3);
    }
    for (; i + VL <= n; i += VL) {
        const __m256 v = _mm256_loadu_ps(x + i);
        a0 = _mm256_fmadd_ps(v, v, a0);
    }
    float s = hsum256(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; i < n; i++) s += x[i] * x[i];
    return s;
}

static float sum(const float *x, int n) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0;
    int i = 0;
    for (; i + 2 * VL <= n; i += 2 * VL) {
        a0 = _mm256_add_ps(a0, _mm256_loadu_ps(x + i));
        a1 = _mm256_add_ps(a1, _mm256_loadu_ps(x + i + 8));
    }
    for (; i + VL <= n; i += VL) a0 = _mm256_add_ps(a0, _mm256_loadu_ps(x + i));
    float s = hsum256(_mm256_add_ps(a0, a1));
    for (; i < n; i++) s += x[i];
    return s;
}

static float sum_sq_dev(const float *x, int n, float mu) {
    const __m256 m = _mm256_set1_ps(mu);
    __m256 a0 = _mm256_setzero_ps(), a1 = a0;
    int i = 0;
    for (; i + 2 * VL <= n; i += 2 * VL) {
        const __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(x + i), m), d1 = _mm256_sub_ps(_mm256_loadu_ps(x + i + 8), m);
        a0 = _mm256_fmadd_ps(d0, d0, a0);
        a1 = _mm256_fmadd_ps(d1, d1, a1);
    }
    for (; i + VL <= n; i += VL) {
        const __m256 d = _mm256_sub_ps(_mm256_loadu_ps(x + i), m);
        a0 = _mm256_fmadd_ps(d, d, a0);
    }
    float s = hsum256(_mm256_add_ps(a0, a1));
    for (; i < n; i++) s += (x[i] - mu) * (x[i] - mu);
    return s;
}

void rmsnorm_avx2(float *y, const float *x, const float *w, int dim, float eps) {
    const float inv = (float)(1.0 / sqrt((double)sum_squares(x, dim) / dim + eps));
    const __m256 vi = _mm256_set1_ps(inv);
    int i = 0;
    for (; i + VL <= dim; i += VL)
        _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(w + i), _mm256_mul_ps(_mm256_loadu_ps(x + i), vi)));
    for (; i < dim; i++) y[i] = w[i] * (x[i] * inv);
}

void layernorm_avx2(float *y, const float *x, const float *w, const float *b, int dim, float eps) {
    const float mu = sum(x, dim) / (float)dim;
    const float inv = (float)(1.0 / sqrt((double)sum_sq_dev(x, dim, mu) / dim + eps));
    const __m256 vm = _mm256_set1_ps(mu), vi = _mm256_set1_ps(inv);
    int i = 0;
    for (; i + VL <= dim; i += VL) {
        const __m256 t = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm), vi);
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(t, _mm256_loadu_ps(w + i), _mm256_loadu_ps(b + i)));
    }
    for (; i < dim; i++) y[i] = (x[i] - mu) * inv * w[i] + b[i];
}

/* ---- Softmax and activations ---------------------------------------------------------------- */

static float max_of(const float *x, int n) {
    __m256 m = _mm256_set1_ps(-INFINITY);
    int i = 0;
    for (; i + VL <= n; i += VL) m = _mm256_max_ps(m, _mm256_loadu_ps(x + i));
    float s = hmax(m);
    for (; i < n; i++) s = x[i] > s ? x[i] : s;
    return s;
}

/* x[i] = exp(x[i] - m); returns the sum. */
static float exp_shift_sum(float *x, int n, float m) {
    const __m256 vm = _mm256_set1_ps(m);
    __m256 a = _mm256_setzero_ps();
    int i = 0;
    for (; i + VL <= n; i += VL) {
        const __m256 e = exp_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm));
        _mm256_storeu_ps(x + i, e);
        a = _mm256_add_ps(a, e);
    }
    float s = hsum256(a);
    for (; i < n; i++) {
        x[i] = expf(x[i] - m);
        s += x[i];
    }
    return s;
}

static void scale_by(float *x, int n, float k) {
    const __m256 vk = _mm256_set1_ps(k);
    int i = 0;
    for (; i + VL <= n; i += VL) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), vk));
    for (; i < n; i++) x[i] *= k;
}

void softmax_avx2(float *x, int n) {
    if (n <= 0) return;
    const float s = exp_shift_sum(x, n, max_of(x, n));
    scale_by(x, n, 1.0f / s);
}

void silu_mul_avx2(float *out, const float *gate, const float *up, int n) {
    int i = 0;
    for (; i + VL <= n; i += VL) {
        const __m256 g = _mm256_loadu_ps(gate + i);
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_mul_ps(g, sigmoid_ps(g)), _mm256_loadu_ps(up + i)));
    }
    for (; i < n; i++) out[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

/* 0.5 x (1 + tanh(z)) = x * sigmoid(2z). */
void gelu_tanh_avx2(float *x, size_t n) {
    const __m256 k2 = _mm256_set1_ps(2.0f * 0.7978845608028654f), c = _mm256_set1_ps(0.044715f);
    size_t i = 0;
    for (; i + VL <= n; i += VL) {
        const __m256 v = _mm256_loadu_ps(x + i);
        const __m256 z2 = _mm256_mul_ps(k2, _mm256_fmadd_ps(_mm256_mul_ps(c, v), _mm256_mul_ps(v, v), v));
        _mm256_storeu_ps(x + i, _mm256_mul_ps(v, sigmoid_ps(z2)));
    }
    for (; i < n; i++) {
        const float v = x[i];
        x[i] = 0.5f * v * (1.0f + tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v)));
    }
}

/* erf(|z|) = 1 - poly(t) e^(-z^2), t = 1 / (1 + p|z|), with the sign of z put back. */
static inline __m256 erf_ps(__m256 z) {
    const __m256 sign = _mm256_and_ps(z, _mm256_set1_ps(-0.0f));
    const __m256 a = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), z), one = _mm256_set1_ps(1.0f);
    const __m256 t = _mm256_div_ps(one, _mm256_fmadd_ps(_mm256_set1_ps(0.3275911f), a, one));
    __m256 p = _mm256_set1_ps(1.061405429f);
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.453152027f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.421413741f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.284496736f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.254829592f));
    p = _mm256_mul_ps(p, t);
    const __m256 e = exp_ps(_mm256_sub_ps(_mm256_setzero_ps(), _mm256_mul_ps(a, a)));
    return _mm256_or_ps(sign, _mm256_fnmadd_ps(p, e, one));
}

void gelu_erf_avx2(float *x, size_t n) {
    const __m256 half = _mm256_set1_ps(0.5f), r2 = _mm256_set1_ps(0.7071067811865476f), one = _mm256_set1_ps(1.0f);
    size_t i = 0;
    for (; i + VL <= n; i += VL) {
        const __m256 v = _mm256_loadu_ps(x + i);
        const __m256 e = erf_ps(_mm256_mul_ps(v, r2));
        _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_mul_ps(half, v), _mm256_add_ps(one, e)));
    }
    for (; i < n; i++) x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.7071067811865476f));
}

void rope_apply_avx2(float *v, int hd, const float *cs) {
    const int half = hd / 2;
    const float *c = cs, *s = cs + half;
    int d = 0;
    for (; d + VL <= half; d += VL) {
        const __m256 a = _mm256_loadu_ps(v + d), b = _mm256_loadu_ps(v + d + half);
        const __m256 vc = _mm256_loadu_ps(c + d), vs = _mm256_loadu_ps(s + d);
        _mm256_storeu_ps(v + d, _mm256_fmsub_ps(a, vc, _mm256_mul_ps(b, vs)));
        _mm256_storeu_ps(v + d + half, _mm256_fmadd_ps(b, vc, _mm256_mul_ps(a, vs)));
    }
    for (; d < half; d++) {
        const float a = v[d], b = v[d + half];
        v[d] = a * c[d] - b * s[d];
        v[d + half] = b * c[d] + a * s[d];
    }
}

/* ---- Attention ------------------------------------------------------------------------------
 * Two query rows at a time, keys in chunks of KC with a running (online) softmax: each key and value
 * vector loaded feeds both queries, the score chunk lives on the stack, and memory stays linear in
 * the sequence. Per query: m the running maximum, l the running sum of exp(s - m), o (the output
 * row itself) the running sum of exp(s - m) v; a larger maximum rescales l and o. Up to QG rows
 * take each chunk in turn, pair by pair, while it is in L1: at decode the rows are the query heads
 * that share one key/value head (8 in Qwen3-VL-30B-A3B), which then read the cache once, not 8 times. */

enum { QB = 2, KC = 128, QG = 16 };

/* s[q * KC + t - t0] = scale * q_q . k_t for q < NQ, t in [t0, t1); four keys at a time. */
static inline __attribute__((always_inline)) void qk_chunk(int NQ, float *s, const float *const *q, const float *k,
                                                           size_t ks, int t0, int t1, int hd, float scale) {
    int t = t0;
    for (; t + 4 <= t1; t += 4) {
        const float *kt[4] = {k + (size_t)t * ks, k + (size_t)(t + 1) * ks, k + (size_t)(t + 2) * ks,
                              k + (size_t)(t + 3) * ks};
        __m256 acc[QB][4];
#pragma GCC unroll 2
        for (int i = 0; i < NQ; i++)
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++) acc[i][j] = _mm256_setzero_ps();
        int d = 0;
        for (; d + VL <= hd; d += VL) {
            __m256 qv[QB];
#pragma GCC unroll 2
            for (int i = 0; i < NQ; i++) qv[i] = _mm256_loadu_ps(q[i] + d);
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++) {
                const __m256 kv = _mm256_loadu_ps(kt[j] + d);
#pragma GCC unroll 2
                for (int i = 0; i < NQ; i++) acc[i][j] = _mm256_fmadd_ps(qv[i], kv, acc[i][j]);
            }
        }
#pragma GCC unroll 2
        for (int i = 0; i < NQ; i++) {
            float r[4];
            _mm_storeu_ps(r, reduce4_256(acc[i][0], acc[i][1], acc[i][2], acc[i][3]));
            for (int j = 0; j < 4; j++) {
                for (int e = d; e < hd; e++) r[j] += q[i][e] * kt[j][e];
                s[i * KC + t + j - t0] = r[j] * scale;
            }
        }
    }
    for (; t < t1; t++) {
        const float *kt = k + (size_t)t * ks;
#pragma GCC unroll 2
        for (int i = 0; i < NQ; i++) {
            __m256 a = _mm256_setzero_ps();
            int d = 0;
            for (; d + VL <= hd; d += VL) a = _mm256_fmadd_ps(_mm256_loadu_ps(q[i] + d), _mm256_loadu_ps(kt + d), a);
            float r = hsum256(a);
            for (; d < hd; d++) r += q[i][d] * kt[d];
            s[i * KC + t - t0] = r * scale;
        }
    }
}

/* o_q[d] += sum_t p[q * KC + t - t0] v_t[d]; 32 lanes per query stay in registers while the chunk's
 * value rows pass. */
static inline __attribute__((always_inline)) void pv_chunk(int NQ, float *const *o, const float *p, const float *v,
                                                           size_t vs, int t0, int t1, int hd) {
    int d = 0;
    for (; d + 4 * VL <= hd; d += 4 * VL) {
        __m256 acc[QB][4];
#pragma GCC unroll 2
        for (int i = 0; i < NQ; i++)
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++) acc[i][j] = _mm256_loadu_ps(o[i] + d + j * VL);
        for (int t = t0; t < t1; t++) {
            const float *vt = v + (size_t)t * vs + d;
            __m256 pt[QB];
#pragma GCC unroll 2
            for (int i = 0; i < NQ; i++) pt[i] = _mm256_set1_ps(p[i * KC + t - t0]);
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++) {
                const __m256 vv = _mm256_loadu_ps(vt + j * VL);
#pragma GCC unroll 2
                for (int i = 0; i < NQ; i++) acc[i][j] = _mm256_fmadd_ps(pt[i], vv, acc[i][j]);
            }
        }
#pragma GCC unroll 2
        for (int i = 0; i < NQ; i++)
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++) _mm256_storeu_ps(o[i] + d + j * VL, acc[i][j]);
    }
    for (; d + VL <= hd; d += VL)
#pragma GCC unroll 2
        for (int i = 0; i < NQ; i++) {
            __m256 a = _mm256_loadu_ps(o[i] + d);
            for (int t = t0; t < t1; t++)
                a = _mm256_fmadd_ps(_mm256_set1_ps(p[i * KC + t - t0]), _mm256_loadu_ps(v + (size_t)t * vs + d), a);
            _mm256_storeu_ps(o[i] + d, a);
        }
    for (; d < hd; d++)
        for (int i = 0; i < NQ; i++) {
            float a = o[i][d];
            for (int t = t0; t < t1; t++) a += p[i * KC + t - t0] * v[(size_t)t * vs + d];
            o[i][d] = a;
        }
}

/* Folds one chunk of scores s[0..len) (the query sees `seen` of them; the rest become 0) into the
 * running softmax: turns s into exp(s - m), rescales l and o when the maximum grows. */
static void softmax_chunk(float *s, int len, int seen, float *m, float *l, float *o, int hd) {
    if (seen <= 0) { /* the chunk is all in this query's future: weights 0 */
        for (int t = 0; t < len; t++) s[t] = 0.0f;
        return;
    }
    for (int t = seen; t < len; t++) s[t] = -INFINITY;
    const float mx = max_of(s, seen), m_new = mx > *m ? mx : *m;
    const float sum = exp_shift_sum(s, len, m_new);
    if (m_new > *m) {
        if (*m != -INFINITY) { /* before the first chunk l and o are still 0 */
            const float corr = expf(*m - m_new);
            *l *= corr;
            scale_by(o, hd, corr);
        }
        *m = m_new;
    }
    *l += sum;
}

/* One chunk of keys [t0, t1) for NQ rows (o, q, T, m, l point at the first of them). */
static inline __attribute__((always_inline)) void attend_chunk(int NQ, float *const *o, const float *const *q,
                                                               const int *T, float *m, float *l, const float *k,
                                                               const float *v, size_t kvs, int t0, int t1, int hd,
                                                               float scale) {
    float s[QB * KC];
    qk_chunk(NQ, s, q, k, kvs, t0, t1, hd, scale);
    for (int i = 0; i < NQ; i++) {
        const int seen = T[i] - t0 < t1 - t0 ? T[i] - t0 : t1 - t0;
        softmax_chunk(s + i * KC, t1 - t0, seen, &m[i], &l[i], o[i], hd);
    }
    pv_chunk(NQ, o, s, v, kvs, t0, t1, hd);
}

/* Queries i0 .. i0 + nq - 1 (nq <= QG); query i sees keys [0, T(i)), T increasing by one per query
 * if causal. Key chunks outermost, rows in pairs within each chunk. */
static void attend_rows(int nq, float *out, int o_stride, const float *q, int q_stride, const float *k, const float *v,
                        size_t kvs, int i0, int n, int n_past, int hd, float scale, int causal) {
    float m[QG], l[QG];
    float *o[QG];
    const float *qq[QG];
    int T[QG];
    for (int i = 0; i < nq; i++) {
        o[i] = out + (size_t)(i0 + i) * o_stride;
        qq[i] = q + (size_t)(i0 + i) * q_stride;
        T[i] = causal ? n_past + i0 + i + 1 : n_past + n;
        m[i] = -INFINITY, l[i] = 0.0f;
        for (int d = 0; d < hd; d++) o[i][d] = 0.0f;
    }
    for (int t0 = 0; t0 < T[nq - 1]; t0 += KC) {
        const int t1 = t0 + KC < T[nq - 1] ? t0 + KC : T[nq - 1];
        int i = 0;
        for (; i + QB <= nq; i += QB) attend_chunk(QB, o + i, qq + i, T + i, m + i, l + i, k, v, kvs, t0, t1, hd, scale);
        for (; i < nq; i++) attend_chunk(1, o + i, qq + i, T + i, m + i, l + i, k, v, kvs, t0, t1, hd, scale);
    }
    for (int i = 0; i < nq; i++) scale_by(o[i], hd, 1.0f / l[i]);
}

/* The chunked softmax needs no scratch: `scores` is left untouched. */
void attention_head_avx2(float *out, int o_stride, const float *q, int q_stride, const float *k, const float *v,
                         int kv_stride, int n, int n_past, int hd, float scale, int causal, float *scores) {
    for (int i = 0; i < n; i += QG)
        attend_rows(n - i < QG ? n - i : QG, out, o_stride, q, q_stride, k, v, (size_t)kv_stride, i, n, n_past, hd,
                    scale, causal);
}
#endif
