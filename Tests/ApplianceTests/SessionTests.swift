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

@Suite struct LoginThrottleTests {
    @Test func slowsAfterFreeFailuresPerAddressAndName() {
        let throttle = LoginThrottle()
        for _ in 0..<LoginThrottle.freeFailures {
            #expect(throttle.waitMs(user: "admin", address: "10.0.0.1", nowMs: 0) == 0)
            throttle.failed(user: "admin", address: "10.0.0.1", nowMs: 0)
        }
        #expect(throttle.waitMs(user: "admin", address: "10.0.0.1", nowMs: 0) == 0)
        throttle.failed(user: "admin", address: "10.0.0.1", nowMs: 0)
        #expect(throttle.check(user: "admin", address: "10.0.0.1", nowMs: 10).reason != nil)
        #expect(throttle.check(user: "ops", address: "10.0.0.1", nowMs: 10).reason == .address)   // the attacker's address
        #expect(throttle.waitMs(user: "admin", address: "10.0.0.9", nowMs: 10) == 0)   // a fresh address: the user passes
        #expect(throttle.waitMs(user: "ops", address: "10.0.0.9", nowMs: 10) == 0)
        #expect(throttle.waitMs(user: "admin", address: "10.0.0.1", nowMs: 1001) == 0)
        throttle.failed(user: "admin", address: "10.0.0.1", nowMs: 1001)
        #expect(throttle.waitMs(user: "admin", address: "10.0.0.1", nowMs: 1001) == 2000)   // doubling
    }

    /// Issue #24: guesses for `admin` from rotating addresses lock the name only for addresses that failed too; a
    /// correct password from an address with no failures, or where admin logged in before, still passes.
    @Test func rotatingAddressesDoNotLockTheUserOut() {
        let throttle = LoginThrottle()
        throttle.succeeded(user: "admin", address: "10.0.0.50", nowMs: 0)        // the admin's desk, known good
        for i in 0..<9 { throttle.failed(user: "admin", address: "10.6.6.\(i)", nowMs: 0) }
        #expect(throttle.waitMs(user: "admin", address: "10.0.0.77", nowMs: 1) == 0)   // no failures of its own
        #expect(throttle.waitMs(user: "admin", address: "10.0.0.50", nowMs: 1) == 0)   // known good
        // an attacking address that failed once more is held by the name's lock
        throttle.failed(user: "admin", address: "10.6.6.0", nowMs: 1)
        #expect(throttle.check(user: "admin", address: "10.6.6.0", nowMs: 2).reason == .user)
        // the admin who mistyped at their desk is slowed only by their own count there
        throttle.failed(user: "admin", address: "10.0.0.50", nowMs: 2)
        #expect(throttle.waitMs(user: "admin", address: "10.0.0.50", nowMs: 3) == 0)
    }

    /// Issue #24: behind a reverse proxy (one address) failures under made-up names lock that address, but a user
    /// who logged in through it before still passes.
    @Test func aProxysFailuresDoNotLockKnownUsers() {
        let throttle = LoginThrottle()
        throttle.succeeded(user: "ops", address: "10.0.0.2", nowMs: 0)
        for i in 0..<6 { throttle.failed(user: "nobody\(i)", address: "10.0.0.2", nowMs: 0, knownUser: false) }
        #expect(throttle.check(user: "admin", address: "10.0.0.2", nowMs: 1).reason == .address)
        #expect(throttle.waitMs(user: "ops", address: "10.0.0.2", nowMs: 1) == 0)
        // guessing ops's password through the proxy is still slowed, per name and address
        for _ in 0..<5 { throttle.failed(user: "ops", address: "10.0.0.2", nowMs: 1) }
        #expect(throttle.check(user: "ops", address: "10.0.0.2", nowMs: 2).reason == .userFromAddress)
    }

