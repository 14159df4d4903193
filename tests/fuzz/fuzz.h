/* Helpers shared by the fuzz targets (one translation unit each, so everything here is static).
 *
 * Targets that read files (the parsers take paths, as the CLI does) write each input into a
 * private temporary folder, made once per process on a RAM disk when there is one and removed at
 * exit. Read-only fixtures (a small tokenizer) are in tests/fuzz/data, found through
 * MODES_FUZZ_DATA or the source path compiled in. A broken invariant aborts, which libFuzzer and
 * the standalone driver both report as a crash. */
#ifndef MODES_FUZZ_H
#define MODES_FUZZ_H

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "modes.h"

#ifndef MODES_FUZZ_DATA_DEFAULT
#define MODES_FUZZ_DATA_DEFAULT "tests/fuzz/data"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond, ...)                                                                                  \
    do {                                                                                                       \
        if (!(cond)) {                                                                                         \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);                          \
            fprintf(stderr, __VA_ARGS__);                                                                      \
            fprintf(stderr, "\n");                                                                             \
            abort();                                                                                           \
        }                                                                                                      \
    } while (0)

/* A failure must be a proper error: code 1 (bad input) or 2 (out of memory), with a message, which
 * names `what` when given. MODES_FUZZ_VERBOSE=1 prints each message (to see what seeds reach). */
static inline void fuzz_check_error(int rc, const modes_error *err, const char *what) {
    if (getenv("MODES_FUZZ_VERBOSE")) fprintf(stderr, "error %d: %s\n", rc, err->msg);
    FUZZ_CHECK(rc == MODES_E_INPUT || rc == MODES_E_INTERNAL, "rc %d", rc);
    FUZZ_CHECK(err->code == rc, "err.code %d, rc %d (%s)", err->code, rc, err->msg);
    FUZZ_CHECK(err->msg[0] && !strchr(err->msg, '\n'), "empty or multi-line message '%s'", err->msg);
    if (what) FUZZ_CHECK(strstr(err->msg, what), "message does not name %s: %s", what, err->msg);
}

static char fuzz_dir_buf[512];

static inline void fuzz_rm_tree(const char *path) {
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            char sub[1024];
            int n = snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
            if (n < 0 || (size_t)n >= sizeof sub) continue;
            struct stat st;
            if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode)) fuzz_rm_tree(sub);
            else unlink(sub);
        }
        closedir(d);
    }
    rmdir(path);
}

static inline void fuzz_cleanup(void) {
    if (fuzz_dir_buf[0]) fuzz_rm_tree(fuzz_dir_buf);
}

/* The process's temporary folder. */
static inline const char *fuzz_tmpdir(void) {
    if (fuzz_dir_buf[0]) return fuzz_dir_buf;
    struct stat st;
    const char *base = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0
                           ? "/dev/shm"
                           : (getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    snprintf(fuzz_dir_buf, sizeof fuzz_dir_buf, "%s/modes-fuzz-XXXXXX", base);
    if (!mkdtemp(fuzz_dir_buf)) {
        perror("mkdtemp");
        abort();
    }
    atexit(fuzz_cleanup);
    return fuzz_dir_buf;
}

/* A path inside the temporary folder; subfolders named in `name` are made. Returns a new string. */
static inline char *fuzz_path(const char *name) {
    const char *dir = fuzz_tmpdir();
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    FUZZ_CHECK(p, "out of memory");
    snprintf(p, n, "%s/%s", dir, name);
    for (char *s = p + strlen(dir) + 1; (s = strchr(s, '/')); s++) {
        *s = 0;
        mkdir(p, 0700);
        *s = '/';
    }
    return p;
}

static inline void fuzz_write(const char *path, const void *data, size_t size) {
    FILE *f = fopen(path, "wb");
    FUZZ_CHECK(f, "cannot create %s", path);
    FUZZ_CHECK(size == 0 || fwrite(data, 1, size, f) == size, "cannot write %s", path);
    FUZZ_CHECK(fclose(f) == 0, "cannot write %s", path);
}

/* A fixture in tests/fuzz/data. Returns a new string. */
static inline char *fuzz_data_path(const char *name) {
    const char *dir = getenv("MODES_FUZZ_DATA");
    if (!dir || !*dir) dir = MODES_FUZZ_DATA_DEFAULT;
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    FUZZ_CHECK(p, "out of memory");
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* Reads little-endian integers from the input, 0 past its end. */
typedef struct {
    const uint8_t *p;
    size_t n, at;
} fuzz_reader;

static inline unsigned fuzz_u8(fuzz_reader *r) { return r->at < r->n ? r->p[r->at++] : 0; }
static inline unsigned fuzz_u16(fuzz_reader *r) { return fuzz_u8(r) | fuzz_u8(r) << 8; }

#endif
