import Testing
@testable import Appliance

@Suite struct RouterTests {
    let router = Router()

    func answer(_ method: String, _ path: String) -> HTTPResponse? {
        if case .respond(let response) = router.head(HTTPRequestHead(method: method, path: path)) { return response }
        return nil
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

    @Test func wrongMethodOnHealthzIs405() throws {
        #expect(try #require(answer("POST", "/healthz")).status == 405)
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
        #expect(report.contains("libssh2 1.10"))
        #expect(report.contains("mbedTLS 2.28"))
        #expect(report.contains("libmicrohttpd 0.9.75"))
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
