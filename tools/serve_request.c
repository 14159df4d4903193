/* The body of POST /v1/chat/completions, read with the library's JSON reader and checked field by
 * field: a wrong type is refused with a message naming the field (OpenAI's 400), an unknown field
 * is ignored. Images come as data: URLs holding base64 (decoded here) or, only when the server
 * allows it, as local paths. Nothing here knows the model or HTTP, so it can be fuzzed alone. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve.h"

#define MAX_MESSAGES 1024
#define MAX_PARTS 4096

/* base64 (RFC 4648, standard alphabet; padding optional, whitespace skipped) into a new buffer. */
static int base64_decode(const char *s, size_t n, void **out, size_t *out_len) {
    unsigned char *d = malloc(n / 4 * 3 + 3);
    if (!d) return -1;
    size_t len = 0;
    unsigned acc = 0;
    int bits = 0, pad = 0;
    for (size_t i = 0; i < n; i++) {
        const unsigned char c = (unsigned char)s[i];
        int v;
        if (c >= 'A' && c <= 'Z') v = c - 'A';
        else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
        else if (c >= '0' && c <= '9') v = c - '0' + 52;
        else if (c == '+') v = 62;
        else if (c == '/') v = 63;
        else if (c == '=') { pad++; continue; }
        else if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
        else { free(d); return 1; }
        if (pad) { free(d); return 1; } /* data after padding */
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            d[len++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (bits >= 6 || pad > 2) { free(d); return 1; } /* a lone sextet cannot end the data */
    *out = d;
    *out_len = len;
    return 0;
}

static int type_error(modes_error *err, const char *field, const char *want, const modes_json *v) {
    return modes_fail(err, MODES_E_INPUT, "'%s' must be %s, not %s", field, want,
                      modes_json_type_name(modes_json_type_of(v)));
}

/* The image of an image_url part: the bytes of a data: URL, or of a local file when allowed. */
static int read_image_url(const char *url, size_t n, const serve_request_limits *lim, const char *field, void **data,
                          size_t *len, modes_error *err) {
    if (n >= 5 && !strncmp(url, "data:", 5)) {
        const char *comma = memchr(url, ',', n);
        const char *b64 = comma ? strstr(url, ";base64,") : NULL;
        if (!comma || b64 != comma - 7)
            return modes_fail(err, MODES_E_INPUT, "'%s': a data: URL must hold base64 (data:image/png;base64,...)", field);
        const int rc = base64_decode(comma + 1, n - (size_t)(comma + 1 - url), data, len);
        if (rc < 0) return modes_fail(err, MODES_E_INTERNAL, "out of memory");
        if (rc) return modes_fail(err, MODES_E_INPUT, "'%s': the data: URL's base64 is broken", field);
        return 0;
    }
    if (!lim->allow_local_files)
        return modes_fail(err, MODES_E_INPUT, "'%s' must be a data: URL (local files need the server's --allow-local-files)",
                          field);
    if (strlen(url) != n) return modes_fail(err, MODES_E_INPUT, "'%s': a path cannot hold NUL", field);
    const char *path = !strncmp(url, "file://", 7) ? url + 7 : url;
    char *bytes = NULL;
    const int rc = modes_read_file(path, (size_t)64 << 20, &bytes, len, err);
    *data = bytes;
    return rc;
}

static int parse_image_part(const modes_json *part, int mi, int pi, const serve_request_limits *lim,
                            serve_request *r, modes_error *err) {
    char field[96];
    snprintf(field, sizeof field, "messages[%d].content[%d].image_url", mi, pi);
    const modes_json *iu = modes_json_get(part, "image_url");
    const modes_json *url = modes_json_type_of(iu) == MODES_JSON_OBJECT ? modes_json_get(iu, "url") : iu;
    size_t n;
    const char *s = modes_json_str(url, &n);
    if (!s) return type_error(err, field, "a string or an object with a string 'url'", url);
    if ((size_t)r->n_images >= lim->max_images)
        return modes_fail(err, MODES_E_INPUT, "at most %zu images per request", lim->max_images);
    modes_chat_part *p = &r->parts[r->n_parts];
    void *data = NULL;
    int rc = read_image_url(s, n, lim, field, &data, &p->image_len, err);
    if (rc) return rc;
    r->images[r->n_images++] = data;
    p->image_data = data;
    r->n_parts++;
    return 0;
}

/* One message's content: a string, null (an assistant turn without text), or a list of parts. */
static int parse_content(const modes_json *content, int mi, const serve_request_limits *lim, serve_request *r,
                         modes_error *err) {
    char field[64];
    snprintf(field, sizeof field, "messages[%d].content", mi);
    const int t = modes_json_type_of(content);
    if (t == MODES_JSON_STRING || t == MODES_JSON_NULL || t < 0) {
        if (r->n_parts >= MAX_PARTS) return modes_fail(err, MODES_E_INPUT, "more than %d content parts", MAX_PARTS);
        size_t n = 0;
        const char *s = modes_json_str(content, &n);
        r->parts[r->n_parts++] = (modes_chat_part){.text = s ? s : "", .text_len = n};
        return 0;
    }
    if (t != MODES_JSON_ARRAY) return type_error(err, field, "a string or an array of parts", content);
    for (size_t i = 0; i < modes_json_count(content); i++) {
        const modes_json *part = modes_json_at(content, i);
        char pf[96];
        snprintf(pf, sizeof pf, "%s[%zu]", field, i);
        if (modes_json_type_of(part) != MODES_JSON_OBJECT) return type_error(err, pf, "an object", part);
        if (r->n_parts >= MAX_PARTS) return modes_fail(err, MODES_E_INPUT, "more than %d content parts", MAX_PARTS);
        const char *type = modes_json_str(modes_json_get(part, "type"), NULL);
        if (!type) return type_error(err, strcat(pf, ".type"), "a string", modes_json_get(part, "type"));
        if (!strcmp(type, "text")) {
            size_t n;
            const char *s = modes_json_str(modes_json_get(part, "text"), &n);
            if (!s) return type_error(err, strcat(pf, ".text"), "a string", modes_json_get(part, "text"));
            r->parts[r->n_parts++] = (modes_chat_part){.text = s, .text_len = n};
        } else if (!strcmp(type, "image_url")) {
            const int rc = parse_image_part(part, mi, (int)i, lim, r, err);
            if (rc) return rc;
        } else {
            return modes_fail(err, MODES_E_INPUT, "%s.type: '%s' is not supported (text, image_url)", pf, type);
        }
    }
    return 0;
}

static int parse_messages(const modes_json *msgs, const serve_request_limits *lim, serve_request *r, modes_error *err) {
    if (modes_json_type_of(msgs) != MODES_JSON_ARRAY) return type_error(err, "messages", "an array", msgs);
    const size_t n = modes_json_count(msgs);
    if (!n) return modes_fail(err, MODES_E_INPUT, "'messages' is empty");
    if (n > MAX_MESSAGES) return modes_fail(err, MODES_E_INPUT, "more than %d messages", MAX_MESSAGES);
    size_t parts = 0;
    for (size_t i = 0; i < n; i++) {
        const modes_json *c = modes_json_get(modes_json_at(msgs, i), "content");
        parts += modes_json_type_of(c) == MODES_JSON_ARRAY ? modes_json_count(c) : 1;
    }
    if (parts > MAX_PARTS) return modes_fail(err, MODES_E_INPUT, "more than %d content parts", MAX_PARTS);
    r->msgs = calloc(n, sizeof *r->msgs);
    r->parts = calloc(parts + 1, sizeof *r->parts);
    r->images = calloc(lim->max_images + 1, sizeof *r->images);
    if (!r->msgs || !r->parts || !r->images) return modes_fail(err, MODES_E_INTERNAL, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const modes_json *m = modes_json_at(msgs, i);
        char field[48];
        snprintf(field, sizeof field, "messages[%zu]", i);
        if (modes_json_type_of(m) != MODES_JSON_OBJECT) return type_error(err, field, "an object", m);
        const char *role = modes_json_str(modes_json_get(m, "role"), NULL);
        if (!role) return type_error(err, strcat(field, ".role"), "a string", modes_json_get(m, "role"));
        if (strcmp(role, "system") && strcmp(role, "user") && strcmp(role, "assistant") && strcmp(role, "developer"))
            return modes_fail(err, MODES_E_INPUT, "%s.role: '%s' is not supported (system, user, assistant)", field,
                              role);
        const int first = r->n_parts;
        int rc = parse_content(modes_json_get(m, "content"), (int)i, lim, r, err);
        if (rc) return rc;
        /* "developer" is the newer name of the system role */
        r->msgs[r->n_msgs++] = (modes_chat_message){!strcmp(role, "developer") ? "system" : role, &r->parts[first],
                                                    r->n_parts - first};
    }
    return 0;
}

/* A number member in [lo, hi], or def when absent or null. */
static int get_number(const modes_json *obj, const char *key, double lo, double hi, double def, double *out,
                      modes_error *err) {
    const modes_json *v = modes_json_get(obj, key);
    *out = def;
    if (!v || modes_json_type_of(v) == MODES_JSON_NULL) return 0;
    if (modes_json_type_of(v) != MODES_JSON_NUMBER) return type_error(err, key, "a number", v);
    const double x = modes_json_num(v);
    if (!(x >= lo && x <= hi)) return modes_fail(err, MODES_E_INPUT, "'%s' must be in [%g, %g]", key, lo, hi);
    *out = x;
    return 0;
}

static int get_integer(const modes_json *obj, const char *key, double lo, double hi, long long def, long long *out,
                       modes_error *err) {
    double x;
    int rc = get_number(obj, key, lo, hi, (double)def, &x, err);
    if (rc) return rc;
    if (x != floor(x)) return modes_fail(err, MODES_E_INPUT, "'%s' must be an integer", key);
    *out = (long long)x;
    return 0;
}

static int get_bool(const modes_json *obj, const char *key, int *out, modes_error *err) {
    const modes_json *v = modes_json_get(obj, key);
    const int t = modes_json_type_of(v);
    *out = t == MODES_JSON_TRUE;
    if (t < 0 || t == MODES_JSON_NULL || t == MODES_JSON_TRUE || t == MODES_JSON_FALSE) return 0;
    return type_error(err, key, "a boolean", v);
}

/* "stop": a string or an array of at most 4 non-empty strings. */
static int parse_stop(const modes_json *stop, serve_request *r, modes_error *err) {
    const int t = modes_json_type_of(stop);
    if (t < 0 || t == MODES_JSON_NULL) return 0;
    if (t == MODES_JSON_STRING) {
        r->stop[0] = modes_json_str(stop, &r->stop_len[0]);
        r->n_stop = r->stop_len[0] > 0;
        return 0;
    }
    if (t != MODES_JSON_ARRAY) return type_error(err, "stop", "a string or an array of strings", stop);
    if (modes_json_count(stop) > SERVE_MAX_STOPS)
        return modes_fail(err, MODES_E_INPUT, "'stop' holds at most %d strings", SERVE_MAX_STOPS);
    for (size_t i = 0; i < modes_json_count(stop); i++) {
        const modes_json *s = modes_json_at(stop, i);
        if (modes_json_type_of(s) != MODES_JSON_STRING) return type_error(err, "stop[]", "a string", s);
        r->stop[r->n_stop] = modes_json_str(s, &r->stop_len[r->n_stop]);
        if (r->stop_len[r->n_stop]) r->n_stop++;
    }
    return 0;
}

/* The "modes" extension: {"policy": NAME} or {"skip": SPEC}, not both. */
static int parse_modes(const modes_json *ext, serve_request *r, modes_error *err) {
    const int t = modes_json_type_of(ext);
    if (t < 0 || t == MODES_JSON_NULL) return 0;
    if (t != MODES_JSON_OBJECT) return type_error(err, "modes", "an object", ext);
    const modes_json *p = modes_json_get(ext, "policy"), *s = modes_json_get(ext, "skip");
    if (p && !(r->policy = modes_json_str(p, NULL))) return type_error(err, "modes.policy", "a string", p);
    if (s && !(r->skip = modes_json_str(s, NULL))) return type_error(err, "modes.skip", "a string", s);
    if (r->policy && r->skip) return modes_fail(err, MODES_E_INPUT, "'modes' takes 'policy' or 'skip', not both");
    return 0;
}

static int parse_fields(const modes_json *root, const serve_request_limits *lim, serve_request *r, modes_error *err) {
    if (modes_json_type_of(root) != MODES_JSON_OBJECT) return type_error(err, "the request body", "an object", root);
    int rc = parse_messages(modes_json_get(root, "messages"), lim, r, err);
    long long max_tokens = -1, max_completion = -1;
    if (!rc) rc = get_integer(root, "max_tokens", 1, 1 << 30, -1, &max_tokens, err);
    if (!rc) rc = get_integer(root, "max_completion_tokens", 1, 1 << 30, -1, &max_completion, err);
    r->max_tokens = (long)(max_completion > 0 ? max_completion : max_tokens);
    if (!rc) rc = get_number(root, "temperature", 0, 2, 1.0, &r->temperature, err);
    if (!rc) rc = get_number(root, "top_p", 0, 1, 1.0, &r->top_p, err);
    if (!rc) rc = get_integer(root, "seed", -9007199254740992.0, 9007199254740992.0, -1, &r->seed, err);
    if (!rc) rc = get_bool(root, "stream", &r->stream, err);
    const modes_json *so = modes_json_get(root, "stream_options");
    if (!rc && so && modes_json_type_of(so) != MODES_JSON_NULL) {
        if (modes_json_type_of(so) != MODES_JSON_OBJECT) rc = type_error(err, "stream_options", "an object", so);
        else rc = get_bool(so, "include_usage", &r->include_usage, err);
    }
    double n_choices = 1;
    if (!rc) rc = get_number(root, "n", 1, 1, 1, &n_choices, err);
    if (!rc) rc = parse_stop(modes_json_get(root, "stop"), r, err);
    if (!rc) rc = parse_modes(modes_json_get(root, "modes"), r, err);
    const modes_json *model = modes_json_get(root, "model");
    if (!rc && model && !modes_json_str(model, NULL)) rc = type_error(err, "model", "a string", model);
    return rc;
}

int serve_request_parse(const char *body, size_t len, const serve_request_limits *lim, serve_request *r,
                        modes_error *err) {
    *r = (serve_request){.max_tokens = -1, .seed = -1};
    int rc = modes_json_parse(body, len, "the request body", len + 1, 64, &r->doc, err);
    if (!rc) rc = parse_fields(modes_json_root(r->doc), lim, r, err);
    if (rc) serve_request_free(r);
    return rc;
}

void serve_request_free(serve_request *r) {
    for (int i = 0; i < r->n_images; i++) free(r->images[i]);
    free(r->images);
    free(r->parts);
    free(r->msgs);
    modes_json_free(r->doc);
    *r = (serve_request){.max_tokens = -1, .seed = -1};
}
