import CLinux

/// The kernel buffer between two sockets: bytes are spliced socket→pipe→socket and never enter user space.
/// `buffered` counts what sits in it, so the relay knows when a direction has drained.
public final class SplicePipe {
    public let readFd: Int32
    public let writeFd: Int32
    /// The most the relay lets into the pipe before it stops reading its source (backpressure).
    public let capacity: Int
    public var buffered = 0

    init(readFd: Int32, writeFd: Int32, capacity: Int) {
        self.readFd = readFd
        self.writeFd = writeFd
        self.capacity = capacity
    }

    /// nil when out of descriptors.
    public static func make(capacity: Int) -> SplicePipe? {
        var fds: [Int32] = [-1, -1]
        guard pipe2(&fds, O_CLOEXEC | O_NONBLOCK) == 0 else { return nil }
        // 64 KiB is already Linux's default; a larger request may fail under /proc/sys/fs/pipe-max-size: then the
        // default stands and the byte budget follows it
        var size = 65536
        if capacity != 65536, cl_set_pipe_size(fds[1], Int32(capacity)) > 0 { size = capacity }
        return SplicePipe(readFd: fds[0], writeFd: fds[1], capacity: size)
    }

    public func close() {
        _ = CLinux.close(readFd)
        _ = CLinux.close(writeFd)
    }
}

/// A few empty pipes kept for the next connection: two pipe2 calls and four closes per connection add up when
/// clients open many short connections. Loop thread only.
///
/// The first `large` pipes alive get `largeCapacity` (1 MiB, Linux's default pipe-max-size): a 64 KiB pipe holds
/// 16 socket buffers, so a bulk transfer moved about 32 KB per splice call; 1 MiB cut the splice calls per GB
/// about fourfold (docs/benchmarks.md). The rest keep the 64 KiB default, because an unprivileged user's pipes
/// together may hold only `pipe-user-pages-soft` (64 MiB) before Linux shrinks every new pipe to two pages.
public final class PipePool {
    private var free: [SplicePipe] = []
    private let keep: Int
    public let capacity: Int
    public let largeCapacity: Int
    public let large: Int
    /// Pipes open at once (in relays or pooled), two descriptors each: beyond it `take` answers nil and the
    /// connection is refused, like one that finds no relay buffer.
    public let limit: Int
    /// Large pipes open now (in relays or pooled).
    public private(set) var largeAlive = 0
    /// Every pipe open now (in relays or pooled).
    public private(set) var alive = 0
    /// Relays on one thread take and give; `/metrics` reads from another.
    private let lock = Lock()

    public init(capacity: Int = 65536, keep: Int = 16, largeCapacity: Int = 1 << 20, large: Int = 16,
                limit: Int = 8192) {
        self.capacity = capacity
        self.keep = keep
        self.largeCapacity = largeCapacity
        self.large = large
        self.limit = limit
    }

    public func take() -> SplicePipe? {
        lock.withLock {
            // a pooled large pipe first: the newest connection is the likeliest to be a bulk one
            if let index = free.lastIndex(where: { $0.capacity > capacity }) { return free.remove(at: index) }
            if largeAlive < large, largeCapacity > capacity, alive < limit,
               let pipe = SplicePipe.make(capacity: largeCapacity) {
                alive += 1
                // refused (pipe-max-size or the user's limit): an ordinary pipe after all
                if pipe.capacity > capacity { largeAlive += 1 }
                return pipe
            }
            if let pipe = free.popLast() { return pipe }
            guard alive < limit, let pipe = SplicePipe.make(capacity: capacity) else { return nil }
            alive += 1
            return pipe
        }
    }

    /// Only an empty pipe can be reused: bytes of a dead connection must never reach the next one.
    public func give(_ pipe: SplicePipe) {
        lock.withLock {
            if pipe.buffered == 0 && free.count < keep {
                free.append(pipe)
            } else {
                close(pipe)
            }
        }
    }

    public func drain() {
        lock.withLock {
            for pipe in free { close(pipe) }
            free.removeAll()
        }
    }

    private func close(_ pipe: SplicePipe) {
        if pipe.capacity > capacity { largeAlive -= 1 }
        alive -= 1
        pipe.close()
    }

    public var pooled: Int { lock.withLock { free.count } }
    /// Pipes in relays now (not pooled).
    public var inUse: Int { lock.withLock { alive - free.count } }
}
