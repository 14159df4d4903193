/* The public services for programs built on the library (include/modes.h, "Building on the library"
 * and "Workflows"): their answers on small inputs and their refusal of NULL arguments, through the
 * public header alone. */
#include <math.h>
#include <stdint.h>

#include "check.h"
#include "modes.h"

static void test_errors(void) {
    modes_error err = {0};
    CHECK(modes_fail(&err, MODES_E_INPUT, "%s: bad\nline", "f.json") == MODES_E_INPUT);
    CHECK(err.code == MODES_E_INPUT && !strcmp(err.msg, "f.json: bad?line"));
    modes_error_prefix(&err, "stdin line %d", 3);
    CHECKF(!strcmp(err.msg, "stdin line 3: f.json: bad?line"), "%s", err.msg);
    CHECK(modes_fail(NULL, MODES_E_INTERNAL, "nowhere") == MODES_E_INTERNAL);
}

static void test_json(void) {
    char *q = modes_json_quote("a\"b\n\x01", 5);
    CHECKF(q && !strcmp(q, "\"a\\\"b\\n\\u0001\""), "%s", q ? q : "(null)");
    free(q);
    CHECK(modes_json_quote(NULL, 0) == NULL);
    char buf[40];
    CHECK(!strcmp(modes_json_number(0.1, buf), "0.1"));
    CHECK(!strcmp(modes_json_number(3, buf), "3"));
    CHECK(!strcmp(modes_json_number(NAN, buf), "null"));
    const char *line = "{\"id\": 1, \"text\": \"caf\\u00e9\"}";
    char *v = NULL;
    size_t n = 0;
    modes_error err = {0};
    CHECKF(!modes_json_string_member(line, strlen(line), "line 1", "text", &v, &n, &err), "%s", err.msg);
    CHECK(v && n == 5 && !memcmp(v, "caf\xc3\xa9", 5));
    free(v);
    CHECK(!modes_json_string_member(line, strlen(line), "line 1", "id", &v, &n, &err) && !v && !n);
    CHECK(modes_json_string_member("{\"text\": ", 9, "line 2", "text", &v, &n, &err) == MODES_E_INPUT && !v);
    CHECKF(strstr(err.msg, "line 2"), "%s", err.msg);
    CHECK_NULL_ERR(modes_json_string_member(NULL, 0, "w", "k", &v, &n, &e_), "modes_json_string_member", "text");
    CHECK_NULL_ERR(modes_json_string_member(line, 1, "w", "k", NULL, &n, &e_), "modes_json_string_member", "value");
    CHECK_NULL_ERR(modes_json_string_member(line, 1, "w", NULL, &v, &n, &e_), "modes_json_string_member", "key");
}

static void test_files(void) {
    char path[] = "/tmp/modes_api_tools_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd >= 0) close(fd);
    modes_error err = {0};
    CHECKF(!modes_check_writable(path, &err), "%s", err.msg);
    CHECKF(!modes_write_file_atomic(path, "hello", 5, &err), "%s", err.msg);
    char *data = NULL;
    size_t len = 0;
    CHECKF(!modes_read_file(path, 100, &data, &len, &err), "%s", err.msg);
    CHECK(data && len == 5 && !strcmp(data, "hello"));
    free(data);
    CHECK(modes_read_file(path, 2, &data, &len, &err) == MODES_E_INPUT && !data);
    unlink(path);
    CHECK(modes_check_writable("/nonexistent-folder/x.json", &err) == MODES_E_INPUT);
    CHECK_NULL_ERR(modes_read_file(NULL, 1, &data, &len, &e_), "modes_read_file", "path");
    CHECK_NULL_ERR(modes_read_file(path, 1, NULL, &len, &e_), "modes_read_file", "data");
    CHECK_NULL_ERR(modes_write_file_atomic(NULL, "x", 1, &e_), "modes_write_file_atomic", "path");
    CHECK_NULL_ERR(modes_write_file_atomic(path, NULL, 1, &e_), "modes_write_file_atomic", "data");
    CHECK_NULL_ERR(modes_check_writable(NULL, &e_), "modes_check_writable", "path");
    CHECK(modes_physical_cores() >= 1);
}

