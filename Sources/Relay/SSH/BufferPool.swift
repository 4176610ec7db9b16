import CLinux

/// Fixed-size relay buffers, allocated on first need up to `count` and recycled forever after, so relaying never
/// allocates per read. When it is empty, new streams are refused instead of growing memory. One reactor thread only.
public final class BufferPool {
    public let size: Int
    public let count: Int
    private var free: [UnsafeMutableRawPointer] = []
    private var created = 0

    public init(size: Int, count: Int) {
        self.size = size
        self.count = count
        free.reserveCapacity(count)
    }

    public var available: Int { free.count + count - created }

    public func acquire() -> UnsafeMutableRawPointer? {
        if let buffer = free.popLast() { return buffer }
        guard created < count, let buffer = malloc(size) else { return nil }
        created += 1
        return buffer
    }

    public func release(_ buffer: UnsafeMutableRawPointer) { free.append(buffer) }
}
