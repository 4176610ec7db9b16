import Relay

/// Syntax checks of single configuration values. Pure: no I/O, no name resolution.
enum ConfigSyntax {
    enum Family { case v4, v6 }

    /// The family of a numeric IP address (no brackets, no zone), nil when `text` is not one.
    static func ipFamily(_ text: String) -> Family? {
        guard let address = SocketAddress(ip: text, port: 0) else { return nil }
        return address.isIPv6 ? .v6 : .v4
    }

    static func isIP(_ text: String) -> Bool { ipFamily(text) != nil }

    /// RFC 1123 host names: dot-separated labels of letters, digits and hyphens (no hyphen at either end), at most
    /// 63 bytes a label and 253 in all. The last label may not be all digits, so `10.0.0.300` is no host name.
    static func isHostName(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty, bytes.count <= 253 else { return false }
        var label: [UInt8] = []
        var lastLabelNumeric = false
        for i in 0...bytes.count {
            if i == bytes.count || bytes[i] == UInt8(ascii: ".") {
                guard !label.isEmpty, label.count <= 63, label.first != UInt8(ascii: "-"),
                      label.last != UInt8(ascii: "-") else { return false }
                lastLabelNumeric = label.allSatisfy(isDigit)
                label.removeAll()
                continue
            }
            let b = bytes[i]
            guard isDigit(b) || isLetter(b) || b == UInt8(ascii: "-") else { return false }
            label.append(b)
        }
        return !lastLabelNumeric
    }

    static func isIPOrHostName(_ text: String) -> Bool { isIP(text) || isHostName(text) }

    /// A DNS name for `hosts[].ip` (appliance.md §2): RFC 1123, single labels allowed, one trailing dot allowed
    /// (a fully qualified name), IDN only as A-labels (`xn--`: non-ASCII is refused).
    static func isDNSName(_ text: String) -> Bool {
        var name = text
        if name.hasSuffix(".") && name.utf8.count > 1 { name.removeLast() }
        return isHostName(name)
    }

    static func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }
    static func isLetter(_ b: UInt8) -> Bool { (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) }

    /// A plain decimal port 1–65535 (no sign, no leading zero).
    static func port(_ bytes: ArraySlice<UInt8>) -> Int? {
        guard !bytes.isEmpty, bytes.count <= 5, bytes.first != UInt8(ascii: "0"), bytes.allSatisfy(isDigit) else {
            return nil
        }
        var value = 0
        for b in bytes { value = value * 10 + Int(b - 0x30) }
        return value <= 65535 ? value : nil
    }

    /// `scheme://host[:port]` as browsers send it in `Origin`: scheme http or https, lower case, no path.
    static func isOrigin(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        var rest: ArraySlice<UInt8>
        if bytes.starts(with: "http://".utf8) {
            rest = bytes[7...]
        } else if bytes.starts(with: "https://".utf8) {
            rest = bytes[8...]
        } else {
            return false
        }
        let hostValid: Bool
        if rest.first == UInt8(ascii: "[") {
            guard let close = rest.firstIndex(of: UInt8(ascii: "]")) else { return false }
            hostValid = ipFamily(String(decoding: rest[(rest.startIndex + 1)..<close], as: UTF8.self)) == .v6
            rest = rest[(close + 1)...]
        } else {
            let end = rest.firstIndex(of: UInt8(ascii: ":")) ?? rest.endIndex
            let name = String(decoding: rest[..<end], as: UTF8.self)
            hostValid = ipFamily(name) == .v4 || isHostName(name)
            rest = rest[end...]
        }
        guard hostValid else { return false }
        if rest.isEmpty { return true }
        guard rest.first == UInt8(ascii: ":") else { return false }
        return port(rest.dropFirst()) != nil
    }

    static let hostKeyTypes = ["ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
                               "ssh-rsa"]

    /// What is wrong with a `hostKey` pin, nil when it is a valid OpenSSH public-key line (`type base64 [comment]`,
    /// the blob naming the same type) or a `SHA256:` fingerprint (43 unpadded base64 characters).
    static func hostKeyProblem(_ text: String) -> String? {
        let bytes = Array(text.utf8)
        if bytes.starts(with: "SHA256:".utf8) {
            let digest = bytes[7...]
            // 32 bytes of SHA-256 are 43 base64 characters once the padding is dropped
            guard digest.count == 43, Base64.decode(digest, url: false)?.count == 32 else {
                return "must be SHA256: followed by 43 base64 characters"
            }
            return nil
        }
        let fields = split(bytes)
        guard fields.count >= 2 else {
            return "must be an OpenSSH public-key line (type base64 [comment]) or a SHA256: fingerprint"
        }
        let type = String(decoding: fields[0], as: UTF8.self)
        guard hostKeyTypes.contains(type) else {
            return "unknown key type (expected ssh-ed25519, ecdsa-sha2-nistp256/384/521 or ssh-rsa)"
        }
        guard let blob = Base64.decode(String(decoding: fields[1], as: UTF8.self)) else { return "the key is not valid base64" }
        guard blobType(blob) == type else { return "the key data does not hold a \(type) key" }
        return nil
    }

    /// Fields separated by runs of spaces or tabs.
    static func split(_ bytes: [UInt8]) -> [ArraySlice<UInt8>] {
        var fields: [ArraySlice<UInt8>] = []
        var start: Int? = nil
        for i in 0...bytes.count {
            let blank = i == bytes.count || bytes[i] == 0x20 || bytes[i] == 0x09
            if blank, let s = start {
                fields.append(bytes[s..<i])
                start = nil
            } else if !blank && start == nil {
                start = i
            }
        }
        return fields
    }

    /// The key type an SSH public-key blob starts with (RFC 4253 §6.6: a uint32 length, then the name).
    static func blobType(_ blob: [UInt8]) -> String? {
        guard blob.count >= 4 else { return nil }
        let length = Int(blob[0]) << 24 | Int(blob[1]) << 16 | Int(blob[2]) << 8 | Int(blob[3])
        guard length > 0, length <= 64, blob.count >= 4 + length else { return nil }
        return String(decoding: blob[4..<(4 + length)], as: UTF8.self)
    }
}
