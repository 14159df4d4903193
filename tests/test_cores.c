/* Physical core counting (src/core/cores.c) on made-up sysfs trees and cpuinfo files: hyper-thread
 * siblings count once, an offline CPU not at all, and cpuinfo answers when sysfs cannot. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "core/cores.h"
#include "core/pool.h"

static char root[] = "/tmp/modes-cores-XXXXXX";

static void put(const char *rel, const char *text) {
    char path[512], dir[512];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    for (char *c = path + strlen(root) + 1; *c; c++) /* the folders on the way */
        if (*c == '/') {
            snprintf(dir, sizeof dir, "%.*s", (int)(c - path), path);
            mkdir(dir, 0700);
        }
    FILE *f = fopen(path, "w");
    CHECKF(f != NULL, "cannot write %s", path);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* cpuN with its package and core; online < 0: no "online" file (the boot CPU has none). */
static void cpu(const char *tree, int n, int package, int core, int online) {
    char rel[256], v[32];
    snprintf(rel, sizeof rel, "%s/cpu%d/topology/physical_package_id", tree, n);
    snprintf(v, sizeof v, "%d\n", package);
    put(rel, v);
    snprintf(rel, sizeof rel, "%s/cpu%d/topology/core_id", tree, n);
    snprintf(v, sizeof v, "%d\n", core);
    put(rel, v);
    if (online >= 0) {
        snprintf(rel, sizeof rel, "%s/cpu%d/online", tree, n);
        put(rel, online ? "1\n" : "0\n");
    }
}

static const char *at(const char *rel) {
    static char buf[4][512];
    static int slot;
    char *b = buf[slot++ & 3];
    snprintf(b, sizeof buf[0], "%s/%s", root, rel);
    return b;
}

int main(void) {
    if (!mkdtemp(root)) return perror("mkdtemp"), 1;
    /* two packages of two cores with two threads each; core ids repeat across packages */
    for (int n = 0; n < 8; n++) cpu("smt", n, n / 4, (n % 4) / 2, n ? 1 : -1);
    put("smt/cpufreq/policy0", "not a cpu\n");
    CHECK(cores_physical_from(at("smt"), NULL) == 4);
    /* an offline CPU does not count, even as the only thread of its core */
    cpu("off", 0, 0, 0, -1);
    cpu("off", 1, 0, 1, 1);
    cpu("off", 2, 0, 2, 0);
    CHECK(cores_physical_from(at("off"), NULL) == 2);
    /* no topology in sysfs (some containers): cpuinfo's physical id / core id pairs */
    put("bare/cpu0/online", "1\n");
    put("cpuinfo", "processor\t: 0\nphysical id\t: 0\ncore id\t\t: 0\n\nprocessor\t: 1\nphysical id\t: 0\n"
                   "core id\t\t: 0\n\nprocessor\t: 2\nphysical id\t: 1\ncore id\t\t: 0\n\nprocessor\t: 3\n"
                   "physical id\t: 1\ncore id\t\t: 3\n\n");
    CHECK(cores_physical_from(at("bare"), at("cpuinfo")) == 3);
    CHECK(cores_physical_from(at("missing"), at("cpuinfo")) == 3);
    CHECK(cores_physical_from(NULL, at("cpuinfo")) == 3);
    /* neither tells (a cpuinfo without core ids, as on some ARM kernels) */
    put("arm", "processor\t: 0\nBogoMIPS\t: 50.00\n\nprocessor\t: 1\nBogoMIPS\t: 50.00\n");
    CHECK(cores_physical_from(at("bare"), at("arm")) == 0);
    CHECK(cores_physical_from(NULL, NULL) == 0);

    /* this machine: between 1 and the online CPUs, and what a default pool is sized to */
    const int here = cores_physical();
    const long online = sysconf(_SC_NPROCESSORS_ONLN);
    CHECKF(here >= 1 && here <= (online > 0 ? online : 1), "cores_physical() = %d of %ld online", here, online);
    modes_pool *p = pool_new(0);
    CHECKF(p && pool_size(p) <= here, "pool_new(0) has %d threads for %d cores", p ? pool_size(p) : 0, here);
    pool_free(p);

    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    CHECK(system(cmd) == 0);
    return check_done();
}
