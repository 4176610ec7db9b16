import Testing
@testable import Appliance
import Relay

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
        // one crypto library per flavour, the one libssh2 runs on (Sources/CCrypto)
        if SSHLibrary.cryptoFlavour == "mbedtls" {
            #expect(report.contains("\nmbedTLS 3.6.") && !report.contains("OpenSSL"))
        } else {
            #expect(report.contains("\nOpenSSL 3.0.") && !report.contains("mbedTLS"))
        }
        #expect(report.contains("libmicrohttpd 0.9.75"))
        #expect(report.contains("ssh ciphers: "))
    }
}
