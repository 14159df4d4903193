/* How many threads compute well: one per physical core. Hyper-threads share a core's vector units,
 * so a second thread per core adds contention rather than speed in the matmul-bound passes. */
#ifndef MODES_CORE_CORES_H
#define MODES_CORE_CORES_H

/* Physical cores of the online CPUs, from sys_cpu (sysfs, e.g. "/sys/devices/system/cpu": distinct
 * (physical_package_id, core_id) pairs) or, failing that, cpuinfo ("/proc/cpuinfo": distinct
 * ("physical id", "core id") pairs). 0 when neither tells; either path may be NULL. */
int cores_physical_from(const char *sys_cpu, const char *cpuinfo);
/* Physical cores of this machine, at most the online CPUs; the online CPUs when the topology is
 * unknown. At least 1. */
int cores_physical(void);

#endif
