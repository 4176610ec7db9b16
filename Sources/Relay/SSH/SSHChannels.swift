import CLinux
import CSSH2

/// The channels one SSH session multiplexes: its streams (a `ChannelPipe` each, with two pool buffers), libssh2's
/// one-at-a-time queue of direct-tcpip opens, channels whose free must be retried, the connection limit and the
/// traffic counters. It is also the exit side of every forwarding role: a stream handed to it (`adopt`, `carry`,
/// `open`) becomes a direct-tcpip channel. It is the stream opener of the SSH paths: every open, or refusal, ends
/// in one `StreamOpenOutcome` (counted for `/metrics` by `admit` when a limit refused it; a SOCKS client refused
/// before its handshake gets a valid one from `refusals`). Reactor thread only. It reaches its session through `owner`, which the
/// session clears when it ends (no weak references in Embedded Swift: the cycle is broken by hand).
public final class SSHChannels {
    let reactor: Reactor
    let pool: BufferPool
    let share: PoolShare
    let maxConnections: Int
    var owner: SSHSession?
    private(set) var pipes: [ChannelPipe] = []
    private var opening: [ChannelPipe] = []
    private var zombies: [OpaquePointer] = []
    /// SOCKS clients refused before they had a pipe: greeting answered, then the refusal's reply.
    let refusals: SOCKSRefusals
    public internal(set) var bytesIn: Int64 = 0
    public internal(set) var bytesOut: Int64 = 0

    init(reactor: Reactor, pool: BufferPool, share: PoolShare = .unbounded, maxConnections: Int) {
        self.reactor = reactor
        self.pool = pool
        self.share = share
        self.maxConnections = maxConnections
        self.refusals = SOCKSRefusals(reactor: reactor)
    }

    public var count: Int { pipes.count }
    var opensQueued: Bool { !opening.isEmpty }
    var freesPending: Bool { !zombies.isEmpty }
    var outputBlocked: Bool { owner?.outputBlocked ?? true }
    /// Whether the session's link is long enough for a wide window to matter: one stream moves at most window ÷
    /// round trip, so below `WindowBudget.longLinkMicros` the standard 2 MiB already allows 400 MB/s, more than a
    /// session's crypto does (on loopback a wide window only made downloads erratic: docs/benchmarks.md). A session
    /// over something other than TCP (the inner session of a managed tunnel, on a socketpair) cannot tell: long.
    var longLink: Bool {
        guard let rtt = owner?.linkRTTMicros else { return false }
        return rtt < 0 || rtt >= WindowBudget.longLinkMicros
    }
    private var ready: Bool { owner?.isReady ?? false }

    // MARK: the exit side

    /// Managed tunnels: a stream from the other session (one end of a socketpair, owned from here) → a direct-tcpip
    /// open to `host:port`, or SOCKS5 first when `socks` (a SOCKS client refused here still gets its greeting
    /// answered, then the refusal's code). False when refused at once.
    public func adopt(fd: Int32, socks: Bool, host: String, port: Int) -> Bool {
        guard socks else {
            return openDirect(fd: fd, host: host, port: port, counted: true) { _ in } == .opened
        }
        guard let pipe = accept(fd: fd, socks: true) else { return false }
        pipe.progress()
        owner?.pumpAll()
        return true
    }

    /// The inner session's transport: a direct-tcpip channel to `host:port` pumped to `fd`; its bytes are not
    /// counted as traffic. `refused` hears a refusal of the server. False (and `fd` closed) when refused at once.
    public func carry(fd: Int32, host: String, port: Int, refused: @escaping (StreamOpenOutcome) -> Void) -> Bool {
        openDirect(fd: fd, host: host, port: port, counted: false) { outcome in
            if outcome != .opened { refused(outcome) }
        } == .opened
    }

    /// C2S streams: a direct-tcpip channel to `host:port` pumped to `fd` (one end of a socketpair, owned from
    /// here). `opened` hears the outcome once: `.opened` once the channel is up, else why not (then `fd` is
    /// closed) — at once, before this returns, when the session is not ready or has no room. A session that ends
    /// first tells its owner instead (`onDown`), not `opened`.
    public func open(fd: Int32, host: String, port: Int, opened: @escaping (StreamOpenOutcome) -> Void) {
        _ = openDirect(fd: fd, host: host, port: port, counted: true, opened: opened)
    }

    /// `.opened`: queued (the outcome comes later through `opened`); anything else: refused now, told to `opened`.
    private func openDirect(fd: Int32, host: String, port: Int, counted: Bool,
                            opened: @escaping (StreamOpenOutcome) -> Void) -> StreamOpenOutcome {
        let room = admit()
        guard room == .opened, let pipe = newPipe(fd: fd, phase: .opening) else {
            CLinux.close(fd)
            let outcome = refused(room)
            opened(outcome)
            return outcome
        }
        pipe.counted = counted
        pipe.targetHost = host
        pipe.targetPort = port
        pipe.onOpen = opened
        opening.append(pipe)
        owner?.pumpAll()
        return .opened
    }

    // MARK: streams

    /// Whether a new stream may have a pipe: the session up, under the connection limit, two pool buffers free.
    /// A refusal because of a limit is counted for `/metrics` here, once.
    func admit() -> StreamOpenOutcome {
        let outcome: StreamOpenOutcome = !ready ? .sessionUnavailable : pipes.count >= maxConnections ? .overLimit
            : pool.available < 2 ? .noBuffers : .opened
        Refusals.shared.count(outcome)
        return outcome
    }

