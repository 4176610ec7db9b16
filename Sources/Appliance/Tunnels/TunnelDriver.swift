/// What brings a tunnel's data plane up and down. The manager calls it on its control thread; the driver reports
/// back through `TunnelReporter` from any thread.
public protocol TunnelDriver: AnyObject {
    /// Starts attempt `attempt`: it must end in exactly one `connected` or `failed` report (and may later report
    /// `disconnected`), unless `stop` comes first.
    func start(_ request: ConnectRequest, attempt: UInt64, events: TunnelReporter)
    /// Releases every listener, forward and session of the attempt before it returns; reports nothing afterwards.
    func stop(attempt: UInt64)
}

/// The driver's way back to the manager's control thread.
public final class TunnelReporter {
    let manager: TunnelManager
    init(manager: TunnelManager) { self.manager = manager }

    public func connected(_ attempt: UInt64) { manager.report(attempt, .connected) }
    public func failed(_ attempt: UInt64, _ failure: TunnelFailure) { manager.report(attempt, .failed(failure)) }
    public func disconnected(_ attempt: UInt64, _ failure: TunnelFailure) {
        manager.report(attempt, .disconnected(failure))
    }
    public func traffic(_ attempt: UInt64, bytesIn: Int64, bytesOut: Int64, activeConnections: Int) {
        manager.report(attempt, .traffic(bytesIn: bytesIn, bytesOut: bytesOut, active: activeConnections))
    }
}

/// A driver's traffic counters on their way to the manager: at most once a period and only when one moved, since
/// each report becomes a status change and an SSE event for every subscriber who sees the tunnel.
struct TrafficReport {
    static let periodMs: Int64 = 1000
    private var last: (Int64, Int64, Int) = (0, 0, 0)
    private var atMs: Int64 = 0

    /// `force`: skip the period (the connection count changed in a way the operator should see now).
    mutating func offer(_ current: (bytesIn: Int64, bytesOut: Int64, active: Int), nowMs: Int64, force: Bool = false,
                        attempt: UInt64, events: TunnelReporter) {
        guard force || nowMs - atMs >= TrafficReport.periodMs, current != last else { return }
        last = current
        atMs = nowMs
        events.traffic(attempt, bytesIn: current.bytesIn, bytesOut: current.bytesOut, activeConnections: current.active)
    }

    /// Starts the period now (e.g. when the tunnel comes up).
    mutating func restart(nowMs: Int64) { atMs = nowMs }
}

/// The driver of last resort: serve falls back on it when a driver's reactor thread cannot start, and tests and the
/// fuzzer use it where no data plane may run. Every attempt fails for real with this reason (never a fake
/// `connected`).
public final class UnavailableDriver: TunnelDriver {
    public static let reason = "Tunnel data plane is not available in this build"
    public init() {}
    public func start(_ request: ConnectRequest, attempt: UInt64, events: TunnelReporter) {
        events.failed(attempt, .unavailable)
    }
    public func stop(attempt: UInt64) {}
}
