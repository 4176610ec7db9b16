/* Corrections to the Embedded Swift runtime that ships with the toolchain (Swift 6.3.1). Compiled into the product
 * build only (SLUICE_EMBEDDED): full Swift links the real runtime, which is correct.
 *
 * swift_bridgeObjectRetain(_n): the ABI says it returns its argument, and the compiler relies on that: it may keep
 * using the returned register as the retained value. The Embedded runtime's version (EmbeddedRuntime.swift) returns
 * the *untagged* pointer instead (object & 0x8fff_ffff_ffff_fff8). For a heap string that is the same value; for a
 * small (inline) String it clears the discriminator bits 0x60 of the top byte and the low three bits of the last
 * character, so "127.0.0.1" came back as a large string pointing nowhere and crashed the aarch64 product
 * (issue #13; tools/embedded-runtime-check reproduces it). Later upstream runtimes return `object`, as this does.
 *
 * These definitions are strong; the runtime's are weak, so the linker takes these. tools/build-product.sh refuses a
 * product in which they did not win. */
#include "CSupport.h"
#include <stdint.h>

extern void *swift_bridgeObjectRetain(void *object);
extern void swift_bridgeObjectRelease(void *object);

void *csupport_bridge_object_retain(void *object) { return swift_bridgeObjectRetain(object); }
void csupport_bridge_object_release(void *object) { swift_bridgeObjectRelease(object); }

#if defined(SLUICE_EMBEDDED) && UINTPTR_MAX == 0xffffffffffffffffu

/* the runtime's own entry points (C calling convention, as the Embedded runtime declares them with @c) */
extern void *swift_retain_n(void *object, uint32_t n);

/* HeapObject.bridgeObjectToPlainObjectMask on 64-bit targets */
#define SLUICE_BRIDGE_OBJECT_POINTER_MASK 0x8ffffffffffffff8ull

void *swift_bridgeObjectRetain_n(void *object, uint32_t n) {
    uintptr_t bits = (uintptr_t)object;
    swift_retain_n((void *)(bits & SLUICE_BRIDGE_OBJECT_POINTER_MASK), n);  /* ignores non-pointers itself */
    return object;
}

void *swift_bridgeObjectRetain(void *object) { return swift_bridgeObjectRetain_n(object, 1); }

int csupport_embedded_runtime_fixed(void) { return 1; }
#else
int csupport_embedded_runtime_fixed(void) { return 0; }
#endif
