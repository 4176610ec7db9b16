import CLinux

/// A managed tunnel (tunnels-api.md §7): the outer session logs in to S; the inner session logs in to E over a
/// socketpair whose other end is pumped to a direct-tcpip channel of S (c-libraries.md §7). Both run on one reactor
/// thread. One side listens (a tcpip-forward whose inbound channels are handed over through socketpairs), the other
/// side is the exit (direct-tcpip opens, or SOCKS5 first):
/// local and dynamic listen on S and exit from E; remote listens on E and exits from S.
/// It reports `onUp` once both sessions are up and the forward is granted, `onDown` once; `close` ends both now.
public final class SSHChain {
    /// A plain kind without payloads.
    public enum Mode { case local, remote, dynamic }

    let reactor: Reactor
    let pool: BufferPool
    let outerTarget: SSHTarget
    let innerTarget: SSHTarget
    let mode: Mode
    let listenHost: String
    let listenPort: Int
    let exitHost: String
    let exitPort: Int
    let maxConnections: Int
    private var onUp: (() -> Void)?
    private var onDown: ((RelayFailure) -> Void)?
    public private(set) var outer: SSHSession?
    public private(set) var inner: SSHSession?
    private var ended = false
    /// Why S refused the direct-tcpip channel meant to carry the inner session's transport.
    private var carrierRefusal: StreamOpenOutcome?

    /// `listenHost:listenPort`: the tcpip-forward (on S for local/dynamic, on E for remote); `exitHost:exitPort`:
    /// where each stream goes from the exit side (unused for dynamic).
    public init(reactor: Reactor, pool: BufferPool, outer: SSHTarget, inner: SSHTarget, mode: Mode,
                listenHost: String, listenPort: Int, exitHost: String, exitPort: Int, maxConnections: Int,
                onUp: @escaping () -> Void, onDown: @escaping (RelayFailure) -> Void) {
        self.reactor = reactor
        self.pool = pool
        self.outerTarget = outer
        self.innerTarget = inner
        self.mode = mode
        self.listenHost = listenHost
        self.listenPort = listenPort
        self.exitHost = exitHost
        self.exitPort = exitPort
        self.maxConnections = maxConnections
        self.onUp = onUp
        self.onDown = onDown
    }

    public var hostKeyDetail: String? { outer?.hostKeyDetail ?? inner?.hostKeyDetail }
    /// The inner session's algorithms (the one that reaches the endpoint).
    public var negotiated: SSHAlgorithms.Negotiated? { inner?.negotiated }
    /// Counted on the inner session: its pipes are user streams only (the outer one also carries the inner transport).
    public var bytesIn: Int64 { inner?.bytesIn ?? 0 }
    public var bytesOut: Int64 { inner?.bytesOut ?? 0 }
    public var activeConnections: Int { inner?.activeConnections ?? 0 }
    /// The port granted for the forward (useful with port 0).
    public var grantedPort: Int { (mode == .remote ? inner?.grantedPort : outer?.grantedPort) ?? 0 }

    private func forward(listening: Bool) -> SSHForward {
        guard listening else { return .exit() }
        return .remote(listenHost: listenHost, listenPort: listenPort, connectTo: SocketAddress(ip: "127.0.0.1", port: 0)!)
    }

    public func start() {
        let session = SSHSession(reactor: reactor, pool: pool, target: outerTarget, forward: forward(listening: mode != .remote),
                                 maxConnections: maxConnections + 1, inbound: { [self] fd in self.inbound(fd) },
                                 onUp: { [self] in self.outerUp() },
                                 onDown: { [self] reason in self.fail(reason, inner: false) })
        outer = session
        session.start()
    }

    private func outerUp() {
        guard !ended, let outer else { return }
        var ends: [Int32] = [-1, -1]
        guard cl_socketpair(&ends) == 0 else {
            return fail(RelayFailure(.local, detail: "Cannot create a socketpair: " + FileIO.errorText(clinux_errno())),
                        inner: false)
        }
        let session = SSHSession(reactor: reactor, pool: pool, target: innerTarget, forward: forward(listening: mode == .remote),
                                 maxConnections: maxConnections, inbound: { [self] fd in self.inbound(fd) },
                                 onUp: { [self] in self.innerUp() },
                                 onDown: { [self] reason in self.fail(reason, inner: true) })
        inner = session
        session.carrier = outer     // its round trip is the outer session's: a socketpair has none
        // a name is resolved by the outer server, as `ssh -J` does
        let carried = outer.channels.carry(fd: ends[0], host: innerTarget.knownHostsName, port: Int(innerTarget.port)) { [self] why in
            self.carrierRefusal = why
        }
        guard carried else {
            CLinux.close(ends[1])
            return fail(RelayFailure(.local, detail: "Cannot open a channel through \(outerTarget.hostName) to "
                                     + innerTarget.hostName), inner: false)
        }
        session.start(connectedFd: ends[1])
    }

    /// A stream the listening side's server opened goes to the exit side: E for local and dynamic, S for remote.
    private func inbound(_ fd: Int32) -> Bool {
        guard !ended, let exit = mode == .remote ? outer : inner else {
            CLinux.close(fd)
            return false
        }
        return exit.channels.adopt(fd: fd, socks: mode == .dynamic, host: exitHost, port: exitPort)
    }

    private func innerUp() {
        guard !ended else { return }
        onUp?()
    }

    private func fail(_ failure: RelayFailure, inner fromInner: Bool) {
        guard !ended else { return }
        var why = failure
        // the carrier could not be opened: the inner session saw only EOF; say what S answered
        if fromInner, let refused = carrierRefusal, !(inner?.isReady ?? false) {
            why = RelayFailure(.carrierRefused, subject: "\(innerTarget.hostName) through \(outerTarget.hostName)",
                               detail: refused.description)
        }
        let report = onDown
        end()
        report?(why)
    }

    /// After a failure: both sessions close on the next turn of the reactor loop, since this runs inside one
    /// session's callback (it may be in the middle of a pump of the other). `close` (stop) is synchronous.
    private func end() {
        ended = true
        onUp = nil
        onDown = nil
        let outer = self.outer, inner = self.inner
        reactor.post {
            inner?.close()
            outer?.close()
        }
    }

    public func close() {
        ended = true
        onUp = nil
        onDown = nil
        inner?.close()
        outer?.close()
    }

    public func tick(nowMs: Int64) {
        outer?.tick(nowMs: nowMs)
        if !ended { inner?.tick(nowMs: nowMs) }
    }
}
