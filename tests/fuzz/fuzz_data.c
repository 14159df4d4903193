/* The JSON Lines calibration / benchmark file (src/io/data.c), as `modes calibrate`, `search` and
 * `eval` read it, with and without a --limit. Loaded examples are checked and scored against their
 * own fields (src/eval/score.c). */
#include "io/data.h"
#include "eval/score.h"
#include "fuzz.h"

static char *path;

static void check(const data_set *d, int limit) {
    FUZZ_CHECK(d->n >= 1 && d->n <= DATA_MAX_EXAMPLES && (limit <= 0 || d->n <= limit), "%d examples", d->n);
    for (int i = 0; i < d->n; i++) {
        const data_example *e = &d->ex[i];
        FUZZ_CHECK(e->question && e->answer, "example %d lacks question or answer", i);
        FUZZ_CHECK(e->n_images >= 0 && e->n_images <= DATA_MAX_IMAGES && (e->n_images == 0 || e->images), "images");
        for (int k = 0; k < e->n_images; k++) FUZZ_CHECK(e->images[k] && e->images[k][0], "image path");
        FUZZ_CHECK(e->metric >= METRIC_EXACT && e->metric <= METRIC_YESNO, "metric %d", (int)e->metric);
        FUZZ_CHECK(e->metric != METRIC_CHOICE || e->n_choices > 0, "choice without choices");
        (void)data_metric_name(e->metric);
        score_answer(e, e->answer);
        score_answer(e, e->question);
        for (int k = 0; k < e->n_choices; k++) score_answer(e, e->choices[k]);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!path) path = fuzz_path("data/bench.jsonl");
    fuzz_write(path, data, size);
    for (int limit = 0; limit <= 2; limit += 2) {
        data_set d;
        modes_error err = {0};
        int rc = data_load(path, limit, &d, &err);
        if (rc) {
            FUZZ_CHECK(d.n == 0 && !d.ex, "examples left behind on failure");
            fuzz_check_error(rc, &err, path);
            continue;
        }
        check(&d, limit);
        data_free(&d);
    }
    return 0;
}
