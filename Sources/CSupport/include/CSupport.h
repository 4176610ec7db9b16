/* C definitions (not just declarations) that the libc or the Embedded Swift runtime in use may lack or get wrong. */
#ifndef SLUICE_CSUPPORT_H
#define SLUICE_CSUPPORT_H
int csupport_linked(void);
/* 1 in the product (Embedded) build, where EmbeddedRuntimeFixes.c replaces runtime entry points; 0 in full Swift */
int csupport_embedded_runtime_fixed(void);
/* The runtime's bridge-object retain and release, called through C so that a check can hold them to their contract
 * (declaring the runtime's own names to Swift would stop the Embedded compiler from emitting the runtime). */
void *csupport_bridge_object_retain(void *object);
void csupport_bridge_object_release(void *object);
/* The binary's read-only segments kept off huge pages (TextResidency.c). 0 on success, -1 when any advice failed. */
int csupport_text_no_huge_pages(void);
/* Freed heap memory up to 2 MiB per arena kept for reuse rather than trimmed and faulted back (HeapTrim.c). 0 on
   success, -1 where the C library has no such setting. */
int csupport_heap_keep_free(void);
#endif
