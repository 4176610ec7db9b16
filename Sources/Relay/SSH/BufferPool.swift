import CLinux

/// Fixed-size relay buffers, allocated on first need up to `count` and recycled forever after, so relaying never
/// allocates per read. When it is empty, new streams are refused instead of growing memory. One pool serves every
/// thread that relays SSH streams (the SSH driver's and the C2S relay's), so `size × count` is the whole bound
/// (issue #16: each built its own from `bufferCount`, twice what docs/operations.md states); taking and giving back
/// happen once per stream, under a lock. It carries the other half of the SSH streams' memory bound too: the budget
/// of wide receive windows, what libssh2 may park for streams whose readers stalled.
public final class BufferPool {
    public let size: Int
    public let count: Int
    public let windows: WindowBudget
    private let lock = Lock()
    private var free: [UnsafeMutableRawPointer] = []
    private var created = 0

    public init(size: Int, count: Int, windowBudget: Int = 0) {
        self.size = size
        self.count = count
        windows = WindowBudget(bytes: windowBudget)
        free.reserveCapacity(count)
    }

    public var available: Int { lock.withLock { free.count + count - created } }
    /// Buffers held by streams now.
    public var inUse: Int { lock.withLock { created - free.count } }

    public func acquire() -> UnsafeMutableRawPointer? {
        lock.withLock {
            if let buffer = free.popLast() { return buffer }
            guard created < count, let buffer = malloc(size) else { return nil }
            created += 1
            return buffer
        }
    }

    public func release(_ buffer: UnsafeMutableRawPointer) { lock.withLock { free.append(buffer) } }
}
