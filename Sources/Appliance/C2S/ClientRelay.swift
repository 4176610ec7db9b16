import CLinux
import Relay

/// One C2S WebSocket (tunnels-api.md §9) from its first message to its end: checks the request, sets up the
/// stream (a channel of the user's shared SSH session, a direct connection when the relay host is the
/// appliance, or a remote forward with its own session), answers `ready` or `error`, and then relays. Runs on
/// the relay service's reactor thread.
final class ClientRelay {
    static let firstMessageMs: Int64 = 10_000

    enum Phase { case waiting, settingUp, relaying, done }

    let service: RelayService
    let link: WebSocketLink
    let userId: String
    private let startedMs = Clock.monotonicMs()
    private var phase = Phase.waiting
    private var request: RelayRequest?
    /// Riding a shared session: its key (released when this relay ends).
    private var sharedKey: SharedSessions.Key?
    /// Test relays and remote forwards have a session of their own.
    private var ownSession: SSHSession?
    private var connector: Connector?
    private var streams: RemoteStreams?

    init(service: RelayService, link: WebSocketLink, userId: String) {
        self.service = service
        self.link = link
        self.userId = userId
    }

    func start() {
        link.onText = { [self] text in self.message(text) }
        link.onEnd = { [self] in self.ended() }
        link.start()
    }

    func tick(nowMs: Int64) {
        if phase == .waiting && nowMs - startedMs > ClientRelay.firstMessageMs {
            phase = .done
            link.close(WebSocketLink.Codes.policy, "no request within 10 s")
        }
        connector?.tick(nowMs: nowMs)
        ownSession?.tick(nowMs: nowMs)
        link.tick(nowMs: nowMs)
    }

    /// The service is stopping.
    func shutDown() {
        cleanUp()
        link.close(WebSocketLink.Codes.goingAway, "shutting down")
    }

    /// A reload: a relay whose user may no longer use its host, or whose host changed (address, credentials,
    /// pin), ends now instead of riding the old inventory (issue #15).
    func revalidate(_ config: Config) {
        guard phase != .done, let request else { return }
        let host = config.host(id: request.host.id)
        let user = config.user(id: userId)
        if let host, let user, host == request.host, config.mayUse(host, user) { return }
        Log.warn("c2s.revoked", [("user", userId), ("host", request.host.displayName)])
        phase = .done
        cleanUp()
        link.close(WebSocketLink.Codes.policy, "access changed")
    }

    // MARK: messages

    private func message(_ text: [UInt8]) {
        if phase == .waiting { return first(text) }
        if phase == .relaying, let streams, request?.mode == .remote { streams.message(text) }
        // local and dynamic: text after `ready` is ignored (§9)
    }

    private func first(_ text: [UInt8]) {
        phase = .settingUp
        // the client's next frames wait in the kernel until the stream is ready for them
        link.pauseInput(true)
        let config = service.config.get()
        guard let user = config.user(id: userId) else { return refuse(RelayRequest.accessDenied) }
        let parsed = RelayRequest.parse(text, config: config, user: user)
        guard let request = parsed.request else { return refuse(parsed.error ?? RelayRequest.invalidRequest) }
        self.request = request
        Log.info("c2s.request", [("user", user.username), ("host", request.host.displayName),
                                 ("mode", request.mode.rawValue), ("type", request.kind == .open ? "open" : "test"),
                                 ("target", "\(request.targetHost):\(request.targetPort)")])
        if request.host.local { return throughAppliance(request) }
        let built = SSHTargetBuilder.target(request.host, keepaliveInterval: request.host.keepaliveInterval,
                                            keepaliveCountMax: request.host.keepaliveCountMax,
                                            stateDir: service.stateDir, lookupKey: userId, bounded: !user.admin)
        guard let target = built.target else { return fail(built.refused?.reason ?? "no SSH target") }
        if request.mode == .remote { return remote(request, target) }
        if request.kind == .test { return test(request, target) }
        let key = SharedSessions.Key(userId: userId, hostId: request.host.id)
        sharedKey = key
        service.sessions.acquire(key, owner: ObjectIdentifier(self), target: target,
                                 lost: { [self] failure in self.sessionLost(TunnelFailure(failure).reason) },
                                 done: { [self] session, failure in
                                     guard let session else {
                                         return self.fail(failure.map { TunnelFailure($0).reason } ?? "SSH session failed")
                                     }
                                     self.openChannel(session, request)
                                 })
    }

