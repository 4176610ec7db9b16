/// RFC 4648 base64 (§4, padded) and base64url (§5, unpadded, as JWT uses it). Decoding is strict: wrong
/// alphabet, misplaced or missing padding and non-zero trailing bits are all refused, so every byte string has
/// exactly one accepted text (a JWT signature cannot be re-encoded into a second valid token).
public enum Base64 {
    public static func encode(_ bytes: [UInt8]) -> String { encode(bytes, url: false) }

    public static func decode(_ text: String) -> [UInt8]? {
        let chars = Array(text.utf8)
        guard chars.count % 4 == 0 else { return nil }
        var end = chars.count
        if end > 0 && chars[end - 1] == pad { end -= 1 }
        if end > 0 && chars[end - 1] == pad && end == chars.count - 1 { end -= 1 }
        return decode(chars[0..<end], url: false)
    }

    public static func urlEncode(_ bytes: [UInt8]) -> String { encode(bytes, url: true) }

    public static func urlDecode(_ text: String) -> [UInt8]? {
        let chars = Array(text.utf8)
        return decode(chars[0..<chars.count], url: true)
    }

    static let pad = UInt8(ascii: "=")

    static func symbol(_ value: UInt8, url: Bool) -> UInt8 {
        switch value {
        case 0..<26: return UInt8(ascii: "A") + value
        case 26..<52: return UInt8(ascii: "a") + value - 26
        case 52..<62: return UInt8(ascii: "0") + value - 52
        case 62: return url ? UInt8(ascii: "-") : UInt8(ascii: "+")
        default: return url ? UInt8(ascii: "_") : UInt8(ascii: "/")
        }
    }

    static func value(_ symbol: UInt8, url: Bool) -> UInt8? {
        switch symbol {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): return symbol - UInt8(ascii: "A")
        case UInt8(ascii: "a")...UInt8(ascii: "z"): return symbol - UInt8(ascii: "a") + 26
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return symbol - UInt8(ascii: "0") + 52
        case UInt8(ascii: "+") where !url, UInt8(ascii: "-") where url: return 62
        case UInt8(ascii: "/") where !url, UInt8(ascii: "_") where url: return 63
        default: return nil
        }
    }

    static func encode(_ bytes: [UInt8], url: Bool) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var i = 0
        while i < bytes.count {
            let n = min(3, bytes.count - i)
            let b0 = bytes[i], b1 = n > 1 ? bytes[i + 1] : 0, b2 = n > 2 ? bytes[i + 2] : 0
            out.append(symbol(b0 >> 2, url: url))
            out.append(symbol((b0 & 0x03) << 4 | b1 >> 4, url: url))
            if n > 1 { out.append(symbol((b1 & 0x0F) << 2 | b2 >> 6, url: url)) } else if !url { out.append(pad) }
            if n > 2 { out.append(symbol(b2 & 0x3F, url: url)) } else if !url { out.append(pad) }
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Unpadded symbols only; a final group of 2 or 3 symbols must leave its unused low bits zero.
    static func decode(_ chars: ArraySlice<UInt8>, url: Bool) -> [UInt8]? {
        guard chars.count % 4 != 1 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(chars.count * 3 / 4)
        var acc: UInt32 = 0
        var bits = 0
        for c in chars {
            guard let v = value(c, url: url) else { return nil }
            acc = acc << 6 | UInt32(v)
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: acc >> UInt32(bits)))
                acc &= (1 << UInt32(bits)) - 1
            }
        }
        guard acc == 0 else { return nil }
        return out
    }
}
