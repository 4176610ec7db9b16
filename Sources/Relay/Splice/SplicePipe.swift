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
public final class PipePool {
    private var free: [SplicePipe] = []
    private let keep: Int
    public let capacity: Int

    public init(capacity: Int = 65536, keep: Int = 16) {
        self.capacity = capacity
        self.keep = keep
    }

    public func take() -> SplicePipe? {
        if let pipe = free.popLast() { return pipe }
        return SplicePipe.make(capacity: capacity)
    }

    /// Only an empty pipe can be reused: bytes of a dead connection must never reach the next one.
    public func give(_ pipe: SplicePipe) {
        if pipe.buffered == 0 && free.count < keep {
            free.append(pipe)
        } else {
            pipe.close()
        }
    }

    public func drain() {
        for pipe in free { pipe.close() }
        free.removeAll()
    }

    public var pooled: Int { free.count }
}
