#include "core/cores.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_CPUS 4096

typedef struct {
    long package, core;
} core_key;

/* Adds (package, core) to keys[0..*n) unless present. */
static void add_core(core_key *keys, int *n, long package, long core) {
    for (int i = 0; i < *n; i++)
        if (keys[i].package == package && keys[i].core == core) return;
    if (*n < MAX_CPUS) keys[(*n)++] = (core_key){package, core};
}

static int read_long(const char *path, long *out) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    const int ok = fscanf(f, "%ld", out) == 1;
    fclose(f);
    return ok ? 0 : -1;
}

static int from_sysfs(const char *sys_cpu, core_key *keys) {
    DIR *d = opendir(sys_cpu);
    if (!d) return 0;
    int n = 0;
    char path[1024];
    for (struct dirent *e; (e = readdir(d));) {
        const char *s = e->d_name;
        if (strncmp(s, "cpu", 3) || !s[3] || strspn(s + 3, "0123456789") != strlen(s + 3)) continue;
        long online = 1, package, core;
        snprintf(path, sizeof path, "%s/%s/online", sys_cpu, s); /* absent for a CPU always on */
        if (!read_long(path, &online) && !online) continue;
        snprintf(path, sizeof path, "%s/%s/topology/physical_package_id", sys_cpu, s);
        if (read_long(path, &package)) continue;
        snprintf(path, sizeof path, "%s/%s/topology/core_id", sys_cpu, s);
        if (read_long(path, &core)) continue;
        add_core(keys, &n, package, core);
    }
    closedir(d);
    return n;
}

/* Each processor block lists "physical id" then "core id"; a block ends at a blank line. */
static int from_cpuinfo(const char *cpuinfo, core_key *keys) {
    FILE *f = fopen(cpuinfo, "r");
    if (!f) return 0;
    int n = 0;
    long package = 0, v;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        const char *colon = strchr(line, ':');
        if (!colon) {
            package = 0;
            continue;
        }
        if (sscanf(colon + 1, "%ld", &v) != 1) continue;
        if (!strncmp(line, "physical id", 11)) package = v;
        else if (!strncmp(line, "core id", 7)) add_core(keys, &n, package, v);
    }
    fclose(f);
    return n;
}

int cores_physical_from(const char *sys_cpu, const char *cpuinfo) {
    core_key *keys = malloc(MAX_CPUS * sizeof *keys);
    if (!keys) return 0;
    int n = sys_cpu ? from_sysfs(sys_cpu, keys) : 0;
    if (!n && cpuinfo) n = from_cpuinfo(cpuinfo, keys);
    free(keys);
    return n;
}

int cores_physical(void) {
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    if (online < 1) online = 1;
    if (online > 1024) online = 1024;
    const int physical = cores_physical_from("/sys/devices/system/cpu", "/proc/cpuinfo");
    return physical >= 1 && physical < online ? physical : (int)online;
}
