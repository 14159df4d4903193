/* The frontier search on synthetic monotone tables: it must return the exhaustive optimum, use at
 * most 2D evaluations of g and D of f, and report an unreachable target. */
#include <math.h>
#include <string.h>

#include "check.h"
#include "calib/search.h"
#include "calib/tune.h"

typedef struct {
    int D, kind;
    long calls;
} table;

/* Monotone in both indices; several shapes so the frontier bends differently. */
static void values(const table *t, int q, int p, double *f, double *g) {
    const double x = (double)q / (t->D - 1), y = (double)p / (t->D - 1);
    switch (t->kind) {
    case 0: *g = 0.6 * x + 0.4 * y; *f = x * x + 0.5 * y * y * y; break;
    case 1: *g = 1 - (1 - x) * (1 - y); *f = exp(3 * x) + exp(2 * y); break;
    case 2: *g = 0.5 * sqrt(x) + 0.5 * y * y; *f = 2 * x + y + 0.3 * x * y; break;
    default: *g = floor(10 * (0.3 * x + 0.7 * y)) / 10; *f = x + 4 * y * y; break; /* plateaus: ties */
    }
}

static int eval(void *user, int q, int p, double *f, double *g, modes_error *err) {
    table *t = user;
    t->calls++;
    values(t, q, p, f, g);
    return 0;
}

static void test_matches_exhaustive(void) {
    const int grids[] = {2, 5, 17, 50, 100};
    const double rhos[] = {0.05, 0.3, 0.5, 0.77, 0.95};
    for (int gi = 0; gi < 5; gi++)
        for (int kind = 0; kind < 4; kind++)
            for (int ri = 0; ri < 5; ri++) {
                const int D = grids[gi];
                table t = {D, kind, 0};
                search_state fr, ex;
                modes_error err;
                CHECK(search_init(&fr, D, eval, &t, &err) == 0);
                int rc = search_frontier(&fr, rhos[ri], &err);
                table t2 = {D, kind, 0};
                CHECK(search_init(&ex, D, eval, &t2, &err) == 0);
                int rc2 = search_exhaustive(&ex, rhos[ri], &err);
                CHECKF(rc == rc2, "D %d kind %d rho %g: frontier rc %d, exhaustive rc %d", D, kind, rhos[ri], rc, rc2);
                if (!rc && !rc2) {
                    CHECKF(fr.best_f == ex.best_f, "D %d kind %d rho %g: frontier f %g, exhaustive %g", D, kind, rhos[ri],
                           fr.best_f, ex.best_f);
                    CHECK(fr.best_g >= rhos[ri]);
                }
                CHECKF(fr.g_evals <= 2 * D && fr.f_evals <= D, "D %d: %d g and %d f evaluations", D, fr.g_evals,
                       fr.f_evals);
                CHECKF(t.calls <= 3 * D && t.calls == fr.passes, "D %d: %ld real evaluations", D, t.calls);
                CHECK(t2.calls == (long)D * D);
                search_free(&fr);
                search_free(&ex);
            }
}

static void test_unreachable(void) {
    table t = {20, 0, 0};
    search_state s;
    modes_error err = {0};
    CHECK(search_init(&s, 20, eval, &t, &err) == 0);
    CHECK(search_frontier(&s, 1.5, &err) == MODES_E_INPUT && strstr(err.msg, "unreachable"));
    search_free(&s);
    CHECK(search_init(&s, 20, eval, &t, &err) == 0);
    int j;
    CHECK(search_bisect(&s, 1.5, &j, &err) == MODES_E_INPUT && strstr(err.msg, "unreachable"));
    search_free(&s);
    CHECK(search_init(&s, 1, eval, &t, &err) == MODES_E_INPUT);
}

static void test_bisect(void) {
    for (int D = 2; D <= 64; D += 7)
        for (double rho = 0.05; rho < 1; rho += 0.1) {
            table t = {D, 0, 0};
            search_state s;
            modes_error err;
            CHECK(search_init(&s, D, eval, &t, &err) == 0);
            int j = -1;
            CHECK(search_bisect(&s, rho, &j, &err) == 0);
            int want = 0; /* smallest j with g(j, j) >= rho */
            double f, g;
            for (; want < D; want++) {
                values(&t, want, want, &f, &g);
                if (g >= rho) break;
            }
            CHECKF(j == want, "D %d rho %g: bisection %d, linear scan %d", D, rho, j, want);
            CHECK(t.calls <= 2 + (long)ceil(log2(D)) + 1);
            search_free(&s);
        }
}

static void test_tau_grid(void) {
    CHECK(fabs(search_tau(0, 100, 0.71) - 2.0 / (1.0 + exp(10.0))) < 1e-15);
    CHECK(fabs(search_tau(99, 100, 0.71) - 2.0 / (1.0 + exp(-10.0 * (0.71 - 1.0)))) < 1e-15);
    for (int j = 1; j < 100; j++) CHECK(search_tau(j, 100, 0.6) > search_tau(j - 1, 100, 0.6));
}

/* Default caps come from the alphas: the grid's last tau lies just above the largest score a slot can
 * have (weight <= 1 times the modality's largest alpha, or 1 without GMLG), for any grid size. */
static void test_default_caps(void) {
    const float text[4] = {0.09f, 0.17f, 0.29f, 0.45f}, vision[4] = {0.06f, 0.67f, 0.27f, 0.0f};
    modes_policy *a = policy_new(SKIP_MODES, 4);
    CHECK(a != NULL);
    if (!a) return;
    memcpy(a->alpha[0], text, sizeof text);
    memcpy(a->alpha[1], vision, sizeof vision);
    const double bound[2] = {0.45, 0.67};
    double cap[2];
    tune_default_caps(SKIP_MODES, a, cap);
    for (int D = 2; D <= 200; D += 33)
        for (int c = 0; c < 2; c++) {
            const double top = search_tau(D - 1, D, cap[c]);
            CHECKF(top > bound[c] && top < bound[c] * 1.01, "D %d class %d: last tau %g for largest score %g", D, c, top,
                   bound[c]);
            CHECK(search_tau(D - 1, D, 0.71) < bound[c]); /* why a fixed 0.71 cap fails on a 4-layer model */
        }
    tune_default_caps(SKIP_THRESHOLD_GMLG, a, cap); /* one tau for both modalities: the larger bound */
    CHECK(cap[0] == cap[1] && search_tau(9, 10, cap[0]) > 0.67 && search_tau(9, 10, cap[0]) < 0.68);
    tune_default_caps(SKIP_DMT, a, cap); /* scores are bare weights, up to 1 */
    CHECK(search_tau(9, 10, cap[0]) > 1 && search_tau(9, 10, cap[1]) > 1 && search_tau(9, 10, cap[0]) < 1.01);
    tune_default_caps(SKIP_MODES, NULL, cap);
    CHECK(search_tau(9, 10, cap[0]) > 1);
    modes_policy_free(a);
    for (double tau = 0.01; tau < 1.9; tau += 0.1) CHECK(fabs(search_tau(1, 2, search_cap_for_tau(tau)) - tau) < 1e-12);
}

int main(void) {
    test_default_caps();
    test_matches_exhaustive();
    test_unreachable();
    test_bisect();
    test_tau_grid();
    return check_done();
}
