import CLinux
import CSSH2

/// One non-blocking libssh2 session, owned by one reactor thread: every method runs there. This type is the
/// session's life (connect → handshake → auth → forwarding → ready → closed), its transport socket, deadlines and
/// keepalives. What it carries is split as swift-nio-ssh splits it: `channels` multiplexes the streams (and is the
/// exit side of every role); the forwarding role is a `SSHLocalListener` (local, dynamic), a `SSHRemoteForward`
/// (remote; its inbound streams go to `inbound` when one is given at creation), or none (exit: streams come from
/// its owner through `channels`). It reports `onUp` once the listener is bound (or the remote forward granted)
/// and `onDown` once when it fails or dies; `close` ends it without reporting.
public final class SSHSession {
    static let connectTimeoutMs: Int64 = 15_000
    /// The attempt's own bound is the tunnel manager's 60 s watchdog (tunnels-api.md §8): this one only backs
    /// it (and bounds C2S sessions), so it must not cut an attempt shorter (issue #15: it failed after 45 s).
    static let setupTimeoutMs: Int64 = 60_000

    enum Phase { case idle, connecting, handshake, auth, forwarding, ready, closed }

    let reactor: Reactor
    let target: SSHTarget
    let forward: SSHForward
    private var onUp: (() -> Void)?
    private var onDown: ((RelayFailure) -> Void)?

    var phase = Phase.idle
    var io: SSHIO?
    var session: OpaquePointer?
    private var auth: SSHAuth?
    private var dialer: Dialer?
    private var startedMs: Int64 = 0
    private var watchedMask: UInt32 = 0
    private var keepalive: SSHKeepalive
    private var listener: SSHLocalListener?
    private var remote: SSHRemoteForward?
    public let channels: SSHChannels
    var fatal: RelayFailure?
    /// The negotiated algorithms, known once the handshake is done (logged by the driver when the session is up,
    /// counted by cipher for /metrics while it is).
    public private(set) var negotiated: SSHAlgorithms.Negotiated?
    /// The server's host key as `ssh-keygen -l` names it (`SHA256:` + unpadded base64), once the handshake is done.
    public private(set) var hostKeySHA256: [UInt8]?
    /// Why the host key was refused (the reason itself is fixed text); for the log.
    public private(set) var hostKeyDetail: String?
    /// Bytes that came out of channels (toward the connecting side) and went into them.
    public var bytesIn: Int64 { channels.bytesIn }
    public var bytesOut: Int64 { channels.bytesOut }
    public var activeConnections: Int { channels.count }
    /// The port the server granted for a remote forward (useful with port 0).
    public var grantedPort: Int { remote?.grantedPort ?? 0 }
    public var isReady: Bool { phase == .ready }

    /// `inbound` (remote forwards only): each stream the server opens is pumped to one end of a socketpair and the
    /// other end given to it instead of a TCP connect to `forward.connectTo`; it answers false to refuse (and
    /// closes that end).
    public init(reactor: Reactor, pool: BufferPool, target: SSHTarget, forward: SSHForward, maxConnections: Int,
                inbound: ((Int32) -> Bool)? = nil,
                onUp: @escaping () -> Void, onDown: @escaping (RelayFailure) -> Void) {
        self.reactor = reactor
        self.target = target
        self.forward = forward
        self.onUp = onUp
        self.onDown = onDown
        keepalive = SSHKeepalive(intervalMs: target.keepaliveIntervalMs, countMax: target.keepaliveCountMax)
        channels = SSHChannels(reactor: reactor, pool: pool, share: target.share, maxConnections: maxConnections)
        if forward.kind == .remote { remote = SSHRemoteForward(forward, inbound: inbound) }
        channels.owner = self
    }

    /// Resolves the target's name (a literal at once) and connects to each of its addresses in turn, each for at
    /// most `connectTimeoutMs` (`Dialer`, the one rule for connecting out); the tunnel's 60 s watchdog bounds it all.
    public func start() {
        startedMs = Clock.monotonicMs()
        phase = .connecting
        let dialer = Dialer(reactor: reactor, resolver: Resolver.shared, key: target.lookupKey, host: target.host,
                            port: target.port, perAddressMs: SSHSession.connectTimeoutMs) { [self] outcome in
            self.dialed(outcome)
        }
        self.dialer = dialer
        dialer.start()
    }

    /// The addresses the last start tried, in order (`sluice probe` prints them).
    public var addressesTried: [String] { dialer?.tried ?? triedAddresses }
    private var triedAddresses: [String] = []

