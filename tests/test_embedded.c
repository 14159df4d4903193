/* The embedded default model (models/shapes-vqa, trained by tools/train) against the logits its
 * PyTorch training program computed (golden.safetensors, written at export from the shipped bf16
 * weights, computed in fp32; images are given as the test split's PNGs, which the engine preprocesses):
 * - `modes forward` on each stored case reproduces the logits at every position within 1e-3 of the
 *   largest |logit| of the case, and picks the same argmax at the answer positions (the answer
 *   tokens and the closing <|im_end|>), which the PyTorch model also gets right;
 * - `modes run` (chat template, tokenizer, image preprocessing from the PNG, greedy decoding, stop
 *   on <|im_end|>) answers each case's question with exactly the expected word.
 * The model folder is found as $MODES_TESTS/../models/shapes-vqa. */
#define _XOPEN_SOURCE 700
#include <ctype.h>
#include <stdlib.h>
#include <unistd.h>

#include "golden.h"

static int64_t argmax_row(const st_tensor *t, int64_t row, int64_t V) {
    const char *p = (const char *)t->data + 4 * row * V;
    int64_t best = 0;
    float bv, v;
    memcpy(&bv, p, 4);
    for (int64_t i = 1; i < V; i++) {
        memcpy(&v, p + 4 * i, 4);
        if (v > bv) bv = v, best = i;
    }
    return best;
}

/* Writes the input_ids of case `c` (the image, if any, is given to `modes forward` as a PNG). */
static int write_input(const st_archive *g, const char *c, const char *path) {
    st_writer *w = st_writer_new();
    modes_error err = {0};
    char key[128];
    snprintf(key, sizeof key, "%s.input_ids", c);
    const st_tensor *t = st_find(g, key);
    int rc = w && t ? 0 : -1;
    if (!rc) rc = st_writer_add(w, "input_ids", t->dtype, t->ndim, t->shape, t->data, &err);
    if (!rc) rc = st_writer_save(w, path, &err);
    if (rc) fprintf(stderr, "writing %s: %s\n", path, err.msg);
    st_writer_free(w);
    return rc;
}

static void test_forward(const char *model, const st_archive *g, int ci, const char *tmp) {
    char c[32], key[128], in[1200], out[1200], cmd[4096], img[1200] = "";
    snprintf(c, sizeof c, "case%d", ci);
    snprintf(key, sizeof key, "%s.image", c);
    const char *im = st_metadata(g, key);
    if (im && *im) snprintf(img, sizeof img, " --image '%s/%s'", model, im);
    snprintf(in, sizeof in, "%s/%s_in.safetensors", tmp, c);
    snprintf(out, sizeof out, "%s/%s_out.safetensors", tmp, c);
    CHECKF(write_input(g, c, in) == 0, "%s: could not write the input file", c);
    snprintf(cmd, sizeof cmd, "'%s' forward -m '%s' --input '%s'%s -o '%s' > /dev/null", golden_bin(), model, in, img, out);
    CHECKF(system(cmd) == 0, "command failed: %s", cmd);
    st_archive *got = NULL;
    modes_error err = {0};
    CHECKF(st_open(out, &got, &err) == 0, "%s", err.msg);
    snprintf(key, sizeof key, "%s.logits", c);
    const st_tensor *ref = st_find(g, key), *lg = got ? st_find(got, "logits") : NULL;
    snprintf(key, sizeof key, "%s.answer_pos", c);
    const st_tensor *pos = st_find(g, key);
    snprintf(key, sizeof key, "%s.answer_ids", c);
    const st_tensor *ids = st_find(g, key);
    CHECKF(ref && pos && ids && ref->ndim == 3, "%s: golden tensors missing", c);
    CHECKF(lg && ref && lg->dtype == ST_F32 && lg->numel == ref->numel, "%s: logits missing or of another size", c);
    if (ref && pos && ids && lg && lg->dtype == ST_F32 && lg->numel == ref->numel) {
        double d, mx;
        golden_diff(ref, lg, &d, &mx);
        CHECKF(d <= 1e-3 * mx, "%s: logits differ by %.3g (max |ref| %.3g)", c, d, mx);
        const int64_t V = ref->shape[2];
        int wrong_ref = 0, wrong_ours = 0;
        for (int64_t i = 0; i < pos->numel; i++) {
            const int64_t p = golden_i64(pos, i), want = golden_i64(ids, i);
            wrong_ref += argmax_row(ref, p, V) != want;
            wrong_ours += argmax_row(lg, p, V) != want;
        }
        CHECKF(wrong_ref == 0, "%s: the golden logits themselves miss %d answer tokens", c, wrong_ref);
        CHECKF(wrong_ours == 0, "%s: our argmax misses %d of %lld answer tokens", c, wrong_ours,
               (long long)pos->numel);
        printf("forward %s (%s): T=%lld, max diff %.2g of max |logit| %.3g\n", c,
               st_metadata(g, (snprintf(key, sizeof key, "%s.family", c), key)), (long long)ref->shape[1], d, mx);
    }
    st_close(got);
}

static void trim_lower(char *s) {
    size_t n = strlen(s), a = 0;
    while (n && isspace((unsigned char)s[n - 1])) s[--n] = 0;
    while (s[a] && isspace((unsigned char)s[a])) a++;
    memmove(s, s + a, n - a + 1);
    for (char *p = s; *p; p++) *p = (char)tolower((unsigned char)*p);
}

static void test_run(const char *model, const st_archive *g, int ci) {
    char key[128], cmd[4096], img[1200] = "", got[256] = {0}, want[256];
    snprintf(key, sizeof key, "case%d.question", ci);
    const char *q = st_metadata(g, key);
    snprintf(key, sizeof key, "case%d.answer", ci);
    const char *a = st_metadata(g, key);
    snprintf(key, sizeof key, "case%d.image", ci);
    const char *im = st_metadata(g, key);
    CHECKF(q && a && im && !strchr(q, '\''), "case%d: question, answer or image missing in the metadata", ci);
    if (!(q && a && im) || strchr(q, '\'')) return;
    if (*im) snprintf(img, sizeof img, " --image '%s/%s'", model, im);
    snprintf(cmd, sizeof cmd, "'%s' run -m '%s'%s -p '%s' -n 8", golden_bin(), model, img, q);
    CHECKF(golden_read_cmd(cmd, got, sizeof got) >= 0, "command failed: %s", cmd);
    snprintf(want, sizeof want, "%s", a);
    trim_lower(got);
    trim_lower(want);
    CHECKF(!strcmp(got, want), "case%d: \"%s\" answered \"%s\", expected \"%s\"", ci, q, got, want);
}

int main(void) {
    char model[1024], golden[1200];
    const char *tests = getenv("MODES_TESTS");
    snprintf(model, sizeof model, "%s/../models/shapes-vqa", tests ? tests : "tests");
    snprintf(golden, sizeof golden, "%s/golden.safetensors", model);
    st_archive *g = NULL;
    modes_error err = {0};
    CHECKF(st_open(golden, &g, &err) == 0, "%s", err.msg);
    if (!g) return check_done();
    const char *ncases = st_metadata(g, "cases");
    const int n = ncases ? atoi(ncases) : 0;
    CHECKF(n >= 3, "golden file has %d cases", n);
    char tmp[] = "/tmp/modes-embedded-XXXXXX";
    if (!mkdtemp(tmp)) return 2;
    for (int i = 0; i < n; i++) test_forward(model, g, i, tmp);
    for (int i = 0; i < n; i++) test_run(model, g, i);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp);
    st_close(g);
    return check_done();
}
