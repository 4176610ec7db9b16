import Testing
@testable import Appliance
import Relay

/// Known-answer tests of Sluice's own crypto (Sources/CCrypto) on whichever library the flavour links: `make unit`
/// runs them on OpenSSL's libcrypto, `make unit CRYPTO=mbedtls` on mbedTLS. HMAC-SHA256's RFC 4231 cases are in
/// JWTTests.
@Suite struct DigestVectorTests {
    static func hexOf(_ b: [UInt8]) -> String {
        let digits = Array("0123456789abcdef")
        return String(b.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 15)]] })
    }

    /// PBKDF2-HMAC-SHA256 in the shape of RFC 6070 (which gives SHA-1): its inputs, the SHA-256 outputs published
    /// with them, and RFC 7914 §11's two vectors (an 80 000-iteration one among them).
    @Test(arguments: [
        ("password", "salt", 1, 32, "120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b"),
        ("password", "salt", 2, 32, "ae4d0c95af6b46d32d0adff928f06dd02a303f8ef3c251dfd6e2d85a95474c43"),
        ("password", "salt", 4096, 32, "c5e478d59288c841aa530db6845c4c8d962893a001ce4e11a4963873aa98134a"),
        ("passwordPASSWORDpassword", "saltSALTsaltSALTsaltSALTsaltSALTsalt", 4096, 40,
         "348c89dbcbd32b2f32d814b8116e84cf2b17347ebc1800181c4e2a1fb8dd53e1c635518c7dac47e9"),
        ("pass\u{0}word", "sa\u{0}lt", 4096, 16, "89b69d0516f829893c696226650a8687"),
        ("passwd", "salt", 1, 64, "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"
            + "49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783"),
        ("Password", "NaCl", 80000, 64, "4ddcd8f60b98be21830cee5ef22701f9641a4418d04c0414aeff08876b34ab56"
            + "a1d425a1225833549adb841b51c9b3176a272bdebba1d078478f62b397f33c8d"),
    ])
    func pbkdf2(_ password: String, _ salt: String, _ iterations: Int, _ length: Int, _ expected: String) throws {
        let out = try #require(PasswordHash.derive(password: password, salt: Array(salt.utf8), iterations: iterations,
                                                   length: length))
        #expect(Self.hexOf(out) == expected)
    }

    @Test func pbkdf2RefusesWhatItCannotDerive() {
        #expect(Digest.pbkdf2SHA256(password: [1], salt: [2], iterations: 0, length: 32) == nil)
        #expect(Digest.pbkdf2SHA256(password: [1], salt: [2], iterations: 1, length: 0) == nil)
        // an empty password and salt are legal inputs (RFC 8018 puts no lower bound on either)
        #expect(Digest.pbkdf2SHA256(password: [], salt: [], iterations: 1, length: 32)?.count == 32)
    }

    /// A stored hash verifies its password and no other (the login path: derive, then the constant-time compare).
    @Test func passwordHashRoundTrip() throws {
        let hash = try #require(PasswordHash.make(password: "correct horse", iterations: 1000))
        let parsed = try #require(PasswordHash.parse(hash.text))
        #expect(parsed.verify("correct horse"))
        #expect(!parsed.verify("correct horsE"))
        #expect(!parsed.verify(""))
    }

    /// FIPS 180 examples beyond "abc" (JWTTests): the two-block message and one million "a".
    @Test func shaLongMessages() {
        let twoBlocks = Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)
        #expect(Self.hexOf(Digest.sha1(twoBlocks)) == "84983e441c3bd26ebaae4aa1f95129e5e54670f1")
        #expect(Self.hexOf(Digest.sha256(twoBlocks)) == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        let million = [UInt8](repeating: 0x61, count: 1_000_000)
        #expect(Self.hexOf(Digest.sha1(million)) == "34aa973cd4c4daa4f61eeb2bdbad27316534016f")
        #expect(Self.hexOf(Digest.sha256(million)) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test func constantTimeEqualsFindsEveryPosition() {
        let a = [UInt8](0..<64)
        for i in a.indices {
            var b = a
            b[i] ^= 0x80
            #expect(!Digest.constantTimeEquals(a, b), "difference at \(i)")
        }
        #expect(Digest.constantTimeEquals(a, a))
        #expect(!Digest.constantTimeEquals(a, Array(a.dropLast())))
    }

    /// The library named is the flavour's: the OpenSSL build carries no mbedTLS, the small build no OpenSSL.
    @Test func libraryIsTheFlavours() {
        if SSHLibrary.cryptoFlavour == "mbedtls" {
            #expect(Digest.library.hasPrefix("mbedTLS 3.6."))
        } else {
            #expect(Digest.library.hasPrefix("OpenSSL 3.0."))
        }
    }
}
