/* Skip statistics (docs/modes-method.md section 4): pooled, per class, per layer, prefill and decode. */
#include <stdlib.h>
#include <string.h>

#include "skip/policy.h"
#include "skip/stats.h"

int skip_stats_init(modes_stats *s, int n_layers) {
    memset(s, 0, sizeof *s);
    s->n_layers = n_layers;
    s->layer = calloc((size_t)(n_layers > 0 ? n_layers : 1) * 3, sizeof *s->layer);
    return s->layer ? 0 : -1;
}

void skip_stats_clear(modes_stats *s) {
    modes_skip_count *layer = s->layer;
    const int n = s->n_layers;
    memset(s, 0, sizeof *s);
    s->layer = layer;
    s->n_layers = n;
    memset(layer, 0, (size_t)(n > 0 ? n : 1) * 3 * sizeof *layer);
}

void skip_stats_free(modes_stats *s) {
    free(s->layer);
    s->layer = NULL;
}

void skip_stats_add(modes_stats *s, int layer, int decode, const uint8_t *cls, int n, int k, const int32_t *idx) {
    for (int i = 0; i < n; i++) {
        int skipped = 0;
        for (int j = 0; j < k; j++) skipped += idx[(size_t)i * k + j] == MOE_SKIPPED;
        const int c = cls[i] < 3 ? cls[i] : 0;
        modes_skip_count *targets[2] = {&s->phase[decode][c], &s->layer[(size_t)layer * 3 + c]};
        for (int t = 0; t < 2; t++) {
            targets[t]->slots += (uint64_t)k;
            targets[t]->skipped += (uint64_t)skipped;
            targets[t]->tokens++;
            targets[t]->tokens_all_skipped += skipped == k;
        }
    }
}

double modes_skip_ratio(const modes_skip_count *counts, int n) {
    if (!counts) return 0.0;
    uint64_t slots = 0, skipped = 0;
    for (int i = 0; i < n; i++) {
        slots += counts[i].slots;
        skipped += counts[i].skipped;
    }
    return slots ? (double)skipped / (double)slots : 0.0;
}

double modes_ctx_skip_ratio(const modes_ctx *c, int token_class) {
    const modes_stats *st = modes_ctx_stats(c);
    if (!st || token_class < -1 || token_class > MODES_TOKEN_SPECIAL) return -1.0;
    if (token_class < 0) return modes_skip_ratio(&st->phase[0][0], 6); /* both phases, every class */
    const modes_skip_count both[2] = {st->phase[0][token_class], st->phase[1][token_class]};
    return modes_skip_ratio(both, 2);
}
