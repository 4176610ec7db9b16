import CLinux

/// A listener whose connections leave from this machine: to a fixed target (`ssh -L` without SSH) or wherever a
/// SOCKS5 CONNECT asks (`ssh -D`), each relayed by splice. What may be reached is the owner's `Policy`; the
/// forwarder knows no configuration. Loop thread only (its reactor's).
public final class DirectForwarder {
    public enum Mode: Equatable {
        case fixed(host: String, port: UInt16)
        case socks5
    }

    /// (host as asked — a name or the IP text —, one resolved address, port) → may it be reached?
    public typealias Policy = (String, String, UInt16) -> Bool

    public struct Settings {
        public var bind: SocketAddress
        public var mode: Mode
        public var maxConnections: Int = 512
        /// SOCKS greeting through connect, or a fixed target's connect: never longer than this.
        public var setupTimeoutMs: Int64 = 10_000
        /// Whose share of the resolver this forward's lookups take (the tunnel's user).
        public var lookupKey = ""

        public init(bind: SocketAddress, mode: Mode) {
            self.bind = bind
            self.mode = mode
        }
    }

    private let reactor: Reactor
    private let pool: PipePool
    private let resolver: Resolver
    private let settings: Settings
    private let allow: Policy
    private var listener: Int32 = -1
    private var paused = false
    private var nextId = 0
    private var setups: [Int: ConnectionSetup] = [:]
    private var relays: [Int: SpliceRelay] = [:]
    /// SOCKS clients over `maxConnections`, answered 05 00 then 01.
    private let refusals: SOCKSRefusals
    private var closedOut: Int64 = 0
    private var closedIn: Int64 = 0
    /// The listener failed for good (the tunnel is down); called once.
    public var onFatal: ((String) -> Void)?
    public private(set) var port: UInt16 = 0

    public init(reactor: Reactor, pool: PipePool, resolver: Resolver, settings: Settings, allow: @escaping Policy) {
        self.reactor = reactor
        self.pool = pool
        self.resolver = resolver
        self.settings = settings
        self.allow = allow
        self.refusals = SOCKSRefusals(reactor: reactor)
    }

    public var activeConnections: Int { setups.count + relays.count }
    /// Client → target.
    public var bytesOut: Int64 { relays.values.reduce(closedOut) { $0 + $1.bytesAToB } }
    /// Target → client.
    public var bytesIn: Int64 { relays.values.reduce(closedIn) { $0 + $1.bytesBToA } }

    /// Binds and listens; the tunnel counts as up only after this succeeded.
    public func start() -> SocketError? {
        // splice into a socket whose peer is gone raises SIGPIPE, which must never end the process
        cl_ignore_sigpipe()
        switch TCPSocket.listen(settings.bind) {
        case .failure(let error): return error
        case .success(let fd):
            listener = fd
            port = TCPSocket.localPort(fd) ?? settings.bind.port
            guard watchListener() else {
                let code = clinux_errno()
                stop()
                return SocketError("epoll", code)
            }
            return nil
        }
    }

    private func watchListener() -> Bool {
        reactor.watch(listener, events: CL_EPOLLIN) { [self] _ in self.acceptAll() }
    }

    /// Closes the listener and every connection, synchronously.
    public func stop() {
        if listener >= 0 {
            if !paused { reactor.unwatch(listener) }
            _ = close(listener)
            listener = -1
        }
        for setup in Array(setups.values) { setup.abort() }
        for relay in Array(relays.values) { relay.close() }
        refusals.closeAll()
        setups.removeAll()
        relays.removeAll()
        onFatal = nil
    }

    /// Timeouts, and a listener paused for lack of descriptors tries again.
    public func tick(nowMs: Int64) {
        for setup in Array(setups.values) where setup.deadlineMs <= nowMs { setup.timeout() }
        refusals.tick(nowMs: nowMs)
        if paused && listener >= 0 && watchListener() { paused = false }
    }

    private func acceptAll() {
        for _ in 0..<64 {
            guard listener >= 0 else { return }
            switch TCPSocket.accept(listener) {
            case .socket(let fd): admit(fd)
            case .none: return
            case .exhausted:
                reactor.unwatch(listener)
                paused = true
                return
            case .failed(let error):
                let fatal = onFatal
                stop()
                fatal?(error.text)
                return
            }
        }
    }

    private func admit(_ fd: Int32) {
        if activeConnections >= settings.maxConnections {
            // counted for /metrics; a SOCKS client still gets its greeting answered, then 01 (SOCKSRefusals bounds
            // how many wait for it), a fixed target's client is closed at once
            let outcome = StreamOpenOutcome.overLimit
            Refusals.shared.count(outcome)
            if settings.mode == .socks5 { refusals.refuse(fd, outcome) } else { _ = close(fd) }
            return
        }
        TCPSocket.setNoDelay(fd)
        var fixed: (String, UInt16)? = nil
        if case .fixed(let host, let port) = settings.mode { fixed = (host, port) }
        let id = nextId
        nextId += 1
        let setup = ConnectionSetup(reactor: reactor, resolver: resolver, key: settings.lookupKey, allow: allow, client: fd, fixed: fixed,
                                    deadlineMs: Clock.monotonicMs() + settings.setupTimeoutMs)
        setup.onReady = { [self] client, target in
            self.setups.removeValue(forKey: id)
            self.relay(id, client, target)
        }
        setup.onClosed = { [self] in self.setups.removeValue(forKey: id) }
        setups[id] = setup
        setup.start()
    }

    private func relay(_ id: Int, _ client: Int32, _ target: Int32) {
        TCPSocket.setNoDelay(target)
        guard let relay = SpliceRelay(reactor: reactor, pool: pool, a: client, b: target) else { return }
        relay.onClose = { [self] in
            guard let done = self.relays.removeValue(forKey: id) else { return }
            self.closedOut += done.bytesAToB
            self.closedIn += done.bytesBToA
        }
        relays[id] = relay
        relay.start()
    }
}
