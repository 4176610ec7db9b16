import Testing
@testable import Appliance

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
