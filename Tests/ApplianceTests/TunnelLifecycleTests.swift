import Testing
@testable import Appliance
import Relay
import CLinux

/// tunnels-api.md §8, transition by transition, on a fake clock: the lifecycle never reads the real one.
@Suite struct TunnelLifecycleTests {
    /// The lifecycle and a clock that only moves when told.
    struct Harness {
        var life = TunnelLifecycle()
        var nowMs: Int64 = 1_000_000

        mutating func send(_ event: TunnelEvent) -> TunnelStep { life.handle(event, nowMs: nowMs) }

        /// Moves the clock by `ms` in ticks of 200 ms (the manager's), collecting every step.
        mutating func advance(_ ms: Int64) -> [TunnelStep] {
            var steps: [TunnelStep] = []
            let end = nowMs + ms
            while nowMs < end {
                nowMs = min(end, nowMs + 200)
                let step = send(.tick)
                if step != .none { steps.append(step) }
            }
            return steps
        }

        mutating func connect(maxRetries: Int = 3, retryIntervalMs: Int = 5000) -> TunnelStep {
            send(.connect(maxRetries: maxRetries, retryIntervalMs: retryIntervalMs))
        }
    }

    static let refused = TunnelFailure(RelayFailure.connect(SocketAddress(ip: "127.0.0.1", port: 22)!, errno: ECONNREFUSED))
    static let keepalive = TunnelFailure(RelayFailure(.keepaliveTimeout))
    static let auth = TunnelFailure(RelayFailure(.authRejected, subject: "ops", detail: "password rejected"))

    func states(_ step: TunnelStep) -> [TunnelState] { step.statuses.map { $0.state } }

    @Test func connectThenConnected() {
        var h = Harness()
        #expect(h.life.phase == .idle && h.life.status.state == .disconnected)
        let step = h.connect()
        #expect(step.startAttempt && !step.stopAttempt)
        #expect(states(step) == [.connecting])
        let up = h.send(.connected)
        #expect(states(up) == [.connected] && !up.startAttempt && !up.stopAttempt)
        #expect(h.life.phase == .connected)
        #expect(up.statuses[0].reason == nil && up.statuses[0].retryCount == nil)
    }

    @Test func failedThenRetryingThenWaitingCountdownThenNewAttempt() {
        var h = Harness()
        _ = h.connect(maxRetries: 3, retryIntervalMs: 3000)
        let failed = h.send(.attemptFailed(Self.refused))
        #expect(failed.stopAttempt && !failed.startAttempt)
        #expect(states(failed) == [.failed, .retrying, .waiting])
        let (first, retrying, waiting) = (failed.statuses[0], failed.statuses[1], failed.statuses[2])
        #expect(first.reason == "SSH connection to 127.0.0.1:22 failed: connection refused")
        #expect(first.errorType == .NETWORK_ERROR && first.retryCount == nil)
        #expect(retrying.retryCount == 1 && retrying.maxRetries == 3 && retrying.nextRetryInMs == 3000)
        #expect(retrying.reason == first.reason && retrying.errorType == .NETWORK_ERROR)
        #expect(waiting.nextRetryIn == 3 && waiting.nextRetryInMs == nil && waiting.reason == first.reason)
        #expect(h.life.phase == .waiting)

        // counts down by one each second, to 1
        var steps = h.advance(1000)
        #expect(steps.count == 1 && steps[0].statuses.map { $0.nextRetryIn } == [2])
        steps = h.advance(1000)
        #expect(steps.count == 1 && steps[0].statuses.map { $0.nextRetryIn } == [1])
        #expect(!steps[0].startAttempt)
        // then a new attempt that leaves the status as it is, `waiting` with the countdown's last value, until it
        // connects or fails (Termix renders the countdown from nextRetryIn)
        steps = h.advance(1000)
        #expect(steps.count == 1 && steps[0].startAttempt && !steps[0].stopAttempt && steps[0].statuses.isEmpty)
        #expect(h.life.status.state == .waiting && h.life.status.nextRetryIn == 1)
        #expect(h.life.status.retryCount == 1 && h.life.status.reason == first.reason)
        #expect(h.life.phase == .attempting)
        #expect(states(h.send(.connected)) == [.connected])
    }

