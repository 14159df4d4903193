#define _POSIX_C_SOURCE 200809L
#include "io/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"

int read_file(const char *path, size_t max_bytes, char **data, size_t *len, modes_error *err) {
    *data = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return modes_fail(err, MODES_E_INPUT, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return modes_fail(err, MODES_E_INPUT, "%s: not a regular file", path);
    }
    if ((unsigned long long)st.st_size > max_bytes) {
        fclose(f);
        return modes_fail(err, MODES_E_INPUT, "%s: file of %lld bytes is over the limit of %zu bytes", path,
                          (long long)st.st_size, max_bytes);
    }
    size_t n = (size_t)st.st_size;
    char *buf = malloc(n + 1);
    if (!buf) {
        fclose(f);
        return modes_fail(err, MODES_E_INTERNAL, "%s: out of memory reading %zu bytes", path, n);
    }
    size_t got = fread(buf, 1, n, f);
    int bad = ferror(f) || got != n;
    fclose(f);
    if (bad) {
        free(buf);
        return modes_fail(err, MODES_E_INPUT, "%s: read error", path);
    }
    buf[n] = 0;
    *data = buf;
    *len = n;
    return 0;
}

int mapped_file_open(const char *path, mapped_file *mf, modes_error *err) {
    mf->data = NULL;
    mf->len = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return modes_fail(err, MODES_E_INPUT, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return modes_fail(err, MODES_E_INPUT, "%s: not a regular file", path);
    }
    if (st.st_size == 0) {
        close(fd);
        return modes_fail(err, MODES_E_INPUT, "%s: empty file", path);
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) return modes_fail(err, MODES_E_INPUT, "%s: cannot map: %s", path, strerror(errno));
    mf->data = p;
    mf->len = (size_t)st.st_size;
    return 0;
}

void mapped_file_close(mapped_file *mf) {
    if (mf->data) munmap((void *)mf->data, mf->len);
    mf->data = NULL;
    mf->len = 0;
}

int atomic_open(atomic_file *af, const char *path, modes_error *err) {
    memset(af, 0, sizeof *af);
    size_t n = strlen(path);
    af->path = malloc(n + 1);
    af->tmp = malloc(n + 16);
    if (!af->path || !af->tmp) {
        free(af->path);
        free(af->tmp);
        return modes_fail(err, MODES_E_INTERNAL, "%s: out of memory", path);
    }
    memcpy(af->path, path, n + 1);
    snprintf(af->tmp, n + 16, "%s.tmp-XXXXXX", path);
    int fd = mkstemp(af->tmp);
    if (fd < 0) {
        int e = errno;
        free(af->path);
        free(af->tmp);
        return modes_fail(err, MODES_E_INPUT, "%s: cannot create: %s", path, strerror(e));
    }
    fchmod(fd, 0644);
    af->f = fdopen(fd, "wb");
    if (!af->f) {
        close(fd);
        unlink(af->tmp);
        free(af->path);
        free(af->tmp);
        return modes_fail(err, MODES_E_INTERNAL, "%s: fdopen failed", path);
    }
    return 0;
}

static void atomic_release(atomic_file *af) {
    free(af->path);
    free(af->tmp);
    af->path = af->tmp = NULL;
    af->f = NULL;
}

int atomic_commit(atomic_file *af, modes_error *err) {
    int bad = fflush(af->f) != 0 || ferror(af->f) || fsync(fileno(af->f)) != 0;
    int e = errno;
    if (fclose(af->f) != 0) bad = 1;
    if (!bad && rename(af->tmp, af->path) != 0) {
        bad = 1;
        e = errno;
    }
    if (bad) {
        unlink(af->tmp);
        int rc = modes_fail(err, MODES_E_INPUT, "%s: write failed: %s", af->path, strerror(e));
        atomic_release(af);
        return rc;
    }
    atomic_release(af);
    return 0;
}

void atomic_abort(atomic_file *af) {
    if (!af->f) return;
    fclose(af->f);
    unlink(af->tmp);
    atomic_release(af);
}

int write_file_atomic(const char *path, const void *data, size_t len, modes_error *err) {
    atomic_file af;
    int rc = atomic_open(&af, path, err);
    if (rc) return rc;
    if (len && fwrite(data, 1, len, af.f) != len) {
        atomic_abort(&af);
        return modes_fail(err, MODES_E_INPUT, "%s: write failed", path);
    }
    return atomic_commit(&af, err);
}

int path_check_writable(const char *path, modes_error *err) {
    if (path_is_dir(path)) return modes_fail(err, MODES_E_INPUT, "%s: is a folder, not a file to write", path);
    atomic_file af;
    const int rc = atomic_open(&af, path, err);
    if (!rc) atomic_abort(&af);
    return rc;
}

char *path_join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    size_t o = a;
    if (a && dir[a - 1] != '/') p[o++] = '/';
    memcpy(p + o, name, b + 1);
    return p;
}

char *path_dirname(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return strdup(".");
    if (slash == path) return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

int path_tail(const char *path, int parents, int strip_ext, char *buf, size_t size) {
    size_t end = strlen(path);
    while (end > 1 && path[end - 1] == '/') end--; /* "models/x/" names x */
    size_t start = end;
    for (int k = 0; k <= parents && start > 0; k++) {
        if (k) start--; /* past the slash between two components */
        while (start > 0 && path[start - 1] != '/') start--;
    }
    size_t stop = end;
    if (strip_ext) {
        size_t dot = end;
        while (dot > start && path[dot - 1] != '.' && path[dot - 1] != '/') dot--;
        if (dot > start + 1 && path[dot - 1] == '.' && path[dot - 2] != '/') stop = dot - 1;
    }
    snprintf(buf, size, "%.*s", (int)(stop - start), path + start);
    return start > 0;
}

int path_is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}
