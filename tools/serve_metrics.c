/* The counters behind GET /metrics, kept since the server started and written in Prometheus' text
 * format. One mutex: they change once per request, never per token. */
#include <pthread.h>

#include "serve.h"

static const int CODES[] = {200, 400, 401, 404, 405, 413, 500, 503};
#define N_CODES (sizeof CODES / sizeof *CODES)

static struct {
    pthread_mutex_t lock;
    uint64_t requests[N_CODES + 1]; /* the last: any other status */
    serve_usage total;
    uint64_t completions;
} metrics = {.lock = PTHREAD_MUTEX_INITIALIZER};

void serve_metrics_request(int http_status) {
    size_t i = 0;
    while (i < N_CODES && CODES[i] != http_status) i++;
    pthread_mutex_lock(&metrics.lock);
    metrics.requests[i]++;
    pthread_mutex_unlock(&metrics.lock);
}

static void add_counts(modes_skip_count *to, const modes_skip_count *c) {
    to->slots += c->slots;
    to->skipped += c->skipped;
    to->tokens += c->tokens;
    to->tokens_all_skipped += c->tokens_all_skipped;
}

void serve_metrics_usage(const serve_usage *u) {
    pthread_mutex_lock(&metrics.lock);
    serve_usage *t = &metrics.total;
    t->prompt_tokens += u->prompt_tokens;
    t->completion_tokens += u->completion_tokens;
    t->prefill_s += u->prefill_s;
    t->decode_s += u->decode_s;
    t->decode_steps += u->decode_steps;
    for (int ph = 0; ph < 2; ph++)
        for (int c = 0; c < 3; c++) add_counts(&t->skip[ph][c], &u->skip[ph][c]);
    metrics.completions++;
    pthread_mutex_unlock(&metrics.lock);
}

static void counter(serve_buf *b, const char *name, const char *help, double v) {
    sbuf_printf(b, "# HELP %s %s\n# TYPE %s counter\n%s ", name, help, name, name);
    sbuf_json_number(b, v);
    sbuf_append(b, "\n", 1);
}

static void gauge(serve_buf *b, const char *name, const char *help, double v) {
    sbuf_printf(b, "# HELP %s %s\n# TYPE %s gauge\n%s ", name, help, name, name);
    sbuf_json_number(b, v);
    sbuf_append(b, "\n", 1);
}

void serve_metrics_write(serve_buf *b, int slots_busy, int slots, int queued) {
    static const char *PHASES[2] = {"prefill", "decode"}, *CLASSES[3] = {"text", "vision", "special"};
    pthread_mutex_lock(&metrics.lock);
    const serve_usage t = metrics.total;
    uint64_t requests[N_CODES + 1];
    for (size_t i = 0; i <= N_CODES; i++) requests[i] = metrics.requests[i];
    const uint64_t completions = metrics.completions;
    pthread_mutex_unlock(&metrics.lock);

    sbuf_printf(b, "# HELP modes_requests_total HTTP requests answered, by status\n# TYPE modes_requests_total counter\n");
    for (size_t i = 0; i <= N_CODES; i++)
        if (i < N_CODES) sbuf_printf(b, "modes_requests_total{code=\"%d\"} %llu\n", CODES[i], (unsigned long long)requests[i]);
        else sbuf_printf(b, "modes_requests_total{code=\"other\"} %llu\n", (unsigned long long)requests[i]);
    counter(b, "modes_completions_total", "chat completions prefilled (finished or cancelled)", (double)completions);
    counter(b, "modes_prompt_tokens_total", "prompt tokens prefilled", (double)t.prompt_tokens);
    counter(b, "modes_completion_tokens_total", "tokens generated", (double)t.completion_tokens);
    counter(b, "modes_prefill_seconds_total", "seconds spent prefilling", t.prefill_s);
    counter(b, "modes_decode_seconds_total", "seconds spent decoding", t.decode_s);
    gauge(b, "modes_prefill_tokens_per_second", "prompt tokens over prefill seconds, since start",
          t.prefill_s > 0 ? (double)t.prompt_tokens / t.prefill_s : 0);
    gauge(b, "modes_decode_tokens_per_second", "decode steps over decode seconds, since start",
          t.decode_s > 0 ? (double)t.decode_steps / t.decode_s : 0);
    sbuf_printf(b, "# HELP modes_expert_slots_total routed (token, expert slot) pairs\n"
                   "# TYPE modes_expert_slots_total counter\n");
    for (int ph = 0; ph < 2; ph++)
        for (int c = 0; c < 3; c++)
            sbuf_printf(b, "modes_expert_slots_total{phase=\"%s\",modality=\"%s\"} %llu\n", PHASES[ph], CLASSES[c],
                        (unsigned long long)t.skip[ph][c].slots);
    sbuf_printf(b, "# HELP modes_experts_skipped_total routed (token, expert slot) pairs skipped\n"
                   "# TYPE modes_experts_skipped_total counter\n");
    for (int ph = 0; ph < 2; ph++)
        for (int c = 0; c < 3; c++)
            sbuf_printf(b, "modes_experts_skipped_total{phase=\"%s\",modality=\"%s\"} %llu\n", PHASES[ph], CLASSES[c],
                        (unsigned long long)t.skip[ph][c].skipped);
    gauge(b, "modes_slots", "contexts (--parallel)", slots);
    gauge(b, "modes_slots_busy", "contexts running a request", slots_busy);
    gauge(b, "modes_queue_waiting", "requests waiting for a context", queued);
}