    @Test func waitingStartsAtTheCeilingOfTheInterval() {
        var h = Harness()
        _ = h.connect(maxRetries: 3, retryIntervalMs: 1500)
        let failed = h.send(.attemptFailed(Self.refused))
        #expect(failed.statuses[1].nextRetryInMs == 1500)
        #expect(JSONWriter.write(failed.statuses[1].json()).contains(#""nextRetryIn":1.5"#))
        #expect(failed.statuses[2].nextRetryIn == 2)
        var h2 = Harness()
        _ = h2.connect(maxRetries: 3, retryIntervalMs: 200)
        #expect(h2.send(.attemptFailed(Self.refused)).statuses[2].nextRetryIn == 1)
        #expect(h2.advance(1000).first?.startAttempt == true)
    }

    @Test func exhaustionIsTerminalWithThePrefixOnce() {
        var h = Harness()
        _ = h.connect(maxRetries: 1, retryIntervalMs: 1000)
        #expect(states(h.send(.attemptFailed(Self.refused))) == [.failed, .retrying, .waiting])
        #expect(h.advance(1000).first?.startAttempt == true)
        let last = h.send(.attemptFailed(Self.refused))
        #expect(states(last) == [.failed, .failed])
        let exhausted = last.statuses[1]
        #expect(exhausted.retryExhausted == true)
        #expect(exhausted.reason == "Max retries exhausted: SSH connection to 127.0.0.1:22 failed: connection refused")
        #expect(exhausted.errorType == .NETWORK_ERROR)
        #expect(exhausted.retryCount == nil && exhausted.nextRetryIn == nil)
        #expect(h.life.phase == .idle && !h.life.isActive)
        #expect(h.advance(10_000).isEmpty)
    }

    @Test func unlimitedRetriesNeverExhaust() {
        var h = Harness()
        _ = h.connect(maxRetries: -1, retryIntervalMs: 1000)
        for round in 1...20 {
            let failed = h.send(.attemptFailed(Self.refused))
            #expect(states(failed) == [.failed, .retrying, .waiting])
            #expect(failed.statuses[1].retryCount == round && failed.statuses[1].maxRetries == -1)
            #expect(h.advance(1000).first?.startAttempt == true)
        }
    }

    @Test func authenticationAndBindFailuresAreNotRetried() {
        let terminal: [TunnelFailure] = [
            Self.auth,
            TunnelFailure(RelayFailure(.hostKeyMismatch, subject: "edge")),
            TunnelFailure(RelayFailure(.listenFailed, subject: "127.0.0.1:8080", detail: "address already in use")),
            TunnelFailure(RelayFailure(.forwardRefused, subject: "8080")),
            .bindNotAllowed("0.0.0.0"), .destinationNotAllowed(host: "10.0.0.1", port: 22), .endpointNotFound("db"),
            .keyUnreadable,
        ]
        for failure in terminal {
            var h = Harness()
            _ = h.connect(maxRetries: -1)
            let step = h.send(.attemptFailed(failure))
            #expect(states(step) == [.failed], "\(failure.reason)")
            #expect(step.statuses[0].reason == failure.reason && step.statuses[0].retryCount == nil)
            #expect(!h.life.isActive && h.advance(10_000).isEmpty)
        }
    }

    @Test func aTerminalFailureOfAConnectedTunnelIsDisconnectedThenFailed() {
        var h = Harness()
        _ = h.connect()
        _ = h.send(.connected)
        let step = h.send(.sessionLost(Self.auth))
        #expect(step.stopAttempt && states(step) == [.disconnected, .failed])
        #expect(step.statuses.allSatisfy { $0.errorType == .AUTHENTICATION_FAILED && $0.reason == Self.auth.reason })
    }

