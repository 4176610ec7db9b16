import Testing
@testable import Appliance

@Suite struct ErrorClassifierTests {
    @Test func contractExamples() {
        let cases: [(String, ErrorType)] = [
            ("Connection closed by remote host", .NETWORK_ERROR),
            ("read ECONNRESET: connection reset by peer", .NETWORK_ERROR),
            ("connect ECONNREFUSED: Connection refused", .NETWORK_ERROR),
            ("write EPIPE: Broken pipe", .NETWORK_ERROR),
            ("No route: Host unreachable", .NETWORK_ERROR),
            ("Network is unreachable", .NETWORK_ERROR),
            ("Authentication failed (publickey)", .AUTHENTICATION_FAILED),
            ("Permission denied", .AUTHENTICATION_FAILED),
            ("All configured authentication methods failed", .AUTHENTICATION_FAILED),
            ("Host key verification failed for edge", .AUTHENTICATION_FAILED),
            ("Timed out while waiting for handshake", .TIMEOUT),
            ("Connection timeout", .TIMEOUT),
            ("Keepalive timeout", .TIMEOUT),
            ("bind: Address already in use", .CONNECTION_FAILED),
            ("tcpip-forward failed for listen port 8080", .CONNECTION_FAILED),
            ("Remote port forwarding failed", .CONNECTION_FAILED),
            ("open failed: administratively prohibited", .CONNECTION_FAILED),
            ("Bind address not allowed: 0.0.0.0", .CONNECTION_FAILED),
            ("Destination not allowed: 10.0.0.1:22", .CONNECTION_FAILED),
            ("Endpoint host 'db' not found", .CONNECTION_FAILED),
            ("something odd", .UNKNOWN),
            ("", .UNKNOWN),
        ]
        for (reason, type) in cases { #expect(ErrorClassifier.classify(reason) == type, "\(reason)") }
    }

    @Test func firstListWins() {
        // Network before authentication before timeout before connection-failed.
        #expect(ErrorClassifier.classify("permission denied: connection refused") == .NETWORK_ERROR)
        #expect(ErrorClassifier.classify("host key check timed out") == .AUTHENTICATION_FAILED)
        #expect(ErrorClassifier.classify("keepalive not allowed") == .TIMEOUT)
        #expect(ErrorClassifier.classify("HOST UNREACHABLE") == .NETWORK_ERROR)
    }
}