static void test_tensor_writer(void) {
    modes_tensor_writer *w = NULL;
    modes_error err = {0};
    CHECKF(!modes_tensor_writer_new(&w, &err), "%s", err.msg);
    const int64_t shape[2] = {1, 2};
    const float f[2] = {1, 2};
    CHECK(!modes_tensor_writer_add(w, "a", MODES_VALUES_F32, 2, shape, f, &err));
    CHECK(modes_tensor_writer_add(w, "a", MODES_VALUES_F32, 2, shape, f, &err) == MODES_E_INPUT);
    CHECK(modes_tensor_writer_add(w, "b", (modes_value_type)7, 2, shape, f, &err) == MODES_E_INPUT);
    CHECK_NULL_ERR(modes_tensor_writer_new(NULL, &e_), "modes_tensor_writer_new", "out");
    CHECK_NULL_ERR(modes_tensor_writer_add(NULL, "a", MODES_VALUES_F32, 2, shape, f, &e_), "modes_tensor_writer_add", "w");
    CHECK_NULL_ERR(modes_tensor_writer_add(w, NULL, MODES_VALUES_F32, 2, shape, f, &e_), "modes_tensor_writer_add", "name");
    CHECK_NULL_ERR(modes_tensor_writer_save(w, NULL, &e_), "modes_tensor_writer_save", "path");
    modes_tensor_writer_free(w);
    modes_tensor_writer_free(NULL);
}

static void test_cases_and_images(void) {
    modes_case *c = (modes_case *)1;
    modes_image img;
    int row = 0, n = 5;
    CHECK_NULL_ERR(modes_case_load(NULL, "x", &c, &e_), "modes_case_load", "m");
    CHECK(c == NULL);
    CHECK_NULL_ERR(modes_case_load((const modes_model *)1, "x", NULL, &e_), "modes_case_load", "out");
    CHECK_NULL_ERR(modes_case_set_images(NULL, NULL, NULL, 0, &e_), "modes_case_set_images", "c");
    CHECK(modes_case_ids(NULL, &n) == NULL && n == 0);
    CHECK(modes_case_images(NULL, NULL) == NULL);
    modes_case_free(NULL);
    CHECK_NULL_ERR(modes_image_preprocess(NULL, NULL, &img, &row, &e_), "modes_image_preprocess", "path");
    CHECK_NULL_ERR(modes_image_preprocess(NULL, "x.png", NULL, &row, &e_), "modes_image_preprocess", "img");
    modes_error err = {0};
    CHECK(modes_image_preprocess(NULL, "/nonexistent.png", &img, &row, &err) == MODES_E_INPUT && !img.pixels);
}

static void test_inspect(void) {
    const char *tests = getenv("MODES_TESTS");
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/../models/shapes-vqa", tests ? tests : "tests");
    char *report = NULL;
    modes_error err = {0};
    CHECKF(!modes_model_inspect(dir, MODES_REPORT_JSON, &report, &err), "%s", err.msg);
    CHECK(report && report[0] == '{' && strstr(report, "\"parameters\": "));
    free(report);
    CHECKF(!modes_model_inspect(dir, MODES_REPORT_TEXT, &report, &err), "%s", err.msg);
    CHECK(report && !strncmp(report, "folder ", 7));
    free(report);
    CHECK(modes_model_inspect(dir, (modes_report_format)9, &report, &err) == MODES_E_INPUT && !report);
    CHECK(modes_model_inspect("/nonexistent-model", MODES_REPORT_TEXT, &report, &err) == MODES_E_INPUT && !report);
    CHECK_NULL_ERR(modes_model_inspect(NULL, MODES_REPORT_TEXT, &report, &e_), "modes_model_inspect", "dir");
    CHECK_NULL_ERR(modes_model_inspect(dir, MODES_REPORT_TEXT, NULL, &e_), "modes_model_inspect", "report");
}

