import Testing
@testable import Appliance

private func hex(_ bytes: [UInt8]) -> String {
    let digits = Array("0123456789abcdef")
    var s = ""
    for b in bytes { s.append(digits[Int(b >> 4)]); s.append(digits[Int(b & 15)]) }
    return s
}

private func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

@Suite struct Base64Tests {
    @Test func rfc4648Vectors() {
        let vectors = [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="),
                       ("fooba", "Zm9vYmE="), ("foobar", "Zm9vYmFy")]
        for (plain, coded) in vectors {
            #expect(Base64.encode(bytes(plain)) == coded)
            #expect(Base64.decode(coded) == bytes(plain))
            let unpadded = String(coded.split(separator: "=").first ?? "")
            #expect(Base64.urlEncode(bytes(plain)) == unpadded)
            #expect(Base64.urlDecode(unpadded) == bytes(plain))
        }
    }

    @Test func alphabetsDiffer() {
        let data: [UInt8] = [0xFB, 0xFF, 0xBF]
        #expect(Base64.encode(data) == "+/+/")
        #expect(Base64.urlEncode(data) == "-_-_")
        #expect(Base64.decode("-_-_") == nil)
        #expect(Base64.urlDecode("+/+/") == nil)
        #expect(Base64.urlDecode("-_-_") == data)
        let all = (0...255).map { UInt8($0) }
        #expect(Base64.decode(Base64.encode(all)) == all)
        #expect(Base64.urlDecode(Base64.urlEncode(all)) == all)
    }

    @Test(arguments: ["Zg", "Zg=", "Zg===", "Z===", "Zm9=v", "=Zm9", "Zm 9v", "Zm9v\n", "Zh==", "Zm9=", "Zm*v", "é"])
    func standardRejects(_ text: String) {
        #expect(Base64.decode(text) == nil, "accepted \(text)")
    }

    @Test(arguments: ["Zg==", "Zm8=", "Z", "Zm9vY", "Zh", "Zm9", "a+b", "a/b", "Zm 9v", "Zm9v.", "é"])
    func urlRejects(_ text: String) {
        #expect(Base64.urlDecode(text) == nil, "accepted \(text)")
    }
}

