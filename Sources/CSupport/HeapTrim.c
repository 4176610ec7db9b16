/* The allocator keeps freed memory of up to 2 MiB per arena instead of returning it at once (issue #17).
 *
 * libssh2 allocates every incoming packet (about 32 KiB) and frees it once the channel read took its data, so a
 * download churns a few such blocks at the top of the relay thread's arena. glibc trims an arena whose free top
 * passes 128 KiB (M_TRIM_THRESHOLD), and the next packets fault the same pages back in, zeroed: `perf record` of
 * a 1 GiB S2S download showed about 9 % of the relay's samples in page faults, page clearing and unmapping.
 * Setting the threshold also fixes glibc's mmap threshold at its 128 KiB default (no dynamic growth). */
#include "CSupport.h"

#if defined(__GLIBC__)
#include <malloc.h>

int csupport_heap_keep_free(void) {
    return mallopt(M_TRIM_THRESHOLD, 2 * 1024 * 1024) == 1 ? 0 : -1;
}
#else
int csupport_heap_keep_free(void) { return -1; }
#endif
