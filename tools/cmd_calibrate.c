/* modes calibrate: the layer importances alpha of GMLG (docs/modes-method.md section 2), written as a
 * policy file (method modes, thresholds 0 until `modes search` sets them). */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cli_check.h"
#include "core/error.h"
#include "io/data.h"
#include "calib/calibrate.h"

static const char *HELP =
    "usage: modes calibrate -m DIR --data FILE.jsonl -o POLICY.json [--limit N]\n"
    "                       [--alpha-granularity layer|layer-modality] [--removal zero|identity]\n"
    "  For every MoE layer (and modality), the mean KL divergence of the answer tokens' distribution when\n"
    "  that layer's routed experts are removed; normalised over layers into the policy's alphas.\n"
    "  Before the first pass, -o must be writable and every example usable (its images decode, its\n"
    "  prompt and answer fit the context); all unusable examples are listed at once, and nothing runs.\n"
    "  Long forms: -m/--model, -o/--output. Defaults: --limit 0 (every example), --alpha-granularity\n"
    "  layer-modality, --removal zero.\n";

int cmd_calibrate(int argc, char **argv) {
    const char *dir = NULL, *data = NULL, *out = NULL, *gran = "layer-modality", *removal = "zero";
    long limit = 0;
    for (int i = 1; i < argc; i++) {
        int r;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(HELP, stdout);
            return 0;
        }
        if ((r = opt_str(argc, argv, &i, "-m|--model", &dir, "calibrate")) <= 0 ||
            (r = opt_str(argc, argv, &i, "--data", &data, "calibrate")) <= 0 ||
            (r = opt_str(argc, argv, &i, "-o|--output", &out, "calibrate")) <= 0 ||
            (r = opt_str(argc, argv, &i, "--alpha-granularity", &gran, "calibrate")) <= 0 ||
            (r = opt_str(argc, argv, &i, "--removal", &removal, "calibrate")) <= 0 ||
            (r = opt_int(argc, argv, &i, "--limit", 0, 1 << 30, &limit, "calibrate")) <= 0) {
            if (r < 0) return 1;
            continue;
        }
        return cli_usage("calibrate", "unknown option '%s'", argv[i]);
    }
    if (!dir || !data || !out) return cli_usage("calibrate", "-m, --data and -o are required");
    if (strcmp(gran, "layer") && strcmp(gran, "layer-modality"))
        return cli_usage("calibrate", "--alpha-granularity must be layer or layer-modality");
    if (strcmp(removal, "zero") && strcmp(removal, "identity"))
        return cli_usage("calibrate", "--removal must be zero or identity");
    const char *outputs[] = {out};
    if (cli_check_outputs("calibrate", outputs, 1)) return 1;

    modes_error err = {0};
    modes_model *m = NULL;
    data_set d = {0};
    calib_session s = {0};
    modes_policy *p = NULL;
    int rc = modes_model_load(dir, &m, &err);
    if (!rc) rc = data_load(data, (int)limit, &d, &err);
    const data_check_options check = {.with_answer = 1};
    if (!rc) rc = cli_check_data("calibrate", m, &d, &check, 0, NULL, NULL, &err);
    if (!rc) rc = calib_session_open(m, &d, cli_progress, NULL, &s, &err);
    if (!rc && !(p = policy_new(SKIP_MODES, m->n_moe_layers))) rc = modes_fail(&err, MODES_E_INTERNAL, "out of memory");
    calib_options o = {.per_modality = !strcmp(gran, "layer-modality"), .identity = !strcmp(removal, "identity")};
    if (!rc) rc = calibrate_alpha(&s, &o, p, NULL, &err);
    cli_progress_end();
    if (!rc) {
        policy_binding bind;
        rc = model_binding(m, &bind, &err);
        policy_meta meta = {.binding = &bind, .experts = m->cfg.text.n_experts, .top_k = m->cfg.text.top_k,
                            .target_skip = -1, .data = data, .examples = d.n, .answer_tokens = s.answer_tokens,
                            .removal = removal, .granularity = gran, .layer_evals = s.layer_evals,
                            .naive_layer_evals = s.naive_layer_evals};
        if (!rc) rc = policy_save(out, p, &meta, &err);
        policy_binding_free(&bind);
    }
    if (!rc)
        fprintf(stderr, "calibrate: %d examples, %lld answer tokens, %d MoE layers, %lld token-layer evaluations "
                        "(%.0f%% of the %lld without prefix reuse) -> %s\n", d.n, s.answer_tokens, m->n_moe_layers,
                s.layer_evals, 100.0 * (double)s.layer_evals / (double)(s.naive_layer_evals ? s.naive_layer_evals : 1),
                s.naive_layer_evals, out);
    modes_policy_free(p);
    calib_session_close(&s);
    data_free(&d);
    modes_model_free(m);
    return rc ? cli_fail("calibrate", &err) : 0;
}
