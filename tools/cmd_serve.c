/* modes serve: an OpenAI-compatible HTTP server (chat completions, streaming, models, health,
 * metrics) on libmicrohttpd, with the skip policy chosen per request and reported per response.
 * This file holds the options, the daemon, routing and the HTTP responses; the request body,
 * generation and metrics live in serve_*.c (serve.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"
#include "serve.h"

static const char *HELP =
    "usage: modes serve -m DIR [--policy FILE]... [--alphas FILE] [--host ADDR] [--port N] [-c N] [--parallel N]\n"
    "                   [--queue N] [--api-key KEY] [-t THREADS] [--allow-local-files] [--max-body BYTES]\n"
    "                   [--max-images N] [--max-pixels N] [--timeout SECONDS]\n"
    "  An OpenAI-compatible HTTP server: POST /v1/chat/completions (text and image_url parts with data:\n"
    "  URLs, stream, max_tokens, temperature, top_p, seed, stop), GET /v1/models, GET /health and\n"
    "  GET /metrics (Prometheus), and a chat page at /. A request picks its skipping with \"modes\": {\"policy\": NAME} (a\n"
    "  --policy file's stem, or none) or {\"skip\": SPEC}; each response reports it in \"modes\".\n"
    "  --policy FILE: load a policy (repeatable); the first is the default. --alphas FILE: the layer\n"
    "  importances that modes: and gmlg-threshold: specs need.\n"
    "  --host ADDR (default 127.0.0.1; an IPv6 address works too), --port N (default 8080; 0: any free\n"
    "  port, printed at start). -c/--ctx-size N: tokens each context holds (default 4096, at most the\n"
    "  model's maximum). --parallel N: contexts, one request each (default 1); --queue N: requests that\n"
    "  may wait for one (default 16), beyond which the answer is 503 with Retry-After.\n"
    "  --api-key KEY: every endpoint but /health needs 'Authorization: Bearer KEY'.\n"
    "  -t/--threads: per context (default {cores} physical cores divided by --parallel).\n"
    "  --allow-local-files: image_url may also name a file on this machine.\n"
    "  Limits: --max-body BYTES (default 33554432), --max-images N per request (default 8),\n"
    "  --max-pixels N decoded pixels per request (default 16777216), --timeout SECONDS per request\n"
    "  (default 600; 0: none; the answer ends with finish_reason length). SIGINT or SIGTERM stops it.\n";

typedef struct {
    const char *dir, *alphas, *host, *api_key;
    const char *policies[CLI_MAX_IMAGES];
    int n_policies, allow_local_files;
    long port, n_ctx, parallel, queue, threads, max_body, max_images, max_pixels;
    double timeout;
} serve_opts;

static int parse(int argc, char **argv, serve_opts *o) {
    *o = (serve_opts){.host = "127.0.0.1", .port = 8080, .parallel = 1, .queue = 16, .max_body = 32L << 20,
                      .max_images = 8, .max_pixels = 16L << 20, .timeout = 600};
    for (int i = 1; i < argc; i++) {
        const char *pol = NULL;
        int r;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            cli_print_help(HELP);
            return 2;
        }
        if (!strcmp(argv[i], "--allow-local-files")) {
            o->allow_local_files = 1;
            continue;
        }
        if (!(r = opt_multi(argc, argv, &i, "--policy", &pol, "serve"))) {
            if (o->n_policies == CLI_MAX_IMAGES) return cli_usage("serve", "at most %d --policy files", CLI_MAX_IMAGES), -1;
            o->policies[o->n_policies++] = pol;
            continue;
        }
        if (r < 0 || (r = opt_str(argc, argv, &i, "-m|--model", &o->dir, "serve")) <= 0 ||
            (r = opt_str(argc, argv, &i, "--alphas", &o->alphas, "serve")) <= 0 ||
            (r = opt_str(argc, argv, &i, "--host", &o->host, "serve")) <= 0 ||
            (r = opt_str(argc, argv, &i, "--api-key", &o->api_key, "serve")) <= 0 ||
            (r = opt_int(argc, argv, &i, "--port", 0, 65535, &o->port, "serve")) <= 0 ||
            (r = opt_int(argc, argv, &i, "-c|--ctx-size", 0, 1L << 24, &o->n_ctx, "serve")) <= 0 ||
            (r = opt_int(argc, argv, &i, "--parallel", 1, 256, &o->parallel, "serve")) <= 0 ||
            (r = opt_int(argc, argv, &i, "--queue", 0, 100000, &o->queue, "serve")) <= 0 ||
            (r = opt_int(argc, argv, &i, "-t|--threads", 0, 4096, &o->threads, "serve")) <= 0 ||
            (r = opt_int(argc, argv, &i, "--max-body", 1024, 1L << 30, &o->max_body, "serve")) <= 0 ||
            (r = opt_int(argc, argv, &i, "--max-images", 0, 256, &o->max_images, "serve")) <= 0 ||
            (r = opt_int(argc, argv, &i, "--max-pixels", 1, 1L << 32, &o->max_pixels, "serve")) <= 0 ||
            (r = opt_float(argc, argv, &i, "--timeout", 0, 1e9, &o->timeout, "serve")) <= 0) {
            if (r < 0) return -1;
            continue;
        }
        return cli_usage("serve", "unknown option '%s'", argv[i]), -1;
    }
    if (!o->dir) return cli_usage("serve", "-m DIR is required"), -1;
    return 0;
}

#ifndef MODES_HAVE_MHD

int cmd_serve(int argc, char **argv) {
    serve_opts o;
    const int pr = parse(argc, argv, &o);
    if (pr) return pr == 2 ? 0 : 1;
    fprintf(stderr, "modes serve: this build has no HTTP server: libmicrohttpd was not found when it was configured "
                    "(apt-get install libmicrohttpd-dev, then configure again)\n");
    return 1;
}

#else

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <time.h>

#define MAX_CONNECTIONS 256
#define IDLE_TIMEOUT_S 30

typedef struct {
    const serve_opts *o;
    const modes_model *m;
    const char *model_name;
    serve_policy *policies;
    modes_policy *alphas;
    serve_pool *pool;
    serve_gen_config gen;
    serve_request_limits limits;
    pthread_mutex_t id_lock;
    unsigned long long next_id;
} server;

/* One connection's request as it arrives (the body in pieces). */
typedef struct {
    serve_buf body;
    int too_big;
} conn_state;

