/// RFC 1928 server side, no I/O: feed it the bytes received so far and it says what it needs, what to answer, or
/// where to connect. Only the no-authentication method and CONNECT are served (tunnels-api.md §7).
public enum SOCKS5 {
    public enum Target: Equatable {
        case ipv4([UInt8])      // 4 bytes
        case ipv6([UInt8])      // 16 bytes
        case domain(String)
    }

    public enum Reply: UInt8 {
        case succeeded = 0x00, generalFailure = 0x01, notAllowed = 0x02, networkUnreachable = 0x03,
             hostUnreachable = 0x04, connectionRefused = 0x05, ttlExpired = 0x06, commandNotSupported = 0x07,
             addressTypeNotSupported = 0x08
    }

    public enum Step: Equatable {
        /// Not enough bytes yet.
        case needMore
        /// Greeting accepted: send `reply` (05 00), then expect the request; `consumed` bytes were used.
        case greeted(reply: [UInt8], consumed: Int)
        /// Send `reply` and close (no acceptable method, bad version, unsupported command or address type).
        case reject(reply: [UInt8])
        /// A CONNECT: open the target, then answer with `reply(_:)`. `consumed` bytes were used; anything after them
        /// is payload for the target.
        case connect(target: Target, port: UInt16, consumed: Int)
    }

    /// Parses the greeting: VER NMETHODS METHODS…
    public static func greeting(_ bytes: ArraySlice<UInt8>) -> Step {
        guard bytes.count >= 2 else { return .needMore }
        let base = bytes.startIndex
        guard bytes[base] == 5 else { return .reject(reply: pair(5, 0xFF)) }
        let count = Int(bytes[base + 1])
        guard bytes.count >= 2 + count else { return .needMore }
        let methods = bytes[(base + 2)..<(base + 2 + count)]
        guard methods.contains(0) else { return .reject(reply: pair(5, 0xFF)) }
        return .greeted(reply: pair(5, 0), consumed: 2 + count)
    }

    /// Two bytes built at run time, not the literals `[5, 0]` and `[5, 0xFF]`: Embedded Swift 6.3.1 names the
    /// constant objects of a function's literals by their order (`greeting…Tv_r`, `…Tv0_r`), compiles this function
    /// again in every module that uses it, and a client module may number them the other way round; the linker then
    /// gives `greeting` the client's bytes (05 FF for a valid greeting, issue #25). tools/embedded-runtime-check
    /// reproduces it; tools/build-product.sh refuses a product with such a clash.
    @inline(never)
    static func pair(_ first: UInt8, _ second: UInt8) -> [UInt8] {
        var result = [UInt8](repeating: first, count: 2)
        result[1] = second
        return result
    }

    /// Parses the request: VER CMD RSV ATYP DST.ADDR DST.PORT.
    public static func request(_ bytes: ArraySlice<UInt8>) -> Step {
        guard bytes.count >= 4 else { return .needMore }
        let base = bytes.startIndex
        guard bytes[base] == 5 else { return .reject(reply: reply(.generalFailure)) }
        let command = bytes[base + 1]
        let addressType = bytes[base + 3]
        var length: Int
        switch addressType {
        case 1: length = 4
        case 4: length = 16
        case 3:
            guard bytes.count >= 5 else { return .needMore }
            length = 1 + Int(bytes[base + 4])
            guard length > 1 else { return .reject(reply: reply(.generalFailure)) }
        default: return .reject(reply: reply(.addressTypeNotSupported))
        }
        let total = 4 + length + 2
        guard bytes.count >= total else { return .needMore }
        guard command == 1 else { return .reject(reply: reply(.commandNotSupported)) }   // BIND, UDP ASSOCIATE
        let address = Array(bytes[(base + 4)..<(base + 4 + length)])
        let port = UInt16(bytes[base + 4 + length]) << 8 | UInt16(bytes[base + 5 + length])
        let target: Target
        switch addressType {
        case 1: target = .ipv4(address)
        case 4: target = .ipv6(address)
        default:
            let name = address.dropFirst()
            // a host name, not arbitrary bytes: no NUL, controls, spaces or non-ASCII
            guard name.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { return .reject(reply: reply(.generalFailure)) }
            target = .domain(String(decoding: name, as: UTF8.self))
        }
        return .connect(target: target, port: port, consumed: total)
    }

    /// A full RFC reply: `05 REP 00 01 0.0.0.0 0`.
    public static func reply(_ code: Reply) -> [UInt8] { [5, code.rawValue, 0, 1, 0, 0, 0, 0, 0, 0] }

    /// `1.2.3.4`, `[::1]`-less IPv6 text, or the domain, for logs and policy checks.
    public static func hostText(_ target: Target) -> String {
        switch target {
        case .domain(let name): return name
        case .ipv4(let b): return "\(b[0]).\(b[1]).\(b[2]).\(b[3])"
        case .ipv6(let b):
            var groups: [String] = []
            for i in stride(from: 0, to: 16, by: 2) {
                groups.append(String(UInt16(b[i]) << 8 | UInt16(b[i + 1]), radix: 16))
            }
            return groups.joined(separator: ":")
        }
    }
}
