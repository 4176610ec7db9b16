import Testing
@testable import Appliance

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