    @Test func sessionLostIsDisconnectedThenTheRetryPath() {
        var h = Harness()
        _ = h.connect()
        _ = h.send(.connected)
        let step = h.send(.sessionLost(Self.keepalive))
        #expect(step.stopAttempt && states(step) == [.disconnected, .retrying, .waiting])
        #expect(step.statuses[0].reason == "Keepalive timeout" && step.statuses[0].errorType == .TIMEOUT)
        #expect(step.statuses[2].reason == "Keepalive timeout" && step.statuses[2].errorType == .TIMEOUT)
        #expect(step.statuses[1].retryCount == 1)
    }

    @Test func aSessionLostBeforeItWasUpIsAFailure() {
        var h = Harness()
        _ = h.connect()
        #expect(states(h.send(.sessionLost(Self.keepalive))) == [.failed, .retrying, .waiting])
    }

    @Test func retryCountResetsAfterThirtySecondsConnected() {
        var h = Harness()
        _ = h.connect(maxRetries: 5, retryIntervalMs: 1000)
        _ = h.send(.attemptFailed(Self.refused))
        _ = h.send(.attemptFailed(Self.refused))   // ignored: nothing holds an attempt while waiting
        #expect(h.life.retryCount == 1)
        _ = h.advance(1000)
        _ = h.send(.connected)
        #expect(h.advance(29_800).isEmpty)
        #expect(h.life.retryCount == 1)   // 29.8 s: not yet
        #expect(h.advance(200).isEmpty)    // 30 s: reset, and no status change shows it
        #expect(h.life.retryCount == 0)
        let lost = h.send(.sessionLost(Self.keepalive))
        #expect(lost.statuses[1].retryCount == 1)
    }

    @Test func retryCountKeepsAddingUpWhenTheTunnelDropsSooner() {
        var h = Harness()
        _ = h.connect(maxRetries: 2, retryIntervalMs: 1000)
        _ = h.send(.attemptFailed(Self.refused))
        _ = h.advance(1000)
        _ = h.send(.connected)
        _ = h.advance(29_000)
        let lost = h.send(.sessionLost(Self.keepalive))
        #expect(lost.statuses[1].retryCount == 2)
        _ = h.advance(1000)
        _ = h.send(.connected)
        _ = h.advance(10_000)
        let last = h.send(.sessionLost(Self.keepalive))
        #expect(states(last) == [.disconnected, .failed] && last.statuses[1].retryExhausted == true)
        #expect(last.statuses[1].reason == "Max retries exhausted: Keepalive timeout")
    }

    @Test func theWatchdogBoundsAnAttemptToSixtySeconds() {
        var h = Harness()
        _ = h.connect(maxRetries: 3, retryIntervalMs: 5000)
        #expect(h.advance(59_800).isEmpty)
        let steps = h.advance(200)
        #expect(steps.count == 1 && steps[0].stopAttempt)
        #expect(states(steps[0]) == [.failed, .retrying, .waiting])
        #expect(steps[0].statuses[0].reason == "Connection attempt timed out after 60 s")
        #expect(steps[0].statuses[0].errorType == .TIMEOUT)
        // a retry attempt has its own 60 s
        _ = h.advance(5000)
        #expect(h.life.phase == .attempting)
        #expect(h.advance(59_800).isEmpty)
        #expect(h.advance(200).first?.statuses.first?.reason == "Connection attempt timed out after 60 s")
        // a connected tunnel is not bound by it
        var up = Harness()
        _ = up.connect()
        _ = up.send(.connected)
        #expect(up.advance(120_000).isEmpty)
    }

