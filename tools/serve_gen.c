/* The server's slots and one completion on a slot. Each slot owns a context (its KV cache); a
 * request holds one from its prefill to its last token, and more requests wait in a bounded queue.
 * Generation runs one token per call (serve_gen_step), so the HTTP side can stream each piece, stop
 * when the client has gone, and enforce the time limit between tokens. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "serve.h"

struct serve_slot {
    modes_ctx *ctx;
    int busy;
};

struct serve_pool {
    pthread_mutex_t lock;
    pthread_cond_t freed;
    serve_slot *slots;
    int n, busy, waiting, max_waiting;
};

double serve_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int serve_pool_new(const modes_model *m, int n_parallel, int n_queue, int n_ctx, int threads, serve_pool **out,
                   modes_error *err) {
    serve_pool *p = calloc(1, sizeof *p);
    if (!p || !(p->slots = calloc((size_t)n_parallel, sizeof *p->slots))) {
        free(p);
        return modes_fail(err, MODES_E_INTERNAL, "out of memory");
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->freed, NULL);
    p->n = n_parallel;
    p->max_waiting = n_queue;
    const modes_ctx_params cp = {.n_ctx = n_ctx, .threads = threads};
    for (int i = 0; i < n_parallel; i++) {
        const int rc = modes_ctx_new(m, &cp, &p->slots[i].ctx, err);
        if (rc) {
            serve_pool_free(p);
            return rc;
        }
    }
    *out = p;
    return 0;
}

void serve_pool_free(serve_pool *p) {
    if (!p) return;
    for (int i = 0; i < p->n; i++) modes_ctx_free(p->slots[i].ctx);
    free(p->slots);
    pthread_cond_destroy(&p->freed);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

serve_slot *serve_pool_acquire(serve_pool *p) {
    pthread_mutex_lock(&p->lock);
    if (p->busy == p->n && p->waiting >= p->max_waiting) {
        pthread_mutex_unlock(&p->lock);
        return NULL;
    }
    p->waiting++;
    while (p->busy == p->n) pthread_cond_wait(&p->freed, &p->lock);
    p->waiting--;
    serve_slot *s = p->slots;
    while (s->busy) s++;
    s->busy = 1;
    p->busy++;
    pthread_mutex_unlock(&p->lock);
    return s;
}

void serve_pool_release(serve_pool *p, serve_slot *s) {
    if (!s) return;
    pthread_mutex_lock(&p->lock);
    s->busy = 0;
    p->busy--;
    pthread_cond_signal(&p->freed);
    pthread_mutex_unlock(&p->lock);
}

void serve_pool_occupancy(serve_pool *p, int *busy, int *slots, int *queued) {
    pthread_mutex_lock(&p->lock);
    *busy = p->busy;
    *slots = p->n;
    *queued = p->waiting;
    pthread_mutex_unlock(&p->lock);
}

/* The policy the request asks for: a loaded one by name ("none": no skipping), a --skip spec, or
 * by default the server's first. */
static int choose_policy(serve_gen *g, const serve_request *req, const serve_gen_config *cfg, const modes_policy **p,
                         modes_error *err) {
    *p = NULL;
    g->policy_name = "none";
    if (req->skip) {
        int rc = modes_policy_from_spec(g->m, req->skip, cfg->alphas, &g->own_policy, err);
        if (rc) return modes_error_prefix(err, "modes.skip"), rc;
        *p = g->own_policy;
        g->policy_name = req->skip;
        return 0;
    }
    if (req->policy && !strcmp(req->policy, "none")) return 0;
    if (!req->policy) {
        if (cfg->n_policies) *p = cfg->policies[0].policy, g->policy_name = cfg->policies[0].name;
        return 0;
    }
    for (int i = 0; i < cfg->n_policies; i++)
        if (!strcmp(cfg->policies[i].name, req->policy)) {
            *p = cfg->policies[i].policy;
            g->policy_name = cfg->policies[i].name;
            return 0;
        }
    return modes_fail(err, MODES_E_INPUT, "modes.policy: no policy named '%s' (GET /v1/models lists them)", req->policy);
}

/* The request's images against the pixel budget (their sizes as decoded). */
static int check_pixels(const modes_prompt *p, long max_pixels, modes_error *err) {
    int n = 0;
    modes_prompt_images(p, &n);
    long long total = 0;
    for (int i = 0; i < n; i++) {
        modes_image_info info;
        const int rc = modes_prompt_image_info(p, i, &info, err);
        if (rc) return rc;
        total += (long long)info.width * info.height;
    }
    if (total > max_pixels)
        return modes_fail(err, MODES_E_INPUT, "the images hold %lld pixels, over the server's budget of %ld (--max-pixels)",
                          total, max_pixels);
    return 0;
}

