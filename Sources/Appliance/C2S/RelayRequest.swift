/// The first message of a C2S relay (tunnels-api.md §9), checked in the order of the spec; pure, so every error
/// string is unit-tested and fuzzed. Like the connect route, an unknown host id and one the caller may not use
/// answer alike, and nothing about the host leaks before permission is established.
public struct RelayRequest {
    public enum Kind { case open, test }

    public var kind: Kind
    public var mode: TunnelMode
    public var host: Host
    /// local: the direct-tcpip (or appliance) target; dynamic: the client's SOCKS target; remote: the server-side
    /// listen address.
    public var targetHost: String
    public var targetPort: Int

    public static let invalidRequest = "Invalid client tunnel relay request"
    public static let hostRequired = "Endpoint SSH host is required"
    public static let accessDenied = "Access denied to this host"
    public static let invalidTarget = "Invalid client tunnel target"
    public static let invalidRemotePort = "Invalid remote port"

    /// A request, or the error message the client gets (then close 1008).
    public struct Parsed {
        public var request: RelayRequest?
        public var error: String?
    }

    public static func parse(_ message: [UInt8], config: Config, user: User) -> Parsed {
        let json: JSONValue
        do { json = try JSONParser.parse(message) } catch { return refuse(invalidRequest) }
        guard json.isObject, let type = json["type"]?.stringValue, type == "open" || type == "test" else {
            return refuse(invalidRequest)
        }
        let kind: Kind = type == "open" ? .open : .test
        guard let tunnel = ConnectValidation.given(json["tunnelConfig"]), tunnel.isObject,
              let hostId = ConnectValidation.integer(ConnectValidation.given(tunnel["sourceHostId"])) else {
            return refuse(hostRequired)
        }
        guard let host = config.host(id: hostId), config.mayUse(host, user) else { return refuse(accessDenied) }
        guard let mode = ConnectValidation.mode(tunnel) else { return refuse(invalidRequest) }
        let configuredTarget = ConnectValidation.text(tunnel["targetHost"], emptyOrAbsent: "127.0.0.1")
        var request = RelayRequest(kind: kind, mode: mode, host: host, targetHost: configuredTarget ?? "127.0.0.1",
                                   targetPort: 0)
        if mode == .local {
            guard configuredTarget != nil, let port = port(tunnel["endpointPort"]) else { return refuse(invalidTarget) }
            request.targetPort = port
        } else if mode == .dynamic {
            // the client parsed SOCKS itself: the target is the message's own (test checks SSH only)
            if kind == .open {
                guard let target = ConnectValidation.given(json["targetHost"])?.stringValue, !target.isEmpty,
                      target.utf8.count <= 255, let port = port(json["targetPort"]) else { return refuse(invalidTarget) }
                request.targetHost = target
                request.targetPort = port
            }
        } else {
            guard configuredTarget != nil, let port = port(tunnel["sourcePort"]) else { return refuse(invalidRemotePort) }
            request.targetPort = port
        }
        return Parsed(request: request, error: nil)
    }

    /// An integer port in 1–65535.
    static func port(_ value: JSONValue?) -> Int? {
        guard let n = ConnectValidation.integer(ConnectValidation.given(value)), n >= 1 && n <= 65535 else { return nil }
        return n
    }

    static func refuse(_ message: String) -> Parsed { Parsed(request: nil, error: message) }
}
