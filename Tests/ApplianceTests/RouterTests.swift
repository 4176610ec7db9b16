import Testing
@testable import Appliance
import Relay

@Suite struct RouterTests {
    static let secret = Array(String(repeating: "s", count: 64).utf8)
    let router: Router

    init() {
        var config = Config()
        config.users = [User(id: "u-admin", username: "admin", admin: true), User(id: "u-ops", username: "ops")]
        config.hosts = [Host(id: 1, name: "edge", owner: "u-admin")]
        let manager = TunnelManager(config: config, driver: UnavailableDriver())!
        router = Router(context: ApplianceContext(config: Locked(config), secret: RouterTests.secret, manager: manager))
    }

    func answer(_ method: String, _ path: String, token: String? = nil) -> HTTPResponse? {
        var headers: [(String, String)] = []
        if let token { headers.append(("Authorization", "Bearer \(token)")) }
        if case .respond(let response) = router.head(HTTPRequestHead(method: method, path: path, headers: headers)) {
            return response
        }
        return nil
    }

    func token(_ user: String) -> String {
        JWT.sign(userId: user, secret: RouterTests.secret, now: 1_000_000_000, ttl: 10_000_000_000)
    }

    @Test func healthzAnswersOk() throws {
        let response = try #require(answer("GET", "/healthz"))
        #expect(response.status == 200)
        #expect(response.body == Array("ok".utf8))
    }

    @Test func healthAnswersTermixJSON() throws {
        let response = try #require(answer("GET", "/health"))
        #expect(response.status == 200)
        #expect(String(decoding: response.body, as: UTF8.self) == #"{"status":"ok"}"#)
    }

    @Test func unknownPathIs404WithContractBody() throws {
        let response = try #require(answer("GET", "/nope"))
        #expect(response.status == 404)
        #expect(String(decoding: response.body, as: UTF8.self) == #"{"error":"Not found"}"#)
    }

    @Test func wrongMethodIs405BeforeAuthentication() throws {
        #expect(try #require(answer("POST", "/healthz")).status == 405)
        #expect(try #require(answer("POST", "/ssh/tunnel/status")).status == 405)
        #expect(try #require(answer("GET", "/ssh/tunnel/connect")).status == 405)
    }

    @Test func authenticationBeforeBody() throws {
        let response = try #require(answer("POST", "/ssh/tunnel/connect"))
        #expect(response.status == 401)
        if case .readBody = router.head(HTTPRequestHead(method: "POST", path: "/ssh/tunnel/connect",
                                                         headers: [("Authorization", "Bearer \(token("u-ops"))")])) {
        } else {
            Issue.record("an authenticated POST should read its body")
        }
    }

    @Test func metricsAreForAdmins() throws {
        #expect(try #require(answer("GET", "/metrics", token: token("u-admin"))).status == 200)
        let denied = try #require(answer("GET", "/metrics", token: token("u-ops")))
        #expect(denied.status == 403)
        #expect(String(decoding: denied.body, as: UTF8.self) == #"{"error":"Admin access required"}"#)
    }

    @Test func invalidJSONBodyAndTooLarge() {
        let head = HTTPRequestHead(method: "POST", path: "/ssh/tunnel/disconnect",
                                   headers: [("Authorization", "Bearer \(token("u-admin"))"),
                                             ("Content-Type", "application/json")])
        let bad = router.complete(head, body: Array("{nope".utf8))
        #expect(bad.status == 400)
        #expect(String(decoding: bad.body, as: UTF8.self) == #"{"error":"Invalid JSON body"}"#)
        #expect(router.bodyTooLarge(head).status == 413)
    }

    /// Issue #15: a page on another port of the same host could POST with the cookie (SameSite does not separate
    /// ports): bodies must be JSON, and a cookie request from a foreign Origin is refused.
    @Test func crossSiteRequestsAreRefused() {
        let body = Array(#"{"tunnelName":"x"}"#.utf8)
        func post(_ headers: [(String, String)]) -> HTTPRequestHead {
            HTTPRequestHead(method: "POST", path: "/ssh/tunnel/cancel", headers: [("Host", "127.0.0.1:30003")] + headers)
        }
        let cookie = ("Cookie", "jwt=\(token("u-admin"))")
        let plain = router.complete(post([cookie, ("Content-Type", "text/plain")]), body: body)
        #expect(plain.status == 415)
        #expect(router.complete(post([cookie]), body: body).status == 415)
        // JSON with a charset passes these checks (the manager is not running here: its answer is the 500 of §6)
        let json = router.complete(post([cookie, ("Content-Type", "application/json; charset=utf-8")]), body: body)
        #expect(json.status != 415 && json.status != 403)
        // no token: the 401 of §1's order comes first
        #expect(router.complete(post([("Content-Type", "text/plain")]), body: body).status == 401)
        if case .respond(let foreign) = router.head(post([cookie, ("Origin", "http://127.0.0.1:8080")])) {
            #expect(foreign.status == 403)
        } else {
            Issue.record("a cookie request from a foreign Origin was let through")
        }
        if case .readBody = router.head(post([cookie, ("Origin", "http://127.0.0.1:30003")])) {} else {
            Issue.record("the appliance's own origin was refused")
        }
        // Bearer clients are not a browser's ambient credential: their Origin is not judged here
        if case .readBody = router.head(post([("Authorization", "Bearer \(token("u-admin"))"),
                                              ("Origin", "http://127.0.0.1:8080")])) {} else {
            Issue.record("a Bearer request was refused for its Origin")
        }
    }

    @Test func headersAreCaseInsensitive() {
        let head = HTTPRequestHead(method: "GET", path: "/", headers: [("content-length", "12")])
        #expect(head.header("Content-Length") == "12")
        #expect(head.header("Content-Type") == nil)
    }
}
