import CLinux

/// One outgoing TCP connection made without blocking the reactor: `done` runs once, on the reactor, with the
/// connected socket (non-blocking, TCP_NODELAY) and `.opened`, or -1 and why it failed. `cancel` drops it silently.
public final class Connector {
    public static let timeoutMs: Int64 = 10_000

    let reactor: Reactor
    private var fd: Int32 = -1
    private var startedMs: Int64 = 0
    private var done: ((Int32, StreamOpenOutcome) -> Void)?

    public init(reactor: Reactor) { self.reactor = reactor }

    public func start(_ address: SocketAddress, done: @escaping (Int32, StreamOpenOutcome) -> Void) {
        self.done = done
        startedMs = Clock.monotonicMs()
        switch TCPSocket.connect(address) {
        case .failure(let error): return finish(-1, StreamOpenOutcome(connectErrno: error.code == 0 ? EIO : error.code))
        case .success(let started):
            fd = started.fd
            if !started.pending { return connected() }
        }
        if !reactor.watch(fd, events: CL_EPOLLOUT, { [self] _ in self.writable() }) {
            CLinux.close(fd)
            fd = -1
            finish(-1, .failed)
        }
    }

    /// Times the connect out; call from the reactor's tick.
    public func tick(nowMs: Int64) {
        guard fd >= 0, nowMs - startedMs > Connector.timeoutMs else { return }
        drop()
        finish(-1, .timedOut)
    }

    public func cancel() {
        done = nil
        drop()
    }

    private func writable() {
        let error = TCPSocket.connectResult(fd)
        if error != 0 {
            drop()
            return finish(-1, StreamOpenOutcome(connectErrno: error))
        }
        reactor.unwatch(fd)
        connected()
    }

    private func connected() {
        TCPSocket.setNoDelay(fd)
        let socket = fd
        fd = -1
        finish(socket, .opened)
    }

    private func drop() {
        guard fd >= 0 else { return }
        reactor.unwatch(fd)
        CLinux.close(fd)
        fd = -1
    }

    private func finish(_ socket: Int32, _ outcome: StreamOpenOutcome) {
        let report = done
        done = nil
        if let report { report(socket, outcome) } else if socket >= 0 { CLinux.close(socket) }
    }
}
