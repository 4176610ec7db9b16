import Relay

/// What happens to one C2S relay (tunnels-api.md §9), as `ClientRelay` observes it. (Payload enums are sound in
/// the Embedded build: issue #25 found the "wrong case" symptom to be same-named constant arrays, see SOCKS5.pair.)
enum RelayEvent {
    /// The first message, parsed and allowed (`RelayRequest.parse`).
    case request(RelayRequest)
    /// The first message was refused: the words `RelayRequest.parse` chose (then 1008).
    case rejected(String)
    /// The route's SSH session is ready (a shared one acquired, or our own up); `grantedPort`: remote forwards.
    case sessionUp(grantedPort: Int)
    /// The route's SSH session failed, or died later.
    case sessionDown(RelayFailure)
    /// A resource here failed during set-up (no socket pair, no SSH target, no room in the session): the detail
    /// goes to the log only.
    case setupFailed(String)
    /// The appliance-itself route: the dial's outcome (`StreamOpenOutcome(dial:errno:)`).
    case dialed(StreamOpenOutcome)
    /// The direct-tcpip channel to the target opened.
    case channelOpened
    /// The channel did not open: why, as the Relay module classified it.
    case channelRefused(StreamOpenOutcome)
    /// The stream could not be handed to the WebSocket (no splice pipe).
    case bridgeFailed
    /// A reload took the host (or the user's access to it) away.
    case revoked
    /// The relay service stops.
    case shutDown
    /// The WebSocket ended (the client closed, hung up, or our close completed).
    case ended
    /// Time passed: the first-message deadline, the dial's and the set-up's limits.
    case tick
}

/// A text message to the client (§9: exactly these fields).
enum RelayMessage: Equatable {
    case ready
    /// Remote mode: where the server listens.
    case readyBound(host: String, port: Int)
    case error(String)

    var json: JSONValue {
        switch self {
        case .ready: return .object([("type", .string("ready"))])
        case .readyBound(let host, let port):
            return .object([("type", .string("ready")), ("bindHost", .string(host)), ("bindPort", .int(port))])
        case .error(let text): return .object([("type", .string("error")), ("error", .string(text))])
        }
    }
}

/// One thing `ClientRelay` does, in the order given.
enum RelayEffect: Equatable {
    /// Stop (or resume) reading the client's frames: they wait in the kernel while the stream is set up.
    case pauseInput(Bool)
    /// The appliance itself: resolve, judge each address by `destinations`, connect each allowed one in turn.
    case dial(host: String, port: Int)
    /// Ride the user's shared session to the host (`SharedSessions`).
    case acquireShared
    /// A session of our own: a `tcpip-forward` (remote) or none (test).
    case startSession(remote: Bool)
    /// A direct-tcpip channel to the target; `bridge`: kept for the relay (else a test: dropped once open).
    case openChannel(bridge: Bool)
    /// The stream set up (dialed socket or channel end) goes to the WebSocket: binary frames both ways.
    case bridge
    /// Remote mode: the table of the server's inbound streams.
    case startStreams
    case send(RelayMessage)
    /// A warning with the detail the client is not told.
    case warn(event: String, reason: String)
    /// The remote streams end; their `close` messages still reach the client (the session under them died).
    case endStreams
    /// Everything set up goes: a dial in progress, an unbridged stream, our own session, the shared session's
    /// share, the remote streams (silently). Safe to repeat.
    case release
    case close(code: UInt16, reason: String)
    /// The relay is over: the service forgets it.
    case finished
}

/// One C2S relay's life as a value: no clock, no I/O. It takes an event and the current time (monotonic
/// milliseconds, passed in) and answers the effects to perform. `ClientRelay` performs them and feeds the outcomes
/// back. Routes: the appliance itself (dial), a channel of the user's shared session (open), a session of our
/// own (test through SSH, remote).
struct RelayLifecycle {
    static let firstMessageMs: Int64 = 10_000
    /// The appliance itself: the whole dial, every address tried, within this (as `DirectForwarder`'s setups).
    static let dialMs: Int64 = 10_000
    /// Anything else before `ready` (the SSH session has its own set-up limits; a channel open may still hang).
    static let setupMs: Int64 = 60_000

    enum Phase: UInt8 { case waiting, settingUp, relaying, done }
    enum Route: UInt8 { case none, direct, shared, ownSession }

    private(set) var phase = Phase.waiting
    private(set) var route = Route.none
    private(set) var request: RelayRequest?
    private let startedMs: Int64
    private var setupStartedMs: Int64 = 0
    private var sessionIsUp = false
    private var finished = false

    init(nowMs: Int64) { startedMs = nowMs }

    /// Remote mode once `ready`: client text messages are stream commands, and the server's connections are taken.
    var carriesStreams: Bool { phase == .relaying && request?.mode == .remote }

