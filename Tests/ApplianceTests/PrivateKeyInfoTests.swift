import Testing
@testable import Appliance

/// `PrivateKeyInfo.describe` reads the clear public part of a key file: a pure parser of untrusted bytes (a key file
/// an operator points at), so every truncation and every length field must be survived.
@Suite struct PrivateKeyInfoTests {
    static func string(_ bytes: [UInt8]) -> [UInt8] {
        let n = bytes.count
        return [UInt8(n >> 24 & 0xff), UInt8(n >> 16 & 0xff), UInt8(n >> 8 & 0xff), UInt8(n & 0xff)] + bytes
    }

    /// "openssh-key-v1\0", cipher, kdf, kdf options, key count, then the first public key blob.
    static func opensshBody(keyType: String) -> [UInt8] {
        Array("openssh-key-v1".utf8) + [0] + string(Array("none".utf8)) + string(Array("none".utf8)) + string([])
            + [0, 0, 0, 1] + string(string(Array(keyType.utf8)) + string([UInt8](repeating: 7, count: 32)))
    }

    static func armored(_ body: [UInt8]) -> [UInt8] {
        Array("-----BEGIN OPENSSH PRIVATE KEY-----\n\(Base64.encode(body))\n-----END OPENSSH PRIVATE KEY-----\n".utf8)
    }

    @Test func namesEveryForm() {
        #expect(PrivateKeyInfo.describe(Self.armored(Self.opensshBody(keyType: "ssh-ed25519"))) == "ssh-ed25519")
        #expect(PrivateKeyInfo.describe(Self.armored(Self.opensshBody(keyType: "ecdsa-sha2-nistp256")))
                == "ecdsa-sha2-nistp256")
        #expect(PrivateKeyInfo.describe(Array("-----BEGIN RSA PRIVATE KEY-----\nAAAA\n".utf8)) == "ssh-rsa PEM")
        #expect(PrivateKeyInfo.describe(Array("-----BEGIN EC PRIVATE KEY-----\n".utf8)) == "ecdsa PEM")
        #expect(PrivateKeyInfo.describe(Array("-----BEGIN PRIVATE KEY-----\n".utf8)) == "PKCS#8")
        #expect(PrivateKeyInfo.describe(Array("-----BEGIN ENCRYPTED PRIVATE KEY-----\n".utf8)) == "PKCS#8")
        #expect(PrivateKeyInfo.describe(Array("ssh-ed25519 AAAA… a public key".utf8)) == "unrecognised")
        #expect(PrivateKeyInfo.describe([]) == "unrecognised")
    }

    @Test func everyTruncationIsSurvived() {
        let body = Self.opensshBody(keyType: "ssh-ed25519")
        for cut in 0..<body.count {
            let name = PrivateKeyInfo.describe(Self.armored(Array(body[..<cut])))
            #expect(name == "OpenSSH", "cut at \(cut): \(name)")
        }
    }

    @Test func hugeAndBogusLengthsAreRefused() {
        var body = Self.opensshBody(keyType: "ssh-ed25519")
        for at in [15, 23, 31, 39, 43] {   // cipher, kdf, kdf options, public key, its type
            var bad = body
            bad[at] = 0xff; bad[at + 1] = 0xff; bad[at + 2] = 0xff; bad[at + 3] = 0xff
            #expect(PrivateKeyInfo.describe(Self.armored(bad)) == "OpenSSH", "length at \(at)")
        }
        body[15] = 0x7f
        #expect(PrivateKeyInfo.describe(Self.armored(body)) == "OpenSSH")
        #expect(PrivateKeyInfo.describe(Array("-----BEGIN OPENSSH PRIVATE KEY-----\n!!not base64!!\n".utf8)) == "OpenSSH")
    }
}
