/* The body of POST /v1/chat/completions as `modes serve` reads it (tools/serve_request.c): arbitrary
 * bytes, with local image paths refused and at most 3 images. A failure must be a proper error; a
 * success must be a conversation the prompt builder can take: at least one message, each with a
 * known role and parts that are text or decoded image bytes, within the limits, with the options
 * in their documented ranges. */
#include <math.h>

#include "../../tools/serve.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const serve_request_limits lim = {.max_images = 3, .allow_local_files = 0};
    serve_request r;
    modes_error err = {0};
    const int rc = serve_request_parse((const char *)data, size, &lim, &r, &err);
    if (rc) {
        fuzz_check_error(rc, &err, NULL);
        FUZZ_CHECK(!r.doc && !r.msgs && !r.n_images, "a failed parse leaves nothing");
        return 0;
    }
    FUZZ_CHECK(r.n_msgs >= 1 && r.msgs, "messages");
    FUZZ_CHECK(r.n_images >= 0 && (size_t)r.n_images <= lim.max_images, "%d images", r.n_images);
    int images = 0, parts = 0;
    for (int i = 0; i < r.n_msgs; i++) {
        const modes_chat_message *m = &r.msgs[i];
        FUZZ_CHECK(!strcmp(m->role, "system") || !strcmp(m->role, "user") || !strcmp(m->role, "assistant"), "role %s",
                   m->role);
        FUZZ_CHECK(m->n_parts >= 1 && m->parts == &r.parts[parts], "message %d parts", i);
        for (int j = 0; j < m->n_parts; j++, parts++) {
            const modes_chat_part *p = &m->parts[j];
            FUZZ_CHECK(!p->image_data != !p->text, "part %d: text or image", j);
            if (p->image_data) images++;
            else FUZZ_CHECK(strlen(p->text) <= p->text_len, "text length");
            if (p->image_data && p->image_len) { /* every byte is the request's own (ASan checks the read) */
                volatile char last = ((const char *)p->image_data)[p->image_len - 1];
                (void)last;
            }
        }
    }
    FUZZ_CHECK(parts == r.n_parts && images == r.n_images, "%d parts, %d images", parts, images);
    FUZZ_CHECK(r.temperature >= 0 && r.temperature <= 2 && r.top_p >= 0 && r.top_p <= 1, "sampling");
    FUZZ_CHECK(r.max_tokens == -1 || r.max_tokens >= 1, "max_tokens %ld", r.max_tokens);
    FUZZ_CHECK(r.n_stop >= 0 && r.n_stop <= SERVE_MAX_STOPS, "stops");
    for (int i = 0; i < r.n_stop; i++) FUZZ_CHECK(r.stop[i] && r.stop_len[i] > 0, "stop %d", i);
    FUZZ_CHECK(!(r.policy && r.skip), "policy and skip");
    serve_request_free(&r);
    return 0;
}