/* One chat completion: the request, its generation, and for streaming the text not yet sent. */
typedef struct {
    server *srv;
    serve_request req;
    serve_slot *slot;
    serve_gen gen;
    char id[48];
    long long created;
    serve_buf out;
    size_t out_pos;
    int sent_role, done;
} chat_job;

/* ---- Responses ---- */

static enum MHD_Result respond(struct MHD_Connection *c, int status, const char *type, const char *body, size_t len,
                               const char *retry_after) {
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    if (retry_after) MHD_add_response_header(r, "Retry-After", retry_after);
    const enum MHD_Result ok = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    serve_metrics_request(status);
    return ok;
}

static enum MHD_Result respond_json(struct MHD_Connection *c, int status, serve_buf *b) {
    if (b->failed) return MHD_NO;
    return respond(c, status, "application/json", b->data ? b->data : "", b->len, NULL);
}

/* {"error": {"message", "type", "param", "code"}}, as OpenAI's API answers errors. */
static void write_error(serve_buf *b, const char *message, const char *type, const char *code) {
    sbuf_printf(b, "{\"error\": {\"message\": ");
    sbuf_json_string(b, message, strlen(message));
    sbuf_printf(b, ", \"type\": \"%s\", \"param\": null, \"code\": ", type);
    if (code) sbuf_printf(b, "\"%s\"}}", code);
    else sbuf_printf(b, "null}}");
}

