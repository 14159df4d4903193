/* The registration table of model families (family.h): adding a family is one line here. */
#include "models/family.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

extern const model_family family_qwen3_vl_moe;
extern const model_family family_qwen3_moe;

const model_family *const model_families[] = {
    &family_qwen3_vl_moe,
    &family_qwen3_moe,
    NULL,
};

const model_family *family_find(const char *model_type, size_t len) {
    for (int i = 0; model_families[i]; i++)
        if (strlen(model_families[i]->model_type) == len && !memcmp(model_families[i]->model_type, model_type, len))
            return model_families[i];
    return NULL;
}

void family_known(char *list, size_t cap) {
    list[0] = 0;
    for (int i = 0, o = 0; model_families[i] && o < (int)cap; i++)
        o += snprintf(list + o, cap - (size_t)o, i ? ", %s" : "%s", model_families[i]->model_type);
}

/* config_load's reader: the family named by model_type reads the rest. */
static int parse_by_family(const json_node *root, const char *path, model_config *cfg, void *user, modes_error *err) {
    const json_node *mt = json_get(root, "model_type");
    if (!mt || mt->type != JSON_STRING) return modes_fail(err, MODES_E_INPUT, "%s: \"model_type\" is missing", path);
    const model_family *f = family_find(mt->u.str, mt->n);
    if (!f) {
        char known[256];
        family_known(known, sizeof known);
        return modes_fail(err, MODES_E_INPUT, "%s: model_type \"%.*s\" is not supported (supported: %s)", path,
                          (int)(mt->n < 64 ? mt->n : 64), mt->u.str, known);
    }
    snprintf(cfg->model_type, sizeof cfg->model_type, "%s", f->model_type);
    *(const model_family **)user = f;
    return f->parse_config(root, path, cfg, err);
}

int model_config_load(const char *dir, model_config *cfg, const model_family **family, modes_error *err) {
    const model_family *f = NULL;
    const int rc = config_load(dir, parse_by_family, &f, cfg, err);
    if (family) *family = rc ? NULL : f;
    return rc;
}

int model_synthetic(const char *name, int layers, size_t expert_budget, uint64_t seed, modes_model **out, int *n_blocks,
                    modes_error *err) {
    *out = NULL;
    char known[256] = "";
    for (int i = 0, o = 0; model_families[i]; i++) {
        const model_family *f = model_families[i];
        if (!f->synthetic) continue;
        modes_model *m = calloc(1, sizeof *m);
        if (!m) return modes_fail(err, MODES_E_INTERNAL, "out of memory");
        m->family = f;
        const size_t len = strlen("synthetic:") + strlen(name) + 1;
        int rc = (m->dir = malloc(len)) ? 0 : modes_fail(err, MODES_E_INTERNAL, "out of memory");
        if (!rc) snprintf(m->dir, len, "synthetic:%s", name);
        if (!rc) rc = f->synthetic(m, name, layers, expert_budget, seed, n_blocks, err);
        if (!rc) {
            snprintf(m->cfg.model_type, sizeof m->cfg.model_type, "%s", f->model_type);
            model_find_placeholders(m);
            *out = m;
            return 0;
        }
        if (rc != 1) {
            modes_model_free(m);
            return rc;
        }
        modes_model_free(m);
        if (o < (int)sizeof known) o += snprintf(known + o, sizeof known - (size_t)o, o ? ", %s" : "%s", f->synthetic_names);
    }
    return modes_fail(err, MODES_E_INPUT, "synthetic model '%s': unknown model (known: %s)", name, known);
}
