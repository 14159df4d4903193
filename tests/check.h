/* A minimal test harness: CHECK records a failure with its location and goes on, so one run shows
 * every broken case; check_done prints the "N passed, N failed" line CI reads and gives the exit code. */
#ifndef MODES_TESTS_CHECK_H
#define MODES_TESTS_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int check_passed, check_failed;

#define CHECK(cond) CHECKF(cond, "%s", #cond)
#define CHECKF(cond, ...)                                                  \
    do {                                                                   \
        if (cond) {                                                        \
            check_passed++;                                                \
        } else {                                                           \
            check_failed++;                                                \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);           \
            fprintf(stderr, __VA_ARGS__);                                  \
            fputc('\n', stderr);                                           \
        }                                                                  \
    } while (0)

/* For the public API (modes.h): a call given a NULL it needs fails with MODES_E_INPUT, naming the
 * function and the argument. The call writes its error to e_. */
#define CHECK_NULL_ERR(call, fn, arg)                                                                     \
    do {                                                                                                  \
        modes_error e_ = {0};                                                                             \
        int rc_ = (call);                                                                                 \
        (void)e_;                                                                                         \
        CHECKF(rc_ == MODES_E_INPUT && strstr(e_.msg, fn) && strstr(e_.msg, arg " is NULL"),              \
               "%s: rc %d, message \"%s\"", #call, rc_, e_.msg);                                         \
    } while (0)

static inline int check_done(void) {
    printf("%d passed, %d failed\n", check_passed, check_failed);
    return check_failed ? 1 : 0;
}

/* A path under ../shared (or $MODES_SHARED), in a static buffer. */
static inline const char *shared_path(const char *rel) {
    static char buf[4][1024];
    static int slot;
    const char *root = getenv("MODES_SHARED");
    char *b = buf[slot++ & 3];
    snprintf(b, sizeof buf[0], "%s/%s", root ? root : "../shared", rel);
    return b;
}

/* Called first by every test that reads ../shared: without the folder the test says where it looked
 * and fails (exit 1) instead of crashing or stopping silently on files that are not there. */
static inline void require_shared(void) {
    const char *root = getenv("MODES_SHARED");
    if (!root) root = "../shared";
    char ref[1024], cwd[1024];
    struct stat st;
    snprintf(ref, sizeof ref, "%s/ref", root);
    if (stat(ref, &st) == 0 && S_ISDIR(st.st_mode)) return;
    if (root[0] != '/' && getcwd(cwd, sizeof cwd)) fprintf(stderr, "shared/ not found (looked in %s/%s)\n", cwd, root);
    else fprintf(stderr, "shared/ not found (looked in %s)\n", root);
    exit(1);
}

/* A path under the tests folder (or $MODES_TESTS). */
static inline const char *tests_path(const char *rel) {
    static char buf[4][1024];
    static int slot;
    const char *root = getenv("MODES_TESTS");
    char *b = buf[slot++ & 3];
    snprintf(b, sizeof buf[0], "%s/%s", root ? root : "tests", rel);
    return b;
}

#endif
