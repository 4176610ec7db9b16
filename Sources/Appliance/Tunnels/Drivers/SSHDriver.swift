import CLinux
import Relay

/// Direct SSH tunnels (tunnels-api.md §7): one libssh2 session per attempt, all sessions on one reactor thread
/// that owns every socket, channel and buffer, so none of it needs a lock. The manager's thread only posts.
public final class SSHDriver: TunnelDriver {
    private final class Attempt {
        let session: SSHSession
        let events: TunnelEvents
        var up = false
        var traffic = TrafficReport()

        init(session: SSHSession, events: TunnelEvents) {
            self.session = session
            self.events = events
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
        self.pool = BufferPool(size: max(4096, limits.bufferSize), count: max(2, limits.bufferCount))
        self.maxConnections = max(1, limits.maxConnectionsPerTunnel)
        reactor.post { [self] in self.reactor.setTick { [self] in self.tick() } }
        guard reactor.start(name: "ssh") else { return nil }
    }

    public func start(_ request: ConnectRequest, attempt: UInt64, events: TunnelEvents) {
        let built = SSHTargetBuilder.build(request, config: context.config.get(), stateDir: context.stateDir)
        guard let target = built.target, let forward = built.forward else {
            events.failed(attempt, reason: built.refused ?? "Invalid tunnel configuration")
            return
        }
        let name = request.name.text
        reactor.post { [self] in
            let session = SSHSession(reactor: self.reactor, pool: self.pool, target: target, forward: forward,
                                     maxConnections: self.maxConnections,
                                     onUp: { [self] in self.up(attempt) },
                                     onDown: { [self] reason in self.down(attempt, reason: reason, name: name) })
            self.attempts[attempt] = Attempt(session: session, events: events)
            session.start()
        }
    }

    public func stop(attempt: UInt64) {
        // synchronous: the listener and the session are gone when the manager goes on (a restart may rebind)
        reactor.call { [self] in
            guard let entry = self.attempts.removeValue(forKey: attempt) else { return }
            entry.session.close()
        }
    }

    private func up(_ attempt: UInt64) {
        guard let entry = attempts[attempt] else { return }
        entry.up = true
        entry.events.connected(attempt)
    }

    private func down(_ attempt: UInt64, reason: String, name: String) {
        guard let entry = attempts.removeValue(forKey: attempt) else { return }
        var fields = [("tunnel", name), ("reason", reason)]
        if let detail = entry.session.hostKeyDetail { fields.append(("detail", detail)) }
        Log.warn(entry.up ? "ssh.disconnected" : "ssh.failed", fields)
        report(attempt, entry, force: true)
        if entry.up {
            entry.events.disconnected(attempt, reason: reason)
        } else {
            entry.events.failed(attempt, reason: reason)
        }
    }

    private func tick() {
        let now = Clock.monotonicMs()
        for (attempt, entry) in attempts {
            entry.session.tick(nowMs: now)
            if attempts[attempt] != nil { report(attempt, entry, force: false) }
        }
    }

    private func report(_ attempt: UInt64, _ entry: Attempt, force: Bool) {
        let s = entry.session
        entry.traffic.offer((s.bytesIn, s.bytesOut, s.activeConnections), nowMs: Clock.monotonicMs(), force: force,
                            attempt: attempt, events: entry.events)
    }
}
