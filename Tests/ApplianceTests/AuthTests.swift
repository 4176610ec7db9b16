import Testing
@testable import Appliance

@Suite struct RequestTokenTests {
    func token(_ cookie: String?, _ authorization: String?) -> String? {
        RequestAuth.token(cookie: cookie, authorization: authorization)
    }

    @Test func cookie() {
        #expect(token("jwt=T1", nil) == "T1")
        #expect(token("a=b; jwt=T1; c=d", nil) == "T1")
        #expect(token("a=b;jwt=T1;c=d", nil) == "T1")
        #expect(token("xjwt=X; jwt_old=Y; jwt=T1", nil) == "T1")
        #expect(token("jwt=\"T1\"", nil) == "T1")
        #expect(token("jwt=T1; jwt=T2", nil) == "T1")
        #expect(token(" jwt = T1 ", nil) == "T1")
        #expect(token("JWT=T1", nil) == nil)
        #expect(token("a=b; c=d", nil) == nil)
        #expect(token("", nil) == nil)
        #expect(token("jwt", nil) == nil)
    }

    @Test func bearer() {
        #expect(token(nil, "Bearer T2") == "T2")
        #expect(token(nil, "bearer T2") == "T2")
        #expect(token(nil, "BEARER \t T2 ") == "T2")
        #expect(token(nil, "Bearer") == nil)
        #expect(token(nil, "Bearer ") == nil)
        #expect(token(nil, "BearerT2") == nil)
        #expect(token(nil, "Basic dXNlcjpwYXNz") == nil)
        #expect(token(nil, "T2") == nil)
        #expect(token(nil, "") == nil)
        #expect(token(nil, nil) == nil)
    }

    @Test func cookieBeforeBearer() {
        #expect(token("jwt=T1", "Bearer T2") == "T1")
        #expect(token("a=b", "Bearer T2") == "T2")
        // An empty cookie (a cleared one a client still sends) falls through, as in Termix.
        #expect(token("jwt=", "Bearer T2") == "T2")
        #expect(token("jwt=\"\"", "Bearer T2") == "T2")
    }
}

@Suite struct RequestAuthTests {
    static let secret = Array("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef".utf8)
    static let now: Int64 = 1_700_000_000

    static var config: Config {
        var c = Config()
        c.users = [User(id: "admin", username: "admin", admin: true), User(id: "u-alice", username: "alice")]
        return c
    }

    static func signed(_ payload: String, secret: [UInt8] = secret) -> String {
        let input = Base64.urlEncode(Array(#"{"alg":"HS256","typ":"JWT"}"#.utf8)) + "." + Base64.urlEncode(Array(payload.utf8))
        return input + "." + Base64.urlEncode(Digest.hmacSHA256(key: secret, message: Array(input.utf8)))
    }

    func auth(cookie: String? = nil, bearer: String? = nil, now: Int64 = now) -> Result<User, AuthFailure> {
        RequestAuth.authenticate(cookie: cookie, authorization: bearer.map { "Bearer " + $0 }, config: Self.config,
                                 secret: Self.secret, now: now)
    }

    var alice: String { JWT.sign(userId: "u-alice", secret: Self.secret, now: Self.now, ttl: 3600) }

    @Test func validToken() {
        #expect(auth(cookie: "jwt=" + alice) == .success(User(id: "u-alice", username: "alice")))
        #expect(auth(bearer: alice) == .success(User(id: "u-alice", username: "alice")))
        let admin = JWT.sign(userId: "admin", secret: Self.secret, now: Self.now, ttl: 60)
        #expect(auth(cookie: "theme=dark; jwt=" + admin + "; lang=en") == .success(Self.config.users[0]))
    }

    @Test func missing() {
        #expect(auth() == .failure(.missingToken))
        #expect(auth(cookie: "theme=dark") == .failure(.missingToken))
        #expect(RequestAuth.authenticate(cookie: nil, authorization: "Basic abc", config: Self.config,
                                         secret: Self.secret, now: Self.now) == .failure(.missingToken))
    }

    @Test func invalid() {
        let other = JWT.sign(userId: "u-alice", secret: Array("x".utf8), now: Self.now, ttl: 3600)
        #expect(auth(bearer: other) == .failure(.invalidToken))
        #expect(auth(bearer: alice, now: Self.now + 3600) == .failure(.invalidToken))
        #expect(auth(bearer: "garbage") == .failure(.invalidToken))
        #expect(auth(bearer: Self.signed(#"{"exp":1800000000}"#)) == .failure(.invalidToken))
        let none = Base64.urlEncode(Array(#"{"alg":"none"}"#.utf8)) + "."
            + Base64.urlEncode(Array(#"{"userId":"admin","exp":1800000000}"#.utf8)) + "."
        #expect(auth(bearer: none) == .failure(.invalidToken))
    }

    @Test func unknownUser() {
        let ghost = JWT.sign(userId: "u-ghost", secret: Self.secret, now: Self.now, ttl: 3600)
        #expect(auth(bearer: ghost) == .failure(.invalidToken))
        let ghostTOTP = Self.signed(#"{"userId":"u-ghost","pendingTOTP":true,"exp":1800000000}"#)
        #expect(auth(bearer: ghostTOTP) == .failure(.invalidToken))
    }

    @Test func pendingTOTP() {
        let pending = Self.signed(#"{"userId":"u-alice","pendingTOTP":true,"iat":1700000000,"exp":1800000000}"#)
        #expect(auth(cookie: "jwt=" + pending) == .failure(.totpRequired))
        let done = Self.signed(#"{"userId":"u-alice","pendingTOTP":false,"exp":1800000000}"#)
        #expect(auth(cookie: "jwt=" + done) == .success(User(id: "u-alice", username: "alice")))
    }

    @Test func cookieWinsEvenWhenInvalid() {
        #expect(auth(cookie: "jwt=garbage", bearer: alice) == .failure(.invalidToken))
        #expect(auth(cookie: "jwt=" + alice, bearer: "garbage") == .success(User(id: "u-alice", username: "alice")))
    }

    @Test func answers() {
        let missing = RequestAuth.answer(.missingToken)
        #expect(missing.status == 401)
        #expect(missing.body == #"{"error":"Missing authentication token"}"#)
        #expect(missing.headers.isEmpty)

        let invalid = RequestAuth.answer(.invalidToken)
        #expect(invalid.status == 401)
        #expect(invalid.body == #"{"error":"Invalid token"}"#)
        #expect(invalid.headers.count == 1)
        #expect(invalid.headers.first?.0 == "Set-Cookie")
        #expect(invalid.headers.first?.1 == "jwt=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax")

        let totp = RequestAuth.answer(.totpRequired)
        #expect(totp.status == 401)
        #expect(totp.body == #"{"error":"TOTP verification required","code":"TOTP_REQUIRED"}"#)
        #expect(totp.headers.isEmpty)
    }
}