static void test_workflow_arguments(void) {
    const modes_model *m = (const modes_model *)1;
    modes_calibrate_options co = {0};
    modes_calibrate_result cr;
    CHECK_NULL_ERR(modes_calibrate(NULL, &co, "out.json", &cr, &e_), "modes_calibrate", "m");
    CHECK_NULL_ERR(modes_calibrate(m, NULL, "out.json", &cr, &e_), "modes_calibrate", "o");
    CHECK_NULL_ERR(modes_calibrate(m, &co, NULL, &cr, &e_), "modes_calibrate", "output");
    CHECK_NULL_ERR(modes_calibrate(m, &co, "out.json", NULL, &e_), "modes_calibrate", "res");

    modes_search_options so = modes_search_defaults();
    CHECK(!strcmp(so.method, "modes") && so.grid == 100 && isnan(so.cap_text) && isnan(so.cap_vision));
    CHECK(modes_search_method_needs_alphas("modes") == 1 && modes_search_method_needs_alphas("gmlg-threshold") == 1);
    CHECK(modes_search_method_needs_alphas("dmt") == 0 && modes_search_method_needs_alphas("naee") == 0);
    CHECK(modes_search_method_needs_alphas("topk") == -1 && modes_search_method_needs_alphas(NULL) == -1);
    modes_search_result sr;
    CHECK_NULL_ERR(modes_search(NULL, &so, "out.json", &sr, &e_), "modes_search", "m");
    CHECK_NULL_ERR(modes_search(m, NULL, "out.json", &sr, &e_), "modes_search", "o");
    CHECK_NULL_ERR(modes_search(m, &so, NULL, &sr, &e_), "modes_search", "output");
    CHECK_NULL_ERR(modes_search(m, &so, "out.json", NULL, &e_), "modes_search", "res");
    modes_error err = {0};
    so.method = "topk";
    CHECK(modes_search(m, &so, "out.json", &sr, &err) == MODES_E_INPUT && strstr(err.msg, "unknown method"));
    so.method = "modes";
    CHECK(modes_search(m, &so, "out.json", &sr, &err) == MODES_E_INPUT && strstr(err.msg, "needs alphas"));

    modes_eval_options eo = {0};
    modes_eval_report *r = (modes_eval_report *)1;
    CHECK_NULL_ERR(modes_eval_data(NULL, &eo, NULL, 0, &r, &e_), "modes_eval_data", "m");
    CHECK(r == NULL);
    CHECK_NULL_ERR(modes_eval_data(m, NULL, NULL, 0, &r, &e_), "modes_eval_data", "o");
    CHECK_NULL_ERR(modes_eval_data(m, &eo, NULL, 1, &r, &e_), "modes_eval_data", "runs");
    CHECK_NULL_ERR(modes_eval_data(m, &eo, NULL, 0, NULL, &e_), "modes_eval_data", "out");
    CHECK(modes_eval_data(m, &eo, NULL, 0, &r, &err) == MODES_E_INPUT && strstr(err.msg, "no data file"));
    char *text = (char *)1;
    CHECK_NULL_ERR(modes_eval_report_format(NULL, MODES_REPORT_TEXT, 0, &text, &e_), "modes_eval_report_format", "r");
    CHECK(text == NULL);
    CHECK_NULL_ERR(modes_eval_report_plot(NULL, "p.svg", "m", &e_), "modes_eval_report_plot", "r");
    CHECK(modes_eval_report_skipped(NULL) == -1);
    modes_eval_report_free(NULL);
}