    /// An accepted connection of a local or dynamic forward (or a managed tunnel's inbound stream): a pipe, or
    /// refused — a SOCKS client through `refusals` (greeting, request, then the outcome's reply), another closed.
    func accept(fd: Int32, socks: Bool) -> ChannelPipe? {
        let room = admit()
        if room == .opened, let pipe = newPipe(fd: fd, phase: socks ? .socks : .opening) {
            if socks { pipe.updateWatch() }
            return pipe
        }
        let outcome = refused(room)
        if socks { refusals.refuse(fd, outcome) } else { CLinux.close(fd) }
        return nil
    }

    /// A remote forward's inbound channel (`forwarded`: libssh2 gave it a 2 MiB window already): a pipe if `admit`
    /// and the share let it in (the caller closes `fd` otherwise).
    func makePipe(fd: Int32, phase: ChannelPipe.Phase, forwarded: Bool = false) -> ChannelPipe? {
        let room = admit()
        if room == .opened, let pipe = newPipe(fd: fd, phase: phase, forwarded: forwarded) { return pipe }
        _ = refused(room)
        return nil
    }

    /// The outcome of a stream `admit` or `newPipe` refused (each counted its own cause).
    private func refused(_ room: StreamOpenOutcome) -> StreamOpenOutcome { room == .opened ? .noBuffers : room }

    /// After `admit`: two pool buffers within the session's share (issue #24), and for a channel the server opened
    /// a standard window of the share (a bounded share with none left refuses it: its 2 MiB could not be paused).
    /// nil: refused, its cause counted here — the share, or the pool another relay thread emptied since `admit`.
    private func newPipe(fd: Int32, phase: ChannelPipe.Phase, forwarded: Bool = false) -> ChannelPipe? {
        guard let (up, down) = pool.acquirePair(for: share) else {
            Refusals.shared.count(pool.available >= 2 ? .bufferShare : .bufferPool)
            return nil
        }
        let standard = forwarded && pool.standard.take(share)
        if forwarded && !standard && share.bounded {
            pool.releasePair(up, down, for: share)
            Refusals.shared.count(.windowShare)
            return nil
        }
        let pipe = ChannelPipe(channels: self, fd: fd, up: up, down: down, phase: phase)
        pipe.standardWindow = standard
        pipes.append(pipe)
        return pipe
    }

    /// A stream to the fixed target of a local forward (or whatever its SOCKS5 request names, once it is in).
    func enqueueOpen(_ pipe: ChannelPipe) { opening.append(pipe) }

    /// One round over everything: queued opens, every stream, channels still to free.
    func round() {
        processOpens()
        for pipe in pipes { pipe.progress() }
        if !zombies.isEmpty { zombies = zombies.filter { libssh2_channel_free($0) == LIBSSH2_ERROR_EAGAIN } }
    }

    /// libssh2 keeps one channel open in flight per session (session->open_state): opens go strictly in order,
    /// and a pending one is retried with the same arguments.
    private func processOpens() {
        while let pipe = opening.first, let owner, let s = owner.session {
            if pipe.openMessage.isEmpty { pipe.prepareOpen() }
            let window = UInt32(pipe.standardWindow ? WindowBudget.standard : WindowBudget.small)
            let channel = pipe.openMessage.withUnsafeBytes { message in
                libssh2_channel_open_ex(s, "direct-tcpip", 12, window, UInt32(LIBSSH2_CHANNEL_PACKET_DEFAULT),
                                        message.baseAddress?.assumingMemoryBound(to: CChar.self),
                                        UInt32(message.count))
            }
            if let channel {
                opening.removeFirst()
                pipe.opened(channel)
                continue
            }
            let error = libssh2_session_last_errno(s)
            if error == LIBSSH2_ERROR_EAGAIN { return }
            opening.removeFirst()
            if isTransportError(error) {
                owner.fatal = owner.fatal ?? owner.peerGoneReason()
                return
            }
            pipe.openFailed(StreamOpenOutcome(sshRefusal: SSHLibrary.lastError(s)))
        }
    }

    func event(_ pipe: ChannelPipe, _ events: UInt32) { owner?.pipeEvent(pipe, events) }

    func freeChannel(_ channel: OpaquePointer) {
        guard owner?.session != nil else { return }
        if libssh2_channel_free(channel) == LIBSSH2_ERROR_EAGAIN { zombies.append(channel) }
    }

    func remove(_ pipe: ChannelPipe) {
        pipes.removeAll { $0 === pipe }
        opening.removeAll { $0 === pipe }
    }

    /// A channel call failed: the stream ends; the session ends too when the failure was its transport's.
    func channelError(_ rc: Int) -> Bool {
        guard let owner else { return false }
        let code = Int32(truncatingIfNeeded: rc)
        if isTransportError(code) || (owner.io?.sawEOF ?? false) || (owner.io?.error ?? 0) != 0 {
            owner.fatal = owner.fatal ?? owner.peerGoneReason()
        }
        return false
    }

    /// Refused SOCKS clients that never finished their handshake are closed (the session's tick).
    func tick(nowMs: Int64) { refusals.tick(nowMs: nowMs) }

    /// The session is ending: every socket closes; libssh2 frees the channels with the session.
    func closeAll() {
        refusals.closeAll()
        for pipe in pipes { pipe.closeLocal() }
        pipes = []
        opening = []
        zombies = []
        owner = nil
    }
}
