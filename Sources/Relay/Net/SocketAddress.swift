import CLinux

/// A numeric IPv4 or IPv6 socket address. Host names are not resolved here: listen and bind addresses are IP
/// literals (static glibc cannot load NSS modules, and an appliance should not depend on DNS to start).
public struct SocketAddress {
    public var storage = sockaddr_storage()
    public private(set) var length: socklen_t = 0

    public var isIPv6: Bool { Int32(storage.ss_family) == AF_INET6 }

    /// `ip` must be a literal: `127.0.0.1`, `::1` (no brackets).
    public init?(ip: String, port: UInt16) {
        var v4 = sockaddr_in()
        if inet_pton(AF_INET, ip, &v4.sin_addr) == 1 {
            v4.sin_family = sa_family_t(AF_INET)
            v4.sin_port = port.bigEndian
            store(v4)
            return
        }
        var v6 = sockaddr_in6()
        guard inet_pton(AF_INET6, ip, &v6.sin6_addr) == 1 else { return nil }
        v6.sin6_family = sa_family_t(AF_INET6)
        v6.sin6_port = port.bigEndian
        store(v6)
    }

    /// Copies a `sockaddr_in` or `sockaddr_in6` into the storage and sets the length.
    private mutating func store<Address>(_ address: Address) {
        withUnsafeMutableBytes(of: &storage) { dst in
            withUnsafeBytes(of: address) { dst.copyMemory(from: $0) }
        }
        length = socklen_t(MemoryLayout<Address>.size)
    }

    /// A copy of a kernel-provided IPv4 or IPv6 address.
    public init?(_ address: UnsafePointer<sockaddr>) {
        let family = Int32(address.pointee.sa_family)
        let size = family == AF_INET ? MemoryLayout<sockaddr_in>.size
            : family == AF_INET6 ? MemoryLayout<sockaddr_in6>.size : 0
        guard size > 0 else { return nil }
        withUnsafeMutableBytes(of: &storage) { dst in
            dst.copyMemory(from: UnsafeRawBufferPointer(start: UnsafeRawPointer(address), count: size))
        }
        length = socklen_t(size)
    }

    /// `ADDR:PORT` with the IPv6 address in brackets: `127.0.0.1:30003`, `[::1]:30003`, `0.0.0.0:0`.
    public init?(hostPort: String) {
        guard let (host, port) = SocketAddress.split(hostPort: hostPort) else { return nil }
        self.init(ip: host, port: port)
    }

    /// Splits `host:port` / `[v6]:port`; the port must be 0–65535 in plain decimal.
    public static func split(hostPort: String) -> (String, UInt16)? {
        let bytes = Array(hostPort.utf8)
        var host: [UInt8]
        var rest: ArraySlice<UInt8>
        if bytes.first == UInt8(ascii: "[") {
            guard let close = bytes.firstIndex(of: UInt8(ascii: "]")), close + 1 < bytes.count,
                  bytes[close + 1] == UInt8(ascii: ":") else { return nil }
            host = Array(bytes[1..<close])
            rest = bytes[(close + 2)...]
        } else {
            guard let colon = bytes.lastIndex(of: UInt8(ascii: ":")),
                  !bytes[..<colon].contains(UInt8(ascii: ":")) else { return nil }
            host = Array(bytes[..<colon])
            rest = bytes[(colon + 1)...]
        }
        guard !host.isEmpty, !rest.isEmpty, rest.count <= 5 else { return nil }
        var port = 0
        for b in rest {
            guard b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") else { return nil }
            port = port * 10 + Int(b - UInt8(ascii: "0"))
        }
        guard port <= 65535 else { return nil }
        return (String(decoding: host, as: UTF8.self), UInt16(port))
    }

    public var port: UInt16 {
        withUnsafeBytes(of: storage) { raw in
            isIPv6 ? UInt16(bigEndian: raw.load(as: sockaddr_in6.self).sin6_port)
                   : UInt16(bigEndian: raw.load(as: sockaddr_in.self).sin_port)
        }
    }

    public var ipString: String {
        var buffer = [CChar](repeating: 0, count: 64)
        var copy = storage
        let ok = withUnsafeMutableBytes(of: &copy) { raw -> Bool in
            let base = raw.baseAddress!
            let addr = isIPv6 ? base + 8 : base + 4   // sin6_addr / sin_addr offsets
            return inet_ntop(isIPv6 ? AF_INET6 : AF_INET, addr, &buffer, socklen_t(buffer.count)) != nil
        }
        guard ok else { return "?" }
        return String(cString: buffer)
    }

    /// `127.0.0.1:30003` or `[::1]:30003`.
    public var description: String { isIPv6 ? "[\(ipString)]:\(port)" : "\(ipString):\(port)" }

    public func withSockaddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        withUnsafeBytes(of: storage) { raw in
            body(raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), length)
        }
    }
}
