#include "calib/search.h"

#include <math.h>
#include <stdlib.h>

#include "core/error.h"

double search_tau(int j, int D, double cap) {
    const double x = D > 1 ? cap * j / (D - 1) : 0;
    return 2.0 / (1.0 + exp(-10.0 * (x - 1.0)));
}

double search_cap_for_tau(double tau) { return 1.0 - log(2.0 / tau - 1.0) / 10.0; }

int search_init(search_state *s, int D, search_eval_fn eval, void *user, modes_error *err) {
    *s = (search_state){.D = D, .eval = eval, .user = user, .best_q = -1, .best_p = -1};
    if (D < 2 || D > 4096) return modes_fail(err, MODES_E_INPUT, "grid size %d: must be between 2 and 4096", D);
    s->memo_f = malloc((size_t)D * D * sizeof *s->memo_f);
    s->memo_g = malloc((size_t)D * D * sizeof *s->memo_g);
    s->cap_trace = 3 * D;
    s->trace = malloc((size_t)s->cap_trace * sizeof *s->trace);
    if (!s->memo_f || !s->memo_g || !s->trace) {
        search_free(s);
        return modes_fail(err, MODES_E_INTERNAL, "out of memory");
    }
    for (int i = 0; i < D * D; i++) s->memo_f[i] = s->memo_g[i] = NAN;
    return 0;
}

void search_free(search_state *s) {
    free(s->memo_f);
    free(s->memo_g);
    free(s->trace);
    s->memo_f = s->memo_g = NULL;
    s->trace = NULL;
}

/* Memoised evaluation: one pass gives both f and g. */
static int point(search_state *s, int q, int p, double *f, double *g, modes_error *err) {
    const size_t k = (size_t)q * s->D + p;
    if (isnan(s->memo_g[k])) {
        int rc = s->eval(s->user, q, p, &s->memo_f[k], &s->memo_g[k], err);
        if (rc) return rc;
        s->passes++;
        if (s->n_trace == s->cap_trace) {
            search_point *t = realloc(s->trace, (size_t)2 * s->cap_trace * sizeof *t);
            if (!t) return modes_fail(err, MODES_E_INTERNAL, "out of memory");
            s->trace = t;
            s->cap_trace *= 2;
        }
        s->trace[s->n_trace++] = (search_point){q, p, NAN, NAN, s->memo_f[k], s->memo_g[k]};
    }
    if (f) *f = s->memo_f[k];
    if (g) *g = s->memo_g[k];
    return 0;
}

static void consider(search_state *s, int q, int p, double f, double g) {
    if (s->best_q < 0 || f < s->best_f) {
        s->best_q = q;
        s->best_p = p;
        s->best_f = f;
        s->best_g = g;
    }
}

static int unreachable(search_state *s, double rho, modes_error *err) {
    double g = NAN;
    int rc = point(s, s->D - 1, s->D - 1, NULL, &g, err);
    if (rc) return rc;
    s->unreachable = 1;
    s->max_g = g;
    return modes_fail(err, MODES_E_INPUT, "target skip ratio %.3f is unreachable: the largest thresholds give %.3f", rho, g);
}

int search_frontier(search_state *s, double rho, modes_error *err) {
    const int D = s->D;
    int p = D - 1;
    for (int q = 0; q < D; q++) {
        for (;;) { /* walk p down while the target still holds */
            if (p < 0) break;
            double g;
            int rc = point(s, q, p, NULL, &g, err);
            s->g_evals++;
            if (rc) return rc;
            if (g < rho) break;
            p--;
        }
        const int pq = p + 1;
        if (pq <= D - 1) {
            double f, g;
            int rc = point(s, q, pq, &f, &g, err);
            s->f_evals++;
            if (rc) return rc;
            consider(s, q, pq, f, g);
        }
    }
    return s->best_q < 0 ? unreachable(s, rho, err) : 0;
}

int search_exhaustive(search_state *s, double rho, modes_error *err) {
    for (int q = 0; q < s->D; q++)
        for (int p = 0; p < s->D; p++) {
            double f, g;
            int rc = point(s, q, p, &f, &g, err);
            s->f_evals++;
            s->g_evals++;
            if (rc) return rc;
            if (g >= rho) consider(s, q, p, f, g);
        }
    return s->best_q < 0 ? unreachable(s, rho, err) : 0;
}

int search_bisect(search_state *s, double rho, int *best_j, modes_error *err) {
    int lo = 0, hi = s->D - 1;
    double f, g;
    int rc = point(s, hi, hi, &f, &g, err);
    s->g_evals++;
    if (rc) return rc;
    if (g < rho) return unreachable(s, rho, err);
    while (lo < hi) { /* invariant: g(hi) >= rho */
        const int mid = lo + (hi - lo) / 2;
        if ((rc = point(s, mid, mid, NULL, &g, err))) return rc;
        s->g_evals++;
        if (g >= rho) hi = mid;
        else lo = mid + 1;
    }
    if ((rc = point(s, hi, hi, &f, &g, err))) return rc;
    s->f_evals++;
    consider(s, hi, hi, f, g);
    *best_j = hi;
    return 0;
}
