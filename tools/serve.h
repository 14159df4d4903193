/* `modes serve`: an OpenAI-compatible chat-completions server. One file per concern:
 *   serve_request.c  the request body (JSON) -> a checked serve_request; no model, no HTTP (fuzzed)
 *   serve_json.c     the growable text buffer responses are written into
 *   serve_gen.c      the slots (one context each), the queue before them, and one generation
 *   serve_metrics.c  the counters behind GET /metrics (Prometheus text)
 *   serve_page.c     the chat page at GET / (static HTML and script)
 *   cmd_serve.c      options, the HTTP daemon (libmicrohttpd), routing, responses and streaming */
#ifndef MODES_TOOLS_SERVE_H
#define MODES_TOOLS_SERVE_H

#include <stddef.h>
#include <stdint.h>

#include "modes.h"

/* ---- Text buffers for responses ---- */

typedef struct {
    char *data;
    size_t len, cap;
    int failed; /* an allocation failed: later appends do nothing */
} serve_buf;
void sbuf_append(serve_buf *b, const char *s, size_t n);
void sbuf_printf(serve_buf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void sbuf_json_string(serve_buf *b, const char *s, size_t n); /* quoted and escaped */
void sbuf_json_number(serve_buf *b, double v);
void sbuf_free(serve_buf *b);

/* ---- Requests ---- */

#define SERVE_MAX_STOPS 4

typedef struct {
    size_t max_images;     /* image parts in a request */
    int allow_local_files; /* image_url may name a file on the server */
} serve_request_limits;

/* A POST /v1/chat/completions body, checked. Text and roles point into the parsed document; images
 * are decoded (base64 data: URLs) or read (local files) into owned buffers. */
typedef struct {
    modes_json_doc *doc;
    modes_chat_message *msgs;
    int n_msgs;
    modes_chat_part *parts;
    int n_parts, n_images;
    void **images; /* owned image bytes, n_images of them */
    long max_tokens; /* -1: not given */
    double temperature, top_p;
    long long seed;  /* -1: not given */
    int stream, include_usage;
    const char *stop[SERVE_MAX_STOPS];
    size_t stop_len[SERVE_MAX_STOPS];
    int n_stop;
    const char *policy, *skip; /* the "modes" extension: a loaded policy's name, or a --skip spec */
} serve_request;

/* Parses and checks body. Bad input is MODES_E_INPUT with a message for the client (an OpenAI-style
 * 400); on failure *r is freed and zeroed. */
int serve_request_parse(const char *body, size_t len, const serve_request_limits *lim, serve_request *r,
                        modes_error *err);
void serve_request_free(serve_request *r);

/* ---- The chat page ---- */

extern const char SERVE_PAGE[];
extern const size_t SERVE_PAGE_LEN;

/* ---- Metrics ---- */

typedef struct {
    uint64_t prompt_tokens, completion_tokens;
    double prefill_s, decode_s;
    uint64_t decode_steps;
    modes_skip_count skip[2][3]; /* [prefill, decode][MODES_TOKEN_*] */
} serve_usage;

void serve_metrics_request(int http_status);
void serve_metrics_usage(const serve_usage *u);
/* The Prometheus text exposition of every counter, with the slots' and queue's occupancy. */
void serve_metrics_write(serve_buf *b, int slots_busy, int slots, int queued);

/* ---- Slots and generation ---- */

typedef struct {
    const char *name; /* the file stem */
    modes_policy *policy;
} serve_policy;

typedef struct serve_pool serve_pool;
typedef struct serve_slot serve_slot;

/* n_parallel contexts of n_ctx tokens (threads each), and room for n_queue requests waiting for one. */
int serve_pool_new(const modes_model *m, int n_parallel, int n_queue, int n_ctx, int threads, serve_pool **out,
                   modes_error *err);
void serve_pool_free(serve_pool *p);
/* A free slot, waiting for one while the queue has room; NULL when the queue is full (503). */
serve_slot *serve_pool_acquire(serve_pool *p);
void serve_pool_release(serve_pool *p, serve_slot *s);
void serve_pool_occupancy(serve_pool *p, int *busy, int *slots, int *queued);

/* One completion in progress on a slot. */
typedef struct {
    const modes_model *m;
    serve_slot *slot;
    modes_ctx *ctx;
    modes_policy *own_policy; /* a per-request --skip spec */
    const char *policy_name;  /* what ran: a policy's name, a spec, or "none" */
    modes_detok_stream *ds;
    float *logits;
    modes_sampling smp;
    uint64_t rng;
    int n_prompt, n_gen, max_new, prefilled;
    const char *finish_reason; /* NULL while running; "stop" or "length" */
    const char *stopped_by;     /* modes' own reason: "eos", "stop", "length", "context", "timeout" */
    char *text;                 /* everything generated so far (stop strings cut off) */
    size_t len, cap, emitted;   /* emitted: bytes already handed out by serve_gen_take */
    const serve_request *req;
    double t_start, t_prefilled, deadline;
    serve_usage usage;
} serve_gen;

/* What a request may choose from: the server's policies (the first is the default), the alphas for
 * --skip specs that need them, the time limit per request (0: none) and the pixel budget. */
typedef struct {
    const serve_policy *policies;
    int n_policies;
    const modes_policy *alphas;
    double timeout_s;
    long max_pixels; /* decoded pixels of all the request's images */
} serve_gen_config;

/* Builds the prompt, checks it fits the slot's context, picks the policy and prefills. Bad input
 * (an image that does not decode, an unknown policy, a context overflow) is MODES_E_INPUT. */
int serve_gen_start(serve_gen *g, const modes_model *m, serve_slot *slot, const serve_request *req,
                    const serve_gen_config *cfg, modes_error *err);
/* One token: sampled, appended to text, evaluated. Sets finish_reason when the answer ends. */
int serve_gen_step(serve_gen *g, modes_error *err);
/* Text generated since the last call that is safe to hand out (no stop string can still begin in
 * it, no character is cut); everything left once finished. */
const char *serve_gen_take(serve_gen *g, size_t *n);
/* The "modes" object of a response: the policy that ran, skip ratios per modality, speeds. */
void serve_gen_write_modes(const serve_gen *g, serve_buf *b);
/* Frees what the generation holds (not the slot), and adds its usage to the metrics. */
void serve_gen_end(serve_gen *g);

double serve_now(void); /* monotonic seconds */

#endif
