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
