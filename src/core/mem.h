/* Memory for weights that every decode step streams from end to end (gigabytes, read once per
 * token). With 4 KiB pages such a read takes a TLB miss every 4 KiB; 2 MiB pages take one every
 * 2 MiB, which measured 5-10% more bytes per second per core on the machine bench/results
 * describes. Free what mem_alloc_streamed returns with free(). */
#ifndef MODES_CORE_MEM_H
#define MODES_CORE_MEM_H

#include <stddef.h>

/* bytes (0 is taken as 1) of uninitialised memory, or NULL when out of memory. From 2 MiB up it
 * is 2 MiB aligned and the kernel is asked to back it with huge pages (advice only: where the
 * system has none, the memory is ordinary). Ask before writing it: the advice applies to pages
 * faulted in afterwards. */
void *mem_alloc_streamed(size_t bytes);

#endif
