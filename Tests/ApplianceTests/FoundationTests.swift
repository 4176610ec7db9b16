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
                                   headers: [("Authorization", "Bearer \(token("u-admin"))")])
        let bad = router.complete(head, body: Array("{nope".utf8))
        #expect(bad.status == 400)
        #expect(String(decoding: bad.body, as: UTF8.self) == #"{"error":"Invalid JSON body"}"#)
        #expect(router.bodyTooLarge(head).status == 413)
    }

    @Test func headersAreCaseInsensitive() {
        let head = HTTPRequestHead(method: "GET", path: "/", headers: [("content-length", "12")])
        #expect(head.header("Content-Length") == "12")
        #expect(head.header("Content-Type") == nil)
    }
}

@Suite struct CLITests {
    @Test func serveOptions() throws {
        let parsed = try ServeOptions.parse(["--listen", "127.0.0.1:0", "--state", "/tmp/s"]).get()
        #expect(parsed.listen == "127.0.0.1:0")
        #expect(parsed.state == "/tmp/s")
        #expect(parsed.config == nil)
    }

    @Test func serveRejectsUnknownAndDangling() {
        if case .success = ServeOptions.parse(["--bogus"]) { Issue.record("accepted --bogus") }
        if case .success = ServeOptions.parse(["--listen"]) { Issue.record("accepted a flag without value") }
    }

    @Test func unknownCommandExits1() {
        #expect(CLI.run(arguments: ["sluice", "frobnicate"]) == 1)
        #expect(CLI.run(arguments: ["sluice"]) == 1)
    }

    @Test func versionReportNamesLibraries() {
        let report = BuildInfo.report
        #expect(report.hasPrefix("sluice \(BuildInfo.version) "))
        #expect(report.contains("libssh2 1.11.1"))
        #expect(report.contains("mbedTLS 2.28"))
        #expect(report.contains("libmicrohttpd 0.9.75"))
        #expect(report.contains("ssh ciphers: "))
    }
}

@Suite struct LogTests {
    @Test func quotesOnlyWhenNeeded() {
        #expect(Log.quoted("plain") == "plain")
        #expect(Log.quoted("two words") == "\"two words\"")
        #expect(Log.quoted("a=b") == "\"a=b\"")
        #expect(Log.quoted("say \"hi\"\n") == "\"say \\\"hi\\\"\\n\"")
        #expect(Log.quoted("") == "\"\"")
    }
}
