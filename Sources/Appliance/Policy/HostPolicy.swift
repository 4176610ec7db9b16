import Relay

/// DNS rebinding (issue #24): a page of another site whose name was made to resolve to the appliance reaches it with
/// that name in `Host` and, being same-origin with itself, passes every origin check. So a request is answered only
/// when its `Host` names the appliance: an IP literal (an address cannot be rebound), `localhost` (browsers resolve
/// it to loopback themselves), a name in `serverNames`, or the host of an `allowedOrigins` entry; compared without
/// the port, case-insensitively, a trailing dot ignored. A request without `Host` passes: every browser sends one.
/// Refused: 421 `Host not allowed` (Misdirected Request: this server does not answer for that name).
public enum HostPolicy {
    public static let refusal = "Host not allowed"

    public static func allows(host: String?, serverNames: [String], allowedOrigins: [String]) -> Bool {
        guard let host else { return true }
        guard let name = name(host) else { return false }
        if name == "localhost" || SocketAddress(ip: name, port: 0) != nil { return true }
        for configured in serverNames where lowercase(configured) == name { return true }
        for origin in allowedOrigins {
            if let parsed = OriginPolicy.split(origin), let listed = self.name(parsed.authority), listed == name {
                return true
            }
        }
        return false
    }

    /// `host[:port]` or `[v6][:port]` → the host, lower case, without a trailing dot; nil when malformed.
    static func name(_ text: String) -> String? {
        let bytes = Array(lowercase(text).utf8)
        guard !bytes.isEmpty else { return nil }
        var hostPart: ArraySlice<UInt8>
        var portPart: ArraySlice<UInt8>?
        if bytes[0] == UInt8(ascii: "[") {
            guard let close = bytes.firstIndex(of: UInt8(ascii: "]")) else { return nil }
            hostPart = bytes[1..<close]
            let rest = bytes[(close + 1)...]
            if !rest.isEmpty {
                guard rest.first == UInt8(ascii: ":") else { return nil }
                portPart = rest.dropFirst()
            }
            guard SocketAddress(ip: String(decoding: hostPart, as: UTF8.self), port: 0)?.isIPv6 == true else { return nil }
        } else {
            if let colon = bytes.firstIndex(of: UInt8(ascii: ":")) {
                hostPart = bytes[..<colon]
                portPart = bytes[(colon + 1)...]
            } else {
                hostPart = bytes[...]
            }
            if hostPart.last == UInt8(ascii: ".") { hostPart = hostPart.dropLast() }
        }
        if let portPart { guard ConfigSyntax.port(portPart) != nil else { return nil } }
        guard !hostPart.isEmpty else { return nil }
        return String(decoding: hostPart, as: UTF8.self)
    }

    static func lowercase(_ text: String) -> String { OriginPolicy.lowercase(text) }
}