    // MARK: local and dynamic

    private func openChannel(_ session: SSHSession, _ request: RelayRequest) {
        guard phase == .settingUp else { return }
        var ends: [Int32] = [-1, -1]
        guard cl_socketpair(&ends) == 0 else { return fail("no socket pair: \(FileIO.errorText(clinux_errno()))") }
        let accepted = session.channels.open(fd: ends[0], host: request.targetHost, port: request.targetPort) { [self] refusal in
            guard self.phase == .settingUp else {
                CLinux.close(ends[1])
                return
            }
            if let refusal {
                CLinux.close(ends[1])
                return self.refuse(RelayWording.channelRefusal(refusal), code: WebSocketLink.Codes.internalError)
            }
            self.relay(ends[1])
        }
        if !accepted {
            CLinux.close(ends[1])
            fail("the SSH session has no room for another stream")
        }
    }

    /// The stream is up: `ready`, then binary frames both ways.
    private func relay(_ stream: Int32) {
        send(.object([("type", .string("ready"))]))
        guard link.bridge(stream) else { return refuse(RelayWording.openFailed, code: WebSocketLink.Codes.internalError) }
        phase = .relaying
        link.pauseInput(false)
    }

    /// The appliance itself: no SSH; `destinations` decides, and the target's bytes reach the client by splice.
    private func throughAppliance(_ request: RelayRequest) {
        if request.mode == .remote {
            return refuse(RelayWording.noRemoteOnAppliance, code: WebSocketLink.Codes.policy)
        }
        if request.kind == .test && request.mode == .dynamic { return testPassed() }
        let host = request.targetHost, port = request.targetPort
        let judge = { [self] (addresses: [String]) in
            guard self.phase == .settingUp else { return }
            guard !addresses.isEmpty else {
                return self.refuse(RelayWording.unreachable("cannot resolve \(host)"), code: WebSocketLink.Codes.internalError)
            }
            let policy = self.service.destinations.current()
            guard let address = addresses.first(where: { policy.allows(host: host, address: $0, port: port) }),
                  let socketAddress = SocketAddress(ip: address, port: UInt16(port)) else {
                return self.refuse(DestinationPolicy.refusal(host: host, port: port), code: WebSocketLink.Codes.policy)
            }
            let connector = Connector(reactor: self.service.reactor)
            self.connector = connector
            connector.start(socketAddress) { [self] fd, error in
                self.connector = nil
                guard self.phase == .settingUp else {
                    if fd >= 0 { CLinux.close(fd) }
                    return
                }
                guard fd >= 0 else {
                    return self.refuse(RelayWording.unreachable(error ?? "connect failed"),
                                       code: WebSocketLink.Codes.internalError)
                }
                if request.kind == .test {
                    CLinux.close(fd)
                    return self.testPassed()
                }
                self.relay(fd)
            }
        }
        if SocketAddress(ip: host, port: UInt16(port)) != nil { return judge([host]) }
        service.resolver.resolve(host, key: userId, on: service.reactor, judge)
    }

    // MARK: test

    /// A session of its own: checking must not lean on (or disturb) a session the user already has.
    private func test(_ request: RelayRequest, _ target: SSHTarget) {
        let session = SSHSession(reactor: service.reactor, pool: service.pool, target: target, forward: .exit(),
                                 maxConnections: 1,
                                 onUp: { [self] in self.testSessionUp(request) },
                                 onDown: { [self] failure in self.fail(TunnelFailure(failure).reason) })
        ownSession = session
        session.start()
    }

    private func testSessionUp(_ request: RelayRequest) {
        guard let session = ownSession, phase == .settingUp else { return }
        if request.mode == .dynamic { return testPassed() }
        var ends: [Int32] = [-1, -1]
        guard cl_socketpair(&ends) == 0 else { return fail("no socket pair") }
        CLinux.close(ends[1])
        let accepted = session.channels.open(fd: ends[0], host: request.targetHost, port: request.targetPort) { [self] refusal in
            guard self.phase == .settingUp else { return }
            if let refusal {
                return self.refuse(RelayWording.channelRefusal(refusal), code: WebSocketLink.Codes.internalError)
            }
            self.testPassed()
        }
        if !accepted { fail("the SSH session refused the test stream") }
    }