    private func dialed(_ outcome: Dialer.Outcome) {
        triedAddresses = outcome.tried
        dialer = nil
        guard phase == .connecting else {
            if outcome.fd >= 0 { CLinux.close(outcome.fd) }
            return
        }
        let subject = outcome.address?.description ?? target.endpointText
        switch outcome.kind {
        case .connected:
            TCPSocket.setNoDelay(outcome.fd)
            io = SSHIO(fd: outcome.fd)
            beginHandshake()
            if phase != .closed { settle() }
        case .unresolved, .notAllowed:
            finish(RelayFailure(.unresolved, subject: target.host))
        case .timedOut:
            finish(RelayFailure(.connectTimedOut, subject: subject))
        case .refused, .failed:
            finish(RelayFailure(outcome.errno == ECONNREFUSED ? .connectRefused : .connectFailed, subject: subject,
                                detail: FileIO.errorText(outcome.errno)))
        }
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
        // the server's listener is gone before the stop is reported (SSHRemoteForward.cancel)
        if phase == .ready, let s = session, let io { remote?.cancel(s, io: io) }
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
        case .idle, .connecting, .closed:
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
                              : RelayFailure(.handshakeFailed, detail: SSHLibrary.lastError(s)))
            }
            negotiated = SSHAlgorithms.negotiated(s)
            if let hash = libssh2_hostkey_hash(s, LIBSSH2_HOSTKEY_HASH_SHA256) {
                hostKeySHA256 = Array(UnsafeRawBufferPointer(start: hash, count: 32).bindMemory(to: UInt8.self))
            }
            if let why = HostKeyCheck.verify(s, policy: target.hostKey, ip: target.knownHostsName,
                                             port: Int(target.port)) {
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
        if phase == .forwarding, let remote {
            switch remote.request(s) {
            case .granted: return becomeReady()
            case .pending: return settle()
            case .refused:
                if io.sawEOF || io.error != 0 { return finish(peerGoneReason()) }
                return finish(RelayFailure(.forwardRefused, subject: String(forward.port)))
            }
        }
    }

    private func beginForwarding() {
        if forward.kind == .remote {
            phase = .forwarding
            return
        }
        if forward.kind == .exit { return becomeReady() }
        switch SSHLocalListener.listen(forward, reactor: reactor, onReadable: { [self] in self.acceptLocal() }) {
        case .failure(let error):
            return finish(RelayFailure(.listenFailed, subject: forward.listen.description,
                                       detail: FileIO.errorText(error.code)))
        case .success(let made): listener = made
        }
        becomeReady()
    }

    private func becomeReady() {
        guard let s = session, let io else { return }
        phase = .ready
        // only now: a want_reply keepalive answer would be taken as the reply to a later tcpip-forward (§5)
        if keepalive.enabled { libssh2_keepalive_config(s, 1, UInt32(keepalive.seconds)) }
        io.touch()
        let algorithms = SSHAlgorithms.negotiated(s)
        negotiated = algorithms
        SessionCiphers.shared.add(algorithms.cipher, 1)
        onUp?()
        pumpAll()
    }

    // MARK: steady state

    /// Driven by the reactor tick: setup deadlines, keepalives, dead-peer detection.
    public func tick(nowMs: Int64) {
        // belt and braces: whatever arrived is looked at at least once a tick
        io?.drained = false
        switch phase {
        case .connecting:
            dialer?.tick(nowMs: nowMs)
        case .handshake, .auth, .forwarding:
            if nowMs - startedMs > SSHSession.setupTimeoutMs { finish(RelayFailure(.setupTimedOut)) }
        case .ready:
            guard let s = session, let io else { return }
            let generation = io.rxGeneration
            serviceTransport()
            if let why = transportFailure() { return finish(why) }
            if keepalive.enabled {
                if keepalive.answered(replies: UInt(libssh2_keepalive_replies(s))) { io.touch() }
                if keepalive.dead(nowMs: nowMs, lastHeardMs: io.lastRxMs) { return finish(RelayFailure(.keepaliveTimeout)) }
                var next: Int32 = 0
                _ = libssh2_keepalive_send(s, &next)
            }
            listener?.resume()
            channels.tick(nowMs: nowMs)
            if (remote?.listening ?? false) || channels.freesPending || io.rxGeneration != generation { pumpAll() } else { settle() }
        case .idle, .closed:
            break
        }
    }

    var outputBlocked: Bool { (io?.pending ?? 0) > SSHIO.highWater }

    /// The round trip of the session's TCP path in µs (the kernel's minimum RTT seen); -1 when the kernel does not
    /// say; nil before the socket exists. A session carried in another's channel (`carrier`: a managed tunnel's
    /// inner session, over a socketpair) has no TCP path of its own and takes its carrier's (issue #24: counted as
    /// a long link, a managed tunnel on loopback took every wide window).
    public var linkRTTMicros: Int64? {
        if let carrier { return carrier.linkRTTMicros }
        return io.map { cl_tcp_rtt_us($0.fd) }
    }

    /// The session whose channel carries this one's transport (set before `start(connectedFd:)`).
    public var carrier: SSHSession?

    /// Progresses every stream until no new bytes arrive: libssh2 files what one channel's read pulled in under
    /// other channels, where epoll cannot see it.
    func pumpAll() {
        guard phase == .ready, let io else { return }
        var rounds = 0
        while true {
            let generation = io.rxGeneration
            remote?.accept(into: channels)
            channels.round()
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
        if io.rxGeneration != generation || channels.opensQueued { pumpAll() } else { settle() }
    }

    private func acceptLocal() {
        guard phase == .ready, let listener else { return }
        listener.accept(into: channels)
        pumpAll()
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

    func peerGoneReason() -> RelayFailure { io?.goneReason(session) ?? RelayFailure(.sessionError) }

    // MARK: teardown

    private func teardown() {
        guard phase != .closed else { return }
        if phase == .ready, let cipher = negotiated?.cipher { SessionCiphers.shared.add(cipher, -1) }
        phase = .closed
        dialer?.cancel()
        dialer = nil
        channels.closeAll()
        listener?.close()
        listener = nil
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
        remote?.drop()
        if let io { CLinux.close(io.fd) }
        io = nil
    }
}
