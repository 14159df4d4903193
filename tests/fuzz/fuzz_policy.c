/* A skip-policy file (src/skip/policy_file.c) for a model with 3 MoE layers and a known config
 * hash, as `modes run/eval --policy` read it; short inputs are also tried as a --skip SPEC. A loaded
 * policy is applied to made-up routing (skip_decide must keep indices and weights sane), saved, and
 * the saved file must load again. */
#include <math.h>

#include "fuzz.h"
#include "models/moe.h"
#include "skip/policy.h"

#define L 3
static const char SHA[] = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
static char *path, *saved;
/* A binding of both forms: the old config hash, and fields, tensors and weights. */
static uint32_t tensors[2] = {0x12345678u, 0x9abcdef0u};
static const char *names[2] = {"a.weight", "b.weight"};
static policy_binding bind = {.architecture = "qwen3_vl_moe", .n_fields = 2, .field = {"hidden_size", "num_experts"},
                              .value = {64, 8}, .n_tensors = 2, .tensor = tensors, .tensor_name = names,
                              .weights = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"};

static void apply(const modes_policy *p, const uint8_t *data, size_t size) {
    enum { N = 4, K = 4 };
    int32_t idx[N * K];
    float w[N * K];
    uint8_t cls[N];
    for (int t = 0; t < N; t++) {
        cls[t] = (uint8_t)(t % 3);
        float sum = 0;
        for (int j = 0; j < K; j++) sum += w[t * K + j] = (float)(K - j + (size > (size_t)(t * K + j) ? data[t * K + j] % 3 : 0));
        for (int j = 0; j < K; j++) {
            w[t * K + j] /= sum;
            idx[t * K + j] = j;
        }
        for (int j = 1; j < K; j++) /* descending, as moe_route gives them */
            if (w[t * K + j] > w[t * K + j - 1]) w[t * K + j] = w[t * K + j - 1];
    }
    for (int layer = 0; layer < L; layer++) {
        int skipped = skip_decide(p, layer, K, cls, N, idx, w);
        FUZZ_CHECK(skipped >= 0 && skipped <= N * K, "skipped %d", skipped);
        for (int i = 0; i < N * K; i++) {
            FUZZ_CHECK(idx[i] == MOE_SKIPPED || (idx[i] >= 0 && idx[i] < K), "index %d", idx[i]);
            FUZZ_CHECK(isfinite(w[i]), "weight %g", w[i]);
        }
    }
}

static void round_trip(const modes_policy *p) {
    policy_meta meta = {.binding = &bind, .experts = 8, .top_k = 2, .target_skip = -1};
    modes_error err = {0};
    int rc = policy_save(saved, p, &meta, &err);
    FUZZ_CHECK(rc == 0, "save: %s", err.msg);
    modes_policy *q = NULL;
    rc = policy_load(saved, L, &bind, &q, &err);
    FUZZ_CHECK(rc == 0, "a saved policy does not load: %s", err.msg);
    FUZZ_CHECK(q->method == p->method, "method changed");
    modes_policy_free(q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!path) {
        memcpy(bind.config_sha256, SHA, sizeof SHA);
        path = fuzz_path("policy.json");
        saved = fuzz_path("saved.json");
    }
    fuzz_write(path, data, size);
    modes_policy *p = NULL;
    modes_error err = {0};
    int rc = policy_load(path, L, &bind, &p, &err);
    if (rc) {
        FUZZ_CHECK(!p, "policy returned on failure");
        fuzz_check_error(rc, &err, path);
    } else {
        apply(p, data, size);
        round_trip(p);
    }
    if (size < 64) {
        char spec[64];
        memcpy(spec, data, size);
        spec[size] = 0;
        modes_policy *s = NULL;
        rc = policy_from_spec(spec, p, L, &s, &err);
        if (rc) fuzz_check_error(rc, &err, NULL);
        else {
            apply(s, data, size);
            modes_policy_free(s);
        }
    }
    modes_policy_free(p);
    return 0;
}
