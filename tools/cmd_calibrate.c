/* modes calibrate: the layer importances alpha of GMLG (docs/modes-method.md section 2), written as a
 * policy file (method modes, thresholds 0 until `modes search` sets them). */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cli_check.h"

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
    modes_calibrate_result res = {0};
    const modes_calibrate_options co = {.data = cli_data_options("calibrate", data, limit),
                                        .per_layer = !strcmp(gran, "layer"), .identity = !strcmp(removal, "identity")};
    int rc = modes_model_load(dir, &m, &err);
    if (!rc) rc = modes_calibrate(m, &co, out, &res, &err);
    cli_progress_end();
    if (!rc)
        fprintf(stderr, "calibrate: %d examples, %lld answer tokens, %d MoE layers, %lld token-layer evaluations "
                        "(%.0f%% of the %lld without prefix reuse) -> %s\n", res.examples, res.answer_tokens,
                res.moe_layers, res.layer_evals,
                100.0 * (double)res.layer_evals / (double)(res.naive_layer_evals ? res.naive_layer_evals : 1),
                res.naive_layer_evals, out);
    modes_model_free(m);
    return rc ? cli_fail("calibrate", &err) : 0;
}