static enum MHD_Result respond_error(struct MHD_Connection *c, int status, const char *message) {
    const char *type = status == 401 ? "authentication_error"
                       : status == 503 ? "server_busy"
                       : status >= 500 ? "server_error"
                                       : "invalid_request_error";
    const char *code = strstr(message, "context_length_exceeded") ? "context_length_exceeded" : NULL;
    serve_buf b = {0};
    write_error(&b, message, type, code);
    sbuf_append(&b, "\n", 1);
    const enum MHD_Result r = b.failed ? MHD_NO
                                       : respond(c, status, "application/json", b.data, b.len,
                                                 status == 503 ? "1" : NULL);
    sbuf_free(&b);
    return r;
}

/* ---- GET endpoints ---- */

static enum MHD_Result handle_models(server *srv, struct MHD_Connection *c) {
    serve_buf b = {0};
    sbuf_printf(&b, "{\"object\": \"list\", \"data\": [{\"id\": ");
    sbuf_json_string(&b, srv->model_name, strlen(srv->model_name));
    sbuf_printf(&b, ", \"object\": \"model\", \"created\": 0, \"owned_by\": \"modes\", \"modes\": {\"policies\": [");
    for (int i = 0; i < srv->gen.n_policies; i++) {
        if (i) sbuf_printf(&b, ", ");
        sbuf_json_string(&b, srv->policies[i].name, strlen(srv->policies[i].name));
    }
    sbuf_printf(&b, "], \"default_policy\": ");
    const char *def = srv->gen.n_policies ? srv->policies[0].name : "none";
    sbuf_json_string(&b, def, strlen(def));
    sbuf_printf(&b, ", \"n_ctx\": %ld}}]}\n", srv->o->n_ctx);
    const enum MHD_Result r = respond_json(c, 200, &b);
    sbuf_free(&b);
    return r;
}

static enum MHD_Result handle_metrics(server *srv, struct MHD_Connection *c) {
    int busy, slots, queued;
    serve_pool_occupancy(srv->pool, &busy, &slots, &queued);
    serve_buf b = {0};
    serve_metrics_write(&b, busy, slots, queued);
    const enum MHD_Result r =
        b.failed ? MHD_NO : respond(c, 200, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len, NULL);
    sbuf_free(&b);
    return r;
}

/* ---- Chat completions ---- */

static void job_free(void *cls) {
    chat_job *j = cls;
    if (!j) return;
    serve_gen_end(&j->gen);
    serve_pool_release(j->srv->pool, j->slot);
    serve_request_free(&j->req);
    sbuf_free(&j->out);
    free(j);
}

static void write_usage(serve_buf *b, const serve_gen *g) {
    sbuf_printf(b, "{\"prompt_tokens\": %d, \"completion_tokens\": %d, \"total_tokens\": %d}", g->n_prompt, g->n_gen,
                g->n_prompt + g->n_gen);
}

/* The fields every chunk and completion starts with. */
static void write_head(serve_buf *b, const chat_job *j, const char *object) {
    sbuf_printf(b, "{\"id\": \"%s\", \"object\": \"%s\", \"created\": %lld, \"model\": ", j->id, object, j->created);
    sbuf_json_string(b, j->srv->model_name, strlen(j->srv->model_name));
}

static void write_completion(serve_buf *b, chat_job *j) {
    size_t n;
    serve_gen_take(&j->gen, &n);
    write_head(b, j, "chat.completion");
    sbuf_printf(b, ", \"choices\": [{\"index\": 0, \"message\": {\"role\": \"assistant\", \"content\": ");
    sbuf_json_string(b, j->gen.text, j->gen.len);
    sbuf_printf(b, "}, \"logprobs\": null, \"finish_reason\": \"%s\"}], \"usage\": ", j->gen.finish_reason);
    write_usage(b, &j->gen);
    sbuf_printf(b, ", \"modes\": ");
    serve_gen_write_modes(&j->gen, b);
    sbuf_printf(b, "}\n");
}

