/* The frontier search for (tau_t, tau_v) (docs/modes-method.md section 5), written over an abstract
 * evaluator so that it can be tested on synthetic tables and driven by real passes alike.
 *
 * Grid indices run 0..D-1 on each axis; both f (KL) and g (skip ratio) are assumed to grow with
 * either index. Every (q, p) is evaluated at most once (memoised). */
#ifndef MODES_CALIB_SEARCH_H
#define MODES_CALIB_SEARCH_H

#include "modes.h"
#include "skip/policy.h"

/* Evaluates f and g at grid point (q, p); returns 0 or an error code. */
typedef int (*search_eval_fn)(void *user, int q, int p, double *f, double *g, modes_error *err);

typedef struct {
    int D;
    search_eval_fn eval;
    void *user;
    /* outputs */
    int best_q, best_p;
    double best_f, best_g;
    int g_evals, f_evals, passes; /* passes: distinct (q, p) evaluated */
    search_point *trace;          /* every evaluated point, in evaluation order (owned) */
    int n_trace, cap_trace;
    double *memo_f, *memo_g;      /* [D * D], NaN where not evaluated (owned) */
    int unreachable;              /* set when the target failed at the largest thresholds ... */
    double max_g;                 /* ... which gave this g */
} search_state;

/* tau = 2 / (1 + exp(-10 (x - 1))) at x = cap * j / (D - 1): dense near 0, where scores live. */
double search_tau(int j, int D, double cap);
/* The smallest cap whose last grid point's tau is at least tau (0 < tau < 2): the inverse mapping. */
double search_cap_for_tau(double tau);

int search_init(search_state *s, int D, search_eval_fn eval, void *user, modes_error *err);
void search_free(search_state *s);
/* Two-pointer frontier: at most 2D evaluations of g and D of f. MODES_E_INPUT when even (D-1, D-1)
 * cannot reach rho. */
int search_frontier(search_state *s, double rho, modes_error *err);
/* Every grid point: the reference the frontier must match. */
int search_exhaustive(search_state *s, double rho, modes_error *err);
/* One dimension (a single threshold or NAEE beta): the smallest index j in 0..D-1 with g >= rho, by
 * bisection over a monotone g; eval is called with (j, j). */
int search_bisect(search_state *s, double rho, int *best_j, modes_error *err);

#endif
