#ifndef MODES_SKIP_STATS_H
#define MODES_SKIP_STATS_H

#include <stdint.h>

#include "modes.h"

int skip_stats_init(modes_stats *s, int n_layers);
void skip_stats_clear(modes_stats *s);
void skip_stats_free(modes_stats *s);
/* Counts n tokens' slots at MoE layer `layer` after the skip decision. */
void skip_stats_add(modes_stats *s, int layer, int decode, const uint8_t *cls, int n, int k, const int32_t *idx);

#endif