    /// Issue #24: the password worker's reserved places are for logins likely to be real: where the user logged in
    /// before, or for a user who logged in before from an address that failed nothing itself.
    @Test func trustedLoginsAreThoseThatSucceededBefore() {
        let throttle = LoginThrottle()
        #expect(!throttle.trusted(user: "admin", address: "10.0.0.1"))
        throttle.succeeded(user: "admin", address: "10.0.0.1", nowMs: 0)
        #expect(throttle.trusted(user: "admin", address: "10.0.0.1"))
        #expect(throttle.trusted(user: "admin", address: "10.0.0.7"))      // a new address without failures
        #expect(!throttle.trusted(user: "ops", address: "10.0.0.1"))       // not another user
        throttle.failed(user: "admin", address: "10.0.0.7", nowMs: 1)
        #expect(!throttle.trusted(user: "admin", address: "10.0.0.7"))     // an address guessing is not trusted
        for i in 0..<6 { throttle.failed(user: "x\(i)", address: "10.0.0.1", nowMs: 1, knownUser: false) }
        #expect(throttle.trusted(user: "admin", address: "10.0.0.1"))      // where admin logged in, still
    }

    /// Issue #15: failures under made-up user names filled the table and the full sort evicted the admin's lock.
    @Test func madeUpNamesCannotEvictARealUsersLock() {
        let throttle = LoginThrottle(capacity: 16)
        for _ in 0..<10 { throttle.failed(user: "admin", address: "10.0.0.1", nowMs: 0) }   // locked for about a minute
        for i in 0..<1000 {
            throttle.failed(user: "guess\(i)", address: "10.1.\(i / 250).\(i % 250)", nowMs: Int64(2 + i), knownUser: false)
        }
        // the name's lock survived: an address that failed too is held by it
        throttle.failed(user: "ops", address: "10.9.9.9", nowMs: 1002)
        #expect(throttle.check(user: "admin", address: "10.9.9.9", nowMs: 1003).reason == .user)
    }

    @Test func boundedTable() {
        let throttle = LoginThrottle(capacity: 10)
        for i in 0..<100 { throttle.failed(user: "u\(i)", address: "a\(i)", nowMs: Int64(i)) }
        #expect(throttle.waitMs(user: "u0", address: "a0", nowMs: 0) == 0)
    }
}

@Suite struct StatusPageTests {
    @Test func selfContainedWithHashedInlineCode() {
        let page = StatusPage.response()
        let html = String(decoding: page.body, as: UTF8.self)
        #expect(page.status == 200)
        #expect(!html.contains("http://") && !html.contains("https://"))   // no external assets
        #expect(page.body.count < 64 * 1024)
        let csp = page.headers.first { $0.0 == "Content-Security-Policy" }?.1 ?? ""
        #expect(csp.contains("script-src 'sha256-") && csp.contains("default-src 'none'"))
    }
}

/// Issue #15: the password hash does not run on the HTTP server's thread.
@Suite struct LoginDeferralTests {
    @Test func loginIsDeferredAndAnswersOnTheWorker() throws {
        var config = Config()
        let hash = try #require(PasswordHash.make(password: "pw", iterations: 1000))
        config.users = [User(id: "u1", username: "ops", passwordHash: Secret(hash.text))]
        let session = Session()
        let head = HTTPRequestHead(method: "POST", path: "/users/login", remoteAddress: "10.0.0.1")
        let good = session.login(head, body: Array(#"{"username":"ops","password":"pw"}"#.utf8), config: config,
                                 secret: [UInt8](repeating: 1, count: 32))
        let deferred = try #require(good.deferred)
        #expect(deferred.instead.status == 429)
        #expect(deferred.work().status == 200)
        let bad = session.login(head, body: Array(#"{"username":"ops","password":"no"}"#.utf8), config: config,
                                secret: [UInt8](repeating: 1, count: 32))
        #expect(try #require(bad.deferred).work().status == 401)
        // malformed input is answered at once, without the worker
        let malformed = session.login(head, body: Array("x".utf8), config: config, secret: [])
        #expect(malformed.deferred == nil && malformed.status == 400)
    }
}