/* The answer's room: max_tokens when given (the prompt and it must fit), else the rest of the context. */
static int plan_length(serve_gen *g, const serve_request *req, int n_ctx, modes_error *err) {
    if (g->n_prompt >= n_ctx)
        return modes_fail(err, MODES_E_INPUT, "the prompt has %d tokens; the context holds %d (context_length_exceeded)",
                          g->n_prompt, n_ctx);
    const long room = n_ctx - g->n_prompt;
    if (req->max_tokens > room)
        return modes_fail(err, MODES_E_INPUT,
                          "the prompt (%d tokens) and max_tokens (%ld) exceed the context of %d tokens "
                          "(context_length_exceeded)",
                          g->n_prompt, req->max_tokens, n_ctx);
    g->max_new = (int)(req->max_tokens > 0 ? req->max_tokens : room);
    return 0;
}

int serve_gen_start(serve_gen *g, const modes_model *m, serve_slot *slot, const serve_request *req,
                    const serve_gen_config *cfg, modes_error *err) {
    *g = (serve_gen){.m = m, .slot = slot, .ctx = slot->ctx, .req = req, .t_start = serve_now()};
    if (cfg->timeout_s > 0) g->deadline = g->t_start + cfg->timeout_s;
    modes_ctx_reset(g->ctx);
    modes_ctx_reset_stats(g->ctx);
    const modes_policy *policy;
    int rc = choose_policy(g, req, cfg, &policy, err);
    modes_ctx_set_policy(g->ctx, policy);
    modes_prompt *prompt = NULL;
    if (!rc) rc = modes_prompt_from_messages(m, req->msgs, req->n_msgs, &prompt, err);
    if (!rc && cfg->max_pixels > 0) rc = check_pixels(prompt, cfg->max_pixels, err);
    if (!rc) {
        modes_prompt_ids(prompt, &g->n_prompt);
        rc = plan_length(g, req, modes_ctx_n_ctx(g->ctx), err);
    }
    if (!rc) rc = modes_detok_stream_new(modes_model_tokenizer(m), 1, &g->ds, err);
    if (!rc && !(g->logits = malloc((size_t)modes_model_vocab(m) * sizeof *g->logits)))
        rc = modes_fail(err, MODES_E_INTERNAL, "out of memory");
    if (!rc) rc = modes_eval_prompt(g->ctx, prompt, g->logits, 1, err);
    modes_prompt_free(prompt);
    g->prefilled = !rc;
    g->smp = (modes_sampling){.temperature = (float)req->temperature, .top_p = (float)req->top_p,
                              .seed = req->seed >= 0 ? (uint64_t)req->seed : (uint64_t)time(NULL) ^ (uintptr_t)g};
    g->rng = modes_rng_seed(g->smp.seed);
    g->t_prefilled = serve_now();
    return rc;
}

static int append_text(serve_gen *g, const char *s, size_t n) {
    if (g->len + n + 1 > g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 256;
        while (cap < g->len + n + 1) cap *= 2;
        char *t = realloc(g->text, cap);
        if (!t) return -1;
        g->text = t;
        g->cap = cap;
    }
    memcpy(g->text + g->len, s, n);
    g->len += n;
    g->text[g->len] = 0;
    return 0;
}

/* Cuts the text at the first stop string, if one has appeared (searching only where a new one can). */
static int cut_at_stop(serve_gen *g, size_t added) {
    size_t cut = g->len + 1;
    for (int i = 0; i < g->req->n_stop; i++) {
        const size_t sl = g->req->stop_len[i];
        const size_t from = g->len - added > sl ? g->len - added - sl + 1 : 0;
        for (size_t at = from; at + sl <= g->len && at < cut; at++)
            if (!memcmp(g->text + at, g->req->stop[i], sl)) {
                cut = at;
                break;
            }
    }
    if (cut > g->len) return 0;
    g->len = cut;
    g->text[cut] = 0;
    if (g->emitted > cut) g->emitted = cut;
    return 1;
}

static void finish(serve_gen *g, const char *finish_reason, const char *stopped_by) {
    g->finish_reason = finish_reason;
    g->stopped_by = stopped_by;
}

int serve_gen_step(serve_gen *g, modes_error *err) {
    if (g->finish_reason) return 0;
    const int32_t id = modes_model_sample(g->m, g->logits, &g->smp, &g->rng);
    if (id < 0) return modes_fail(err, MODES_E_INTERNAL, "sampling failed");
    const char *piece = "";
    size_t n = 0;
    int rc = 0;
    if (modes_model_is_stop(g->m, id)) {
        finish(g, "stop", "eos");
        rc = modes_detok_stream_finish(g->ds, &piece, &n, err);
    } else {
        g->n_gen++;
        rc = modes_detok_stream_push(g->ds, id, &piece, &n, err);
    }
    if (!rc && append_text(g, piece, n)) rc = modes_fail(err, MODES_E_INTERNAL, "out of memory");
    if (rc) return rc;
    if (!g->finish_reason && cut_at_stop(g, n)) finish(g, "stop", "stop");
    else if (!g->finish_reason && g->n_gen >= g->max_new)
        finish(g, "length", g->n_prompt + g->n_gen >= modes_ctx_n_ctx(g->ctx) ? "context" : "length");
    else if (!g->finish_reason && g->deadline > 0 && serve_now() > g->deadline) finish(g, "length", "timeout");
    if (!g->finish_reason) return modes_eval(g->ctx, &id, 1, g->logits, 1, err);
    if (strcmp(g->stopped_by, "eos")) { /* the stream may still hold the start of a character */
        rc = modes_detok_stream_finish(g->ds, &piece, &n, err);
        if (!rc && !strcmp(g->stopped_by, "stop")) n = 0; /* cut text stays cut */
        if (!rc && append_text(g, piece, n)) rc = modes_fail(err, MODES_E_INTERNAL, "out of memory");
    }
    return rc;
}

