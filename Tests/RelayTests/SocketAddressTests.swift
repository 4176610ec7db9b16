import Testing
@testable import Relay

@Suite struct SocketAddressTests {
    @Test func parsesIPv4AndIPv6() throws {
        let v4 = try #require(SocketAddress(hostPort: "127.0.0.1:30003"))
        #expect(!v4.isIPv6)
        #expect(v4.port == 30003)
        #expect(v4.description == "127.0.0.1:30003")
        let v6 = try #require(SocketAddress(hostPort: "[::1]:8080"))
        #expect(v6.isIPv6)
        #expect(v6.description == "[::1]:8080")
        #expect(SocketAddress(hostPort: "0.0.0.0:0")?.port == 0)
    }

    @Test(arguments: ["", "127.0.0.1", "127.0.0.1:", ":80", "127.0.0.1:65536", "127.0.0.1:-1", "::1:80",
                      "[::1]80", "[::1]:", "localhost:80", "1.2.3:80", "127.0.0.1:8a", "127.0.0.1:123456"])
    func rejectsMalformed(_ text: String) {
        #expect(SocketAddress(hostPort: text) == nil)
    }

    @Test func versionAndFlavourAreKnown() {
        #expect(SSHLibrary.version.hasPrefix("1.11.1"))
        #expect(SSHLibrary.cryptoFlavour == "openssl" || SSHLibrary.cryptoFlavour == "mbedtls")
    }
}
