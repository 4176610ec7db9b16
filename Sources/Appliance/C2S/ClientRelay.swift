import CLinux
import Relay

/// One C2S WebSocket (tunnels-api.md §9) from its first message to its end. What happens is decided by its
/// `RelayLifecycle`; this class performs the effects (a dial, a shared or own SSH session, a channel, the bridge,
/// messages and closes) and feeds their outcomes back as events. Runs on the relay service's reactor thread.
final class ClientRelay {
    let service: RelayService
    let link: WebSocketLink
    let userId: String
    private var life: RelayLifecycle
    /// Events that arrive while effects run (a close may end the link at once) wait their turn.
    private var queued: [(RelayEvent, Int64)] = []
    private var running = false
    /// Riding a shared session: its key (released when this relay ends).
    private var sharedKey: SharedSessionKey?
    /// The session the route uses: shared, or ours (test, remote).
    private var session: SSHSession?
    private var ownsSession = false
    private var dialer: Dialer?
    /// The stream set up and not yet bridged (a dialed socket or our end of a channel's socket pair).
    private var stream: Int32 = -1
    private var streams: RemoteStreams?
    /// Whether the relay's user is an admin when its request came: a non-admin's streams are held to a share of the
    /// relay buffers and windows (issue #24).
    private var admin = false

    init(service: RelayService, link: WebSocketLink, userId: String) {
        self.service = service
        self.link = link
        self.userId = userId
        self.life = RelayLifecycle(nowMs: Clock.monotonicMs())
    }

    func start() {
        link.onText = { [self] text in self.message(text) }
        link.onEnd = { [self] in self.feed(.ended) }
        link.start()
    }

    func tick(nowMs: Int64) {
        feed(.tick, nowMs: nowMs)
        dialer?.tick(nowMs: nowMs)
        if ownsSession { session?.tick(nowMs: nowMs) }
        link.tick(nowMs: nowMs)
    }

    /// The service is stopping.
    func shutDown() { feed(.shutDown) }

    /// A reload: a relay whose user may no longer use its host, or whose host changed (address, credentials,
    /// pin), ends now instead of riding the old inventory (issue #15).
    func revalidate(_ config: Config) {
        guard let request = life.request else { return }
        let host = config.host(id: request.host.id)
        let user = config.user(id: userId)
        if let host, let user, host == request.host, config.mayUse(host, user) { return }
        feed(.revoked)
    }

    // MARK: events in

    private func message(_ text: [UInt8]) {
        if life.phase == .waiting { return first(text) }
        if life.carriesStreams, let streams { streams.message(text) }
        // local and dynamic: text after `ready` is ignored (§9)
    }

    private func first(_ text: [UInt8]) {
        let config = service.config.get()
        guard let user = config.user(id: userId) else { return feed(.rejected(RelayRequest.accessDenied)) }
        let parsed = RelayRequest.parse(text, config: config, user: user)
        guard let request = parsed.request else { return feed(.rejected(parsed.error ?? RelayRequest.invalidRequest)) }
        admin = user.admin
        Log.info("c2s.request", [("user", user.username), ("host", request.host.displayName),
                                 ("mode", request.mode.rawValue), ("type", request.kind == .open ? "open" : "test"),
                                 ("target", "\(request.targetHost):\(request.targetPort)")])
        feed(.request(request))
    }

    /// A channel open's outcome as an event: the one place that reads it.
    private func opened(_ outcome: StreamOpenOutcome) -> RelayEvent {
        outcome == .opened ? .channelOpened : .channelRefused(outcome)
    }

    private func feed(_ event: RelayEvent, nowMs: Int64 = Clock.monotonicMs()) {
        queued.append((event, nowMs))
        guard !running else { return }
        running = true
        defer { running = false }
        while !queued.isEmpty {
            let (next, at) = queued.removeFirst()
            for effect in life.handle(next, nowMs: at) { perform(effect) }
        }
    }

    // MARK: effects

    private func perform(_ effect: RelayEffect) {
        switch effect {
        case .pauseInput(let paused): link.pauseInput(paused)
        case .dial(let host, let port): dial(host, port)
        case .acquireShared: acquireShared()
        case .startSession(let remote): startSession(remote: remote)
        case .openChannel(let bridge): openChannel(bridge: bridge)
        case .bridge:
            let fd = stream
            stream = -1
            if !link.bridge(fd) { feed(.bridgeFailed) }
        case .startStreams: streams = RemoteStreams(reactor: service.reactor, link: link)
        case .send(let message): link.sendText(Array(JSONWriter.write(message.json).utf8))
        case .warn(let event, let reason): Log.warn(event, [("user", userId), ("reason", reason)])
        case .endStreams: streams?.closeAll()
        case .release: release()
        case .close(let code, let reason): link.close(code, reason)
        case .finished:
            if let request = life.request {
                Log.info("c2s.closed", [("user", userId), ("host", request.host.displayName),
                                        ("mode", request.mode.rawValue), ("code", String(link.closeCode)),
                                        ("sent", String(link.bytesUp)), ("received", String(link.bytesDown))])
            }
            service.remove(self)
        }
    }

