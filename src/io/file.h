/* Reading whole files, memory-mapping checkpoints, and writing outputs atomically (a temporary file
 * in the same folder, renamed over the target only when complete), so an interrupted run never
 * leaves a truncated file where a good one was. */
#ifndef MODES_IO_FILE_H
#define MODES_IO_FILE_H

#include <stddef.h>
#include <stdio.h>

#include "modes.h"

/* Reads path into a NUL-terminated heap buffer (free with free()). Files over max_bytes are refused
 * before reading. */
int read_file(const char *path, size_t max_bytes, char **data, size_t *len, modes_error *err);

typedef struct {
    const unsigned char *data;
    size_t len;
} mapped_file;
int mapped_file_open(const char *path, mapped_file *mf, modes_error *err);
void mapped_file_close(mapped_file *mf);

typedef struct {
    FILE *f;
    char *path, *tmp;
} atomic_file;
/* Opens a temporary sibling of path for writing. */
int atomic_open(atomic_file *af, const char *path, modes_error *err);
/* Flushes, syncs and renames over path; on any failure the temporary is removed. Always closes. */
int atomic_commit(atomic_file *af, modes_error *err);
/* Removes the temporary; path is untouched. */
void atomic_abort(atomic_file *af);
int write_file_atomic(const char *path, const void *data, size_t len, modes_error *err);
/* Whether an atomic write to path could succeed now: creates and removes the temporary the write
 * would use, so long work can refuse an output it could not save before it starts. */
int path_check_writable(const char *path, modes_error *err);

/* Joins a folder and a file name into a new heap string. */
char *path_join(const char *dir, const char *name);
/* The folder part of a path ("." when there is none), as a new heap string. */
char *path_dirname(const char *path);
/* The file name of a path with `parents` folder names before it ("runs/a/policy-88.json", 1: "a/policy-88"
 * with strip_ext), into buf; a trailing slash is ignored. Returns whether the path has more folders. */
int path_tail(const char *path, int parents, int strip_ext, char *buf, size_t size);
int path_is_dir(const char *path);

#endif
