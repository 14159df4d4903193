/* modes search: thresholds for a target skip ratio on calibration data (docs/modes-method.md
 * section 5), written as a policy file with the search trace. --method picks the baselines' single
 * parameter instead, for the same target, so methods are compared at equal skip ratios. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_check.h"

static const char *HELP =
    "usage: modes search -m DIR --data FILE.jsonl --alphas FILE --target RHO -o POLICY.json\n"
    "                    [--grid D] [--cap-text X] [--cap-vision Y] [--limit N] [--exhaustive] [--frozen]\n"
    "                    [--method modes|dmt|threshold|gmlg-threshold|naee]\n"
    "  Finds (tau_text, tau_vision) with skip ratio >= RHO and the smallest KL on the calibration answers,\n"
    "  by the frontier search over a D x D grid (default 100). The caps set the largest thresholds; by\n"
    "  default they come from the alphas, so that the grid's corner skips every slot that can be skipped\n"
    "  and any reachable target is reached (the authors' 30B grid used caps 0.71 and 0.60).\n"
    "  --exhaustive evaluates the whole grid; --frozen estimates the skip ratio from one unskipped pass and\n"
    "  runs real passes only on the frontier. --alphas FILE supplies the layer importances (the alphas\n"
    "  file of modes calibrate, or a policy file); modes and gmlg-threshold need them.\n"
    "  Before the first pass, -o must be writable and every example usable (its images decode, its\n"
    "  prompt and answer fit the context); all unusable examples are listed at once, and nothing runs.\n"
    "  Long forms: -m/--model, -o/--output. Defaults: --method modes, --grid 100, --cap-text 0.71,\n"
    "  --cap-vision 0.60, --limit 0 (every example).\n";

int cmd_search(int argc, char **argv) {
    const char *dir = NULL, *data = NULL, *out = NULL, *policy = NULL, *method = "modes";
    long grid = 100, limit = 0;
    double target = -1, cap_t = NAN, cap_v = NAN; /* NaN: caps from the alphas */
    int exhaustive = 0, frozen = 0;
    for (int i = 1; i < argc; i++) {
        int r;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(HELP, stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--exhaustive")) { exhaustive = 1; continue; }
        if (!strcmp(argv[i], "--frozen")) { frozen = 1; continue; }
        /* --alphas' old name here, refused with a pointer (not an option search takes, so spelled apart);
         * elsewhere --policy applies a complete policy */
        if (!strncmp(argv[i], "--", 2) && (!strcmp(argv[i] + 2, "policy") || !strncmp(argv[i] + 2, "policy=", 7)))
            return cli_usage("search", "--policy is --alphas here: the layer importances to search with "
                             "(--policy FILE applies a complete policy in run and eval)");
        if ((r = opt_str(argc, argv, &i, "-m|--model", &dir, "search")) <= 0 ||
            (r = opt_str(argc, argv, &i, "--data", &data, "search")) <= 0 ||
            (r = opt_str(argc, argv, &i, "-o|--output", &out, "search")) <= 0 ||
            (r = opt_str(argc, argv, &i, "--alphas", &policy, "search")) <= 0 ||
            (r = opt_str(argc, argv, &i, "--method", &method, "search")) <= 0 ||
            (r = opt_int(argc, argv, &i, "--grid", 2, 4096, &grid, "search")) <= 0 ||
            (r = opt_int(argc, argv, &i, "--limit", 0, 1 << 30, &limit, "search")) <= 0 ||
            (r = opt_float(argc, argv, &i, "--target", 0, 1, &target, "search")) <= 0 ||
            (r = opt_float(argc, argv, &i, "--cap-text", 0, 10, &cap_t, "search")) <= 0 ||
            (r = opt_float(argc, argv, &i, "--cap-vision", 0, 10, &cap_v, "search")) <= 0) {
            if (r < 0) return 1;
            continue;
        }
        return cli_usage("search", "unknown option '%s'", argv[i]);
    }
    modes_search_options o = modes_search_defaults();
    o.data = cli_data_options("search", data, limit);
    o.method = method;
    o.target = target;
    o.grid = (int)grid;
    o.cap_text = cap_t;
    o.cap_vision = cap_v;
    o.exhaustive = exhaustive;
    o.frozen = frozen;
    if (!dir || !data || !out || target < 0) return cli_usage("search", "-m, --data, --target and -o are required");
    const int needs_alphas = modes_search_method_needs_alphas(method);
    if (needs_alphas < 0) return cli_usage("search", "--method must be modes, dmt, threshold, gmlg-threshold or naee");
    if (needs_alphas && !policy)
        return cli_usage("search", "--method %s needs --alphas FILE (the alphas from modes calibrate, or a policy file)", method);
    const char *outputs[] = {out};
    if (cli_check_outputs("search", outputs, 1)) return 1;

    modes_error err = {0};
    modes_model *m = NULL;
    modes_policy *alphas = NULL;
    modes_search_result res = {0};
    int rc = modes_model_load(dir, &m, &err);
    if (!rc && policy) rc = modes_policy_load(m, policy, &alphas, &err);
    o.alphas = alphas;
    if (!rc) rc = modes_search(m, &o, out, &res, &err);
    cli_progress_end();
    if (!rc)
        fprintf(stderr, "search: %s tau (%.5g, %.5g) beta %.3g: skip %.3f (text %.3f, vision %.3f), KL %.4g, %d real passes -> %s\n",
                method, res.tau[0], res.tau[1], res.beta, res.skip, res.skip_text, res.skip_vision, res.kl,
                res.real_passes, out);
    modes_policy_free(alphas);
    modes_model_free(m);
    if (!rc) return 0;
    if (!res.caps_reach) return cli_fail("search", &err);
    /* One line still: the library's message, then the options that reach the target. */
    if (!strcmp(method, "modes") || !strcmp(method, "dmt"))
        fprintf(stderr, "modes search: %s: pass --cap-text %.4g --cap-vision %.4g, or leave both out for caps that "
                "reach any reachable target\n", err.msg, res.suggest_cap[0], res.suggest_cap[1]);
    else
        fprintf(stderr, "modes search: %s: pass --cap-text %.4g, or leave it out for a cap that reaches any reachable "
                "target\n", err.msg, res.suggest_cap[0]);
    return 1;
}
