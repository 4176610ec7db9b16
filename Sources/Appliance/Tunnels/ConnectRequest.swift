/// An API error answer: `status` with body `{"error": message}`.
public struct APIError: Error, Equatable {
    public let status: Int
    public let message: String

    public init(status: Int, message: String) {
        self.status = status
        self.message = message
    }

    public var body: String { JSONWriter.error(message) }
}

/// A validated `POST /ssh/tunnel/connect` body. Source host and endpoint come from the inventory only; credential
/// fields of the body never reach this value.
public struct ConnectRequest: Equatable {
    public var name: TunnelName
    public var host: Host
    public var mode: TunnelMode
    public var sourcePort: Int
    public var endpointHost: String
    public var endpointPort: Int
    public var bindHost: String
    public var targetHost: String
    public var maxRetries: Int
    public var retryIntervalMs: Int
    public var autoStart: Bool
    public var keepaliveInterval: Int
    public var keepaliveCountMax: Int
    /// The inventory host that `endpointHost` names for this user (a managed tunnel, §7); nil: a plain address.
    public var endpoint: Host? = nil
    /// Who the attempt runs for (set by the manager at each attempt): the key of the user's resolver share.
    public var requesterId = ""
    /// Whether that user is an admin at this attempt: a non-admin's streams take their share of the relay buffers
    /// and windows (issue #24).
    public var requesterAdmin = false

    /// The request as a connect body that `ConnectValidation.validate` accepts again (autostart.json keeps these;
    /// re-validating at start applies the inventory and permissions of that moment).
    public func body() -> JSONValue {
        .object([
            ("name", .string(name.text)),
            ("sourceHostId", .int(host.id)),
            ("tunnelIndex", .int(Int(name.parts[1]) ?? 0)),   // validated: canonical decimal
            ("sourcePort", .int(sourcePort)),
            ("endpointHost", .string(endpointHost)),
            ("endpointPort", .int(endpointPort)),
            ("mode", .string(mode.rawValue)),
            ("bindHost", .string(bindHost)),
            ("targetHost", .string(targetHost)),
            ("maxRetries", .int(maxRetries)),
            ("retryInterval", .int(retryIntervalMs)),
            ("autoStart", .bool(autoStart)),
            ("keepaliveInterval", .int(keepaliveInterval)),
            ("keepaliveCountMax", .int(keepaliveCountMax)),
        ])
    }
}