/* Whether the client has closed its side: a read that would not block returns 0 bytes. */
static int client_gone(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci) return 0;
    char byte;
    return recv(ci->connect_fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

static enum MHD_Result run_to_end(chat_job *j, struct MHD_Connection *c) {
    modes_error err = {0};
    int rc = 0;
    while (!rc && !j->gen.finish_reason) {
        if (client_gone(c)) {
            job_free(j);
            serve_metrics_request(499);
            return MHD_NO; /* closes the connection; the slot is free again */
        }
        rc = serve_gen_step(&j->gen, &err);
    }
    serve_buf b = {0};
    if (!rc) write_completion(&b, j);
    const enum MHD_Result r = rc ? respond_error(c, 500, err.msg) : respond_json(c, 200, &b);
    sbuf_free(&b);
    job_free(j);
    return r;
}

/* The next piece of the event stream into j->out: the role, a piece of text, or the end. */
static void produce_events(chat_job *j) {
    serve_buf *b = &j->out;
    if (!j->sent_role) {
        j->sent_role = 1;
        sbuf_printf(b, "data: ");
        write_head(b, j, "chat.completion.chunk");
        sbuf_printf(b, ", \"choices\": [{\"index\": 0, \"delta\": {\"role\": \"assistant\", \"content\": \"\"}, "
                       "\"logprobs\": null, \"finish_reason\": null}]}\n\n");
        return;
    }
    modes_error err = {0};
    if (serve_gen_step(&j->gen, &err)) {
        sbuf_printf(b, "data: ");
        write_error(b, err.msg, "server_error", NULL);
        sbuf_printf(b, "\n\ndata: [DONE]\n\n");
        j->done = 1;
        return;
    }
    size_t n;
    const char *text = serve_gen_take(&j->gen, &n);
    if (n) {
        sbuf_printf(b, "data: ");
        write_head(b, j, "chat.completion.chunk");
        sbuf_printf(b, ", \"choices\": [{\"index\": 0, \"delta\": {\"content\": ");
        sbuf_json_string(b, text, n);
        sbuf_printf(b, "}, \"logprobs\": null, \"finish_reason\": null}]}\n\n");
    }
    if (!j->gen.finish_reason) return;
    sbuf_printf(b, "data: ");
    write_head(b, j, "chat.completion.chunk");
    sbuf_printf(b, ", \"choices\": [{\"index\": 0, \"delta\": {}, \"logprobs\": null, \"finish_reason\": \"%s\"}], "
                   "\"modes\": ",
                j->gen.finish_reason);
    serve_gen_write_modes(&j->gen, b);
    sbuf_printf(b, "}\n\n");
    if (j->req.include_usage) {
        sbuf_printf(b, "data: ");
        write_head(b, j, "chat.completion.chunk");
        sbuf_printf(b, ", \"choices\": [], \"usage\": ");
        write_usage(b, &j->gen);
        sbuf_printf(b, "}\n\n");
    }
    sbuf_printf(b, "data: [DONE]\n\n");
    j->done = 1;
}

/* libmicrohttpd's content reader for a streamed completion: called in the connection's thread
 * until the end of the stream, or not again once the client has gone (then job_free runs). */
static ssize_t read_events(void *cls, uint64_t pos, char *buf, size_t max) {
    chat_job *j = cls;
    while (j->out_pos == j->out.len) {
        j->out.len = j->out_pos = 0;
        if (j->out.failed) return MHD_CONTENT_READER_END_WITH_ERROR;
        if (j->done) return MHD_CONTENT_READER_END_OF_STREAM;
        produce_events(j);
    }
    const size_t n = j->out.len - j->out_pos < max ? j->out.len - j->out_pos : max;
    memcpy(buf, j->out.data + j->out_pos, n);
    j->out_pos += n;
    return (ssize_t)n;
}

static enum MHD_Result stream(chat_job *j, struct MHD_Connection *c) {
    struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, read_events, j, job_free);
    if (!r) {
        job_free(j);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "text/event-stream");
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    const enum MHD_Result ok = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    serve_metrics_request(200);
    return ok;
}

