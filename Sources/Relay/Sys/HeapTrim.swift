import CSupport

/// Freed heap kept for reuse (issue #17; Sources/CSupport/HeapTrim.c): the relay's packet allocations no longer
/// fault their pages back in after every trim.
public enum HeapTrim {
    public static func keepFreedMemory() { _ = csupport_heap_keep_free() }
}
