import CLinux
import CSSH2

/// Where and how to log in.
public struct SSHTarget {
    public var address: SocketAddress
    /// The inventory name, for reasons such as `Host key verification failed for <name>`.
    public var hostName: String
    public var user: String
    public var credentials: SSHCredentials
    public var hostKey: HostKeyPolicy
    /// 0 disables keepalives (and dead-peer detection).
    public var keepaliveIntervalMs: Int
    public var keepaliveCountMax: Int

    public init(address: SocketAddress, hostName: String, user: String, credentials: SSHCredentials,
                hostKey: HostKeyPolicy, keepaliveIntervalMs: Int, keepaliveCountMax: Int) {
        self.address = address
        self.hostName = hostName
        self.user = user
        self.credentials = credentials
        self.hostKey = hostKey
        self.keepaliveIntervalMs = keepaliveIntervalMs
        self.keepaliveCountMax = keepaliveCountMax
    }
}

/// What the session carries once it is up (tunnels-api.md §7, direct mode). A struct with a plain kind, not an
/// enum with payloads: the Embedded -Osize build took wrong cases of switches over payload enums here.
public struct SSHForward {
    /// `exit`: no listener; streams are handed in by another session (`adopt`), managed tunnels only.
    public enum Kind { case local, dynamic, remote, exit }

    public let kind: Kind
    /// local/dynamic: the listener here.
    public let listen: SocketAddress
    /// local: the direct-tcpip target; remote: the listen address on the server.
    public let host: String
    public let port: Int
    /// remote: where each inbound channel is connected to.
    public let connectTo: SocketAddress

    /// `ssh -L`: a listener here; each connection → direct-tcpip to `targetHost:targetPort`.
    public static func local(listen: SocketAddress, targetHost: String, targetPort: Int) -> SSHForward {
        SSHForward(kind: .local, listen: listen, host: targetHost, port: targetPort, connectTo: listen)
    }

    /// `ssh -D`: a SOCKS5 listener here; each CONNECT → direct-tcpip.
    public static func dynamic(listen: SocketAddress) -> SSHForward {
        SSHForward(kind: .dynamic, listen: listen, host: "", port: 0, connectTo: listen)
    }

    /// The exit side of a managed tunnel: ready once authenticated; streams arrive through `SSHSession.adopt`.
    public static func exit() -> SSHForward {
        let none = SocketAddress(ip: "127.0.0.1", port: 0)!
        return SSHForward(kind: .exit, listen: none, host: "", port: 0, connectTo: none)
    }

    /// `ssh -R`: tcpip-forward on the server; each inbound channel → a TCP connection to `connectTo`.
    public static func remote(listenHost: String, listenPort: Int, connectTo: SocketAddress) -> SSHForward {
        SSHForward(kind: .remote, listen: connectTo, host: listenHost, port: listenPort, connectTo: connectTo)
    }
}

/// One non-blocking libssh2 session and its forwarder, owned by one reactor thread: every method runs there.
/// It reports `onUp` once the listener is bound (or the remote forward granted) and `onDown` once when it fails or
/// dies; `close` ends it without reporting.
public final class SSHSession {
    static let connectTimeoutMs: Int64 = 15_000
    /// The attempt's own bound is the tunnel manager's 60 s watchdog (tunnels-api.md §8): this one only backs
    /// it (and bounds C2S sessions), so it must not cut an attempt shorter (issue #15: it failed after 45 s).
    static let setupTimeoutMs: Int64 = 60_000

    enum Phase { case idle, connecting, handshake, auth, forwarding, ready, closed }

    let reactor: Reactor
    let pool: BufferPool
    let target: SSHTarget
    let forward: SSHForward
    let maxConnections: Int
    private var onUp: (() -> Void)?
    private var onDown: ((RelayFailure) -> Void)?

