/// Something that happens to one tunnel (tunnels-api.md §8). A struct with a raw-value kind. (It was made one to avoid
/// "wrong cases of switches over payload enums" in the Embedded build; issue #25 found no such miscompile, the
/// symptom was same-named constant arrays: see SOCKS5.pair. An enum with payloads would be safe.)
struct TunnelEvent {
    enum Kind: UInt8 {
        /// A connect request (or a restart after a reload): a fresh attempt with a reset retry count.
        case connect
        /// The attempt failed before it was up.
        case attemptFailed
        /// The attempt is up (listener bound, forward granted).
        case connected
        /// The session of a connected tunnel died.
        case sessionLost
        /// About five times a second: the countdown, the 60 s watchdog, the 30 s retry-count reset.
        case tick
        /// POST /ssh/tunnel/cancel.
        case cancel
        /// POST /ssh/tunnel/disconnect.
        case disconnect
        /// A reload took the tunnel's host (or endpoint) away from its requester: stops a running tunnel.
        case revoke
        /// Shutdown or removal from the registry: resources released, the status left as it is.
        case abandon
    }

    let kind: Kind
    /// attemptFailed, sessionLost, revoke.
    var failure: TunnelFailure?
    /// connect: the request's retry settings (maxRetries -1: without limit).
    var maxRetries = 0
    var retryIntervalMs = 0

    static func connect(maxRetries: Int, retryIntervalMs: Int) -> TunnelEvent {
        TunnelEvent(kind: .connect, maxRetries: maxRetries, retryIntervalMs: retryIntervalMs)
    }
    static func attemptFailed(_ failure: TunnelFailure) -> TunnelEvent { TunnelEvent(kind: .attemptFailed, failure: failure) }
    static let connected = TunnelEvent(kind: .connected)
    static func sessionLost(_ failure: TunnelFailure) -> TunnelEvent { TunnelEvent(kind: .sessionLost, failure: failure) }
    static let tick = TunnelEvent(kind: .tick)
    static let cancel = TunnelEvent(kind: .cancel)
    static let disconnect = TunnelEvent(kind: .disconnect)
    static func revoke(_ failure: TunnelFailure) -> TunnelEvent { TunnelEvent(kind: .revoke, failure: failure) }
    static let abandon = TunnelEvent(kind: .abandon)
}

/// What the manager does for one event, in this order: release the running attempt's resources, publish each
/// status (every one is a transition subscribers see), start a new attempt.
struct TunnelStep: Equatable {
    var stopAttempt = false
    var statuses: [TunnelStatus] = []
    var startAttempt = false

    static let none = TunnelStep()
}

/// One tunnel's life by tunnels-api.md §8, as a value: no clock, no I/O. It takes an event and the current time
/// (monotonic milliseconds, passed in) and answers the step to run. Statuses carry only the §8 fields; the manager
/// adds the traffic counters and `since`.
struct TunnelLifecycle {
    static let attemptTimeoutMs: Int64 = 60_000
    static let retryResetMs: Int64 = 30_000
    static let cancelledReason = "Retry cancelled"

    enum Phase: UInt8 {
        /// Nothing runs: never started, stopped, or failed for good.
        case idle
        /// An attempt is under way (it may be a retry, shown as `waiting`).
        case attempting
        case connected
        /// Counting down to the next attempt.
        case waiting
    }

    private(set) var phase = Phase.idle
    private(set) var status = TunnelStatus(state: .disconnected)
    private(set) var retryCount = 0
    private(set) var maxRetries = 0
    private(set) var retryIntervalMs = 0
    private var attemptStartedMs: Int64 = 0
    private var connectedSinceMs: Int64 = 0
    /// waiting: seconds shown as nextRetryIn, and when the next second is up.
    private var waitingRemaining = 0
    private var nextStepMs: Int64 = 0

    /// Something runs or waits to run for this tunnel.
    var isActive: Bool { phase != .idle }
    /// A driver attempt holds resources (listeners, sessions).
    var holdsAttempt: Bool { phase == .attempting || phase == .connected }

