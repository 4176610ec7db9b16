import Testing
@testable import Appliance
import Relay

/// tunnels-api.md §9's words for a C2S stream that did not open: from the `StreamOpenOutcome` alone.
@Suite struct RelayWordingTests {
    let internalError: UInt16 = 1011
    let policy: UInt16 = 1008

    @Test func everyOutcomeIsWorded() {
        let expected: [StreamOpenOutcome: (String, UInt16)] = [
            .prohibited: ("SSH forwarding was rejected by the endpoint server: administratively prohibited", internalError),
            .notAllowed: ("Destination not allowed: 10.0.0.1:22", policy),
            .unresolved: ("Tunnel target is not reachable from the endpoint host: cannot resolve 10.0.0.1", internalError),
            .connectFailed: ("Tunnel target is not reachable from the endpoint host: connect failed", internalError),
            .refused: ("Tunnel target is not reachable from the endpoint host: connection refused", internalError),
            .unreachable: ("Tunnel target is not reachable from the endpoint host: host unreachable", internalError),
            .timedOut: ("Tunnel target is not reachable from the endpoint host: connection timed out", internalError),
            .overLimit: ("Failed to open relay", internalError),
            .noBuffers: ("Failed to open relay", internalError),
            .sessionUnavailable: ("Failed to open relay", internalError),
            .failed: ("Failed to open relay", internalError),
            .opened: ("Failed to open relay", internalError),
        ]
        #expect(expected.count == StreamOpenOutcome.allCases.count)
        for outcome in StreamOpenOutcome.allCases {
            let worded = RelayWording.stream(outcome, host: "10.0.0.1", port: 22)
            #expect(worded.message == expected[outcome]?.0, "\(outcome)")
            #expect(worded.code == expected[outcome]?.1, "\(outcome)")
        }
    }

    @Test func namesAndIPv6AsAsked() {
        #expect(RelayWording.stream(.unresolved, host: "db.internal", port: 5432).message
                == "Tunnel target is not reachable from the endpoint host: cannot resolve db.internal")
        #expect(RelayWording.stream(.notAllowed, host: "fd00::1", port: 443).message == "Destination not allowed: [fd00::1]:443")
    }

    @Test func remoteRefusals() {
        #expect(RelayWording.remoteRefusal(RelayFailure(.forwardRefused, subject: "9000"))
                == "Remote port is not available on the endpoint server: Remote port forwarding failed for listen port 9000")
        #expect(RelayWording.remoteRefusal(RelayFailure(.keepaliveTimeout)) == nil)
    }
}
