import CLinux
import Relay

/// Direct SSH tunnels (tunnels-api.md §7): one libssh2 session per attempt, all sessions on one reactor thread
/// that owns every socket, channel and buffer, so none of it needs a lock. The manager's thread only posts.
public final class SSHDriver: TunnelDriver {
    /// Direct: one session; managed: a chain of two (exactly one of the two is set).
    private final class Attempt {
        let session: SSHSession?
        let chain: SSHChain?
        let events: TunnelReporter
        var up = false
        var traffic = TrafficReport()

        init(session: SSHSession?, chain: SSHChain?, events: TunnelReporter) {
            self.session = session
            self.chain = chain
            self.events = events
        }

        var hostKeyDetail: String? { session?.hostKeyDetail ?? chain?.hostKeyDetail }
        var negotiated: SSHAlgorithms.Negotiated? { session?.negotiated ?? chain?.negotiated }
        var counters: (Int64, Int64, Int) {
            if let session { return (session.bytesIn, session.bytesOut, session.activeConnections) }
            if let chain { return (chain.bytesIn, chain.bytesOut, chain.activeConnections) }
            return (0, 0, 0)
        }

        func tick(nowMs: Int64) {
            session?.tick(nowMs: nowMs)
            chain?.tick(nowMs: nowMs)
        }

        func close() {
            session?.close()
            chain?.close()
        }
    }

    private let context: DriverContext
    private let reactor: Reactor
    private let pool: BufferPool
    private let maxConnections: Int
    /// Reactor thread only.
    private var attempts: [UInt64: Attempt] = [:]

    public init?(context: DriverContext) {
        guard let reactor = Reactor(tickMilliseconds: 250) else { return nil }
        let limits = context.config.get().limits
        self.context = context
        self.reactor = reactor
        self.pool = context.buffers
        self.maxConnections = max(1, limits.maxConnectionsPerTunnel)
        reactor.post { [self] in self.reactor.setTick { [self] in self.tick() } }
        guard reactor.start(name: "ssh") else { return nil }
    }

    public func start(_ request: ConnectRequest, attempt: UInt64, events: TunnelReporter) {
        let built = SSHTargetBuilder.build(request, config: context.config.get(), stateDir: context.stateDir)
        guard let target = built.target else {
            events.failed(attempt, built.refused ?? .invalidConfiguration)
            return
        }
        let name = request.name.text
        if request.endpoint != nil {
            let (plan, refused) = SSHTargetBuilder.managed(request, stateDir: context.stateDir)
            guard let plan else {
                events.failed(attempt, refused ?? .invalidConfiguration)
                return
            }
            return startManaged(outer: target, plan, attempt: attempt, events: events, name: name)
        }
        if let host = built.connectName {
            return reactor.post { [self] in self.startToName(host, target, request, attempt: attempt, events: events) }
        }
        guard let forward = built.forward else {
            events.failed(attempt, built.refused ?? .invalidConfiguration)
            return
        }
        reactor.post { [self] in self.startSession(target, forward, attempt: attempt, events: events, name: name) }
    }

    /// Reactor thread.
    private func startSession(_ target: SSHTarget, _ forward: SSHForward, attempt: UInt64, events: TunnelReporter,
                              name: String) {
        let session = SSHSession(reactor: reactor, pool: pool, target: target, forward: forward,
                                 maxConnections: maxConnections,
                                 onUp: { [self] in self.up(attempt, name: name) },
                                 onDown: { [self] failure in self.down(attempt, failure, name: name) })
        attempts[attempt] = Attempt(session: session, chain: nil, events: events)
        session.start()
    }