static void new_id(server *srv, chat_job *j) {
    pthread_mutex_lock(&srv->id_lock);
    const unsigned long long n = srv->next_id++;
    pthread_mutex_unlock(&srv->id_lock);
    j->created = (long long)time(NULL);
    snprintf(j->id, sizeof j->id, "chatcmpl-%llx-%llu", (unsigned long long)j->created, n);
}

static enum MHD_Result handle_chat(server *srv, struct MHD_Connection *c, const conn_state *st) {
    chat_job *j = calloc(1, sizeof *j);
    if (!j) return respond_error(c, 500, "out of memory");
    j->srv = srv;
    new_id(srv, j);
    modes_error err = {0};
    int rc = serve_request_parse(st->body.data ? st->body.data : "", st->body.len, &srv->limits, &j->req, &err);
    if (rc) {
        free(j);
        return respond_error(c, rc == MODES_E_INPUT ? 400 : 500, err.msg);
    }
    if (!(j->slot = serve_pool_acquire(srv->pool))) {
        job_free(j);
        return respond_error(c, 503, "the server is busy: every context is in use and the queue is full");
    }
    rc = serve_gen_start(&j->gen, srv->m, j->slot, &j->req, &srv->gen, &err);
    if (rc) {
        job_free(j);
        return respond_error(c, rc == MODES_E_INPUT ? 400 : 500, err.msg);
    }
    return j->req.stream ? stream(j, c) : run_to_end(j, c);
}

/* ---- Routing ---- */

/* Compares in time that does not depend on where the strings differ. */
static int same_secret(const char *a, const char *b) {
    const size_t na = strlen(a), nb = strlen(b);
    unsigned char diff = na != nb;
    for (size_t i = 0; i < na; i++) diff |= (unsigned char)(a[i] ^ b[i % (nb ? nb : 1)]);
    return !diff;
}

static int authorized(const server *srv, struct MHD_Connection *c) {
    if (!srv->o->api_key) return 1;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    if (!h || strncmp(h, "Bearer ", 7)) return 0;
    return same_secret(h + 7, srv->o->api_key);
}

static enum MHD_Result route(server *srv, struct MHD_Connection *c, const char *url, const char *method,
                             const conn_state *st) {
    const int get = !strcmp(method, "GET"), post = !strcmp(method, "POST");
    if (!strcmp(url, "/health")) {
        if (!get) return respond_error(c, 405, "GET /health");
        static const char OK[] = "{\"status\": \"ok\"}\n";
        return respond(c, 200, "application/json", OK, sizeof OK - 1, NULL);
    }
    if (!strcmp(url, "/") || !strcmp(url, "/index.html")) { /* static: the page's own calls carry the key */
        if (!get) return respond_error(c, 405, "GET /");
        return respond(c, 200, "text/html; charset=utf-8", SERVE_PAGE, SERVE_PAGE_LEN, NULL);
    }
    if (!authorized(srv, c)) return respond_error(c, 401, "a valid 'Authorization: Bearer KEY' header is required");
    if (!strcmp(url, "/v1/models")) return get ? handle_models(srv, c) : respond_error(c, 405, "GET /v1/models");
    if (!strcmp(url, "/metrics")) return get ? handle_metrics(srv, c) : respond_error(c, 405, "GET /metrics");
    if (!strcmp(url, "/v1/chat/completions")) {
        if (!post) return respond_error(c, 405, "POST /v1/chat/completions");
        if (st->too_big) {
            char msg[96];
            snprintf(msg, sizeof msg, "the request body is over %ld bytes (--max-body)", srv->o->max_body);
            return respond_error(c, 413, msg);
        }
        return handle_chat(srv, c, st);
    }
    return respond_error(c, 404, "no such endpoint (POST /v1/chat/completions, GET /v1/models, /health, /metrics)");
}