    /// The appliance itself: `destinations` judges each resolved address, and each allowed one is tried in turn
    /// (`Dialer`, the rule of every connection out of the appliance); the target's bytes reach the client by splice.
    private func dial(_ host: String, _ port: Int) {
        let dialer = Dialer(reactor: service.reactor, resolver: service.resolver, key: userId, host: host,
                            // the lifecycle bounds the whole dial, as DirectForwarder's setups do
                            port: UInt16(port), perAddressMs: Int64.max,
                            allow: service.destinations.rule(host: host, port: port)) { [self] outcome in
            self.dialer = nil
            if outcome.fd >= 0 {
                TCPSocket.setNoDelay(outcome.fd)
                self.stream = outcome.fd
            }
            self.feed(.dialed(StreamOpenOutcome(dial: outcome.kind, errno: outcome.errno)))
        }
        self.dialer = dialer
        dialer.start()
    }

    private func target() -> SSHTarget? {
        guard let request = life.request else { return nil }
        let built = SSHTargetBuilder.target(request.host, keepaliveInterval: request.host.keepaliveInterval,
                                            keepaliveCountMax: request.host.keepaliveCountMax,
                                            stateDir: service.stateDir, lookupKey: userId, bounded: !admin)
        if built.target == nil { feed(.setupFailed(built.refused?.reason ?? "no SSH target")) }
        return built.target
    }

    private func acquireShared() {
        guard let request = life.request, let target = target() else { return }
        let key = SharedSessionKey(userId: userId, hostId: request.host.id)
        sharedKey = key
        let service = self.service
        service.sessions.acquire(key, owner: ObjectIdentifier(self), make: { up, down in
            SSHSession(reactor: service.reactor, pool: service.pool, target: target, forward: .exit(),
                       maxConnections: service.maxConnections, onUp: up, onDown: down)
        }, lost: { [self] failure in self.feed(.sessionDown(failure)) },
           done: { [self] session, failure in
            guard let session else {
                return self.feed(.sessionDown(failure ?? RelayFailure(.local, detail: "SSH session failed")))
            }
            self.session = session
            self.feed(.sessionUp(grantedPort: 0))
        })
    }

    /// A session of our own: a test's (never the shared one), or a remote forward's whose inbound channels come
    /// here as socket pair ends.
    private func startSession(remote: Bool) {
        guard let request = life.request, let target = target() else { return }
        var forward = SSHForward.exit()
        var inbound: ((Int32) -> Bool)?
        if remote {
            guard let unused = SocketAddress(ip: "127.0.0.1", port: 0) else { return feed(.setupFailed("no address")) }
            forward = .remote(listenHost: request.targetHost, listenPort: request.targetPort, connectTo: unused)
            // a test only checks that the forward is granted: no taker, its connections are refused
            if request.kind == .open { inbound = { [self] fd in self.inbound(fd) } }
        }
        var made: SSHSession?
        let session = SSHSession(reactor: service.reactor, pool: service.pool, target: target, forward: forward,
                                 maxConnections: remote ? service.maxConnections : 1, inbound: inbound,
                                 onUp: { [self] in self.feed(.sessionUp(grantedPort: made?.grantedPort ?? 0)) },
                                 onDown: { [self] failure in self.feed(.sessionDown(failure)) })
        made = session
        self.session = session
        ownsSession = true
        session.start()
    }

    /// A connection to the granted port, carried here by its channel.
    private func inbound(_ fd: Int32) -> Bool {
        guard life.carriesStreams, let streams else { return false }
        streams.add(fd)
        return true
    }

    /// A direct-tcpip channel over one end of a socket pair; the other end is the stream (a test drops it).
    private func openChannel(bridge: Bool) {
        guard let request = life.request, let session else { return feed(.setupFailed("no SSH session")) }
        var ends: [Int32] = [-1, -1]
        guard cl_socketpair(&ends) == 0 else {
            return feed(.setupFailed("no socket pair: \(FileIO.errorText(clinux_errno()))"))
        }
        if bridge { stream = ends[1] } else { CLinux.close(ends[1]) }
        // no room in the session is an outcome too (`overLimit`, `noBuffers`), heard at once
        session.channels.open(fd: ends[0], host: request.targetHost, port: request.targetPort) {
            [self] outcome in self.feed(self.opened(outcome))
        }
    }

    /// Everything this relay set up goes (repeatable).
    private func release() {
        dialer?.cancel()
        dialer = nil
        if stream >= 0 {
            CLinux.close(stream)
            stream = -1
        }
        streams?.close()
        streams = nil
        if let session, ownsSession {
            // later, on the loop: this may run inside one of the session's own callbacks
            service.reactor.post { session.close() }
        }
        session = nil
        ownsSession = false
        if let key = sharedKey {
            sharedKey = nil
            service.sessions.release(key, owner: ObjectIdentifier(self), nowMs: Clock.monotonicMs())
        }
    }
}
