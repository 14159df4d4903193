/* Token sampling: greedy, temperature, top-k, top-p, with a caller-held RNG state (no global state). */
#include <math.h>
#include <stdlib.h>

#include "models/model.h"
#include "text/tokenizer.h"

uint64_t modes_rng_seed(uint64_t seed) { /* splitmix64, so nearby seeds give unrelated streams */
    uint64_t z = seed + 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return z ? z : 1;
}

static double next_uniform(uint64_t *s) { /* xorshift64*: 53 random bits in [0, 1) */
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return (double)((x * 0x2545f4914f6cdd1dull) >> 11) / 9007199254740992.0;
}

static int32_t argmax(const float *x, int n) {
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

typedef struct {
    float p;
    int32_t id;
} cand;

/* The candidates' order: probability descending, then id ascending (a total order, so every
 * correct sort gives the same sequence). */
static int before(const cand *x, const cand *y) { return x->p > y->p || (x->p == y->p && x->id < y->id); }

static void sift_down(cand *c, size_t root, size_t n) {
    for (size_t child; (child = 2 * root + 1) < n; root = child) {
        if (child + 1 < n && before(&c[child], &c[child + 1])) child++;
        if (!before(&c[root], &c[child])) return;
        const cand t = c[root];
        c[root] = c[child];
        c[child] = t;
    }
}

/* Heapsort in place: glibc's qsort allocates for arrays this large, and a decoded token must not. */
static void sort_candidates(cand *c, size_t n) {
    for (size_t i = n / 2; i-- > 0;) sift_down(c, i, n);
    for (size_t end = n; end-- > 1;) {
        const cand t = c[0];
        c[0] = c[end];
        c[end] = t;
        sift_down(c, 0, end);
    }
}

size_t sample_work_bytes(int vocab) { return (size_t)(vocab > 0 ? vocab : 1) * sizeof(cand); }

/* modes_sample with the candidates in work (sample_work_bytes), or in memory of its own for NULL. */
static int32_t sample_in(float *logits, int vocab, const modes_sampling *s, uint64_t *state, void *work) {
    if (!logits || vocab < 1) return -1;
    if (!s || s->temperature <= 0 || s->top_k == 1) return argmax(logits, vocab);
    if (!state) return -1;
    cand *c = work ? work : malloc((size_t)vocab * sizeof *c);
    if (!c) return argmax(logits, vocab); /* degrade, never fail, on a 600 KB allocation */
    const float mx = logits[argmax(logits, vocab)];
    for (int i = 0; i < vocab; i++) c[i] = (cand){expf((logits[i] - mx) / s->temperature), i};
    sort_candidates(c, (size_t)vocab);
    int n = s->top_k > 0 && s->top_k < vocab ? s->top_k : vocab;
    double total = 0;
    for (int i = 0; i < n; i++) total += c[i].p;
    if (s->top_p > 0 && s->top_p < 1) { /* the smallest prefix whose mass reaches top_p */
        double cum = 0;
        int keep = 0;
        while (keep < n && cum < s->top_p * total) cum += c[keep++].p;
        n = keep ? keep : 1;
        total = cum > 0 ? cum : c[0].p;
    }
    double r = next_uniform(state) * total, acc = 0;
    int32_t id = c[n - 1].id;
    for (int i = 0; i < n; i++) {
        acc += c[i].p;
        if (r < acc) {
            id = c[i].id;
            break;
        }
    }
    if (c != work) free(c);
    return id;
}

int32_t modes_sample(float *logits, int vocab, const modes_sampling *s, uint64_t *state) {
    return sample_in(logits, vocab, s, state, NULL);
}

int32_t model_sample(const modes_model *m, float *logits, const modes_sampling *s, uint64_t *state, void *work) {
    const int V = m->cfg.text.vocab;
    const int usable = m->tok && (int)tok_vocab_size(m->tok) < V ? (int)tok_vocab_size(m->tok) : V;
    for (int i = 0; i < m->n_placeholders; i++) logits[m->placeholders[i]] = -INFINITY;
    return sample_in(logits, usable, s, state, work);
}

int32_t modes_model_sample(const modes_model *m, float *logits, const modes_sampling *s, uint64_t *state) {
    return m && logits ? model_sample(m, logits, s, state, NULL) : -1;
}
