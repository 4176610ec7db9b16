/// Names a private key for failure reasons ("publickey (ecdsa-sha2-nistp256 key) rejected"), without decrypting it:
/// an OpenSSH key file carries its public key in clear.
public enum PrivateKeyInfo {
    /// The small flavour's libssh2 runs on mbedTLS, which reads RSA keys in PEM or PKCS#8 form only: it has
    /// no Ed25519, cannot parse OpenSSH-format key files, and cannot derive an ECDSA public key (Sluice keeps only
    /// the private key). Saying so beats a bare "authentication failed".
    static func unsupportedInThisBuild(_ keyType: String) -> String? {
        #if CRYPTO_MBEDTLS
        if keyType == "ssh-rsa PEM" || keyType == "PKCS#8" { return nil }
        return "Authentication failed: \(keyType) keys cannot be used by the small (mbedTLS) build of Sluice, "
            + "which reads RSA keys in PEM or PKCS#8 form only (convert with ssh-keygen -p -m PEM) or passwords; "
            + "the default (OpenSSL) build takes every key type"
        #else
        return nil
        #endif
    }

    public static func describe(_ file: [UInt8]) -> String {
        let text = String(decoding: file, as: UTF8.self)
        if text.hasPrefix("-----BEGIN EC PRIVATE KEY") { return "ecdsa PEM" }
        if text.hasPrefix("-----BEGIN RSA PRIVATE KEY") { return "ssh-rsa PEM" }
        if text.hasPrefix("-----BEGIN ENCRYPTED PRIVATE KEY") || text.hasPrefix("-----BEGIN PRIVATE KEY") {
            return "PKCS#8"
        }
        guard text.hasPrefix("-----BEGIN OPENSSH PRIVATE KEY") else { return "unrecognised" }
        var body: [UInt8] = []
        for line in text.split(separator: "\n").dropFirst() {
            if line.hasPrefix("-----") { break }
            body += Array(line.utf8).filter { $0 != 0x0D }
        }
        guard let raw = Base64.decode(String(decoding: body, as: UTF8.self)) else { return "OpenSSH" }
        // "openssh-key-v1\0", string cipher, string kdf, string kdfoptions, uint32 count, string publickey
        var offset = 15
        func field() -> ArraySlice<UInt8>? {
            guard offset + 4 <= raw.count else { return nil }
            let length = Int(raw[offset]) << 24 | Int(raw[offset + 1]) << 16 | Int(raw[offset + 2]) << 8 | Int(raw[offset + 3])
            offset += 4
            guard length >= 0, offset + length <= raw.count else { return nil }
            defer { offset += length }
            return raw[offset..<(offset + length)]
        }
        guard raw.count > 15, field() != nil, field() != nil, field() != nil, offset + 4 <= raw.count else { return "OpenSSH" }
        offset += 4
        guard let publicKey = field(), publicKey.count >= 4 else { return "OpenSSH" }
        let base = publicKey.startIndex
        let length = Int(publicKey[base]) << 24 | Int(publicKey[base + 1]) << 16 | Int(publicKey[base + 2]) << 8
            | Int(publicKey[base + 3])
        guard length > 0, 4 + length <= publicKey.count else { return "OpenSSH" }
        return String(decoding: publicKey[(base + 4)..<(base + 4 + length)], as: UTF8.self)
    }
}