    var phase = Phase.idle
    var io: SSHIO?
    var session: OpaquePointer?
    private var auth: SSHAuth?
    private var startedMs: Int64 = 0
    private var watchedMask: UInt32 = 0
    /// Keepalive replies counted by libssh2 (patches/libssh2/0003): each is a real answer from the peer.
    private var lastReplies: UInt = 0
    var listenerFd: Int32 = -1
    /// Off epoll after EMFILE until the next tick.
    var listenerPaused = false
    var remoteListener: OpaquePointer?
    var pipes: [ChannelPipe] = []
    var opening: [ChannelPipe] = []
    var zombies: [OpaquePointer] = []
    var fatal: RelayFailure?
    /// The negotiated algorithms, known once the handshake is done (logged by the driver when the session is up,
    /// counted by cipher for /metrics while it is).
    public private(set) var negotiated: SSHAlgorithms.Negotiated?
    /// The server's host key as `ssh-keygen -l` names it (`SHA256:` + unpadded base64), once the handshake is done.
    public private(set) var hostKeySHA256: [UInt8]?
    /// Why the host key was refused (the reason itself is fixed text); for the log.
    public private(set) var hostKeyDetail: String?
    /// Bytes that came out of channels (toward the connecting side) and went into them.
    public internal(set) var bytesIn: Int64 = 0
    public internal(set) var bytesOut: Int64 = 0
    public var activeConnections: Int { pipes.count }
    /// The port the server granted for a remote forward (useful with port 0).
    public private(set) var grantedPort: Int = 0
    /// Managed tunnels: a remote forward's inbound channels go to the other session instead of a TCP connect.
    /// Given one end of a socketpair (the channel is pumped to the other end); false: refused, the end is closed.
    public var inboundSink: ((Int32) -> Bool)?
    public var isReady: Bool { phase == .ready }
    /// Why the direct-tcpip channel carrying another session's transport was refused.
    public internal(set) var carrierFailure: String?

    public init(reactor: Reactor, pool: BufferPool, target: SSHTarget, forward: SSHForward, maxConnections: Int,
                onUp: @escaping () -> Void, onDown: @escaping (RelayFailure) -> Void) {
        self.reactor = reactor
        self.pool = pool
        self.target = target
        self.forward = forward
        self.maxConnections = maxConnections
        self.onUp = onUp
        self.onDown = onDown
    }

    public func start() {
        startedMs = Clock.monotonicMs()
        let fd: Int32
        switch TCPSocket.connect(target.address) {
        case .failure(let error): return finish(.connect(target.address, errno: error.code))
        case .success(let started): fd = started.fd
        }
        TCPSocket.setNoDelay(fd)
        io = SSHIO(fd: fd)
        phase = .connecting
        updateWatch()
    }

    /// Starts on a connected stream (one end of a socketpair carried by another session's channel, c-libraries.md
    /// §7) instead of a TCP connection of its own. The session owns `fd` from here.
    public func start(connectedFd fd: Int32) {
        startedMs = Clock.monotonicMs()
        io = SSHIO(fd: fd)
        beginHandshake()
        if phase != .closed { settle() }
    }

    /// Ends everything now (listeners, forwards, channels, the session) without reporting.
    public func close() {
        onUp = nil
        onDown = nil
        cancelRemoteForward()   // the server's listener is gone before the stop is reported (SSHForwardCancel)
        teardown()
    }

    func finish(_ failure: RelayFailure) {
        guard phase != .closed else { return }
        let report = onDown
        onUp = nil
        onDown = nil
        teardown()
        report?(failure)
    }

    // MARK: setup