static void test_bench_arguments(void) {
    modes_bench_options o = modes_bench_defaults();
    CHECK(o.layers == 48 && o.expert_gb == 4 && o.prompt_tokens == 1024 && o.gen_tokens == 32 && o.reps == 3);
    modes_bench_report *r = (modes_bench_report *)1;
    CHECK_NULL_ERR(modes_bench(NULL, &r, &e_), "modes_bench", "o");
    CHECK(r == NULL);
    CHECK_NULL_ERR(modes_bench(&o, NULL, &e_), "modes_bench", "out");
    modes_error err = {0};
    CHECK(modes_bench(&o, &r, &err) == MODES_E_INPUT && strstr(err.msg, "either a model or a synthetic"));
    o.synthetic = "qwen3-vl-30b-a3b";
    o.image = "x.png";
    CHECK(modes_bench(&o, &r, &err) == MODES_E_INPUT && strstr(err.msg, "image needs a model folder"));
    o.image = NULL;
    o.n_policies = 1;
    CHECK_NULL_ERR(modes_bench(&o, &r, &e_), "modes_bench", "policies");
    char *text = (char *)1;
    CHECK_NULL_ERR(modes_bench_report_format(NULL, MODES_REPORT_JSON, &text, &e_), "modes_bench_report_format", "r");
    CHECK(text == NULL);
    CHECK_NULL_ERR(modes_bench_report_plot(NULL, "p.svg", &e_), "modes_bench_report_plot", "r");
    modes_bench_report_free(NULL);
}

static void test_json_reader(void) {
    static const char TEXT[] = "{\"a\": [1, 2.5, \"x\\u0000y\"], \"b\": {\"c\": true}, \"d\": null}";
    modes_json_doc *doc = NULL;
    modes_error err = {0};
    CHECKF(!modes_json_parse(TEXT, sizeof TEXT - 1, "t.json", 0, 0, &doc, &err), "%s", err.msg);
    const modes_json *root = modes_json_root(doc), *a = modes_json_get(root, "a");
    CHECK(modes_json_type_of(root) == MODES_JSON_OBJECT && modes_json_count(root) == 3);
    CHECK(modes_json_type_of(a) == MODES_JSON_ARRAY && modes_json_count(a) == 3);
    CHECK(modes_json_num(modes_json_at(a, 1)) == 2.5 && isnan(modes_json_num(modes_json_at(a, 2))));
    size_t n = 0;
    const char *s = modes_json_str(modes_json_at(a, 2), &n);
    CHECK(s && n == 3 && !memcmp(s, "x\0y", 3));
    CHECK(modes_json_str(modes_json_at(a, 0), &n) == NULL && n == 0);
    CHECK(modes_json_type_of(modes_json_get(modes_json_get(root, "b"), "c")) == MODES_JSON_TRUE);
    CHECK(modes_json_type_of(modes_json_get(root, "d")) == MODES_JSON_NULL);
    CHECK(modes_json_get(root, "e") == NULL && modes_json_at(a, 3) == NULL && modes_json_get(a, "a") == NULL);
    CHECK(modes_json_type_of(NULL) == -1 && modes_json_count(NULL) == 0 && modes_json_at(NULL, 0) == NULL);
    CHECK(!strcmp(modes_json_type_name(MODES_JSON_STRING), "string") && !strcmp(modes_json_type_name(99), "unknown"));
    modes_json_free(doc);
    modes_json_free(NULL);
    CHECK(modes_json_parse("[1,", 3, "t.json", 0, 0, &doc, &err) == MODES_E_INPUT && !doc && strstr(err.msg, "t.json"));
    CHECK(modes_json_parse("[[[1]]]", 7, "t.json", 0, 2, &doc, &err) == MODES_E_INPUT && !doc);
    CHECK(modes_json_parse("[1, 2]", 6, "t.json", 4, 0, &doc, &err) == MODES_E_INPUT && !doc);
    CHECK_NULL_ERR(modes_json_parse(NULL, 0, "w", 0, 0, &doc, &e_), "modes_json_parse", "text");
    CHECK_NULL_ERR(modes_json_parse("1", 1, "w", 0, 0, NULL, &e_), "modes_json_parse", "out");
}

/* A conversation of one user turn from memory gives the ids modes_prompt_new gives from the file;
 * an earlier assistant turn makes it the follow-up's prompt after that answer. */
