/* Asks the model a question about a picture through the installed library, and prints the answer:
 *     ask MODEL_DIR IMAGE "QUESTION"
 * Build it against an installed modes with
 *     cc ask.c $(pkg-config --cflags --libs modes) -o ask */
#include <modes.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: ask MODEL_DIR IMAGE QUESTION\n");
        return 2;
    }
    modes_error err = {0};
    modes_model *model = NULL;
    modes_ctx *ctx = NULL;
    modes_prompt *prompt = NULL;
    const char *images[1] = {argv[2]};
    int32_t ids[64];
    int n = 0;
    char *answer = NULL;
    int rc = modes_model_load(argv[1], &model, &err);
    if (!rc) rc = modes_ctx_new(model, NULL, &ctx, &err);
    if (!rc) rc = modes_prompt_new(model, NULL, argv[3], images, 1, NULL, &prompt, &err);
    if (!rc) rc = modes_generate(ctx, prompt, 64, NULL, NULL, NULL, ids, &n, NULL, &err); /* greedy */
    if (!rc) rc = modes_detokenize(modes_model_tokenizer(model), ids, n, 1, &answer, NULL, &err);
    if (rc) fprintf(stderr, "ask: %s\n", err.msg);
    else printf("%s\n", answer);
    free(answer);
    modes_prompt_free(prompt);
    modes_ctx_free(ctx);
    modes_model_free(model);
    return rc ? 1 : 0;
}
