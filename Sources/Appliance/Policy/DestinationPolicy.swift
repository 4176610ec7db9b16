import CLinux

/// An IP literal as bytes: 4 for IPv4, 16 for IPv6; an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) is its IPv4
/// address, so a policy cannot be bypassed by spelling an IPv4 destination as IPv6.
enum IPBytes {
    static func parse(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: v4) { Array($0) } }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, text, &v6) == 1 else { return nil }
        let bytes = withUnsafeBytes(of: v6) { Array($0) }
        if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xFF && bytes[11] == 0xFF { return Array(bytes[12...]) }
        return bytes
    }

    /// The address a connect(2) to `address` really reaches: Linux connects to the unspecified address (`0.0.0.0`,
    /// `::`, and so `0`, which resolves to `0.0.0.0`) as loopback, so a deny of `127.0.0.0/8` or `::1` must hold
    /// for them too (issue #15).
    static func effective(_ address: [UInt8]) -> [UInt8] {
        guard address.allSatisfy({ $0 == 0 }) else { return address }
        return address.count == 4 ? [127, 0, 0, 1] : [UInt8](repeating: 0, count: 15) + [1]
    }

    static func matches(_ address: [UInt8], network: [UInt8], prefix: Int) -> Bool {
        guard address.count == network.count else { return false }
        var bits = prefix
        for i in 0..<address.count where bits > 0 {
            let mask: UInt8 = bits >= 8 ? 0xFF : ~(0xFF >> UInt8(bits))
            if address[i] & mask != network[i] & mask { return false }
            bits -= 8
        }
        return true
    }
}

/// `destinations` (appliance.md §2): where the appliance itself may connect. Deny wins over allow. An address
/// entry (IP or CIDR) matches the resolved address; a host-name entry matches the name as the client gave it, and
/// the addresses that name resolves to are checked again (so `deny` of a network still holds for a named host).
/// Host-name entries are not resolved themselves: an IP literal is judged by address entries only.
public struct DestinationPolicy {
    struct Rule {
        var network: [UInt8]? = nil
        var prefix = 0
        var name: String? = nil
        var ports: ClosedRange<Int>?

        func matches(name host: String?, address: [UInt8]?, port: Int) -> Bool {
            if let ports, !ports.contains(port) { return false }
            if let network, let address { return IPBytes.matches(address, network: network, prefix: prefix) }
            if let name, let host { return name == host }
            return false
        }
    }

    let allowRules: [Rule]
    let denyRules: [Rule]

    /// Entries that do not parse are skipped (the loader has already refused such a configuration).
    public init(_ destinations: Destinations) {
        allowRules = destinations.allow.compactMap(DestinationPolicy.rule)
        denyRules = destinations.deny.compactMap(DestinationPolicy.rule)
    }

    static func rule(_ text: String) -> Rule? {
        guard case .success(let entry) = DestinationEntry.parse(text) else { return nil }
        switch entry.target {
        case .hostName(let name):
            return Rule(name: normalizedName(name), ports: entry.ports)
        case .address(let ip, let prefix, _):
            guard let network = IPBytes.parse(ip) else { return nil }
            var bits = prefix ?? network.count * 8
            // an IPv4-mapped network (::ffff:10.0.0.0/104) is the IPv4 network it maps
            if network.count == 4 && ConfigSyntax.ipFamily(ip) == .v6 { bits = max(0, bits - 96) }
            return Rule(network: network, prefix: bits, ports: entry.ports)
        }
    }

    static func normalizedName(_ name: String) -> String {
        // host names are ASCII (RFC 1123); no Unicode case tables needed
        var bytes = name.utf8.map { $0 >= 0x41 && $0 <= 0x5A ? $0 + 0x20 : $0 }
        if bytes.last == UInt8(ascii: ".") { bytes.removeLast() }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// `host` as asked (a name or an IP literal), `address` one address it resolved to (the caller connects to
    /// that very address). Numeric forms such as `0` or `127.1` are not IP literals here: they reach this as
    /// the address they resolved to. Deny is checked against the address as given and the one the kernel will
    /// reach; allow against the one it will reach.
    public func allows(host: String, address: String, port: Int) -> Bool {
        guard let given = IPBytes.parse(address) else { return false }
        let reached = IPBytes.effective(given)
        let name: String? = IPBytes.parse(host) == nil ? DestinationPolicy.normalizedName(host) : nil
        if denyRules.contains(where: {
            $0.matches(name: name, address: reached, port: port) || $0.matches(name: name, address: given, port: port)
        }) { return false }
        return allowRules.contains { $0.matches(name: name, address: reached, port: port) }
    }

    public func allows(address: String, port: Int) -> Bool { allows(host: address, address: address, port: port) }

    /// `Destination not allowed: 10.0.0.1:22`, `…: [fd00::1]:22`, `…: db.lan:5432`.
    public static func refusal(host: String, port: Int) -> String {
        let shown = host.contains(":") ? "[\(host)]" : host
        return "Destination not allowed: \(shown):\(port)"
    }
}