    private func onSocket(_ events: UInt32) {
        guard let io else { return }
        if events & (CL_EPOLLIN | CL_EPOLLHUP | CL_EPOLLERR | CL_EPOLLRDHUP) != 0 { io.drained = false }
        switch phase {
        case .connecting:
            let error = TCPSocket.connectResult(io.fd)
            if error != 0 { return finish(.connect(target.address, errno: error)) }
            beginHandshake()
        case .handshake, .auth, .forwarding:
            guard io.flush() else { return finish(peerGoneReason()) }
            advanceSetup()
        case .ready:
            guard io.flush() else { return finish(peerGoneReason()) }
            let readable = events & CL_EPOLLIN != 0
            let hangup = events & (CL_EPOLLRDHUP | CL_EPOLLHUP | CL_EPOLLERR) != 0
            if hangup && !readable {
                // nothing left to read, so the hang-up is all there is to learn
                let error = TCPSocket.connectResult(io.fd)
                return finish(error == 0 ? RelayFailure(.peerClosed) : .connection(errno: error))
            }
            pumpAll()
        case .idle, .closed:
            break
        }
    }

    private func beginHandshake() {
        guard let io else { return }
        guard let s = cssh2_session_init(Unmanaged.passUnretained(io).toOpaque()) else {
            return finish(RelayFailure(.local, detail: "Cannot create an SSH session"))
        }
        session = s
        cssh2_set_io(s, SSHIO.sendCallback, SSHIO.recvCallback)
        libssh2_session_set_blocking(s, 0)
        let preference = target.hostKey.methodPreference
        if libssh2_session_method_pref(s, LIBSSH2_METHOD_HOSTKEY, preference) != 0 {
            return finish(RelayFailure(.hostKeyAlgorithm, subject: preference))
        }
        // by CPU (SSHAlgorithms); a list the flavour cannot use at all leaves libssh2's own order
        _ = libssh2_session_method_pref(s, LIBSSH2_METHOD_CRYPT_CS, SSHAlgorithms.cipherPreference)
        _ = libssh2_session_method_pref(s, LIBSSH2_METHOD_CRYPT_SC, SSHAlgorithms.cipherPreference)
        phase = .handshake
        advanceSetup()
    }

    private func advanceSetup() {
        guard let s = session, let io else { return }
        if phase == .handshake {
            let rc = libssh2_session_handshake(s, io.fd)
            if rc == LIBSSH2_ERROR_EAGAIN { return settle() }
            if rc != 0 {
                return finish(io.sawEOF || io.error != 0 ? peerGoneReason()
                              : RelayFailure(.handshakeFailed, detail: SSHSession.lastError(s)))
            }
            negotiated = SSHAlgorithms.negotiated(s)
            if let hash = libssh2_hostkey_hash(s, LIBSSH2_HOSTKEY_HASH_SHA256) {
                hostKeySHA256 = Array(UnsafeRawBufferPointer(start: hash, count: 32).bindMemory(to: UInt8.self))
            }
            if let why = HostKeyCheck.verify(s, policy: target.hostKey, ip: target.address.ipString,
                                             port: Int(target.address.port)) {
                hostKeyDetail = why
                return finish(RelayFailure(.hostKeyMismatch, subject: target.hostName))
            }
            auth = SSHAuth(user: target.user, credentials: target.credentials)
            phase = .auth
        }
        if phase == .auth, let auth {
            guard let outcome = auth.step(s, io: io) else { return settle() }
            switch outcome {
            case .failed(let why): return finish(io.sawEOF || io.error != 0 ? peerGoneReason() : why)
            case .authenticated:
                self.auth = nil
                beginForwarding()
                if phase != .forwarding { return }
            }
        }
        if phase == .forwarding && forward.kind == .remote {
            let host = forward.host, port = forward.port
            var bound: Int32 = 0
            if let listener = libssh2_channel_forward_listen_ex(s, host, Int32(port), &bound, 64) {
                remoteListener = listener
                grantedPort = port == 0 ? Int(bound) : port
                return becomeReady()
            }
            if libssh2_session_last_errno(s) == LIBSSH2_ERROR_EAGAIN { return settle() }
            if io.sawEOF || io.error != 0 { return finish(peerGoneReason()) }
            return finish(RelayFailure(.forwardRefused, subject: String(port)))
        }
    }