static void test_prompt_from_messages(void) {
    const char *tests = getenv("MODES_TESTS");
    char dir[1024], path[1100];
    snprintf(dir, sizeof dir, "%s/../models/shapes-vqa", tests ? tests : "tests");
    snprintf(path, sizeof path, "%s/data/images/test-00000.png", dir);
    modes_model *m = NULL;
    modes_error err = {0};
    CHECKF(!modes_model_load(dir, &m, &err), "%s", err.msg);
    char *png = NULL;
    size_t png_len = 0;
    CHECKF(!modes_read_file(path, 1 << 24, &png, &png_len, &err), "%s", err.msg);
    const char *q = "What color is the triangle?";
    const char *paths[1] = {path};
    modes_prompt *want = NULL, *got = NULL;
    CHECKF(!modes_prompt_new(m, "Be brief.", q, paths, 1, NULL, &want, &err), "%s", err.msg);
    const modes_chat_part parts[2] = {{.image_data = png, .image_len = png_len}, {.text = q, .text_len = strlen(q)}};
    const modes_chat_part sys = {.text = "Be brief.", .text_len = 9}, ans = {.text = "blue", .text_len = 4};
    const modes_chat_message msgs[4] = {{"system", &sys, 1}, {"user", parts, 2}, {"assistant", &ans, 1}, {"user", &parts[1], 1}};
    CHECKF(!modes_prompt_from_messages(m, msgs, 2, &got, &err), "%s", err.msg);
    int nw = 0, ng = 0, ni = 0;
    const int32_t *w = modes_prompt_ids(want, &nw), *g = modes_prompt_ids(got, &ng);
    CHECKF(nw == ng && nw > 0 && !memcmp(w, g, (size_t)nw * sizeof *w), "%d ids vs %d", ng, nw);
    CHECK(modes_prompt_images(got, &ni) && ni == 1);
    modes_prompt_free(got);
    /* the follow-up after the answer "blue": the first turn, the answer, then the follow-up's ids */
    modes_prompt *next = NULL;
    CHECKF(!modes_prompt_followup(m, q, NULL, 0, &next, &err), "%s", err.msg);
    CHECKF(!modes_prompt_from_messages(m, msgs, 4, &got, &err), "%s", err.msg);
    int32_t *blue = NULL;
    int nb = 0, nn = 0;
    CHECKF(!modes_tokenize(modes_model_tokenizer(m), "blue", 4, 0, &blue, &nb, &err), "%s", err.msg);
    const int32_t *f = modes_prompt_ids(next, &nn);
    g = modes_prompt_ids(got, &ng);
    CHECKF(ng == nw + nb + nn && !memcmp(g, w, (size_t)nw * sizeof *w) &&
               !memcmp(g + nw, blue, (size_t)nb * sizeof *blue) && !memcmp(g + nw + nb, f, (size_t)nn * sizeof *f),
           "%d ids, want %d + %d + %d", ng, nw, nb, nn);
    free(blue);
    modes_prompt_free(next);
    modes_prompt_free(got);
    /* bytes that are no image are refused, naming the image and its message */
    const modes_chat_part junk = {.image_data = "hello", .image_len = 5};
    const modes_chat_message bad = {"user", &junk, 1};
    CHECK(modes_prompt_from_messages(m, &bad, 1, &got, &err) == MODES_E_INPUT && !got &&
          strstr(err.msg, "image 1 (message 1)"));
    const modes_chat_message role = {"robot", &parts[1], 1};
    CHECK(modes_prompt_from_messages(m, &role, 1, &got, &err) == MODES_E_INPUT && !got);
    CHECK_NULL_ERR(modes_prompt_from_messages(NULL, msgs, 1, &got, &e_), "modes_prompt_from_messages", "m");
    CHECK_NULL_ERR(modes_prompt_from_messages(m, NULL, 1, &got, &e_), "modes_prompt_from_messages", "msgs");
    CHECK_NULL_ERR(modes_prompt_from_messages(m, msgs, 1, NULL, &e_), "modes_prompt_from_messages", "out");
    modes_prompt_free(want);
    free(png);
    modes_model_free(m);
}

int main(void) {
    test_bench_arguments();
    test_workflow_arguments();
    test_inspect();
    test_errors();
    test_json();
    test_json_reader();
    test_prompt_from_messages();
    test_files();
    test_tensor_writer();
    test_cases_and_images();
    return check_done();
}