    @Test func cancelStopsRetriesInAnyState() {
        for setUp in 0..<4 {
            var h = Harness()
            _ = h.connect(maxRetries: 3, retryIntervalMs: 5000)
            if setUp >= 1 { _ = h.send(.connected) }
            if setUp >= 2 { _ = h.send(.sessionLost(Self.keepalive)) }   // waiting
            if setUp >= 3 { _ = h.advance(5000) }                        // a retry attempt in flight
            let holds = h.life.holdsAttempt
            let step = h.send(.cancel)
            #expect(step.stopAttempt == holds && !step.startAttempt)
            #expect(step.statuses.count == 1)
            let status = step.statuses[0]
            #expect(status.state == .failed && status.reason == "Retry cancelled" && status.errorType == nil)
            #expect(status.retryCount == nil && status.retryExhausted == nil)
            #expect(!h.life.isActive && h.life.retryCount == 0 && h.advance(10_000).isEmpty)
        }
    }

    @Test func disconnectIsManualAndFinal() {
        var h = Harness()
        _ = h.connect()
        _ = h.send(.connected)
        let step = h.send(.disconnect)
        #expect(step.stopAttempt && states(step) == [.disconnected])
        #expect(step.statuses[0].manualDisconnect == true && step.statuses[0].reason == nil)
        #expect(!h.life.isActive && h.life.retryCount == 0)
        #expect(h.send(.connected) == .none)   // a late report changes nothing
        // an idle tunnel can be disconnected too (nothing to stop)
        var idle = Harness()
        let again = idle.send(.disconnect)
        #expect(!again.stopAttempt && states(again) == [.disconnected])
    }

    @Test func aConnectRestartsWithAFreshRetryCount() {
        var h = Harness()
        _ = h.connect(maxRetries: 3, retryIntervalMs: 1000)
        _ = h.send(.attemptFailed(Self.refused))
        _ = h.advance(1000)
        _ = h.send(.connected)
        let again = h.connect(maxRetries: 3, retryIntervalMs: 1000)
        #expect(again.stopAttempt && again.startAttempt && states(again) == [.connecting])
        #expect(h.life.retryCount == 0)
        #expect(h.send(.attemptFailed(Self.refused)).statuses[1].retryCount == 1)
    }

    @Test func revokeStopsOnlyARunningTunnel() {
        var idle = Harness()
        #expect(idle.send(.revoke(.accessRevoked)) == .none)
        var h = Harness()
        _ = h.connect()
        _ = h.send(.connected)
        let step = h.send(.revoke(.accessRevoked))
        #expect(step.stopAttempt && states(step) == [.failed])
        #expect(step.statuses[0].reason == "Access to host not allowed after a configuration reload")
        #expect(step.statuses[0].errorType == .CONNECTION_FAILED)
        #expect(!h.life.isActive)
    }

    @Test func abandonReleasesWithoutAStatus() {
        var h = Harness()
        _ = h.connect()
        let step = h.send(.abandon)
        #expect(step.stopAttempt && step.statuses.isEmpty && !h.life.isActive)
    }

    @Test func eventsThatDoNotApplyChangeNothing() {
        var h = Harness()
        #expect(h.send(.connected) == .none)
        #expect(h.send(.attemptFailed(Self.refused)) == .none)
        #expect(h.send(.sessionLost(Self.refused)) == .none)
        #expect(h.send(.tick) == .none)
        _ = h.connect()
        _ = h.send(.connected)
        #expect(h.send(.connected) == .none)
    }
}

/// The reason texts and errorTypes of tunnels-api.md §8 made from typed failures (TunnelFailure is the one place).
@Suite struct TunnelFailureTests {
    func check(_ failure: RelayFailure, _ reason: String, _ type: ErrorType) {
        let made = TunnelFailure(failure)
        #expect(made.reason == reason)
        #expect(made.errorType == type, "\(reason)")
    }

