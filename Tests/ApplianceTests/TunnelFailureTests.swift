import Testing
@testable import Appliance
import Relay
import CLinux

/// The reason texts and errorTypes of tunnels-api.md §8 made from typed failures (TunnelFailure is the one place).
@Suite struct TunnelFailureTests {
    func check(_ failure: RelayFailure, _ reason: String, _ type: ErrorType) {
        let made = TunnelFailure(failure)
        #expect(made.reason == reason)
        #expect(made.errorType == type, "\(reason)")
    }

    @Test func relayFailuresInTheSpecsWords() {
        let address = SocketAddress(ip: "10.0.0.5", port: 22)!
        check(.connect(address, errno: ECONNREFUSED), "SSH connection to 10.0.0.5:22 failed: connection refused", .NETWORK_ERROR)
        check(.connect(address, errno: ETIMEDOUT), "SSH connection to 10.0.0.5:22 failed: \(FileIO.errorText(ETIMEDOUT))", .TIMEOUT)
        check(RelayFailure(.connectTimedOut, subject: "10.0.0.5:22"), "SSH connection to 10.0.0.5:22 timed out", .TIMEOUT)
        check(RelayFailure(.setupTimedOut), "SSH session setup timed out", .TIMEOUT)
        check(RelayFailure(.hostKeyMismatch, subject: "edge"), "Host key verification failed for edge", .AUTHENTICATION_FAILED)
        check(RelayFailure(.authRejected, subject: "ops", detail: "password, keyboard-interactive rejected"),
              "Authentication failed for user ops: password, keyboard-interactive rejected", .AUTHENTICATION_FAILED)
        check(RelayFailure(.listenFailed, subject: "127.0.0.1:8080", detail: "address already in use"),
              "Cannot listen on 127.0.0.1:8080: address already in use", .CONNECTION_FAILED)
        check(RelayFailure(.listenFailed, subject: "0.0.0.0:80", detail: "permission denied"),
              "Cannot listen on 0.0.0.0:80: permission denied", .CONNECTION_FAILED)
        check(RelayFailure(.forwardRefused, subject: "8080"), "Remote port forwarding failed for listen port 8080",
              .CONNECTION_FAILED)
        check(RelayFailure(.peerClosed), "Connection closed by remote host", .NETWORK_ERROR)
        check(.connection(errno: EPIPE), "Connection closed by remote host (broken pipe)", .NETWORK_ERROR)
        check(.connection(errno: ECONNRESET), "Connection reset by peer", .NETWORK_ERROR)
        check(RelayFailure(.keepaliveTimeout), "Keepalive timeout", .TIMEOUT)
        check(RelayFailure(.sessionError), "SSH session ended", .UNKNOWN)
    }

    @Test func textFromElsewhereIsClassifiedByTheTable() {
        check(RelayFailure(.handshakeFailed, detail: "Timed out waiting on socket"),
              "SSH handshake failed: Timed out waiting on socket", .TIMEOUT)
        check(RelayFailure(.sessionError, detail: "odd"), "SSH session error: odd", .UNKNOWN)
        check(.connection(errno: ENETUNREACH), "SSH connection lost: network is unreachable", .NETWORK_ERROR)
        check(RelayFailure(.carrierRefused, subject: "exit through edge", detail: "Channel open failure (connect failed)"),
              "Cannot reach exit through edge: Channel open failure (connect failed)", .UNKNOWN)
        check(RelayFailure(.carrierRefused, subject: "exit through edge", detail: "administratively prohibited"),
              "Cannot reach exit through edge: administratively prohibited", .CONNECTION_FAILED)
        // a host's name cannot change the type of our own words
        check(RelayFailure(.hostKeyMismatch, subject: "timeout-box"), "Host key verification failed for timeout-box",
              .AUTHENTICATION_FAILED)
    }

    @Test func refusalsOfTheAppliance() {
        #expect(TunnelFailure.bindNotAllowed("0.0.0.0") == TunnelFailure(reason: "Bind address not allowed: 0.0.0.0",
                                                                          errorType: .CONNECTION_FAILED))
        #expect(TunnelFailure.destinationNotAllowed(host: "10.0.0.1", port: 22).reason == "Destination not allowed: 10.0.0.1:22")
        #expect(TunnelFailure.endpointNotFound("db").reason == "Endpoint host 'db' not found")
        #expect(TunnelFailure.attemptTimedOut.errorType == .TIMEOUT)
        #expect(TunnelFailure.keyUnreadable.errorType == .AUTHENTICATION_FAILED)
        let last = TunnelFailure(RelayFailure(.keepaliveTimeout))
        #expect(last.exhausted() == TunnelFailure(reason: "Max retries exhausted: Keepalive timeout", errorType: .TIMEOUT))
    }
}