    /// A direct remote tunnel whose `bindHost` is a name: every connection the server forwards back goes there
    /// (tunnels-api.md §7), so the name is judged at every attempt as an appliance host's fixed target is
    /// (`Dialer.judge`: resolved with the user's share, every address against `destinations`), and the forward goes
    /// to the first allowed address. Until then the attempt holds no session (a stop just forgets it). Reactor thread.
    private func startToName(_ host: String, _ target: SSHTarget, _ request: ConnectRequest, attempt: UInt64,
                             events: TunnelReporter) {
        let pending = Attempt(session: nil, chain: nil, events: events)
        attempts[attempt] = pending
        let port = request.endpointPort
        let allow = { [self] (address: String) in
            self.context.destinations.current().allows(host: host, address: address, port: port)
        }
        Dialer.judge(reactor: reactor, resolver: Resolver.shared, key: request.requesterId, host: host, allow: allow) {
            [self] verdict, addresses in
            guard self.attempts[attempt] === pending else { return }   // stopped meanwhile
            self.attempts.removeValue(forKey: attempt)
            switch verdict {
            case .unresolved: return events.failed(attempt, TunnelFailure(RelayFailure(.unresolved, subject: host)))
            case .notAllowed: return events.failed(attempt, .destinationNotAllowed(host: host, port: port))
            case .allowed: break
            }
            guard let address = addresses.first,
                  let connectTo = SocketAddress(ip: address, port: UInt16(truncatingIfNeeded: port)) else {
                return events.failed(attempt, .invalidConfiguration)
            }
            let built = SSHTargetBuilder.remote(request, to: connectTo, asked: host, config: self.context.config.get())
            guard let forward = built.forward else {
                return events.failed(attempt, built.refused ?? .invalidConfiguration)
            }
            self.startSession(target, forward, attempt: attempt, events: events, name: request.name.text)
        }
    }

    private func startManaged(outer: SSHTarget, _ plan: SSHTargetBuilder.Managed, attempt: UInt64, events: TunnelReporter,
                              name: String) {
        reactor.post { [self] in
            let chain = SSHChain(reactor: self.reactor, pool: self.pool, outer: outer, inner: plan.inner, mode: plan.mode,
                                 listenHost: plan.listenHost, listenPort: plan.listenPort, exitHost: plan.exitHost,
                                 exitPort: plan.exitPort, maxConnections: self.maxConnections,
                                 onUp: { [self] in self.up(attempt, name: name) },
                                 onDown: { [self] failure in self.down(attempt, failure, name: name) })
            self.attempts[attempt] = Attempt(session: nil, chain: chain, events: events)
            chain.start()
        }
    }

    public func stop(attempt: UInt64) {
        // synchronous: the listener and the session are gone when the manager goes on (a restart may rebind). Never
        // cancelled: a reactor late to answer still releases the attempt, before the next start it is given (posted
        // after this), and reports nothing of it (its reports look the attempt up).
        let released = reactor.callEventually { [self] in
            guard let entry = self.attempts.removeValue(forKey: attempt) else { return }
            entry.close()
        }
        if !released { Log.warn("ssh.stop_late", [("attempt", String(attempt))]) }
    }

    private func up(_ attempt: UInt64, name: String) {
        guard let entry = attempts[attempt] else { return }
        entry.up = true
        if let n = entry.negotiated {
            var fields = [("tunnel", name), ("kex", n.kex), ("hostkey", n.hostKey), ("cipher", n.cipher), ("mac", n.mac)]
            // the round trip that decides wide receive windows (WindowBudget), for operators of long links
            if let rtt = entry.session?.linkRTTMicros { fields.append(("rtt_us", String(rtt))) }
            Log.info("ssh.session", fields)
        }
        entry.events.connected(attempt)
    }

    private func down(_ attempt: UInt64, _ relayFailure: RelayFailure, name: String) {
        guard let entry = attempts.removeValue(forKey: attempt) else { return }
        let failure = TunnelFailure(relayFailure)
        var fields = [("tunnel", name), ("reason", failure.reason)]
        if let detail = entry.hostKeyDetail { fields.append(("detail", detail)) }
        Log.warn(entry.up ? "ssh.disconnected" : "ssh.failed", fields)
        report(attempt, entry, force: true)
        if entry.up {
            entry.events.disconnected(attempt, failure)
        } else {
            entry.events.failed(attempt, failure)
        }
    }

    private func tick() {
        let now = Clock.monotonicMs()
        for (attempt, entry) in attempts {
            entry.tick(nowMs: now)
            if attempts[attempt] != nil { report(attempt, entry, force: false) }
        }
    }

    private func report(_ attempt: UInt64, _ entry: Attempt, force: Bool) {
        entry.traffic.offer(entry.counters, nowMs: Clock.monotonicMs(), force: force,
                            attempt: attempt, events: entry.events)
    }
}
