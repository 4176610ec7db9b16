import CLinux

/// Fixed-size relay buffers, allocated on first need up to `count` and recycled forever after, so relaying never
/// allocates per read. When it is empty, new streams are refused instead of growing memory. One pool serves every
/// thread that relays SSH streams (the SSH driver's and the C2S relay's), so `size × count` is the whole bound
/// (issue #16: each built its own from `bufferCount`, twice what docs/operations.md states); taking and giving back
/// happen once per stream, under a lock. It carries the other half of the SSH streams' memory bound too: the budget
/// of receive windows, what libssh2 may park for streams whose readers stalled: `windows` (wide) and `standard`.
/// Every one of the three has a per-key share (`PoolShare`, issue #24): a bounded key holds at most a quarter of the
/// buffers (a stream beyond it is refused at once) and of each window budget (beyond it: a smaller window).
public final class BufferPool {
    public let size: Int
    public let count: Int
    public let windows: WindowBudget
    /// libssh2's 2 MiB window for streams without a wide one: `count / 32` of them by default (32 for the default
    /// 1024 buffers, 64 MiB parked at most); other streams open with `WindowBudget.small`.
    public let standard: WindowBudget
    private let lock = Lock()
    private var free: [UnsafeMutableRawPointer] = []
    private var created = 0
    /// Buffers held by streams, per share key.
    private var shares: ShareCount

    public init(size: Int, count: Int, windowBudget: Int = 0, standardWindows: Int? = nil) {
        self.size = size
        self.count = count
        windows = WindowBudget(bytes: windowBudget)
        standard = WindowBudget(slots: standardWindows ?? count / 32, window: WindowBudget.standard)
        shares = ShareCount(total: count)
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

    /// A bounded key's most buffers.
    public var perKey: Int { shares.perKey }
    /// Buffers held per key now (`/metrics`).
    public var byKey: [(String, Int)] { lock.withLock { shares.rows } }
    public func held(by key: String) -> Int { lock.withLock { shares.held(by: key) } }

    /// One stream's two buffers, charged to `share`; nil when the pool has not two left or the share would pass its
    /// quarter (issue #24 finding 3: one user's streams must leave buffers to the others).
    public func acquirePair(for share: PoolShare) -> (UnsafeMutableRawPointer, UnsafeMutableRawPointer)? {
        lock.withLock {
            guard free.count + count - created >= 2, shares.take(2, for: share) else { return nil }
            var taken: [UnsafeMutableRawPointer] = []
            while taken.count < 2 {
                if let buffer = free.popLast() {
                    taken.append(buffer)
                } else if let buffer = malloc(size) {
                    created += 1
                    taken.append(buffer)
                } else {
                    break
                }
            }
            guard taken.count == 2 else {
                free += taken
                shares.give(2, for: share)
                return nil
            }
            return (taken[0], taken[1])
        }
    }

    public func releasePair(_ up: UnsafeMutableRawPointer, _ down: UnsafeMutableRawPointer, for share: PoolShare) {
        lock.withLock {
            free.append(up)
            free.append(down)
            shares.give(2, for: share)
        }
    }
}
