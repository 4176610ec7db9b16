/* The binary's own read-only segments (text, rodata) kept off huge pages (issue #17: idle RSS).
 *
 * Measured on Linux 6.18 (docs/benchmarks.md): the static product's text is one 5 MiB segment held by the page
 * cache in large folios; where read-only file THP is on they were mapped with PMDs (FilePmdMapped 4 MiB after
 * touching one byte per MiB). MADV_NOHUGEPAGE at start, then MADV_DONTNEED for the PMDs the loader's first faults had made already
 * (2 MiB of them in the x86_64 product), keeps them off (FilePmdMapped 0). It does not make the
 * text small: this kernel maps a large folio whole on any fault, so RSS stays about the text's size. Paging the
 * text out after start-up (MADV_RANDOM + MADV_PAGEOUT) gave 1.8 MiB while listening, but OpenSSL's set-up at the
 * first connect faulted 3.6 MiB back in, 4 KiB reads from the file without readahead: no gain for an idle tunnel
 * and a slower first connect on an SD card, so it is not done. Advice only: a kernel that lacks it ignores it. */
#define _GNU_SOURCE
#include <link.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>
#include "CSupport.h"

struct advice { int list[3]; int count; int failures; };

static int advise_readonly_segments(struct dl_phdr_info *info, size_t size, void *data) {
    (void)size;
    struct advice *advice = data;
    long size_of_page = sysconf(_SC_PAGESIZE);   /* 16 KiB on some aarch64 kernels */
    const uintptr_t page = size_of_page > 0 ? (uintptr_t)size_of_page : 4096;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *segment = &info->dlpi_phdr[i];
        if (segment->p_type != PT_LOAD || (segment->p_flags & PF_W)) continue;
        uintptr_t start = (info->dlpi_addr + segment->p_vaddr) & ~(page - 1);
        uintptr_t end = (info->dlpi_addr + segment->p_vaddr + segment->p_memsz + page - 1) & ~(page - 1);
        for (int a = 0; a < advice->count; a++) {
            if (madvise((void *)start, end - start, advice->list[a]) != 0) advice->failures++;
        }
    }
    return 1;   /* the first object is the executable itself */
}

static int advise(struct advice advice) {
    dl_iterate_phdr(advise_readonly_segments, &advice);
    return advice.failures == 0 ? 0 : -1;
}

int csupport_text_no_huge_pages(void) {
    /* the PMDs the loader's first faults made go too: dropped mappings of clean file pages refault from the page
     * cache, now with small pages */
    return advise((struct advice){ .list = { MADV_NOHUGEPAGE, MADV_DONTNEED }, .count = 2 });
}
