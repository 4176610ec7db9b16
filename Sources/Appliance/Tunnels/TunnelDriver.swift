/// What brings a tunnel's data plane up and down. The manager calls it on its control thread; the driver reports
/// back through `TunnelEvents` from any thread.
public protocol TunnelDriver: AnyObject {
    /// Starts attempt `attempt`: it must end in exactly one `connected` or `failed` report (and may later report
    /// `disconnected`), unless `stop` comes first.
    func start(_ request: ConnectRequest, attempt: UInt64, events: TunnelEvents)
    /// Releases every listener, forward and session of the attempt before it returns; reports nothing afterwards.
    func stop(attempt: UInt64)
}

/// The driver's way back to the manager's control thread.
public final class TunnelEvents {
    let manager: TunnelManager
    init(manager: TunnelManager) { self.manager = manager }

    public func connected(_ attempt: UInt64) { manager.report(attempt, .connected) }
    public func failed(_ attempt: UInt64, reason: String) { manager.report(attempt, .failed(reason)) }
    public func disconnected(_ attempt: UInt64, reason: String) { manager.report(attempt, .disconnected(reason)) }
    public func traffic(_ attempt: UInt64, bytesIn: Int64, bytesOut: Int64, activeConnections: Int) {
        manager.report(attempt, .traffic(bytesIn: bytesIn, bytesOut: bytesOut, active: activeConnections))
    }
}

/// Until the SSH data plane lands, every attempt fails for real with this reason (never a fake `connected`).
public final class UnavailableDriver: TunnelDriver {
    public static let reason = "Tunnel data plane is not available in this build"
    public init() {}
    public func start(_ request: ConnectRequest, attempt: UInt64, events: TunnelEvents) {
        events.failed(attempt, reason: UnavailableDriver.reason)
    }
    public func stop(attempt: UInt64) {}
}
