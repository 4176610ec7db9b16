/// One entry of `destinations.allow`/`deny` (appliance.md §2): an IP, a CIDR or a host name, optionally with
/// `:port` or `:lo-hi`; an IPv6 address or network takes a port only in brackets (`[fd00::/8]:22-443`).
public struct DestinationEntry: Equatable {
    public enum Target: Equatable {
        /// A numeric address, or a network when `prefix` is set.
        case address(String, prefix: Int?, ipv6: Bool)
        /// Matched by resolving it when a connection is checked.
        case hostName(String)
    }

    public var target: Target
    /// nil: every port.
    public var ports: ClosedRange<Int>?

    public struct SyntaxError: Error, Equatable {
        public let message: String
        init(_ message: String) { self.message = message }
    }

    static let shape = "must be an IP address, CIDR or host name, optionally with :port or :low-high"
        + " (IPv6 with a port in brackets)"

    public static func parse(_ text: String) -> Result<DestinationEntry, SyntaxError> {
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty else { return .failure(SyntaxError("must not be empty")) }
        var host: ArraySlice<UInt8>
        var portText: ArraySlice<UInt8>? = nil
        var bracketed = false
        if bytes[0] == UInt8(ascii: "[") {
            guard let close = bytes.firstIndex(of: UInt8(ascii: "]")) else { return .failure(SyntaxError(shape)) }
            host = bytes[1..<close]
            bracketed = true
            if close + 1 < bytes.count {
                guard bytes[close + 1] == UInt8(ascii: ":") else { return .failure(SyntaxError(shape)) }
                portText = bytes[(close + 2)...]
            }
        } else if bytes.filter({ $0 == UInt8(ascii: ":") }).count >= 2 {
            host = bytes[...]   // a bare IPv6 address or network, no port
        } else if let colon = bytes.firstIndex(of: UInt8(ascii: ":")) {
            host = bytes[..<colon]
            portText = bytes[(colon + 1)...]
        } else {
            host = bytes[...]
        }

        let target: Target
        switch targetOf(host) {
        case .success(let t): target = t
        case .failure(let e): return .failure(e)
        }
        if bracketed {
            guard case .address(_, _, true) = target else {
                return .failure(SyntaxError("brackets are only for IPv6 addresses"))
            }
        }
        var entry = DestinationEntry(target: target, ports: nil)
        if let portText = portText {
            guard let ports = portRange(portText) else {
                return .failure(SyntaxError("port must be from 1 to 65535, or a range low-high with low <= high"))
            }
            entry.ports = ports
        }
        return .success(entry)
    }

    static func targetOf(_ host: ArraySlice<UInt8>) -> Result<Target, SyntaxError> {
        let text = String(decoding: host, as: UTF8.self)
        guard let slash = host.firstIndex(of: UInt8(ascii: "/")) else {
            if let family = ConfigSyntax.ipFamily(text) { return .success(.address(text, prefix: nil, ipv6: family == .v6)) }
            if ConfigSyntax.isHostName(text) { return .success(.hostName(text)) }
            return .failure(SyntaxError(shape))
        }
        let address = String(decoding: host[..<slash], as: UTF8.self)
        guard let family = ConfigSyntax.ipFamily(address) else {
            return .failure(SyntaxError("a network must be IP/prefix-length (like 10.0.0.0/8)"))
        }
        let maxPrefix = family == .v6 ? 128 : 32
        let digits = host[(slash + 1)...]
        var prefix = 0
        guard !digits.isEmpty, digits.count <= 3, digits.allSatisfy(ConfigSyntax.isDigit),
              digits.count == 1 || digits.first != UInt8(ascii: "0") else {
            return .failure(SyntaxError("prefix length must be from 0 to \(maxPrefix)"))
        }
        for d in digits { prefix = prefix * 10 + Int(d - 0x30) }
        guard prefix <= maxPrefix else { return .failure(SyntaxError("prefix length must be from 0 to \(maxPrefix)")) }
        return .success(.address(address, prefix: prefix, ipv6: family == .v6))
    }

    static func portRange(_ text: ArraySlice<UInt8>) -> ClosedRange<Int>? {
        guard let dash = text.firstIndex(of: UInt8(ascii: "-")) else {
            return ConfigSyntax.port(text).map { $0...$0 }
        }
        guard let low = ConfigSyntax.port(text[..<dash]), let high = ConfigSyntax.port(text[(dash + 1)...]),
              low <= high else { return nil }
        return low...high
    }
}
