public enum TunnelState: String {
    case connecting, connected, failed, retrying, waiting, disconnected
}

public enum ErrorType: String {
    case CONNECTION_FAILED, AUTHENTICATION_FAILED, TIMEOUT, NETWORK_ERROR, UNKNOWN
}

/// The status object of tunnels-api.md §5, plus the extension fields of §11.
public struct TunnelStatus: Equatable {
    public var state: TunnelState
    public var retryCount: Int?
    public var maxRetries: Int?
    public var nextRetryIn: Int?
    /// `retrying` reports the interval itself, retryInterval/1000, which need not be whole seconds.
    public var nextRetryInMs: Int?
    public var reason: String?
    public var errorType: ErrorType?
    public var manualDisconnect: Bool?
    public var retryExhausted: Bool?
    public var bytesIn: Int64 = 0
    public var bytesOut: Int64 = 0
    public var activeConnections: Int = 0
    /// Unix seconds of the last state change.
    public var since: Int64

    public init(state: TunnelState, since: Int64 = 0) {
        self.state = state
        self.since = since
    }

    /// Fixed member order; absent optionals are omitted because Termix clients treat `null` differently from absence.
    public func json() -> JSONValue {
        var members: [(String, JSONValue)] = [
            ("connected", .bool(state == .connected)),
            ("status", .string(state.rawValue)),
        ]
        if let retryCount { members.append(("retryCount", .int(retryCount))) }
        if let maxRetries { members.append(("maxRetries", .int(maxRetries))) }
        if let nextRetryIn {
            members.append(("nextRetryIn", .int(nextRetryIn)))
        } else if let nextRetryInMs {
            members.append(("nextRetryIn", .number(TunnelStatus.seconds(milliseconds: nextRetryInMs))))
        }
        if let reason { members.append(("reason", .string(reason))) }
        if let errorType { members.append(("errorType", .string(errorType.rawValue))) }
        if let manualDisconnect { members.append(("manualDisconnect", .bool(manualDisconnect))) }
        if let retryExhausted { members.append(("retryExhausted", .bool(retryExhausted))) }
        members.append(("bytesIn", .number(JSONNumber(integer: bytesIn))))
        members.append(("bytesOut", .number(JSONNumber(integer: bytesOut))))
        members.append(("activeConnections", .int(activeConnections)))
        members.append(("since", .number(JSONNumber(integer: since))))
        return .object(members)
    }

    /// Milliseconds as decimal seconds without floating point: 1500 → 1.5, 5000 → 5.
    static func seconds(milliseconds ms: Int) -> JSONNumber {
        if ms % 1000 == 0 { return JSONNumber(integer: Int64(ms / 1000)) }
        var fraction = String(ms % 1000)
        while fraction.count < 3 { fraction = "0" + fraction }
        while fraction.hasSuffix("0") { fraction.removeLast() }
        return JSONNumber(literal: "\(ms / 1000).\(fraction)", integer: nil)
    }
}
