import Testing
@testable import Appliance
import Relay
import CLinux

/// tunnels-api.md §9, one C2S relay's life event by event on a fake clock: every mode's set-up through the
/// appliance itself, a shared session and a session of its own; `ready`; errors and their close codes; the limits.
@Suite struct RelayLifecycleTests {
    struct Harness {
        var nowMs: Int64 = 5_000_000
        var life: RelayLifecycle

        init() { life = RelayLifecycle(nowMs: nowMs) }

        mutating func send(_ event: RelayEvent) -> [RelayEffect] { life.handle(event, nowMs: nowMs) }

        /// Moves the clock by `ms` in ticks of 250 ms (the relay service's), collecting every effect.
        mutating func advance(_ ms: Int64) -> [RelayEffect] {
            var effects: [RelayEffect] = []
            let end = nowMs + ms
            while nowMs < end {
                nowMs = min(end, nowMs + 250)
                effects += send(.tick)
            }
            return effects
        }
    }

    static let appliance: Host = {
        var h = Host(id: 0, name: "appliance", owner: "u-admin")
        h.local = true
        return h
    }()
    static let edge: Host = {
        var h = Host(id: 1, name: "edge", owner: "u-admin")
        h.ip = "192.0.2.10"
        return h
    }()

    static func request(_ kind: RelayRequest.Kind, _ mode: TunnelMode, on host: Host, target: String = "db.lan",
                        port: Int = 5432) -> RelayRequest {
        RelayRequest(kind: kind, mode: mode, host: host, targetHost: target, targetPort: port)
    }

    static let normal = WebSocketLink.Codes.normal, policy = WebSocketLink.Codes.policy
    static let internalError = WebSocketLink.Codes.internalError

    static func refused(_ words: String, _ code: UInt16) -> [RelayEffect] {
        [.send(.error(words)), .release, .close(code: code, reason: "")]
    }
    static let ready: [RelayEffect] = [.send(.ready), .bridge, .pauseInput(false)]
    static let testPassed: [RelayEffect] = [.send(.ready), .release, .close(code: normal, reason: "")]
    static let openFailed = "Failed to open relay"
    static let reachable = "Tunnel target is not reachable from the endpoint host: "

    // MARK: the first message

    @Test func firstMessageDeadlineIs10Seconds() {
        var h = Harness()
        #expect(h.advance(10_000).isEmpty)
        #expect(h.advance(250) == [.release, .close(code: Self.policy, reason: "no request within 10 s")])
        #expect(h.life.phase == .done)
        // a request that arrives after the close is not served
        #expect(h.send(.request(Self.request(.open, .local, on: Self.edge))).isEmpty)
    }

    @Test func aRefusedFirstMessageIsAnErrorThen1008() {
        var h = Harness()
        #expect(h.send(.rejected(RelayRequest.accessDenied)) == Self.refused(RelayRequest.accessDenied, Self.policy))
        #expect(h.life.phase == .done)
        #expect(h.send(.ended) == [.release, .finished])
    }

    // MARK: the appliance itself