    private func beginForwarding() {
        if forward.kind == .remote {
            phase = .forwarding
            return
        }
        if forward.kind == .exit { return becomeReady() }
        let listen = forward.listen
        let fd: Int32
        switch TCPSocket.listen(listen) {
        case .failure(let error):
            return finish(RelayFailure(.listenFailed, subject: listen.description, detail: FileIO.errorText(error.code)))
        case .success(let listener): fd = listener
        }
        listenerFd = fd
        _ = reactor.watch(fd, events: CL_EPOLLIN) { [self] _ in self.acceptLocal() }
        becomeReady()
    }

    private func becomeReady() {
        guard let s = session, let io else { return }
        phase = .ready
        // only now: a want_reply keepalive answer would be taken as the reply to a later tcpip-forward (§5)
        if target.keepaliveIntervalMs > 0 {
            libssh2_keepalive_config(s, 1, UInt32(keepaliveSeconds))
        }
        io.touch()
        let algorithms = SSHAlgorithms.negotiated(s)
        negotiated = algorithms
        SessionCiphers.shared.add(algorithms.cipher, 1)
        onUp?()
        pumpAll()
    }

    private var keepaliveSeconds: Int { max(1, (target.keepaliveIntervalMs + 999) / 1000) }

    // MARK: steady state

    /// Driven by the reactor tick: setup deadlines, keepalives, dead-peer detection.
    public func tick(nowMs: Int64) {
        // belt and braces: whatever arrived is looked at at least once a tick
        io?.drained = false
        switch phase {
        case .connecting:
            if nowMs - startedMs > SSHSession.connectTimeoutMs {
                finish(RelayFailure(.connectTimedOut, subject: target.address.description))
            }
        case .handshake, .auth, .forwarding:
            if nowMs - startedMs > SSHSession.setupTimeoutMs { finish(RelayFailure(.setupTimedOut)) }
        case .ready:
            guard let s = session, let io else { return }
            let generation = io.rxGeneration
            serviceTransport()
            if let why = transportFailure() { return finish(why) }
            if target.keepaliveIntervalMs > 0 {
                // only what libssh2 has read counts as life: a reply to our keepalive, or any other packet
                let replies = UInt(libssh2_keepalive_replies(s))
                if replies != lastReplies {
                    lastReplies = replies
                    io.touch()
                }
                let limit = Int64(keepaliveSeconds) * 1000 * Int64(max(0, target.keepaliveCountMax) + 1)
                if nowMs - io.lastRxMs > limit { return finish(RelayFailure(.keepaliveTimeout)) }
                var next: Int32 = 0
                _ = libssh2_keepalive_send(s, &next)
            }
            if listenerPaused && listenerFd >= 0 {
                listenerPaused = false
                _ = reactor.watch(listenerFd, events: CL_EPOLLIN) { [self] _ in self.acceptLocal() }
            }
            if remoteListener != nil || !zombies.isEmpty || io.rxGeneration != generation { pumpAll() } else { settle() }
        case .idle, .closed:
            break
        }
    }

    var outputBlocked: Bool { (io?.pending ?? 0) > SSHIO.highWater }

    /// Progresses every stream until no new bytes arrive: libssh2 files what one channel's read pulled in under
    /// other channels, where epoll cannot see it.
    func pumpAll() {
        guard phase == .ready, let io else { return }
        var rounds = 0
        while true {
            let generation = io.rxGeneration
            acceptRemote()
            processOpens()
            for pipe in pipes { pipe.progress() }
            if !zombies.isEmpty { zombies = zombies.filter { libssh2_channel_free($0) == LIBSSH2_ERROR_EAGAIN } }
            serviceTransport()
            if let why = transportFailure() { return finish(why) }
            rounds += 1
            if io.rxGeneration == generation || rounds >= 64 { break }
        }
        settle()
    }