/* libmicrohttpd calls this for the headers, then for each piece of the body, then once more. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_size, void **con_cls) {
    server *srv = cls;
    conn_state *st = *con_cls;
    if (!st) {
        if (!(st = calloc(1, sizeof *st))) return MHD_NO;
        *con_cls = st;
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > (unsigned long long)srv->o->max_body) st->too_big = 1;
        /* Answered before the body only when the client waits for "100 Continue" before sending it;
         * otherwise the body is read and dropped, since closing on a client still sending makes it see
         * a reset instead of the 413. */
        const char *expect = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Expect");
        if (st->too_big && expect && !strcasecmp(expect, "100-continue")) return route(srv, c, url, method, st);
        return MHD_YES;
    }
    if (*upload_size) {
        if (st->body.len + *upload_size > (size_t)srv->o->max_body) st->too_big = 1;
        if (!st->too_big) sbuf_append(&st->body, upload_data, *upload_size);
        *upload_size = 0;
        return st->body.failed ? MHD_NO : MHD_YES;
    }
    return route(srv, c, url, method, st);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode why) {
    conn_state *st = *con_cls;
    if (!st) return;
    sbuf_free(&st->body);
    free(st);
    *con_cls = NULL;
}

/* ---- Start-up and shut-down ---- */

/* "policy-88" for ".../policy-88.json": the name requests use. */
static const char *file_stem(const char *path, char *buf, size_t size) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    snprintf(buf, size, "%s", base);
    char *dot = strrchr(buf, '.');
    if (dot && dot != buf) *dot = 0;
    return buf;
}

static int load_policies(server *srv, const serve_opts *o, modes_error *err) {
    srv->policies = calloc((size_t)o->n_policies + 1, sizeof *srv->policies);
    if (!srv->policies) return modes_fail(err, MODES_E_INTERNAL, "out of memory");
    for (int i = 0; i < o->n_policies; i++) {
        char stem[256];
        int rc = modes_policy_load(srv->m, o->policies[i], &srv->policies[i].policy, err);
        if (rc) return rc;
        srv->gen.n_policies = i + 1;
        if (!(srv->policies[i].name = strdup(file_stem(o->policies[i], stem, sizeof stem))))
            return modes_fail(err, MODES_E_INTERNAL, "out of memory");
        for (int k = 0; k < i; k++)
            if (!strcmp(srv->policies[k].name, srv->policies[i].name))
                return modes_fail(err, MODES_E_INPUT, "%s: another --policy file has the name '%s'", o->policies[i],
                                  srv->policies[i].name);
        if (!strcmp(srv->policies[i].name, "none"))
            return modes_fail(err, MODES_E_INPUT, "%s: 'none' means no skipping; rename the file", o->policies[i]);
    }
    srv->gen.policies = srv->policies;
    if (o->alphas) return modes_policy_load(srv->m, o->alphas, &srv->alphas, err);
    return 0;
}

static int setup(server *srv, serve_opts *o, modes_model **m, modes_error *err) {
    int rc = modes_model_load(o->dir, m, err);
    if (!rc && !modes_model_tokenizer(*m)) rc = modes_fail(err, MODES_E_INPUT, "%s: no tokenizer.json", o->dir);
    if (rc) return rc;
    srv->m = *m;
    const int max = modes_model_max_ctx(*m);
    if (!o->n_ctx || o->n_ctx > max) o->n_ctx = o->n_ctx ? max : (4096 < max ? 4096 : max);
    const int cores = modes_physical_cores();
    const int threads = o->threads ? (int)o->threads : (cores / (int)o->parallel > 0 ? cores / (int)o->parallel : 1);
    rc = load_policies(srv, o, err);
    if (!rc) rc = serve_pool_new(*m, (int)o->parallel, (int)o->queue, (int)o->n_ctx, threads, &srv->pool, err);
    srv->gen.alphas = srv->alphas ? srv->alphas : srv->gen.n_policies ? srv->policies[0].policy : NULL;
    srv->gen.timeout_s = o->timeout;
    srv->gen.max_pixels = o->max_pixels;
    srv->limits = (serve_request_limits){.max_images = (size_t)o->max_images, .allow_local_files = o->allow_local_files};
    return rc;
}