@Suite struct DigestTests {
    /// RFC 4231 §4.2–4.8 (test case 5 is compared on its first 128 bits, as the RFC gives it).
    @Test func rfc4231HMACSHA256() {
        let long = [UInt8](repeating: 0xAA, count: 131)
        let cases: [([UInt8], [UInt8], String)] = [
            ([UInt8](repeating: 0x0B, count: 20), bytes("Hi There"),
             "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
            (bytes("Jefe"), bytes("what do ya want for nothing?"),
             "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
            ([UInt8](repeating: 0xAA, count: 20), [UInt8](repeating: 0xDD, count: 50),
             "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
            ((1...25).map { UInt8($0) }, [UInt8](repeating: 0xCD, count: 50),
             "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
            ([UInt8](repeating: 0x0C, count: 20), bytes("Test With Truncation"), "a3b6167473100ee06e0c796c2955552b"),
            (long, bytes("Test Using Larger Than Block-Size Key - Hash Key First"),
             "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
            (long, bytes("This is a test using a larger than block-size key and a larger than block-size data. "
                         + "The key needs to be hashed before being used by the HMAC algorithm."),
             "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
        ]
        for (key, message, expected) in cases {
            let mac = hex(Digest.hmacSHA256(key: key, message: message))
            #expect(mac.hasPrefix(expected))
            #expect(mac.count == 64)
        }
    }

    @Test func hashes() {
        #expect(hex(Digest.sha256(bytes("abc"))) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(hex(Digest.sha256([])) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(hex(Digest.sha1(bytes("abc"))) == "a9993e364706816aba3e25717850c26c9cd0d89d")
        #expect(hex(Digest.sha1([])) == "da39a3ee5e6b4b0d3255bfef95601890afd80709")
        // RFC 6455 §1.3: the WebSocket accept key these serve.
        let accept = Base64.encode(Digest.sha1(bytes("dGhlIHNhbXBsZSBub25jZQ==258EAFA5-E914-47DA-95CA-C5AB0DC85B11")))
        #expect(accept == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        #expect(Digest.hmacSHA256(key: [], message: []).count == 32)
    }

    @Test func constantTimeEquals() {
        #expect(Digest.constantTimeEquals([], []))
        #expect(Digest.constantTimeEquals([1, 2, 3], [1, 2, 3]))
        #expect(!Digest.constantTimeEquals([1, 2, 3], [1, 2, 4]))
        #expect(!Digest.constantTimeEquals([1, 2, 3], [1, 2]))
        #expect(!Digest.constantTimeEquals([], [0]))
    }
}

@Suite struct SecureRandomTests {
    @Test func sizesAndSpread() {
        #expect(SecureRandom.bytes(0).isEmpty)
        #expect(SecureRandom.bytes(1000).count == 1000)
        #expect(SecureRandom.bytes(32) != SecureRandom.bytes(32))
        let h = SecureRandom.hex(32)
        #expect(h.count == 64)
        #expect(h.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) })
        // 64 KiB in which some byte value never appears: odds about 256·e^-256.
        #expect(Set(SecureRandom.bytes(65536)).count == 256)
    }
}

@Suite struct JWTTests {
    static let secret = bytes("termix-shared-secret-0123456789abcdef0123456789abcdef0123456789ab")
    static let now: Int64 = 1_700_000_100
    /// Built outside Sluice, the way jsonwebtoken builds it (Node: JSON.stringify, base64url, crypto HMAC-SHA256),
    /// for {userId: "u-alice"} at iat 1700000000 with expiresIn 86400.
    static let termixToken = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
        + ".eyJ1c2VySWQiOiJ1LWFsaWNlIiwiaWF0IjoxNzAwMDAwMDAwLCJleHAiOjE3MDAwODY0MDB9"
        + ".c8yL1kxMQxCavD_yG0rErP9VPD5AZQmya38UgPDTLpw"
    /// The same with pendingTOTP: true (as Termix issues between password and TOTP steps).
    static let termixPendingTOTP = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
        + ".eyJ1c2VySWQiOiJ1LWFsaWNlIiwicGVuZGluZ1RPVFAiOnRydWUsImlhdCI6MTcwMDAwMDAwMCwiZXhwIjoxNzAwMDg2NDAwfQ"
        + ".uLpPrhFymya103lmOMrLI7DII43gkH9adL8phU5A20I"
    /// HS384 with a real HMAC-SHA384 signature: a valid token of another algorithm.
    static let termixHS384 = "eyJhbGciOiJIUzM4NCIsInR5cCI6IkpXVCJ9"
        + ".eyJ1c2VySWQiOiJ1LWFsaWNlIiwiaWF0IjoxNzAwMDAwMDAwLCJleHAiOjE3MDAwODY0MDB9"
        + ".GvY6E0gpRiZnpWm6HzFS8pOCD-8Fwhdv7Z2ENDHrgrrUmwfJLhcf6_9nSGiA42mG"

    /// A token with any header and payload text, signed with HMAC-SHA256 whatever the header says.
    static func forge(_ header: String, _ payload: String, secret: [UInt8] = secret) -> String {
        let input = Base64.urlEncode(bytes(header)) + "." + Base64.urlEncode(bytes(payload))
        return input + "." + Base64.urlEncode(Digest.hmacSHA256(key: secret, message: bytes(input)))
    }
    static let hs256 = #"{"alg":"HS256","typ":"JWT"}"#

    func verify(_ token: String, secret: [UInt8] = secret, now: Int64 = now) -> Result<JWTClaims, JWTError> {
        JWT.verify(token, secret: secret, now: now)
    }

    @Test func signsExactlyAsTermix() {
        #expect(JWT.sign(userId: "u-alice", secret: Self.secret, now: 1_700_000_000, ttl: 86400) == Self.termixToken)
    }

    @Test func verifiesTermixTokens() {
        #expect(verify(Self.termixToken) == .success(JWTClaims(userId: "u-alice", exp: 1_700_086_400, iat: 1_700_000_000)))
        #expect(verify(Self.termixPendingTOTP) == .success(
            JWTClaims(userId: "u-alice", exp: 1_700_086_400, iat: 1_700_000_000, pendingTOTP: true)))
    }

    /// The jwt.io sample (secret "your-256-bit-secret"): its signature holds, its claims are not Termix's.
    @Test func jwtIoSample() {
        let token = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
            + ".eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ"
            + ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
        #expect(verify(token, secret: bytes("your-256-bit-secret")) == .failure(.missingClaim("userId")))
        #expect(verify(token, secret: bytes("your-256-bit-secreT")) == .failure(.badSignature))
    }

    @Test func roundTripAndExpiry() {
        let token = JWT.sign(userId: "admin", secret: Self.secret, now: 1000, ttl: 60)
        #expect(verify(token, now: 1000) == .success(JWTClaims(userId: "admin", exp: 1060, iat: 1000)))
        #expect(verify(token, now: 1059) == .success(JWTClaims(userId: "admin", exp: 1060, iat: 1000)))
        #expect(verify(token, now: 1060) == .failure(.expired))
        #expect(verify(Self.termixToken, now: 1_700_086_400) == .failure(.expired))
        #expect(verify(Self.termixToken, now: 1_900_000_000) == .failure(.expired))
    }

    @Test func badSignatures() {
        #expect(verify(Self.termixToken, secret: bytes("another-secret")) == .failure(.badSignature))
        let parts = Self.termixToken.split(separator: ".").map(String.init)
        // Another payload under the original signature.
        let bob = Base64.urlEncode(bytes(#"{"userId":"u-bob","iat":1700000000,"exp":1700086400}"#))
        #expect(verify(parts[0] + "." + bob + "." + parts[2]) == .failure(.badSignature))
        // One signature character changed; a truncated and an empty signature.
        #expect(verify(parts[0] + "." + parts[1] + ".d" + parts[2].dropFirst()) == .failure(.badSignature))
        #expect(verify(parts[0] + "." + parts[1] + "." + parts[2].dropLast(3)) == .failure(.badSignature))
        #expect(verify(parts[0] + "." + parts[1] + ".") == .failure(.badSignature))
        // An empty secret would let anyone sign.
        let unkeyed = Self.forge(Self.hs256, #"{"userId":"admin","exp":9999999999}"#, secret: [])
        #expect(verify(unkeyed, secret: []) == .failure(.badSignature))
    }

    @Test func signatureEncodingIsCanonical() {
        // The final "w" carries two zero bits; "x" differs only there, decoding to the same MAC.
        #expect(Self.termixToken.hasSuffix("Lpw"))
        #expect(verify(String(Self.termixToken.dropLast()) + "x") == .failure(.malformed))
        #expect(verify(Self.termixToken + "=") == .failure(.malformed))
    }

    @Test(arguments: [#"{"alg":"none","typ":"JWT"}"#, #"{"alg":"None"}"#, #"{"alg":"HS384","typ":"JWT"}"#,
                      #"{"alg":"HS512"}"#, #"{"alg":"RS256"}"#, #"{"alg":"ES256"}"#, #"{"alg":"PS256"}"#,
                      #"{"alg":"hs256"}"#, #"{"alg":"HS256 "}"#, #"{"typ":"JWT"}"#, #"{"alg":null}"#,
                      #"{"alg":["HS256"]}"#, #"{}"#])
    func otherAlgorithms(_ header: String) {
        let payload = #"{"userId":"u-alice","exp":1800000000}"#
        // Even with a correct HS256 MAC: the algorithm is pinned, not chosen by the token.
        #expect(verify(Self.forge(header, payload)) == .failure(.unsupportedAlgorithm))
        let unsigned = Base64.urlEncode(bytes(header)) + "." + Base64.urlEncode(bytes(payload)) + "."
        #expect(verify(unsigned) == .failure(.unsupportedAlgorithm))
    }

    @Test func realHS384TokenRejected() {
        #expect(verify(Self.termixHS384) == .failure(.unsupportedAlgorithm))
    }

    @Test func headerVariants() {
        let payload = #"{"userId":"u","exp":1800000000}"#
        #expect(verify(Self.forge(#"{"alg":"HS256"}"#, payload)) == .success(JWTClaims(userId: "u", exp: 1_800_000_000)))
        #expect(verify(Self.forge(#"{"typ":"JWT","alg":"HS256","kid":"k1"}"#, payload)) != .failure(.malformed))
        #expect(verify(Self.forge(#"{"alg":"HS256","crit":["exp"]}"#, payload)) == .failure(.malformed))
    }

    @Test func claims() {
        func claims(_ payload: String) -> Result<JWTClaims, JWTError> { verify(Self.forge(Self.hs256, payload)) }
        #expect(claims(#"{"iat":1700000000,"exp":1800000000}"#) == .failure(.missingClaim("userId")))
        #expect(claims(#"{"userId":"","exp":1800000000}"#) == .failure(.missingClaim("userId")))
        #expect(claims(#"{"userId":7,"exp":1800000000}"#) == .failure(.missingClaim("userId")))
        #expect(claims(#"{"userId":null,"exp":1800000000}"#) == .failure(.missingClaim("userId")))
        #expect(claims(#"{"userId":"u","iat":1700000000}"#) == .failure(.missingClaim("exp")))
        #expect(claims(#"{"userId":"u","exp":"1800000000"}"#) == .failure(.missingClaim("exp")))
        #expect(claims(#"{"userId":"u","exp":1800000000.5}"#) == .failure(.missingClaim("exp")))
        #expect(claims(#"{"userId":"u","exp":1e40}"#) == .failure(.missingClaim("exp")))
        #expect(claims(#"{"userId":"u","exp":1800000000,"iat":"now"}"#) == .failure(.malformed))
        #expect(claims(#"{"userId":"u","exp":1800000000,"pendingTOTP":"true"}"#) == .failure(.malformed))
        #expect(claims(#"{"userId":"u","exp":1800000000,"pendingTOTP":false}"#)
                == .success(JWTClaims(userId: "u", exp: 1_800_000_000)))
        #expect(claims(#"{"userId":"u","exp":1.8e9,"extra":{"x":[1]}}"#) == .success(JWTClaims(userId: "u", exp: 1_800_000_000)))
        #expect(claims("[1,2]") == .failure(.malformed))
        #expect(claims("\"u\"") == .failure(.malformed))
        #expect(claims("not json") == .failure(.malformed))
        #expect(claims(#"{"userId":"u","userId":"admin","exp":1800000000}"#) == .failure(.malformed))
    }

    /// Issue #15: `nbf` was ignored, so a token minted for later worked at once.
    @Test func notBeforeIsHonoured() {
        func at(_ now: Int64, _ payload: String) -> Result<JWTClaims, JWTError> {
            verify(Self.forge(Self.hs256, payload), now: now)
        }
        let later = #"{"userId":"u","exp":1800000000,"nbf":1750000000}"#
        #expect(at(1_700_000_000, later) == .failure(.notYetValid))
        #expect(at(1_749_999_999, later) == .failure(.notYetValid))
        #expect(at(1_750_000_000, later) == .success(JWTClaims(userId: "u", exp: 1_800_000_000)))
        #expect(at(1_700_000_000, #"{"userId":"u","exp":1800000000,"nbf":"soon"}"#) == .failure(.malformed))
    }

    @Test(arguments: ["", ".", "..", "...", "a.b", "a.b.c.d", "eyJhbGciOiJIUzI1NiJ9.e30", "eyJ*bGci.e30.AAAA",
                      "eyJhbGciOiJIUzI1NiJ9.e30=.AAAA", "eyJhbGciOiJIUzI1NiJ9.e3 0.AAAA",
                      "bm90IGpzb24.e30.AAAA", "WzFd.e30.AAAA"])
    func malformed(_ token: String) {
        #expect(verify(token) == .failure(.malformed), "token \(token)")
    }

    @Test func huge() {
        let pad = String(repeating: "A", count: 9000)
        let payload = #"{"userId":"u-alice","exp":1800000000,"pad":""# + pad + "\"}"
        let token = Self.forge(Self.hs256, payload)
        #expect(token.utf8.count > JWT.maxTokenLength)
        #expect(verify(token) == .failure(.malformed))
        #expect(verify(String(repeating: "A", count: 1 << 20)) == .failure(.malformed))
    }
}