    @Test func relayFailuresInTheSpecsWords() {
        let address = SocketAddress(ip: "10.0.0.5", port: 22)!
        check(.connect(address, errno: ECONNREFUSED), "SSH connection to 10.0.0.5:22 failed: connection refused", .NETWORK_ERROR)
        check(.connect(address, errno: ETIMEDOUT), "SSH connection to 10.0.0.5:22 failed: \(FileIO.errorText(ETIMEDOUT))", .TIMEOUT)
        check(RelayFailure(.connectTimedOut, subject: "10.0.0.5:22"), "SSH connection to 10.0.0.5:22 timed out", .TIMEOUT)
        check(RelayFailure(.setupTimedOut), "SSH session setup timed out", .TIMEOUT)
        check(RelayFailure(.hostKeyMismatch, subject: "edge"), "Host key verification failed for edge", .AUTHENTICATION_FAILED)
        check(RelayFailure(.authRejected, subject: "ops", detail: "password, keyboard-interactive rejected"),
              "Authentication failed for user ops: password, keyboard-interactive rejected", .AUTHENTICATION_FAILED)
        check(RelayFailure(.listenFailed, subject: "127.0.0.1:8080", detail: "address already in use"),
              "Cannot listen on 127.0.0.1:8080: address already in use", .CONNECTION_FAILED)
        check(RelayFailure(.listenFailed, subject: "0.0.0.0:80", detail: "permission denied"),
              "Cannot listen on 0.0.0.0:80: permission denied", .CONNECTION_FAILED)
        check(RelayFailure(.forwardRefused, subject: "8080"), "Remote port forwarding failed for listen port 8080",
              .CONNECTION_FAILED)
        check(RelayFailure(.peerClosed), "Connection closed by remote host", .NETWORK_ERROR)
        check(.connection(errno: EPIPE), "Connection closed by remote host (broken pipe)", .NETWORK_ERROR)
        check(.connection(errno: ECONNRESET), "Connection reset by peer", .NETWORK_ERROR)
        check(RelayFailure(.keepaliveTimeout), "Keepalive timeout", .TIMEOUT)
        check(RelayFailure(.sessionError), "SSH session ended", .UNKNOWN)
    }

    @Test func textFromElsewhereIsClassifiedByTheTable() {
        check(RelayFailure(.handshakeFailed, detail: "Timed out waiting on socket"),
              "SSH handshake failed: Timed out waiting on socket", .TIMEOUT)
        check(RelayFailure(.sessionError, detail: "odd"), "SSH session error: odd", .UNKNOWN)
        check(.connection(errno: ENETUNREACH), "SSH connection lost: network is unreachable", .NETWORK_ERROR)
        check(RelayFailure(.carrierRefused, subject: "exit through edge", detail: "Channel open failure (connect failed)"),
              "Cannot reach exit through edge: Channel open failure (connect failed)", .UNKNOWN)
        check(RelayFailure(.carrierRefused, subject: "exit through edge", detail: "administratively prohibited"),
              "Cannot reach exit through edge: administratively prohibited", .CONNECTION_FAILED)
        // a host's name cannot change the type of our own words
        check(RelayFailure(.hostKeyMismatch, subject: "timeout-box"), "Host key verification failed for timeout-box",
              .AUTHENTICATION_FAILED)
    }

    @Test func refusalsOfTheAppliance() {
        #expect(TunnelFailure.bindNotAllowed("0.0.0.0") == TunnelFailure(reason: "Bind address not allowed: 0.0.0.0",
                                                                          errorType: .CONNECTION_FAILED))
        #expect(TunnelFailure.destinationNotAllowed(host: "10.0.0.1", port: 22).reason == "Destination not allowed: 10.0.0.1:22")
        #expect(TunnelFailure.endpointNotFound("db").reason == "Endpoint host 'db' not found")
        #expect(TunnelFailure.attemptTimedOut.errorType == .TIMEOUT)
        #expect(TunnelFailure.keyUnreadable.errorType == .AUTHENTICATION_FAILED)
        let last = TunnelFailure(RelayFailure(.keepaliveTimeout))
        #expect(last.exhausted() == TunnelFailure(reason: "Max retries exhausted: Keepalive timeout", errorType: .TIMEOUT))
    }
}
