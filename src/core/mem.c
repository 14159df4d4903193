#define _DEFAULT_SOURCE /* madvise and MADV_HUGEPAGE on glibc, which the build's POSIX level hides */
#include "core/mem.h"

#include <stdlib.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

#define HUGE_PAGE ((size_t)2 << 20)

void *mem_alloc_streamed(size_t bytes) {
    if (bytes < HUGE_PAGE) return malloc(bytes ? bytes : 1);
    /* A whole number of huge pages, as aligned_alloc wants a multiple of the alignment: the tail
     * costs at most one huge page of memory, small beside the tensors that come here. */
    const size_t rounded = (bytes + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
    if (rounded < bytes) return NULL; /* overflow */
    void *p = aligned_alloc(HUGE_PAGE, rounded);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (p) (void)madvise(p, rounded, MADV_HUGEPAGE); /* a refusal leaves ordinary pages */
#endif
    return p;
}
