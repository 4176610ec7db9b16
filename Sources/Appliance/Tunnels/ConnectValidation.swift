/// tunnels-api.md §6: the connect checks in their contract order (each answer tells a client only what the earlier
/// checks already allowed it to learn: an unknown host id and a forbidden one answer alike).
public enum ConnectValidation {
    static let invalidJSON = APIError(status: 400, message: "Invalid JSON body")
    static let invalidConfiguration = APIError(status: 400, message: "Invalid tunnel configuration")
    static let nameMismatch = APIError(status: 400, message: "Tunnel configuration does not match tunnel name")
    static let accessDenied = APIError(status: 403, message: "Access denied to this host")
    static let hostMismatch = APIError(status: 400, message: "Tunnel configuration does not match host")
    static let nameRequired = APIError(status: 400, message: "Tunnel name required")

    /// Retry and keepalive numbers above this would overflow the millisecond → nanosecond timer arithmetic
    /// downstream (a trap, not an error, in Swift); no real tunnel needs more.
    static let largestCount = Int(Int32.max)
    /// tunnels-api.md §4: every status snapshot carries every name, so a name is bounded (UTF-8 bytes).
    public static let maxNameBytes = 512
    /// `bindHost` and `targetHost` name an address or a DNS name (at most 253 bytes): longer is not a host, and an
    /// unbounded field would make autostart.json records unbounded (issue #24).
    public static let maxHostBytes = 255

    public static func validate(body: [UInt8], config: Config, user: User) -> Result<ConnectRequest, APIError> {
        guard !body.isEmpty else { return .failure(invalidConfiguration) }
        let json: JSONValue
        do { json = try JSONParser.parse(body) } catch { return .failure(invalidJSON) }
        guard json.isObject, let nameText = json["name"]?.stringValue, nameText.utf8.count <= maxNameBytes
        else { return .failure(invalidConfiguration) }

        guard let name = TunnelName.parse(nameText),
              decimalText(json["sourceHostId"]) == name.parts[0],
              decimalText(json["tunnelIndex"]) == name.parts[1],
              decimalText(json["sourcePort"]) == name.parts[3],
              json["endpointHost"]?.stringValue == name.parts[4],
              decimalText(json["endpointPort"]) == name.parts[5]
        else { return .failure(nameMismatch) }

        guard let mode = mode(json),
              let hostId = integer(json["sourceHostId"]),
              let tunnelIndex = integer(json["tunnelIndex"]), tunnelIndex >= 0,
              let sourcePort = integer(json["sourcePort"]), sourcePort >= 1 && sourcePort <= 65535,
              let endpointPort = integer(json["endpointPort"]),
              endpointPort <= 65535 && (endpointPort >= 1 || (endpointPort == 0 && mode == .dynamic)),
              let maxRetries = count(json["maxRetries"], minimum: -1, zeroOrAbsent: 3),
              let retryInterval = count(json["retryInterval"], minimum: 0, zeroOrAbsent: 5000),
              let keepaliveInterval = count(json["keepaliveInterval"], minimum: 0, absent: 30000),
              let keepaliveCountMax = count(json["keepaliveCountMax"], minimum: 0, absent: 3),
              let bindHost = text(json["bindHost"], emptyOrAbsent: "127.0.0.1"),
              let targetHost = text(json["targetHost"], emptyOrAbsent: ""),
              let autoStart = flag(json["autoStart"])
        else { return .failure(invalidConfiguration) }

        guard let host = config.host(id: hostId), config.mayUse(host, user) else { return .failure(accessDenied) }

        if let ip = given(json["sourceIP"]), ip.stringValue != host.ip { return .failure(hostMismatch) }
        if let port = given(json["sourceSSHPort"]), decimalText(port) != String(host.port) {
            return .failure(hostMismatch)
        }
        if let username = given(json["sourceUsername"]), username.stringValue != host.username {
            return .failure(hostMismatch)
        }
        if mode == .remote && host.local { return .failure(invalidConfiguration) }

        return .success(ConnectRequest(
            name: name, host: host, mode: mode, sourcePort: sourcePort, endpointHost: name.parts[4],
            endpointPort: endpointPort, bindHost: bindHost, targetHost: targetHost, maxRetries: maxRetries,
            retryIntervalMs: retryInterval, autoStart: autoStart,
            // absent keepalive numbers come from the host's configuration (which defaults to 30000 ms × 3)
            keepaliveInterval: given(json["keepaliveInterval"]) == nil ? host.keepaliveInterval : keepaliveInterval,
            keepaliveCountMax: given(json["keepaliveCountMax"]) == nil ? host.keepaliveCountMax : keepaliveCountMax,
            endpoint: EndpointLookup.managedEndpoint(name.parts[4], config: config, user: user)))
    }

    public static func tunnelName(body: [UInt8]) -> Result<String, APIError> {
        guard !body.isEmpty else { return .failure(nameRequired) }
        let json: JSONValue
        do { json = try JSONParser.parse(body) } catch { return .failure(invalidJSON) }
        guard let name = json["tunnelName"]?.stringValue, !name.isEmpty else { return .failure(nameRequired) }
        return .success(name)
    }

    /// What JavaScript's `String(x)` gives for the fields Termix compares with name parts; nil (never equal to a
    /// part) for absent fields and for types a client never sends there.
    static func decimalText(_ value: JSONValue?) -> String? {
        switch value {
        case .number(let n): return n.decimalText
        case .string(let s): return s
        default: return nil
        }
    }

    /// `mode`, else the legacy `tunnelType` (local/remote only), else Termix's default `remote`.
    static func mode(_ json: JSONValue) -> TunnelMode? {
        var legacy: TunnelMode?
        if let tunnelType = given(json["tunnelType"]) {
            guard let text = tunnelType.stringValue, text == "local" || text == "remote" else { return nil }
            legacy = TunnelMode(rawValue: text)
        }
        if let mode = given(json["mode"]) {
            guard let text = mode.stringValue else { return nil }
            return TunnelMode(rawValue: text)
        }
        return legacy ?? .remote
    }

    /// JS clients send `null` for unset optional fields; it means absent.
    static func given(_ value: JSONValue?) -> JSONValue? {
        if let value, value != .null { return value }
        return nil
    }

    static func integer(_ value: JSONValue?) -> Int? {
        guard let n = value?.integerValue else { return nil }
        return Int(n)
    }

    /// nil: present but not an integer in `minimum...largestCount`.
    static func count(_ value: JSONValue?, minimum: Int, absent: Int) -> Int? {
        guard let value = given(value) else { return absent }
        guard let n = integer(value), n >= minimum && n <= largestCount else { return nil }
        return n
    }

    /// Termix's `x || default`: 0 means the default too.
    static func count(_ value: JSONValue?, minimum: Int, zeroOrAbsent: Int) -> Int? {
        guard let n = count(value, minimum: minimum, absent: zeroOrAbsent) else { return nil }
        return n == 0 ? zeroOrAbsent : n
    }

    static func text(_ value: JSONValue?, emptyOrAbsent: String) -> String? {
        guard let value = given(value) else { return emptyOrAbsent }
        guard let text = value.stringValue, text.utf8.count <= maxHostBytes else { return nil }
        return text.isEmpty ? emptyOrAbsent : text
    }

    static func flag(_ value: JSONValue?) -> Bool? {
        guard let value = given(value) else { return false }
        return value.boolValue
    }
}
