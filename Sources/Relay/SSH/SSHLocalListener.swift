import CLinux

/// The listening socket of a local or dynamic forward (`ssh -L`, `ssh -D`): each connection it accepts becomes a
/// stream of the session's channels, a direct-tcpip open to the fixed target or a SOCKS5 handshake first. Out of
/// descriptors it stops watching (a level-triggered listener would fire again at once) until `resume`.
final class SSHLocalListener {
    private let reactor: Reactor
    private let forward: SSHForward
    private let fd: Int32
    private var paused = false
    private var onReadable: (() -> Void)?

    /// Listens on `forward.listen`; `onReadable` runs when connections wait (the session accepts them, then pumps).
    static func listen(_ forward: SSHForward, reactor: Reactor,
                       onReadable: @escaping () -> Void) -> Result<SSHLocalListener, SocketError> {
        switch TCPSocket.listen(forward.listen) {
        case .failure(let error): return .failure(error)
        case .success(let fd):
            let listener = SSHLocalListener(reactor: reactor, forward: forward, fd: fd, onReadable: onReadable)
            listener.watch()
            return .success(listener)
        }
    }

    private init(reactor: Reactor, forward: SSHForward, fd: Int32, onReadable: @escaping () -> Void) {
        self.reactor = reactor
        self.forward = forward
        self.fd = fd
        self.onReadable = onReadable
    }

    private func watch() { _ = reactor.watch(fd, events: CL_EPOLLIN) { [self] _ in self.onReadable?() } }

    func accept(into channels: SSHChannels) {
        while true {
            let accepted = TCPSocket.accept(fd)
            guard case .socket(let stream) = accepted else {
                if case .exhausted = accepted {
                    reactor.unwatch(fd)
                    paused = true
                }
                return
            }
            TCPSocket.setNoDelay(stream)
            // refused (over a limit): counted; a SOCKS client still has its greeting answered, then gets the reply
            guard let pipe = channels.accept(fd: stream, socks: forward.kind != .local) else { continue }
            if forward.kind == .local {
                pipe.targetHost = forward.host
                pipe.targetPort = forward.port
                channels.enqueueOpen(pipe)
            }
        }
    }

    /// Watches again after running out of descriptors (the session's tick).
    func resume() {
        guard paused else { return }
        paused = false
        watch()
    }

    func close() {
        reactor.unwatch(fd)
        CLinux.close(fd)
        onReadable = nil
    }
}
