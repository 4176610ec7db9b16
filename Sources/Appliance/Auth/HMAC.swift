import CMbedTLS

/// Hashes and MACs from mbedTLS (already linked for libssh2's sake), so Sluice carries no crypto of its own.
public enum Digest {
    public static func hmacSHA256(key: [UInt8], message: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        let rc = withBytes(key) { k, kn in
            withBytes(message) { m, mn in
                out.withUnsafeMutableBufferPointer { o in
                    mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), k, kn, m, mn, o.baseAddress)
                }
            }
        }
        precondition(rc == 0, "mbedtls_md_hmac failed")
        return out
    }

    public static func sha1(_ bytes: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 20)
        let rc = withBytes(bytes) { p, n in
            out.withUnsafeMutableBufferPointer { o in mbedtls_sha1_ret(p, n, o.baseAddress) }
        }
        precondition(rc == 0, "mbedtls_sha1_ret failed")
        return out
    }

    public static func sha256(_ bytes: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        let rc = withBytes(bytes) { p, n in
            out.withUnsafeMutableBufferPointer { o in mbedtls_sha256_ret(p, n, o.baseAddress, 0) }
        }
        precondition(rc == 0, "mbedtls_sha256_ret failed")
        return out
    }

    /// Time depends on the length only (lengths of MACs are public), never on where the bytes differ.
    public static func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        if a.isEmpty { return true }
        return withBytes(a) { pa, n in withBytes(b) { pb, _ in mbedtls_ct_memcmp(pa, pb, n) } } == 0
    }

    /// An empty array may have no base address; mbedTLS gets a valid pointer either way.
    static func withBytes<R>(_ bytes: [UInt8], _ body: (UnsafePointer<UInt8>, Int) -> R) -> R {
        if bytes.isEmpty {
            var zero: UInt8 = 0
            return withUnsafePointer(to: &zero) { body($0, 0) }
        }
        return bytes.withUnsafeBufferPointer { body($0.baseAddress!, $0.count) }
    }
}
