import Testing
@testable import Appliance

@Suite struct PasswordHashTests {
    @Test func makeVerifyAndRoundTrip() throws {
        let hash = try #require(PasswordHash.make(password: "correct horse", iterations: 1000))
        #expect(hash.verify("correct horse"))
        #expect(!hash.verify("correct horse "))
        let parsed = try #require(PasswordHash.parse(hash.text))
        #expect(parsed == hash)
        #expect(hash.text.hasPrefix("pbkdf2-sha256$1000$"))
    }

    /// Issue #15: unknown users were checked against a decoy of the default count whatever the configured hashes
    /// used, so the answer's timing told which user names exist.
    @Test func decoyUsesTheConfiguredIterations() throws {
        var config = Config()
        #expect(Session.decoy(for: config).iterations == PasswordHash.defaultIterations)
        let hash = try #require(PasswordHash.make(password: "pw", iterations: 1000))
        config.users = [User(id: "a", username: "a"), User(id: "b", username: "b", passwordHash: Secret(hash.text))]
        #expect(Session.decoy(for: config).iterations == 1000)
    }

    @Test func knownVector() throws {
        // RFC 7914 §11 PBKDF2-HMAC-SHA256 vector: P="passwd", S="salt", c=1, dkLen=64
        let out = try #require(PasswordHash.derive(password: "passwd", salt: Array("salt".utf8), iterations: 1, length: 64))
        #expect(out.prefix(8) == [0x55, 0xac, 0x04, 0x6e, 0x56, 0xe3, 0x08, 0x9f])
    }

    @Test(arguments: ["", "pbkdf2-sha256$100$c2FsdHNhbHQ=$AAAAAAAAAAAAAAAAAAAAAA==", "sha1$1000$c2FsdHNhbHQ=$AAAAAAAAAAAAAAAAAAAAAA==",
                      "pbkdf2-sha256$1000$c2FsdA==$AAAAAAAAAAAAAAAAAAAAAA==", "pbkdf2-sha256$1000$c2FsdHNhbHQ=$AAAA",
                      "pbkdf2-sha256$x$c2FsdHNhbHQ=$AAAAAAAAAAAAAAAAAAAAAA==", "pbkdf2-sha256$1000$!!!$AAAAAAAAAAAAAAAAAAAAAA=="])
    func rejectsMalformed(_ text: String) {
        #expect(PasswordHash.parse(text) == nil)
    }
}
