/* Comparing our outputs with the reference golden safetensors (tolerances: the README of each ref folder). */
#ifndef MODES_TESTS_GOLDEN_H
#define MODES_TESTS_GOLDEN_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "io/safetensors.h"

/* The modes binary the golden tests run (MODES_BIN, else build/modes). */
static inline const char *golden_bin(void) {
    const char *b = getenv("MODES_BIN");
    return b ? b : "build/modes";
}

/* Runs cmd and reads at most cap - 1 bytes of its stdout into buf (NUL-terminated); returns the number
 * of bytes read, or -1 when the command could not be started or exited non-zero. */
static inline long golden_read_cmd(const char *cmd, char *buf, size_t cap) {
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    const size_t n = fread(buf, 1, cap - 1, p);
    buf[n] = 0;
    return pclose(p) == 0 ? (long)n : -1;
}

/* max |a - b| over a tensor, and max |ref|. Both must be F32 with the same element count. */
static inline void golden_diff(const st_tensor *ref, const st_tensor *got, double *max_diff, double *max_ref) {
    *max_diff = 0;
    *max_ref = 0;
    for (int64_t i = 0; i < ref->numel; i++) {
        float r, g;
        memcpy(&r, (const char *)ref->data + 4 * i, 4);
        memcpy(&g, (const char *)got->data + 4 * i, 4);
        double d = fabs((double)r - g);
        if (!(d <= *max_diff)) *max_diff = d; /* NaN propagates as a failure */
        if (fabs(r) > *max_ref) *max_ref = fabs(r);
    }
}

static inline int64_t golden_i64(const st_tensor *t, int64_t i) {
    int64_t v;
    memcpy(&v, (const char *)t->data + 8 * i, 8);
    return v;
}

/* Checks one float tensor: max abs diff <= rel * max|ref| (+ abs_floor). */
static inline void golden_check_f32(const st_archive *ref, const st_archive *got, const char *name, double rel,
                                    double abs_floor, double *worst) {
    const st_tensor *r = st_find(ref, name), *g = st_find(got, name);
    CHECKF(r && g, "tensor %s: missing in %s", name, r ? "our output" : "the reference");
    if (!r || !g) return;
    CHECKF(r->numel == g->numel && g->dtype == ST_F32, "tensor %s: %lld values in ours, %lld in the reference", name,
           (long long)g->numel, (long long)r->numel);
    if (r->numel != g->numel || g->dtype != ST_F32) return;
    double d, mx;
    golden_diff(r, g, &d, &mx);
    const double tol = rel * mx + abs_floor;
    CHECKF(d <= tol, "tensor %s: max abs diff %.3g > tolerance %.3g (max |ref| %.3g)", name, d, tol, mx);
    if (worst && d / (mx > 0 ? mx : 1) > *worst) *worst = d / (mx > 0 ? mx : 1);
}

/* Router choices: the set of k experts per token must be identical (order may differ on near-ties). */
static inline void golden_check_topk(const st_archive *ref, const st_archive *got, const char *name) {
    const st_tensor *r = st_find(ref, name), *g = st_find(got, name);
    CHECKF(r && g && r->numel == g->numel && r->ndim == 2 && g->dtype == ST_I64, "tensor %s: missing or wrong shape",
           name);
    if (!(r && g && r->numel == g->numel && r->ndim == 2 && g->dtype == ST_I64)) return;
    const int64_t T = r->shape[0], K = r->shape[1];
    int64_t bad = 0;
    for (int64_t t = 0; t < T; t++)
        for (int64_t k = 0; k < K; k++) {
            int found = 0;
            for (int64_t j = 0; j < K; j++) found |= golden_i64(r, t * K + k) == golden_i64(g, t * K + j);
            bad += !found;
        }
    CHECKF(bad == 0, "tensor %s: %lld chosen experts differ from the reference", name, (long long)bad);
}

#endif
