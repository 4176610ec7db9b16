import Testing
@testable import Appliance

@Suite struct TunnelStatusTests {
    func text(_ status: TunnelStatus) -> String { JSONWriter.write(status.json()) }

    @Test func minimalStatusOmitsOptionals() {
        #expect(text(TunnelStatus(state: .disconnected)) ==
            #"{"connected":false,"status":"disconnected","bytesIn":0,"bytesOut":0,"activeConnections":0,"since":0}"#)
    }

    @Test func onlyConnectedIsConnected() {
        for state in [TunnelState.connecting, .failed, .retrying, .waiting, .disconnected] {
            #expect(TunnelStatus(state: state).json()["connected"] == .bool(false))
        }
        #expect(TunnelStatus(state: .connected).json()["connected"] == .bool(true))
    }

    @Test func fullStatusInContractOrder() {
        var status = TunnelStatus(state: .waiting, since: 1_700_000_000)
        status.retryCount = 2
        status.maxRetries = -1
        status.nextRetryIn = 5
        status.reason = "Connection refused"
        status.errorType = .NETWORK_ERROR
        status.manualDisconnect = false
        status.retryExhausted = false
        status.bytesIn = 5_000_000_000
        status.bytesOut = 7
        status.activeConnections = 3
        #expect(text(status) == #"{"connected":false,"status":"waiting","retryCount":2,"maxRetries":-1,"#
            + #""nextRetryIn":5,"reason":"Connection refused","errorType":"NETWORK_ERROR","manualDisconnect":false,"#
            + #""retryExhausted":false,"bytesIn":5000000000,"bytesOut":7,"activeConnections":3,"since":1700000000}"#)
    }

    @Test func manualDisconnectShape() {
        var status = TunnelStatus(state: .disconnected)
        status.manualDisconnect = true
        let members = status.json().objectValue?.map { $0.0 }
        #expect(members == ["connected", "status", "manualDisconnect", "bytesIn", "bytesOut", "activeConnections", "since"])
    }
}

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