    @Test func applianceLocalOpenDialsThenBridges() {
        var h = Harness()
        #expect(h.send(.request(Self.request(.open, .local, on: Self.appliance)))
                == [.pauseInput(true), .dial(host: "db.lan", port: 5432)])
        #expect(h.life.phase == .settingUp && h.life.route == .direct)
        #expect(h.send(.dialed(.opened)) == Self.ready)
        #expect(h.life.phase == .relaying && !h.life.carriesStreams)
        // a relaying stream is not bound by the set-up's limits
        #expect(h.advance(120_000).isEmpty)
        // the client closes: everything goes, once
        #expect(h.send(.ended) == [.release, .finished])
        #expect(h.send(.ended).isEmpty)
    }

    @Test func applianceDynamicOpenDialsTheMessageTarget() {
        var h = Harness()
        let request = Self.request(.open, .dynamic, on: Self.appliance, target: "10.0.0.7", port: 22)
        #expect(h.send(.request(request)) == [.pauseInput(true), .dial(host: "10.0.0.7", port: 22)])
        #expect(h.send(.dialed(.opened)) == Self.ready)
    }

    @Test func applianceDialFailuresAreWordedWithTheirCodes() {
        let cases: [(Dialer.Kind, Int32, [RelayEffect])] = [
            (.unresolved, 0, Self.refused(Self.reachable + "cannot resolve db.lan", Self.internalError)),
            (.notAllowed, 0, Self.refused("Destination not allowed: db.lan:5432", Self.policy)),
            (.refused, ECONNREFUSED, Self.refused(Self.reachable + "connection refused", Self.internalError)),
            (.failed, EHOSTUNREACH, Self.refused(Self.reachable + "host unreachable", Self.internalError)),
            (.timedOut, 0, Self.refused(Self.reachable + "connection timed out", Self.internalError)),
        ]
        for (kind, errno, expected) in cases {
            var h = Harness()
            _ = h.send(.request(Self.request(.open, .local, on: Self.appliance)))
            #expect(h.send(.dialed(StreamOpenOutcome(dial: kind, errno: errno))) == expected, "\(kind)")
            #expect(h.life.phase == .done)
        }
    }

    @Test func applianceDialHas10SecondsForEveryAddress() {
        var h = Harness()
        _ = h.send(.request(Self.request(.open, .local, on: Self.appliance)))
        #expect(h.advance(10_000).isEmpty)
        #expect(h.advance(250) == Self.refused(Self.reachable + "connection timed out", Self.internalError))
        // the dial's late answer finds the relay over (the socket is released by the effect already run)
        #expect(h.send(.dialed(.opened)).isEmpty)
    }

    @Test func applianceTests() {
        // local: the target is dialed, then `ready` and a normal close
        var h = Harness()
        _ = h.send(.request(Self.request(.test, .local, on: Self.appliance)))
        #expect(h.send(.dialed(.opened)) == Self.testPassed)
        // dynamic: nothing to check without a target
        var d = Harness()
        #expect(d.send(.request(Self.request(.test, .dynamic, on: Self.appliance))) == [.pauseInput(true)] + Self.testPassed)
    }

    @Test func remoteOnTheApplianceIsRefused() {
        var h = Harness()
        #expect(h.send(.request(Self.request(.open, .remote, on: Self.appliance)))
                == Self.refused(RelayWording.noRemoteOnAppliance, Self.policy))
    }

    // MARK: a shared session (local and dynamic open through SSH)

    @Test func sharedOpenAcquiresOpensAChannelThenBridges() {
        var h = Harness()
        #expect(h.send(.request(Self.request(.open, .local, on: Self.edge))) == [.pauseInput(true), .acquireShared])
        #expect(h.life.route == .shared)
        // a channel outcome before the session is up is not ours
        #expect(h.send(.channelOpened).isEmpty)
        #expect(h.send(.sessionUp(grantedPort: 0)) == [.openChannel(bridge: true)])
        #expect(h.send(.channelOpened) == Self.ready)
        #expect(h.life.phase == .relaying)
    }

    @Test func channelRefusalsAreNamed() {
        let cases: [(StreamOpenOutcome, String)] = [
            (.prohibited, "SSH forwarding was rejected by the endpoint server: administratively prohibited"),
            (.connectFailed, Self.reachable + "connect failed"),
        ]
        for (outcome, expected) in cases {
            var h = Harness()
            _ = h.send(.request(Self.request(.open, .dynamic, on: Self.edge)))
            _ = h.send(.sessionUp(grantedPort: 0))
            #expect(h.send(.channelRefused(outcome)) == Self.refused(expected, Self.internalError))
        }
        // an outcome with no words of its own: the fixed words, the outcome in the log
        var h = Harness()
        _ = h.send(.request(Self.request(.open, .dynamic, on: Self.edge)))
        _ = h.send(.sessionUp(grantedPort: 0))
        #expect(h.send(.channelRefused(.noBuffers))
                == [.warn(event: "c2s.failed", reason: "stream not opened: no relay buffers free")]
                   + Self.refused(RelayWording.openFailed, Self.internalError))
    }

    @Test func aSessionThatFailsBeforeReadyIsFailedToOpenRelayWithTheReasonInTheLog() {
        var h = Harness()
        _ = h.send(.request(Self.request(.open, .local, on: Self.edge)))
        let failure = RelayFailure(.authRejected, subject: "pi", detail: "password rejected")
        #expect(h.send(.sessionDown(failure))
                == [.warn(event: "c2s.failed", reason: TunnelFailure(failure).reason)]
                + Self.refused(Self.openFailed, Self.internalError))
        // up after down (a late callback) changes nothing
        #expect(h.send(.sessionUp(grantedPort: 0)).isEmpty)
    }

    @Test func aSessionLostWhileRelayingCloses1011() {
        var h = Harness()
        _ = h.send(.request(Self.request(.open, .local, on: Self.edge)))
        _ = h.send(.sessionUp(grantedPort: 0))
        _ = h.send(.channelOpened)
        let failure = RelayFailure(.keepaliveTimeout)
        #expect(h.send(.sessionDown(failure))
                == [.warn(event: "c2s.session_lost", reason: TunnelFailure(failure).reason), .endStreams,
                    .close(code: Self.internalError, reason: "SSH session lost")])
        #expect(h.life.phase == .done)
        #expect(h.send(.sessionDown(failure)).isEmpty)
        #expect(h.send(.ended) == [.release, .finished])
    }

    @Test func localFailuresDuringSetupAndABridgeThatFails() {
        var h = Harness()
        _ = h.send(.request(Self.request(.open, .local, on: Self.edge)))
        _ = h.send(.sessionUp(grantedPort: 0))
        #expect(h.send(.setupFailed("the SSH session has no room for another stream"))
                == [.warn(event: "c2s.failed", reason: "the SSH session has no room for another stream")]
                + Self.refused(Self.openFailed, Self.internalError))
        // a stream that cannot be bridged after `ready`
        var b = Harness()
        _ = b.send(.request(Self.request(.open, .local, on: Self.appliance)))
        _ = b.send(.dialed(.opened))
        #expect(b.send(.bridgeFailed) == Self.refused(Self.openFailed, Self.internalError))
        // a set-up failure after `ready` is not one
        var r = Harness()
        _ = r.send(.request(Self.request(.open, .local, on: Self.appliance)))
        _ = r.send(.dialed(.opened))
        #expect(r.send(.setupFailed("late")).isEmpty)
    }

    @Test func aChannelOpenThatNeverAnswersIsBoundedBy60Seconds() {
        var h = Harness()
        _ = h.send(.request(Self.request(.open, .local, on: Self.edge)))
        #expect(h.advance(30_000).isEmpty)
        _ = h.send(.sessionUp(grantedPort: 0))
        #expect(h.advance(30_000).isEmpty)
        #expect(h.advance(250) == [.warn(event: "c2s.failed", reason: "set-up of local relay timed out after 60 s")]
                + Self.refused(Self.openFailed, Self.internalError))
    }

    // MARK: a session of its own (test through SSH, remote)

    @Test func sshTestsUseASessionOfTheirOwn() {
        // local: a channel is opened, not kept, and the session ends with the relay
        var h = Harness()
        #expect(h.send(.request(Self.request(.test, .local, on: Self.edge))) == [.pauseInput(true), .startSession(remote: false)])
        #expect(h.life.route == .ownSession)
        #expect(h.send(.sessionUp(grantedPort: 0)) == [.openChannel(bridge: false)])
        #expect(h.send(.channelOpened) == Self.testPassed)
        // dynamic: SSH only
        var d = Harness()
        _ = d.send(.request(Self.request(.test, .dynamic, on: Self.edge)))
        #expect(d.send(.sessionUp(grantedPort: 0)) == Self.testPassed)
        // remote: the forward granted is the check
        var r = Harness()
        #expect(r.send(.request(Self.request(.test, .remote, on: Self.edge))) == [.pauseInput(true), .startSession(remote: true)])
        #expect(r.send(.sessionUp(grantedPort: 9000)) == Self.testPassed)
        // the session ending after the test passed is no failure
        #expect(r.send(.sessionDown(RelayFailure(.peerClosed))).isEmpty)
    }

    @Test func remoteOpenIsReadyWithTheGrantedPortThenCarriesStreams() {
        var h = Harness()
        let request = Self.request(.open, .remote, on: Self.edge, target: "127.0.0.1", port: 0)
        #expect(h.send(.request(request)) == [.pauseInput(true), .startSession(remote: true)])
        #expect(!h.life.carriesStreams)
        #expect(h.send(.sessionUp(grantedPort: 40123))
                == [.startStreams, .send(.readyBound(host: "127.0.0.1", port: 40123)), .pauseInput(false)])
        #expect(h.life.carriesStreams)
        let failure = RelayFailure(.peerClosed)
        #expect(h.send(.sessionDown(failure))
                == [.warn(event: "c2s.session_lost", reason: TunnelFailure(failure).reason), .endStreams,
                    .close(code: Self.internalError, reason: "SSH session lost")])
        #expect(!h.life.carriesStreams)
    }

    @Test func aRefusedRemoteForwardIsNamed() {
        var h = Harness()
        _ = h.send(.request(Self.request(.open, .remote, on: Self.edge, target: "127.0.0.1", port: 9000)))
        let failure = RelayFailure(.forwardRefused, subject: "9000")
        let words = "Remote port is not available on the endpoint server: " + TunnelFailure(failure).reason
        #expect(h.send(.sessionDown(failure)) == Self.refused(words, Self.internalError))
    }

    // MARK: either side ends it

    @Test func theClientClosingDuringSetupReleasesAndLateOutcomesAreIgnored() {
        var h = Harness()
        _ = h.send(.request(Self.request(.open, .local, on: Self.edge)))
        #expect(h.send(.ended) == [.release, .finished])
        #expect(h.send(.sessionUp(grantedPort: 0)).isEmpty)
        #expect(h.send(.channelOpened).isEmpty)
        #expect(h.advance(70_000).isEmpty)
    }

    @Test func aRevokeEndsSetupOrRelayWith1008() {
        let revoked: [RelayEffect] = [.warn(event: "c2s.revoked", reason: "access changed"), .release,
                                      .close(code: Self.policy, reason: "access changed")]
        var waiting = Harness()
        #expect(waiting.send(.revoked).isEmpty)
        var setting = Harness()
        _ = setting.send(.request(Self.request(.open, .local, on: Self.edge)))
        #expect(setting.send(.revoked) == revoked)
        var relaying = Harness()
        _ = relaying.send(.request(Self.request(.open, .local, on: Self.appliance)))
        _ = relaying.send(.dialed(.opened))
        #expect(relaying.send(.revoked) == revoked)
        #expect(relaying.send(.revoked).isEmpty)
    }

    @Test func shutDownClosesGoingAwayInAnyPhase() {
        let down: [RelayEffect] = [.release, .close(code: WebSocketLink.Codes.goingAway, reason: "shutting down")]
        var waiting = Harness()
        #expect(waiting.send(.shutDown) == down)
        var relaying = Harness()
        _ = relaying.send(.request(Self.request(.open, .remote, on: Self.edge)))
        _ = relaying.send(.sessionUp(grantedPort: 1))
        #expect(relaying.send(.shutDown) == down)
        #expect(relaying.life.phase == .done)
    }

    // MARK: messages

    @Test func messagesHaveExactlyTheFieldsOfSection9() {
        func text(_ m: RelayMessage) -> String { JSONWriter.write(m.json) }
        #expect(text(.ready) == #"{"type":"ready"}"#)
        #expect(text(.readyBound(host: "0.0.0.0", port: 8080)) == #"{"type":"ready","bindHost":"0.0.0.0","bindPort":8080}"#)
        #expect(text(.error("Access denied to this host")) == #"{"type":"error","error":"Access denied to this host"}"#)
    }
}
