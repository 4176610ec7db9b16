import CLinux

/// One relayed connection: two connected sockets, and per direction source→pipe→sink by splice(2), driven by the
/// reactor (level-triggered). A direction reads only while its pipe has room, so a sink that stops reading pauses
/// its source; a socket with nothing to wait for is taken out of epoll, so a hung-up peer cannot make the loop spin.
/// EOF on a source becomes shutdown(SHUT_WR) on its sink once the pipe has drained; both directions done (or any
/// error) closes both sockets. Loop thread only.
public final class SpliceRelay {
    final class Direction {
        let source: Int32
        let sink: Int32
        let pipe: SplicePipe
        var eof = false
        var shut = false
        /// The pipe refused more although under `capacity` (it counts pages, not bytes): wait for the sink.
        var pipeFull = false
        var sinkBlocked = false
        var bytes: Int64 = 0

        init(source: Int32, sink: Int32, pipe: SplicePipe) {
            self.source = source
            self.sink = sink
            self.pipe = pipe
        }

        var wantsRead: Bool { !eof && !pipeFull && pipe.buffered < pipe.capacity }
        var wantsWrite: Bool { sinkBlocked && pipe.buffered > 0 }
    }

    private let reactor: Reactor
    private let pool: PipePool
    public let a: Int32
    public let b: Int32
    private let forward: Direction    // a → b
    private let backward: Direction   // b → a
    private var maskA: UInt32 = 0
    private var maskB: UInt32 = 0
    /// A pump stopped at its round limit with work left that no event may announce (a drained source at EOF).
    private var again = false
    public private(set) var closed = false
    /// Called once, on the loop thread, when the relay has closed both sockets.
    public var onClose: (() -> Void)?

    /// Bytes that went from `a` to `b`, and back.
    public var bytesAToB: Int64 { forward.bytes }
    public var bytesBToA: Int64 { backward.bytes }

    /// Takes ownership of both sockets (closed here on failure too). nil when no pipe could be made.
    public init?(reactor: Reactor, pool: PipePool, a: Int32, b: Int32) {
        guard let p1 = pool.take() else {
            _ = CLinux.close(a)
            _ = CLinux.close(b)
            return nil
        }
        guard let p2 = pool.take() else {
            pool.give(p1)
            _ = CLinux.close(a)
            _ = CLinux.close(b)
            return nil
        }
        self.reactor = reactor
        self.pool = pool
        self.a = a
        self.b = b
        forward = Direction(source: a, sink: b, pipe: p1)
        backward = Direction(source: b, sink: a, pipe: p2)
    }

    /// Bytes already waiting in either socket are moved at once; the rest follows the events.
    public func start() { step() }

    private func step() {
        guard !closed else { return }
        again = false
        guard pump(forward), pump(backward) else { return close() }
        if forward.shut && backward.shut { return close() }
        maskA = update(a, maskA, (forward.wantsRead ? CL_EPOLLIN : 0)
                                  | (backward.wantsWrite ? CL_EPOLLOUT : 0))
        maskB = update(b, maskB, (backward.wantsRead ? CL_EPOLLIN : 0)
                                  | (forward.wantsWrite ? CL_EPOLLOUT : 0))
        if again { reactor.post { [self] in self.step() } }
    }

    private func update(_ fd: Int32, _ old: UInt32, _ new: UInt32) -> UInt32 {
        if new == old { return old }
        if new == 0 {
            reactor.unwatch(fd)
        } else if !reactor.watch(fd, events: new, { [self] _ in self.step() }) {
            close()
        }
        return new
    }

    /// Moves what it can without blocking; false on a socket error (reset, broken pipe).
    private func pump(_ d: Direction) -> Bool {
        let flags = UInt32(SPLICE_F_MOVE | SPLICE_F_NONBLOCK)
        // bounded, so one fast connection cannot starve the others on the loop; level triggering brings it back
        for round in 0..<32 {
            var progress = false
            if d.wantsRead {
                let n = splice(d.source, nil, d.pipe.writeFd, nil, d.pipe.capacity - d.pipe.buffered,
                               flags | UInt32(SPLICE_F_MORE))
                if n > 0 {
                    d.pipe.buffered += n
                    progress = true
                } else if n == 0 {
                    d.eof = true
                    progress = true
                } else {
                    let code = clinux_errno()
                    if code == EAGAIN {
                        // with bytes still in the pipe the refusal may be the pipe's, not an empty socket
                        if d.pipe.buffered > 0 { d.pipeFull = true }
                    } else if code != EINTR {
                        return false
                    }
                }
            }
            if d.pipe.buffered > 0 {
                // MORE (cork) only while the source keeps the pipe full: a lone small write must leave at once
                let more = d.pipe.buffered >= d.pipe.capacity ? UInt32(SPLICE_F_MORE) : 0
                let m = splice(d.pipe.readFd, nil, d.sink, nil, d.pipe.buffered, flags | more)
                if m > 0 {
                    d.pipe.buffered -= m
                    d.bytes += Int64(m)
                    d.pipeFull = false
                    d.sinkBlocked = false
                    progress = true
                } else if m < 0 {
                    let code = clinux_errno()
                    if code == EAGAIN {
                        d.sinkBlocked = true
                    } else if code != EINTR {
                        return false
                    }
                }
            }
            if d.eof && d.pipe.buffered == 0 && !d.shut {
                TCPSocket.shutdownWrite(d.sink)
                d.shut = true
            }
            if !progress { break }
            if round == 31 { again = true }
        }
        return true
    }

    /// Idempotent.
    public func close() {
        guard !closed else { return }
        closed = true
        if maskA != 0 { reactor.unwatch(a) }
        if maskB != 0 { reactor.unwatch(b) }
        _ = CLinux.close(a)
        _ = CLinux.close(b)
        pool.give(forward.pipe)
        pool.give(backward.pipe)
        let done = onClose
        onClose = nil
        done?()
    }
}
