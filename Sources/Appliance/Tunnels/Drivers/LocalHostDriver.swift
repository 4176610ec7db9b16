import CLinux
import Relay

/// Tunnels of the appliance's own host (`"local": true`, tunnels-api.md §7): no SSH; a listener here, connections
/// from here, bytes moved by splice(2). One reactor thread carries every such tunnel; the manager's calls hop onto
/// it. `bindAllow` and `destinations` are checked here, `destinations` again on every connection (from the live
/// configuration, so a reload tightens running tunnels too).
public final class LocalHostDriver: TunnelDriver {
    final class Tunnel {
        let attempt: UInt64
        let events: TunnelReporter
        var forwarder: DirectForwarder?
        var traffic = TrafficReport()

        init(attempt: UInt64, events: TunnelReporter) {
            self.attempt = attempt
            self.events = events
        }
    }

    private let context: DriverContext
    private let reactor: Reactor
    private let resolver: Resolver
    private let pool = PipePool()
    // loop thread only
    private var tunnels: [UInt64: Tunnel] = [:]

    public init?(context: DriverContext) {
        guard let reactor = Reactor(tickMilliseconds: 250) else { return nil }
        self.context = context
        self.reactor = reactor
        self.resolver = Resolver.shared
        PoolRegistry.shared.register("local", pipes: pool)
        guard reactor.start(name: "local-tunnels") else { return nil }
        reactor.post { [self] in self.reactor.setTick { [self] in self.tick() } }
    }

    public func start(_ request: ConnectRequest, attempt: UInt64, events: TunnelReporter) {
        let config = context.config.get()
        guard request.mode != .remote else {
            // validation answers 400 first; this is only a safety net
            return events.failed(attempt, .remoteOnAppliance)
        }
        let bindHost = BindPolicy.literal(request.bindHost)
        guard BindPolicy.allows(bindHost, bindAllow: config.bindAllow),
              let bind = SocketAddress(ip: bindHost, port: UInt16(clamping: request.sourcePort)) else {
            return events.failed(attempt, .bindNotAllowed(bindHost))
        }
        var settings: DirectForwarder.Settings
        if request.mode == .local {
            let host = !request.targetHost.isEmpty ? request.targetHost
                : !request.endpointHost.isEmpty ? request.endpointHost : "127.0.0.1"
            settings = .init(bind: bind, mode: .fixed(host: host, port: UInt16(clamping: request.endpointPort)))
        } else {
            settings = .init(bind: bind, mode: .socks5)
        }
        settings.maxConnections = config.limits.maxConnectionsPerTunnel
        settings.lookupKey = request.requesterId
        let tunnel = Tunnel(attempt: attempt, events: events)
        reactor.post { [self] in
            self.tunnels[attempt] = tunnel
            if case .fixed(let host, let port) = settings.mode {
                self.checkTarget(tunnel, host, port, key: request.requesterId) { self.open(tunnel, settings) }
            } else {
                self.open(tunnel, settings)
            }
        }
    }

    public func stop(attempt: UInt64) {
        // as SSHDriver.stop: never cancelled; late, it still runs before the next start on this reactor
        let released = reactor.callEventually { [self] in
            guard let tunnel = self.tunnels.removeValue(forKey: attempt) else { return }
            tunnel.forwarder?.stop()
        }
        if !released { Log.warn("local.stop_late", [("attempt", String(attempt))]) }
    }

    // MARK: loop thread

    /// A fixed target is judged before anything listens, by the rule every dial follows (`Dialer.judge`: a name
    /// resolved with the user's share, every address against `destinations`). A refusal is terminal; a name that
    /// does not resolve fails the attempt as an SSH host's does, retried (tunnels-api.md §8: DNS may come up late).
    private func checkTarget(_ tunnel: Tunnel, _ host: String, _ port: UInt16, key: String,
                             then: @escaping () -> Void) {
        let allow = { [self] (address: String) in
            self.context.destinations.current().allows(host: host, address: address, port: Int(port))
        }
        Dialer.judge(reactor: reactor, resolver: resolver, key: key, host: host, allow: allow) { [self] verdict, _ in
            guard self.tunnels[tunnel.attempt] === tunnel else { return }   // stopped meanwhile
            switch verdict {
            case .allowed: then()
            case .unresolved: self.fail(tunnel, TunnelFailure(RelayFailure(.unresolved, subject: host)))
            case .notAllowed: self.fail(tunnel, .destinationNotAllowed(host: host, port: Int(port)))
            }
        }
    }

    private func open(_ tunnel: Tunnel, _ settings: DirectForwarder.Settings) {
        let forwarder = DirectForwarder(reactor: reactor, pool: pool, resolver: resolver, settings: settings) {
            [self] host, address, port in
            self.context.destinations.current().allows(host: host, address: address, port: Int(port))
        }
        if let error = forwarder.start() {
            let failure = error.listening
                ? RelayFailure(.listenFailed, subject: settings.bind.description, detail: FileIO.errorText(error.code))
                : RelayFailure(.local, detail: error.text)
            return fail(tunnel, TunnelFailure(failure))
        }
        tunnel.forwarder = forwarder
        forwarder.onFatal = { [self] text in
            guard self.tunnels.removeValue(forKey: tunnel.attempt) != nil else { return }
            tunnel.events.disconnected(tunnel.attempt, .listenerFailed(text))
        }
        tunnel.traffic.restart(nowMs: Clock.monotonicMs())
        tunnel.events.connected(tunnel.attempt)
    }

    private func fail(_ tunnel: Tunnel, _ failure: TunnelFailure) {
        tunnels.removeValue(forKey: tunnel.attempt)
        tunnel.events.failed(tunnel.attempt, failure)
    }


    /// Timeouts, and traffic at most once a second while it changes.
    private func tick() {
        let now = Clock.monotonicMs()
        for tunnel in Array(tunnels.values) {
            guard let forwarder = tunnel.forwarder else { continue }
            forwarder.tick(nowMs: now)
            tunnel.traffic.offer((forwarder.bytesIn, forwarder.bytesOut, forwarder.activeConnections), nowMs: now,
                                 attempt: tunnel.attempt, events: tunnel.events)
        }
    }
}
