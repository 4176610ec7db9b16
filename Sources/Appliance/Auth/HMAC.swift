import CCrypto

/// Hashes and MACs from the crypto library the flavour already links for libssh2 (OpenSSL's libcrypto, or mbedTLS in
/// the small flavour; Sources/CCrypto), so Sluice carries no crypto of its own.
public enum Digest {
    public static func hmacSHA256(key: [UInt8], message: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        let rc = withBytes(key) { k, kn in
            withBytes(message) { m, mn in
                out.withUnsafeMutableBufferPointer { o in ccrypto_hmac_sha256(k, kn, m, mn, o.baseAddress) }
            }
        }
        precondition(rc == 0, "HMAC-SHA256 failed")
        return out
    }

    public static func sha1(_ bytes: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 20)
        let rc = withBytes(bytes) { p, n in
            out.withUnsafeMutableBufferPointer { o in ccrypto_sha1(p, n, o.baseAddress) }
        }
        precondition(rc == 0, "SHA-1 failed")
        return out
    }

    public static func sha256(_ bytes: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        let rc = withBytes(bytes) { p, n in
            out.withUnsafeMutableBufferPointer { o in ccrypto_sha256(p, n, o.baseAddress) }
        }
        precondition(rc == 0, "SHA-256 failed")
        return out
    }

    /// PBKDF2-HMAC-SHA256 of `length` bytes, nil when the library refuses the parameters.
    public static func pbkdf2SHA256(password: [UInt8], salt: [UInt8], iterations: Int, length: Int) -> [UInt8]? {
        guard iterations > 0, iterations <= Int(UInt32.max), length > 0 else { return nil }
        var out = [UInt8](repeating: 0, count: length)
        let rc = withBytes(password) { p, pn in
            withBytes(salt) { s, sn in
                out.withUnsafeMutableBufferPointer { o in
                    ccrypto_pbkdf2_sha256(p, pn, s, sn, UInt32(iterations), o.baseAddress, o.count)
                }
            }
        }
        return rc == 0 ? out : nil
    }

    /// Time depends on the length only (lengths of MACs are public), never on where the bytes differ.
    public static func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        if a.isEmpty { return true }
        return withBytes(a) { pa, n in withBytes(b) { pb, _ in ccrypto_memcmp(pa, pb, n) } } == 0
    }

    /// "OpenSSL 3.0.22" or "mbedTLS 3.6.6": the library these come from, as linked.
    public static var library: String {
        String(cString: ccrypto_library()) + " " + String(cString: ccrypto_version())
    }

    /// An empty array may have no base address; the library gets a valid pointer either way.
    static func withBytes<R>(_ bytes: [UInt8], _ body: (UnsafePointer<UInt8>, Int) -> R) -> R {
        if bytes.isEmpty {
            var zero: UInt8 = 0
            return withUnsafePointer(to: &zero) { body($0, 0) }
        }
        return bytes.withUnsafeBufferPointer { body($0.baseAddress!, $0.count) }
    }
}