    mutating func handle(_ event: TunnelEvent, nowMs: Int64) -> TunnelStep {
        switch event.kind {
        case .connect:
            maxRetries = event.maxRetries
            retryIntervalMs = event.retryIntervalMs
            var step = TunnelStep(stopAttempt: holdsAttempt)
            retryCount = 0
            begin(&step, retry: false, nowMs: nowMs)
            return step
        case .attemptFailed:
            guard holdsAttempt, let failure = event.failure else { return .none }
            return ended(failure, wasConnected: false, nowMs: nowMs)
        case .sessionLost:
            guard holdsAttempt, let failure = event.failure else { return .none }
            return ended(failure, wasConnected: phase == .connected, nowMs: nowMs)
        case .connected:
            guard phase == .attempting else { return .none }
            phase = .connected
            connectedSinceMs = nowMs
            return TunnelStep(statuses: [set(TunnelStatus(state: .connected))])
        case .tick:
            return tick(nowMs: nowMs)
        case .cancel:
            var cancelled = TunnelStatus(state: .failed)
            cancelled.reason = TunnelLifecycle.cancelledReason
            return stop(cancelled)
        case .disconnect:
            var stopped = TunnelStatus(state: .disconnected)
            stopped.manualDisconnect = true
            return stop(stopped)
        case .revoke:
            guard phase != .idle, let failure = event.failure else { return .none }
            return stop(TunnelLifecycle.failed(.failed, failure))
        case .abandon:
            let running = holdsAttempt
            phase = .idle
            return TunnelStep(stopAttempt: running)
        }
    }

    // MARK: transitions

    /// A user stop: resources released, retries stop and the count resets; the status is final.
    private mutating func stop(_ final: TunnelStatus) -> TunnelStep {
        let step = TunnelStep(stopAttempt: holdsAttempt, statuses: [set(final)])
        phase = .idle
        retryCount = 0
        return step
    }

    /// `retry`: the attempt that ends a countdown keeps the status as it is, `waiting` with the countdown's last
    /// value (nextRetryIn 1), until it connects or fails: Termix does so, and its tunnel tab renders the countdown
    /// from that field (§8). A fresh attempt is `connecting`.
    private mutating func begin(_ step: inout TunnelStep, retry: Bool, nowMs: Int64) {
        phase = .attempting
        attemptStartedMs = nowMs
        if !retry { step.statuses.append(set(TunnelStatus(state: .connecting))) }
        step.startAttempt = true
    }

    /// failed (or disconnected) → terminal, exhausted, or retrying → waiting.
    private mutating func ended(_ failure: TunnelFailure, wasConnected: Bool, nowMs: Int64) -> TunnelStep {
        var step = TunnelStep(stopAttempt: true)
        phase = .idle
        let first = TunnelLifecycle.failed(wasConnected ? .disconnected : .failed, failure)
        step.statuses.append(set(first))
        if failure.isTerminal {
            if wasConnected { step.statuses.append(set(TunnelLifecycle.failed(.failed, failure))) }
            return step
        }
        retryCount += 1
        if maxRetries != -1 && retryCount > maxRetries {
            var exhausted = TunnelLifecycle.failed(.failed, failure.exhausted())
            exhausted.retryExhausted = true
            step.statuses.append(set(exhausted))
            return step
        }
        var retrying = TunnelLifecycle.failed(.retrying, failure)
        retrying.retryCount = retryCount
        retrying.maxRetries = maxRetries
        retrying.nextRetryInMs = retryIntervalMs
        step.statuses.append(set(retrying))

        phase = .waiting
        waitingRemaining = max(1, (retryIntervalMs + 999) / 1000)
        nextStepMs = nowMs + 1000
        var waiting = retrying
        waiting.state = .waiting
        waiting.nextRetryInMs = nil
        waiting.nextRetryIn = waitingRemaining
        step.statuses.append(set(waiting))
        return step
    }

    private mutating func tick(nowMs: Int64) -> TunnelStep {
        if phase == .waiting && nowMs >= nextStepMs {
            waitingRemaining -= 1
            var step = TunnelStep()
            if waitingRemaining <= 0 {
                begin(&step, retry: true, nowMs: nowMs)
            } else {
                nextStepMs += 1000
                var counting = status
                counting.nextRetryIn = waitingRemaining
                step.statuses.append(set(counting))
            }
            return step
        }
        if phase == .attempting && nowMs - attemptStartedMs >= TunnelLifecycle.attemptTimeoutMs {
            return ended(.attemptTimedOut, wasConnected: false, nowMs: nowMs)
        }
        if phase == .connected && retryCount > 0 && nowMs - connectedSinceMs >= TunnelLifecycle.retryResetMs {
            retryCount = 0   // the deviation of §8: a tunnel that stayed up earns its retries back
        }
        return .none
    }

    private mutating func set(_ next: TunnelStatus) -> TunnelStatus {
        status = next
        return next
    }

    private static func failed(_ state: TunnelState, _ failure: TunnelFailure) -> TunnelStatus {
        var status = TunnelStatus(state: state)
        status.reason = failure.reason
        status.errorType = failure.errorType
        return status
    }
}