static void teardown(server *srv, modes_model *m) {
    serve_pool_free(srv->pool);
    for (int i = 0; i < srv->gen.n_policies; i++) {
        modes_policy_free(srv->policies[i].policy);
        free((char *)srv->policies[i].name);
    }
    free(srv->policies);
    modes_policy_free(srv->alphas);
    modes_model_free(m);
}

/* The address to listen on (IPv4 or IPv6) into addr; 0, or 1 when host is not an address. */
static int bind_address(const char *host, int port, struct sockaddr_storage *addr, int *ipv6) {
    memset(addr, 0, sizeof *addr);
    struct sockaddr_in *a4 = (struct sockaddr_in *)addr;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)addr;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        *ipv6 = 0;
        return 0;
    }
    if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        *ipv6 = 1;
        return 0;
    }
    return 1;
}

static const char *model_name(const char *dir, char *buf, size_t size) {
    snprintf(buf, size, "%s", dir);
    size_t n = strlen(buf);
    while (n > 1 && buf[n - 1] == '/') buf[--n] = 0;
    const char *base = strrchr(buf, '/');
    return base && base[1] ? base + 1 : buf;
}

/* Serves until SIGINT or SIGTERM, which every thread but this one blocks. */
static int run_daemon(server *srv, const serve_opts *o) {
    struct sockaddr_storage addr;
    int ipv6;
    if (bind_address(o->host, (int)o->port, &addr, &ipv6))
        return cli_usage("serve", "--host '%s' is not an IPv4 or IPv6 address", o->host), 1;
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);
    const unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
                           MHD_USE_ERROR_LOG | (ipv6 ? MHD_USE_IPv6 : 0);
    struct MHD_Daemon *d = MHD_start_daemon(flags, (uint16_t)o->port, NULL, NULL, on_request, srv, MHD_OPTION_SOCK_ADDR,
                                            (struct sockaddr *)&addr, MHD_OPTION_CONNECTION_LIMIT, MAX_CONNECTIONS,
                                            MHD_OPTION_CONNECTION_TIMEOUT, IDLE_TIMEOUT_S, MHD_OPTION_NOTIFY_COMPLETED,
                                            on_completed, srv, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "modes serve: cannot listen on %s port %ld (in use, or not an address of this machine)\n",
                o->host, o->port);
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    fprintf(stderr, "modes serve: listening on http://%s%s%s:%u (model %s, %ld context%s of %ld tokens)\n",
            ipv6 ? "[" : "", o->host, ipv6 ? "]" : "", info ? (unsigned)info->port : (unsigned)o->port,
            srv->model_name, o->parallel, o->parallel == 1 ? "" : "s", o->n_ctx);
    int sig = 0;
    sigwait(&stop, &sig);
    fprintf(stderr, "modes serve: stopping (%s)\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    MHD_stop_daemon(d);
    return 0;
}

int cmd_serve(int argc, char **argv) {
    serve_opts o;
    const int pr = parse(argc, argv, &o);
    if (pr) return pr == 2 ? 0 : 1;
    server srv = {.o = &o, .id_lock = PTHREAD_MUTEX_INITIALIZER};
    char name[256];
    srv.model_name = model_name(o.dir, name, sizeof name);
    modes_model *m = NULL;
    modes_error err = {0};
    int rc = setup(&srv, &o, &m, &err);
    if (rc) rc = cli_fail("serve", &err);
    else rc = run_daemon(&srv, &o);
    teardown(&srv, m);
    return rc;
}

#endif