    mutating func handle(_ event: RelayEvent, nowMs: Int64) -> [RelayEffect] {
        switch event {
        case .request(let parsed):
            guard phase == .waiting else { return [] }
            return start(parsed, nowMs: nowMs)
        case .rejected(let words):
            guard phase == .waiting else { return [] }
            return refuse(words, code: WebSocketLink.Codes.policy)
        case .sessionUp(let grantedPort):
            guard phase == .settingUp, route == .shared || route == .ownSession, let request else { return [] }
            sessionIsUp = true
            return sessionUp(request, grantedPort: grantedPort)
        case .sessionDown(let failure):
            return sessionDown(failure)
        case .setupFailed(let detail):
            return fail(detail)
        case .dialed(let outcome):
            guard phase == .settingUp, route == .direct, let request else { return [] }
            guard outcome == .opened else { return streamRefused(outcome, request) }
            return request.kind == .test ? testPassed() : streamReady()
        case .channelOpened:
            guard phase == .settingUp, sessionIsUp, let request else { return [] }
            return request.kind == .test ? testPassed() : streamReady()
        case .channelRefused(let outcome):
            guard phase == .settingUp, let request else { return [] }
            return streamRefused(outcome, request)
        case .bridgeFailed:
            guard phase == .relaying else { return [] }
            return refuse(RelayWording.openFailed, code: WebSocketLink.Codes.internalError)
        case .revoked:
            guard phase == .settingUp || phase == .relaying else { return [] }
            phase = .done
            return [.warn(event: "c2s.revoked", reason: "access changed"), .release,
                    .close(code: WebSocketLink.Codes.policy, reason: "access changed")]
        case .shutDown:
            phase = .done
            return [.release, .close(code: WebSocketLink.Codes.goingAway, reason: "shutting down")]
        case .ended:
            phase = .done
            guard !finished else { return [] }
            finished = true
            return [.release, .finished]
        case .tick:
            return tick(nowMs: nowMs)
        }
    }

    // MARK: set-up

    private mutating func start(_ parsed: RelayRequest, nowMs: Int64) -> [RelayEffect] {
        request = parsed
        phase = .settingUp
        setupStartedMs = nowMs
        var effects: [RelayEffect] = [.pauseInput(true)]
        if parsed.host.local {
            if parsed.mode == .remote { return refuse(RelayWording.noRemoteOnAppliance, code: WebSocketLink.Codes.policy) }
            // a dynamic test through the appliance has nothing to check: the client names no target
            if parsed.kind == .test && parsed.mode == .dynamic { return effects + testPassed() }
            route = .direct
            effects.append(.dial(host: parsed.targetHost, port: parsed.targetPort))
        } else if parsed.mode == .remote || parsed.kind == .test {
            // a test never leans on (or disturbs) a session the user already has
            route = .ownSession
            effects.append(.startSession(remote: parsed.mode == .remote))
        } else {
            route = .shared
            effects.append(.acquireShared)
        }
        return effects
    }

    private mutating func sessionUp(_ request: RelayRequest, grantedPort: Int) -> [RelayEffect] {
        if request.mode == .remote {
            if request.kind == .test { return testPassed() }
            phase = .relaying
            return [.startStreams, .send(.readyBound(host: request.targetHost, port: grantedPort)), .pauseInput(false)]
        }
        if request.kind == .test && request.mode == .dynamic { return testPassed() }
        return [.openChannel(bridge: request.kind == .open)]
    }

    /// Before `ready` a session failure is the set-up's (named when a forward was refused); after it, the relay's
    /// streams end with it.
    private mutating func sessionDown(_ failure: RelayFailure) -> [RelayEffect] {
        guard route == .shared || route == .ownSession else { return [] }
        if phase == .settingUp {
            if let words = RelayWording.remoteRefusal(failure) {
                return refuse(words, code: WebSocketLink.Codes.internalError)
            }
            return fail(TunnelFailure(failure).reason)
        }
        guard phase == .relaying else { return [] }
        phase = .done
        return [.warn(event: "c2s.session_lost", reason: TunnelFailure(failure).reason), .endStreams,
                .close(code: WebSocketLink.Codes.internalError, reason: "SSH session lost")]
    }

    private mutating func tick(nowMs: Int64) -> [RelayEffect] {
        if phase == .waiting && nowMs - startedMs > RelayLifecycle.firstMessageMs {
            phase = .done
            return [.release, .close(code: WebSocketLink.Codes.policy, reason: "no request within 10 s")]
        }
        guard phase == .settingUp, let request else { return [] }
        if route == .direct && nowMs - setupStartedMs > RelayLifecycle.dialMs {
            return streamRefused(.timedOut, request)
        }
        if nowMs - setupStartedMs > RelayLifecycle.setupMs {
            return fail("set-up of \(request.mode.rawValue) relay timed out after \(RelayLifecycle.setupMs / 1000) s")
        }
        return []
    }

    // MARK: outcomes

    /// `ready`, then binary frames both ways.
    private mutating func streamReady() -> [RelayEffect] {
        phase = .relaying
        return [.send(.ready), .bridge, .pauseInput(false)]
    }

    /// A test answers `ready` and ends what it set up (§9).
    private mutating func testPassed() -> [RelayEffect] {
        phase = .done
        return [.send(.ready), .release, .close(code: WebSocketLink.Codes.normal, reason: "")]
    }

    /// A failure here during set-up: the fixed words to the client, the detail to the log only.
    private mutating func fail(_ detail: String) -> [RelayEffect] {
        guard phase == .settingUp else { return [] }
        return [.warn(event: "c2s.failed", reason: detail)]
            + refuse(RelayWording.openFailed, code: WebSocketLink.Codes.internalError)
    }

    /// A stream that did not open: §9's words and close code from the outcome alone (`RelayWording.stream`); an
    /// outcome without words of its own is a failure here (fixed words, the outcome in the log).
    private mutating func streamRefused(_ outcome: StreamOpenOutcome, _ request: RelayRequest) -> [RelayEffect] {
        let (message, code) = RelayWording.stream(outcome, host: request.targetHost, port: request.targetPort)
        if message == RelayWording.openFailed { return fail("stream not opened: " + outcome.description) }
        return refuse(message, code: code)
    }

    /// An `error` message, then the close.
    private mutating func refuse(_ words: String, code: UInt16) -> [RelayEffect] {
        phase = .done
        return [.send(.error(words)), .release, .close(code: code, reason: "")]
    }
}