/* The longest stop string minus one: that many bytes at the end may begin a stop string. */
static size_t stop_holdback(const serve_request *req) {
    size_t h = 0;
    for (int i = 0; i < req->n_stop; i++)
        if (req->stop_len[i] - 1 > h) h = req->stop_len[i] - 1;
    return h;
}

const char *serve_gen_take(serve_gen *g, size_t *n) {
    size_t end = g->len;
    if (!g->finish_reason) {
        const size_t h = stop_holdback(g->req);
        end = end > g->emitted + h ? end - h : g->emitted;
        while (end > g->emitted && ((unsigned char)g->text[end] & 0xC0) == 0x80) end--; /* whole characters */
    }
    const char *s = g->text ? g->text + g->emitted : "";
    *n = end - g->emitted;
    g->emitted = end;
    return s;
}

static void skip_ratios(serve_buf *b, const modes_skip_count *c) {
    sbuf_printf(b, "{\"all\": ");
    sbuf_json_number(b, modes_skip_ratio(c, 3));
    sbuf_printf(b, ", \"text\": ");
    sbuf_json_number(b, modes_skip_ratio(&c[MODES_TOKEN_TEXT], 1));
    sbuf_printf(b, ", \"vision\": ");
    sbuf_json_number(b, modes_skip_ratio(&c[MODES_TOKEN_VISION], 1));
    sbuf_printf(b, "}");
}

void serve_gen_write_modes(const serve_gen *g, serve_buf *b) {
    const modes_stats *st = modes_ctx_stats(g->ctx);
    const double prefill_s = g->t_prefilled - g->t_start, decode_s = serve_now() - g->t_prefilled;
    sbuf_printf(b, "{\"policy\": ");
    sbuf_json_string(b, g->policy_name, strlen(g->policy_name));
    sbuf_printf(b, ", \"skip\": {\"text\": ");
    sbuf_json_number(b, modes_ctx_skip_ratio(g->ctx, MODES_TOKEN_TEXT));
    sbuf_printf(b, ", \"vision\": ");
    sbuf_json_number(b, modes_ctx_skip_ratio(g->ctx, MODES_TOKEN_VISION));
    sbuf_printf(b, ", \"all\": ");
    sbuf_json_number(b, modes_ctx_skip_ratio(g->ctx, -1));
    sbuf_printf(b, ", \"prefill\": ");
    skip_ratios(b, st->phase[0]);
    sbuf_printf(b, ", \"decode\": ");
    skip_ratios(b, st->phase[1]);
    sbuf_printf(b, "}, \"prefill_tokens_per_second\": ");
    sbuf_json_number(b, prefill_s > 0 ? g->n_prompt / prefill_s : 0);
    sbuf_printf(b, ", \"decode_tokens_per_second\": ");
    sbuf_json_number(b, decode_s > 0 ? g->n_gen / decode_s : 0);
    sbuf_printf(b, ", \"stop_reason\": ");
    const char *why = g->stopped_by ? g->stopped_by : "cancelled";
    sbuf_json_string(b, why, strlen(why));
    sbuf_printf(b, "}");
}

void serve_gen_end(serve_gen *g) {
    if (g->prefilled) {
        const modes_stats *st = modes_ctx_stats(g->ctx);
        g->usage = (serve_usage){.prompt_tokens = (uint64_t)g->n_prompt, .completion_tokens = (uint64_t)g->n_gen,
                                 .prefill_s = g->t_prefilled - g->t_start, .decode_s = serve_now() - g->t_prefilled,
                                 .decode_steps = (uint64_t)g->n_gen};
        memcpy(g->usage.skip, st->phase, sizeof g->usage.skip);
        serve_metrics_usage(&g->usage);
    }
    if (g->ctx) modes_ctx_set_policy(g->ctx, NULL);
    modes_policy_free(g->own_policy);
    modes_detok_stream_free(g->ds);
    free(g->logits);
    free(g->text);
    g->own_policy = NULL;
    g->ds = NULL;
    g->logits = NULL;
    g->text = NULL;
}