    private func testPassed() {
        send(.object([("type", .string("ready"))]))
        phase = .done
        closeOwnSession()
        link.close(WebSocketLink.Codes.normal)
    }

    // MARK: remote

    private func remote(_ request: RelayRequest, _ target: SSHTarget) {
        guard let unused = SocketAddress(ip: "127.0.0.1", port: 0) else { return fail("no address") }
        let forward = SSHForward.remote(listenHost: request.targetHost, listenPort: request.targetPort, connectTo: unused)
        let session = SSHSession(reactor: service.reactor, pool: service.pool, target: target, forward: forward,
                                 maxConnections: service.maxConnections, inbound: inboundTaker(request),
                                 onUp: { [self] in self.remoteUp(request) },
                                 onDown: { [self] failure in self.remoteDown(failure) })
        ownSession = session
        session.start()
    }

    /// A relay's streams from the server; a test only checks that the forward is granted (no taker: refused).
    private func inboundTaker(_ request: RelayRequest) -> ((Int32) -> Bool)? {
        guard request.kind == .open else { return nil }
        return { [self] fd in self.inbound(fd) }
    }

    private func remoteUp(_ request: RelayRequest) {
        guard phase == .settingUp, let session = ownSession else { return }
        if request.kind == .test { return testPassed() }
        streams = RemoteStreams(reactor: service.reactor, link: link)
        send(.object([("type", .string("ready")), ("bindHost", .string(request.targetHost)),
                      ("bindPort", .int(session.grantedPort))]))
        phase = .relaying
        link.pauseInput(false)
    }

    private func remoteDown(_ failure: RelayFailure) {
        if phase == .settingUp, let refusal = RelayWording.remoteRefusal(failure) {
            return refuse(refusal, code: WebSocketLink.Codes.internalError)
        }
        if phase == .settingUp { return fail(TunnelFailure(failure).reason) }
        sessionLost(TunnelFailure(failure).reason)
    }

    /// A connection to the granted port, carried here by its channel.
    private func inbound(_ fd: Int32) -> Bool {
        guard phase == .relaying, let streams else { return false }
        streams.add(fd)
        return true
    }

    // MARK: endings

    /// The SSH side failed during setup: a fixed answer to the client, the detail in the log only.
    private func fail(_ reason: String) {
        guard phase == .settingUp else { return }
        Log.warn("c2s.failed", [("user", userId), ("reason", reason)])
        refuse(RelayWording.openFailed, code: WebSocketLink.Codes.internalError)
    }

    /// The session under a running relay died.
    private func sessionLost(_ reason: String) {
        guard phase != .done else { return }
        Log.warn("c2s.session_lost", [("user", userId), ("reason", reason)])
        phase = .done
        streams?.closeAll()
        link.close(WebSocketLink.Codes.internalError, "SSH session lost")
    }

    private func refuse(_ message: String, code: UInt16 = WebSocketLink.Codes.policy) {
        guard phase != .done else { return }
        phase = .done
        send(.object([("type", .string("error")), ("error", .string(message))]))
        cleanUp()
        link.close(code)
    }

    private func send(_ value: JSONValue) {
        link.sendText(Array(JSONWriter.write(value).utf8))
    }

    private func ended() {
        if let request {
            Log.info("c2s.closed", [("user", userId), ("host", request.host.displayName), ("mode", request.mode.rawValue),
                                    ("code", String(link.closeCode)), ("sent", String(link.bytesUp)),
                                    ("received", String(link.bytesDown))])
        }
        phase = .done
        cleanUp()
        service.remove(self)
    }

    private func cleanUp() {
        connector?.cancel()
        connector = nil
        streams?.close()
        streams = nil
        closeOwnSession()
        if let key = sharedKey {
            sharedKey = nil
            service.sessions.release(key, owner: ObjectIdentifier(self))
        }
    }

    /// Later, on the loop: this may run inside one of the session's own callbacks.
    private func closeOwnSession() {
        guard let session = ownSession else { return }
        ownSession = nil
        service.reactor.post { session.close() }
    }
}