    func pipeEvent(_ pipe: ChannelPipe, _ events: UInt32) {
        guard phase == .ready, let io else { return }
        let generation = io.rxGeneration
        pipe.handle(events)
        if let why = transportFailure() { return finish(why) }
        if io.rxGeneration != generation || !opening.isEmpty { pumpAll() } else { settle() }
    }

    /// Reads whatever the transport holds that no channel call took in: with no channel open (or none reading) the
    /// server's `keepalive@openssh.com` probes must still be answered, the replies to our keepalives consumed and a
    /// disconnect seen at once. Costs nothing after an EAGAIN until epoll reports input (`SSHIO.drained`). What it
    /// reads for a channel that is not reading is bounded by that channel's window.
    func serviceTransport() {
        guard let s = session, let io, !io.drained, fatal == nil else { return }
        let rc = libssh2_session_process(s)
        if rc < 0 && fatal == nil { fatal = peerGoneReason() }
    }

    /// Flushes and sets the session socket's interest: input always once ready (the transport is read even with no
    /// channel open: `serviceTransport`), output while bytes are queued.
    func settle() {
        guard let io, phase != .closed else { return }
        guard io.flush() else { return finish(peerGoneReason()) }
        var mask: UInt32
        switch phase {
        case .connecting: mask = CL_EPOLLOUT
        case .ready: mask = CL_EPOLLIN | CL_EPOLLRDHUP
        default: mask = CL_EPOLLIN
        }
        if io.pending > 0 { mask |= CL_EPOLLOUT }
        guard mask != watchedMask else { return }
        watchedMask = mask
        _ = reactor.watch(io.fd, events: mask) { [self] events in self.onSocket(events) }
    }

    private func updateWatch() { settle() }

    // MARK: failure text

    func transportFailure() -> RelayFailure? {
        if let fatal { return fatal }
        guard let io else { return nil }
        return io.sawEOF || io.error != 0 ? peerGoneReason() : nil
    }

    func peerGoneReason() -> RelayFailure {
        guard let io else { return RelayFailure(.sessionError) }
        if io.error != 0 { return .connection(errno: io.error) }
        if io.sawEOF { return RelayFailure(.peerClosed) }
        if let s = session {
            if libssh2_session_last_errno(s) == LIBSSH2_ERROR_SOCKET_DISCONNECT {
                return RelayFailure(.peerClosed, detail: SSHSession.lastError(s))
            }
            return RelayFailure(.sessionError, detail: SSHSession.lastError(s))
        }
        return RelayFailure(.sessionError)
    }

    static func lastError(_ session: OpaquePointer) -> String {
        guard let text = cssh2_last_error(session) else { return "unknown error" }
        let message = String(cString: text)
        return message.isEmpty ? "unknown error (\(libssh2_session_last_errno(session)))" : message
    }

    // MARK: teardown

    private func teardown() {
        guard phase != .closed else { return }
        if phase == .ready, let cipher = negotiated?.cipher { SessionCiphers.shared.add(cipher, -1) }
        phase = .closed
        for pipe in pipes { pipe.closeLocal() }
        pipes = []
        opening = []
        if listenerFd >= 0 {
            reactor.unwatch(listenerFd)
            CLinux.close(listenerFd)
            listenerFd = -1
        }
        if let io { reactor.unwatch(io.fd) }
        if let s = session, let io {
            if io.error == 0 && !io.sawEOF {
                _ = cssh2_disconnect(s, "tunnel stopped")
                _ = io.flush()
            }
            // from here libssh2's closing calls see EOF and a sink, so nothing waits for the peer
            io.closing = true
            var tries = 0
            while cssh2_session_free(s) == LIBSSH2_ERROR_EAGAIN && tries < 100 { tries += 1 }
        }
        session = nil
        remoteListener = nil
        zombies = []
        if let io { CLinux.close(io.fd) }
        io = nil
    }
}
