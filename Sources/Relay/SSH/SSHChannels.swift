import CLinux
import CSSH2

/// The channels one SSH session multiplexes: its streams (a `ChannelPipe` each, with two pool buffers), libssh2's
/// one-at-a-time queue of direct-tcpip opens, channels whose free must be retried, the connection limit and the
/// traffic counters. It is also the exit side of every forwarding role: a stream handed to it (`adopt`, `carry`,
/// `open`) becomes a direct-tcpip channel. Reactor thread only. It reaches its session through `owner`, which the
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
    public internal(set) var bytesIn: Int64 = 0
    public internal(set) var bytesOut: Int64 = 0

    init(reactor: Reactor, pool: BufferPool, share: PoolShare = .unbounded, maxConnections: Int) {
        self.reactor = reactor
        self.pool = pool
        self.share = share
        self.maxConnections = maxConnections
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
    /// open to `host:port`, or SOCKS5 first when `socks`. False (and `fd` closed) when refused.
    public func adopt(fd: Int32, socks: Bool, host: String, port: Int) -> Bool {
        guard socks else { return openDirect(fd: fd, host: host, port: port, counted: true, opened: nil) }
        guard ready, let pipe = makePipe(fd: fd, phase: .socks) else {
            CLinux.close(fd)
            return false
        }
        pipe.updateWatch()
        pipe.progress()
        owner?.pumpAll()
        return true
    }

    /// The inner session's transport: a direct-tcpip channel to `host:port` pumped to `fd`; its bytes are not
    /// counted as traffic. `refused` hears the server's reason if the open is refused.
    public func carry(fd: Int32, host: String, port: Int, refused: @escaping (String) -> Void) -> Bool {
        openDirect(fd: fd, host: host, port: port, counted: false) { refusal in
            if let refusal { refused(refusal) }
        }
    }

    /// C2S streams: a direct-tcpip channel to `host:port` pumped to `fd` (one end of a socketpair, owned from
    /// here); `opened` reports nil once the channel is up, or the server's refusal (then `fd` is closed). False
    /// (and `fd` closed, `opened` never called) when the session is not ready or has no room.
    public func open(fd: Int32, host: String, port: Int, opened: @escaping (String?) -> Void) -> Bool {
        openDirect(fd: fd, host: host, port: port, counted: true, opened: opened)
    }

    private func openDirect(fd: Int32, host: String, port: Int, counted: Bool, opened: ((String?) -> Void)?) -> Bool {
        guard ready, let pipe = makePipe(fd: fd, phase: .opening) else {
            CLinux.close(fd)
            return false
        }
        pipe.counted = counted
        pipe.targetHost = host
        pipe.targetPort = port
        pipe.onOpen = opened
        opening.append(pipe)
        owner?.pumpAll()
        return true
    }

    // MARK: streams

    /// A stream needs two pool buffers within its share; without them (or beyond the connection limit) it is refused
    /// at once. A channel the server opened (`forwarded`, remote forwards) already has libssh2's 2 MiB window: it
    /// takes a standard window of the share, or is refused when the share is bounded and has none left.
    func makePipe(fd: Int32, phase: ChannelPipe.Phase, forwarded: Bool = false) -> ChannelPipe? {
        guard pipes.count < maxConnections else {
            Refusals.shared.count(.connectionLimit)
            return nil
        }
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
            pipe.openFailed(SSHLibrary.lastError(s))
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

    /// The session is ending: every socket closes; libssh2 frees the channels with the session.
    func closeAll() {
        for pipe in pipes { pipe.closeLocal() }
        pipes = []
        opening = []
        zombies = []
        owner = nil
    }
}
