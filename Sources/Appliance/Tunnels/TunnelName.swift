/// A tunnel name (tunnels-api.md §4): `{hostId}::{tunnelIndex}::{displayName}::{sourcePort}::{endpointHost}::{endpointPort}`.
/// Only the 6-part form exists here; Termix's unchecked "legacy" names are refused.
public struct TunnelName: Equatable {
    public let text: String
    public let parts: [String]

    public static func parse(_ text: String) -> TunnelName? {
        let parts = split(text)
        guard parts.count == 6 else { return nil }
        return TunnelName(text: text, parts: parts)
    }

    /// appliance.md §2: the name a Termix client computes for `hosts[h].tunnels[index]`.
    public static func configured(host: Host, index: Int, tunnel: TunnelConfig) -> String {
        "\(host.id)::\(index)::\(host.displayName)::\(tunnel.sourcePort)::\(tunnel.endpointHost)::\(tunnel.endpointPort)"
    }

    /// Part 0 as a host id, when it is the canonical decimal text of one (so "01" names no host).
    public var hostId: Int? { TunnelName.canonicalInt(parts[0]) }

    /// Split like JavaScript's `split("::")`: left to right, non-overlapping, so ":::" leaves a ':' in the next part.
    static func split(_ text: String) -> [String] {
        let bytes = Array(text.utf8)
        var parts: [String] = []
        var start = 0
        var i = 0
        while i + 1 < bytes.count {
            if bytes[i] == UInt8(ascii: ":") && bytes[i + 1] == UInt8(ascii: ":") {
                parts.append(String(decoding: bytes[start..<i], as: UTF8.self))
                i += 2
                start = i
            } else {
                i += 1
            }
        }
        parts.append(String(decoding: bytes[start...], as: UTF8.self))
        return parts
    }

    static func canonicalInt(_ text: String) -> Int? {
        guard let value = Int(text), String(value) == text else { return nil }
        return value
    }
}
