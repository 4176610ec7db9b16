import Testing
@testable import Relay

/// What libssh2 can negotiate follows the crypto library it was built on: the OpenSSL flavour's libcrypto is cut to
/// what SSH uses (tools/deps.sh, OPENSSL_OPTIONS), so the ciphers of the algorithms configured out must be gone from
/// libssh2's list, and Sluice's preference must name only what is there.
@Suite struct SSHAlgorithmsTests {
    static let aead = ["aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "chacha20-poly1305@openssh.com"]
    static let aes = ["aes128-ctr", "aes192-ctr", "aes256-ctr", "aes128-cbc", "aes192-cbc", "aes256-cbc"]
    static let legacy = ["3des-cbc", "blowfish-cbc", "cast128-cbc", "arcfour", "arcfour128"]

    static func offered(_ names: [String]) -> [String] {
        SSHAlgorithms.supportedOnly(names.joined(separator: ",")).split(separator: ",").map { String($0) }
    }

    @Test func preferenceNamesOnlyWhatLibssh2Offers() {
        let supported = Self.offered(Self.aead + Self.aes + Self.legacy)
        for name in SSHAlgorithms.cipherPreference.split(separator: ",") {
            #expect(supported.contains(String(name)), "\(name) is preferred but libssh2 cannot negotiate it")
        }
        #expect(!SSHAlgorithms.cipherPreference.isEmpty)
    }

    @Test func libssh2ListFollowsTheLibrary() {
        let supported = Self.offered(Self.aead + Self.aes + Self.legacy)
        #expect(supported.contains("chacha20-poly1305@openssh.com"))
        #expect(supported.contains("aes128-ctr") && supported.contains("aes256-ctr"))
        if SSHLibrary.cryptoFlavour == "openssl" {
            // AES-GCM through EVP; DES, Blowfish, CAST and RC4 are configured out of the libcrypto
            #expect(supported.contains("aes128-gcm@openssh.com") && supported.contains("aes256-gcm@openssh.com"))
            #expect(supported.filter { Self.legacy.contains($0) } == [])
        } else {
            // libssh2 1.11.1 has no AES-GCM on mbedTLS
            #expect(!supported.contains("aes128-gcm@openssh.com"))
        }
    }
}
