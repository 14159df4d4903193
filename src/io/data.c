#include "io/data.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/json.h"
#include "io/file.h"

static const char *METRICS[] = {"exact", "choice", "yesno"};

const char *data_metric_name(data_metric m) { return METRICS[m]; }

static char *dup_str(const json_node *v) {
    char *s = malloc(v->n + 1);
    if (s) memcpy(s, v->u.str, v->n + 1);
    return s;
}

/* A required or optional string field; strings with NUL bytes are refused (they end C strings). */
static int get_str(const json_node *obj, const char *key, int required, char **out, const char *where,
                   modes_error *err) {
    const json_node *v = json_get(obj, key);
    *out = NULL;
    if (!v || v->type == JSON_NULL) {
        return required ? modes_fail(err, MODES_E_INPUT, "%s: \"%s\" is missing", where, key) : 0;
    }
    if (v->type != JSON_STRING || memchr(v->u.str, 0, v->n))
        return modes_fail(err, MODES_E_INPUT, "%s: \"%s\" must be a string", where, key);
    if (!(*out = dup_str(v))) return modes_fail(err, MODES_E_INTERNAL, "out of memory");
    return 0;
}

/* A string or a list of strings, into a new array. */
static int get_str_list(const json_node *obj, const char *key, const char *dir, char ***out, int *n,
                        const char *where, modes_error *err) {
    const json_node *v = json_get(obj, key);
    *out = NULL;
    *n = 0;
    if (!v || v->type == JSON_NULL) return 0;
    const size_t cnt = v->type == JSON_ARRAY ? v->n : 1;
    if (cnt > DATA_MAX_IMAGES) return modes_fail(err, MODES_E_INPUT, "%s: \"%s\" has more than %d entries", where, key, DATA_MAX_IMAGES);
    if (!(*out = calloc(cnt ? cnt : 1, sizeof **out))) return modes_fail(err, MODES_E_INTERNAL, "out of memory");
    for (size_t i = 0; i < cnt; i++) {
        const json_node *e = v->type == JSON_ARRAY ? json_at(v, i) : v;
        if (e->type != JSON_STRING || !e->n || memchr(e->u.str, 0, e->n))
            return modes_fail(err, MODES_E_INPUT, "%s: \"%s\" must be a non-empty string or a list of them", where, key);
        (*out)[i] = dir && e->u.str[0] != '/' ? path_join(dir, e->u.str) : dup_str(e);
        if (!(*out)[i]) return modes_fail(err, MODES_E_INTERNAL, "out of memory");
        (*n)++;
    }
    return 0;
}

static int parse_example(const json_node *o, const char *dir, data_example *ex, const char *where, modes_error *err) {
    if (o->type != JSON_OBJECT) return modes_fail(err, MODES_E_INPUT, "%s: not a JSON object", where);
    int rc = get_str(o, "question", 1, &ex->question, where, err);
    if (!rc) rc = get_str(o, "answer", 1, &ex->answer, where, err);
    if (!rc) rc = get_str(o, "family", 0, &ex->family, where, err);
    if (!rc) {
        const json_node *id = json_get(o, "id");
        if (id && json_is_int(id)) {
            char buf[32];
            snprintf(buf, sizeof buf, "%.0f", id->u.num);
            ex->id = strdup(buf);
        } else {
            rc = get_str(o, "id", 0, &ex->id, where, err);
        }
    }
    if (!rc) rc = get_str_list(o, "image", dir, &ex->images, &ex->n_images, where, err);
    if (!rc) rc = get_str_list(o, "choices", NULL, &ex->choices, &ex->n_choices, where, err);
    char *metric = NULL;
    if (!rc) rc = get_str(o, "metric", 0, &metric, where, err);
    ex->metric = ex->n_choices ? METRIC_CHOICE : METRIC_EXACT;
    if (!rc && metric) {
        int found = 0;
        for (int i = 0; i < 3; i++)
            if (!strcmp(metric, METRICS[i])) {
                ex->metric = (data_metric)i;
                found = 1;
            }
        if (!found) rc = modes_fail(err, MODES_E_INPUT, "%s: \"metric\" must be exact, choice or yesno", where);
    }
    if (!rc && ex->metric == METRIC_CHOICE && !ex->n_choices)
        rc = modes_fail(err, MODES_E_INPUT, "%s: metric \"choice\" needs \"choices\"", where);
    free(metric);
    return rc;
}

static void example_free(data_example *e) {
    free(e->id);
    free(e->question);
    free(e->answer);
    free(e->family);
    for (int i = 0; i < e->n_images; i++) free(e->images[i]);
    free(e->images);
    for (int i = 0; i < e->n_choices; i++) free(e->choices[i]);
    free(e->choices);
}

void data_free(data_set *d) {
    for (int i = 0; i < d->n; i++) example_free(&d->ex[i]);
    free(d->ex);
    free(d->path);
    memset(d, 0, sizeof *d);
}

void data_drop(data_set *d, const unsigned char *drop) {
    int kept = 0;
    for (int i = 0; i < d->n; i++) {
        if (drop[i]) example_free(&d->ex[i]);
        else d->ex[kept++] = d->ex[i];
    }
    d->n = kept;
}

int data_load(const char *path, int limit, data_set *out, modes_error *err) {
    memset(out, 0, sizeof *out);
    char *text, *dir = path_dirname(path);
    size_t len;
    int rc = dir ? read_file(path, DATA_MAX_BYTES, &text, &len, err) : modes_fail(err, MODES_E_INTERNAL, "out of memory");
    if (rc) {
        free(dir);
        return rc;
    }
    out->path = strdup(path);
    int cap = 0, line_no = 0;
    for (char *line = text, *next; !rc && line < text + len; line = next) {
        char *nl = memchr(line, '\n', (size_t)(text + len - line));
        next = nl ? nl + 1 : text + len;
        line_no++;
        const size_t ll = (size_t)((nl ? nl : text + len) - line);
        size_t k = 0;
        while (k < ll && (line[k] == ' ' || line[k] == '\t' || line[k] == '\r')) k++;
        if (k == ll) continue;
        if (limit > 0 && out->n >= limit) break;
        if (out->n >= DATA_MAX_EXAMPLES) {
            rc = modes_fail(err, MODES_E_INPUT, "%s: more than %d examples", path, DATA_MAX_EXAMPLES);
            break;
        }
        if (out->n == cap) {
            cap = cap ? 2 * cap : 64;
            data_example *g = realloc(out->ex, (size_t)cap * sizeof *g);
            if (!g) {
                rc = modes_fail(err, MODES_E_INTERNAL, "out of memory");
                break;
            }
            out->ex = g;
        }
        char where[1100];
        snprintf(where, sizeof where, "%s: line %d", path, line_no);
        json_doc *doc = NULL;
        json_limits lim = {.max_bytes = 1 << 20, .max_depth = 8};
        data_example *ex = &out->ex[out->n];
        memset(ex, 0, sizeof *ex);
        ex->line = line_no;
        rc = json_parse(line, ll, &lim, where, &doc, err);
        if (!rc) rc = parse_example(json_root(doc), dir, ex, where, err);
        out->n++; /* counted even on failure so data_free releases what was parsed */
        json_free(doc);
    }
    if (!rc && out->n == 0) rc = modes_fail(err, MODES_E_INPUT, "%s: no examples", path);
    free(text);
    free(dir);
    if (rc) data_free(out);
    return rc;
}
