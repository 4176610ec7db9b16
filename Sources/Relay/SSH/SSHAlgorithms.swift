import CSSH2

/// The cipher preference Sluice offers, decided once from the CPU (issue #14): with AES instructions (x86 AES-NI +
/// PCLMULQDQ, ARMv8 AES + PMULL) AES-GCM first; without them (the Raspberry Pi 4's Cortex-A72) chacha20-poly1305
/// first, which runs several times faster in software. Names the flavour's libssh2 cannot negotiate (AES-GCM on
/// mbedTLS) are left out, so what `sluice version` lists is what a server can get.
public enum SSHAlgorithms {
    public static let aesInstructions: Bool = cssh2_cpu_has_aes() != 0

    static let aes = "aes128-gcm@openssh.com,aes256-gcm@openssh.com"
    static let chacha = "chacha20-poly1305@openssh.com"
    #if CRYPTO_MBEDTLS
    /// mbedTLS's CBC mode fails the handshake in libssh2 1.11.1 (tools/libssh2-check): not offered.
    static let rest = "aes128-ctr,aes192-ctr,aes256-ctr"
    #else
    static let rest = "aes128-ctr,aes192-ctr,aes256-ctr,aes256-cbc,aes192-cbc,aes128-cbc"
    #endif

    public static let cipherPreference: String =
        supportedOnly(aesInstructions ? aes + "," + chacha + "," + rest : chacha + "," + aes + "," + rest)

    /// `preference` less the names libssh2 does not support; all of it when libssh2 cannot say.
    static func supportedOnly(_ preference: String) -> String {
        var buffer = [CChar](repeating: 0, count: 1024)
        let count = buffer.withUnsafeMutableBufferPointer { cssh2_supported_ciphers($0.baseAddress, $0.count) }
        guard count > 0 else { return preference }
        let supported = String(cString: buffer).split(separator: ",")
        var kept = ""
        for name in preference.split(separator: ",") where supported.contains(name) {
            kept += (kept.isEmpty ? "" : ",") + name
        }
        return kept.isEmpty ? preference : kept
    }

    /// For `sluice version`.
    public static var summary: String {
        "ssh ciphers: " + cipherPreference + " (AES instructions: " + (aesInstructions ? "yes" : "no") + ")"
    }

    /// Negotiated algorithms of an established session.
    public struct Negotiated {
        public var kex: String
        public var hostKey: String
        public var cipher: String
        public var mac: String
    }

    static func negotiated(_ s: OpaquePointer) -> Negotiated {
        let cipher = String(cString: cssh2_method(s, LIBSSH2_METHOD_CRYPT_CS))
        var mac = String(cString: cssh2_method(s, LIBSSH2_METHOD_MAC_CS))
        // AEAD ciphers carry their own MAC (libssh2 reports a placeholder name)
        if cipher.hasSuffix("-gcm@openssh.com") || cipher.hasPrefix("chacha20-poly1305") { mac = "implicit" }
        return Negotiated(kex: String(cString: cssh2_method(s, LIBSSH2_METHOD_KEX)),
                          hostKey: String(cString: cssh2_method(s, LIBSSH2_METHOD_HOSTKEY)),
                          cipher: cipher, mac: mac)
    }
}

/// Established SSH sessions per negotiated cipher, process-wide, for `/metrics`. Any thread.
public final class SessionCiphers {
    public static let shared = SessionCiphers()

    private let counts = Locked<[(String, Int)]>([])

    func add(_ cipher: String, _ delta: Int) {
        counts.update { list in
            if let i = list.firstIndex(where: { $0.0 == cipher }) {
                list[i].1 += delta
            } else {
                list.append((cipher, delta))
            }
        }
    }

    /// (cipher, sessions up) in first-seen order; ciphers whose sessions all ended stay at 0.
    public func snapshot() -> [(String, Int)] { counts.get() }
}
