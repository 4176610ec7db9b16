import Relay

/// Why a tunnel attempt failed or its session died, as the API shows it: the `reason` and `errorType` of
/// tunnels-api.md §8. Every reason text of the tunnels (and the SSH words of the C2S relay, §9) is made here, from
/// a typed `RelayFailure` or a named refusal of the Appliance. Our own failures have a fixed errorType; text that
/// comes from elsewhere (errno, libssh2, the server) is classified by the §8 table (`ErrorClassifier`).
public struct TunnelFailure: Equatable {
    public let reason: String
    public let errorType: ErrorType

    init(reason: String, errorType: ErrorType) {
        self.reason = reason
        self.errorType = errorType
    }

    /// `reason` built around `outside` text, typed by that text alone.
    private init(_ reason: String, classifying outside: String) {
        self.init(reason: reason, errorType: ErrorClassifier.classify(outside))
    }

    public init(_ failure: RelayFailure) {
        let subject = failure.subject, detail = failure.detail
        switch failure.kind {
        case .connectRefused:
            self.init(reason: "SSH connection to \(subject) failed: \(detail)", errorType: .NETWORK_ERROR)
        case .connectFailed:
            self.init("SSH connection to \(subject) failed: \(detail)", classifying: detail)
        case .connectTimedOut:
            self.init(reason: "SSH connection to \(subject) timed out", errorType: .TIMEOUT)
        case .setupTimedOut:
            self.init(reason: "SSH session setup timed out", errorType: .TIMEOUT)
        case .handshakeFailed:
            self.init("SSH handshake failed: \(detail)", classifying: detail)
        case .hostKeyAlgorithm:
            self.init(reason: "Host key algorithm \(subject) is not supported", errorType: .AUTHENTICATION_FAILED)
        case .hostKeyMismatch:
            self = .hostKeyRejected(subject)
        case .authRejected:
            self.init(reason: "Authentication failed for user \(subject): \(detail)", errorType: .AUTHENTICATION_FAILED)
        case .authError:
            self.init("SSH error during authentication: \(detail)", classifying: detail)
        case .listenFailed:
            // a bind failure (tunnels-api.md §8): terminal, whatever the errno
            self.init(reason: "Cannot listen on \(subject): \(detail)", errorType: .CONNECTION_FAILED)
        case .forwardRefused:
            self.init(reason: "Remote port forwarding failed for listen port \(subject)", errorType: .CONNECTION_FAILED)
        case .peerClosed:
            self.init(reason: detail.isEmpty ? "Connection closed by remote host" : "Connection closed by remote host (\(detail))",
                      errorType: .NETWORK_ERROR)
        case .connectionReset:
            self.init(reason: "Connection reset by peer", errorType: .NETWORK_ERROR)
        case .connectionLost:
            self.init("SSH connection lost: \(detail)", classifying: detail)
        case .sessionError:
            self.init(detail.isEmpty ? "SSH session ended" : "SSH session error: \(detail)", classifying: detail)
        case .keepaliveTimeout:
            self.init(reason: "Keepalive timeout", errorType: .TIMEOUT)
        case .carrierRefused:
            self.init("Cannot reach \(subject): \(detail)", classifying: detail)
        case .local:
            self.init(reason: detail, errorType: .UNKNOWN)
        case .unresolved:
            self.init(reason: "Cannot resolve host \(subject)", errorType: .NETWORK_ERROR)
        }
    }

    // MARK: the Appliance's own refusals (terminal ones are CONNECTION_FAILED or AUTHENTICATION_FAILED)

    static func bindNotAllowed(_ address: String) -> TunnelFailure {
        TunnelFailure(reason: BindPolicy.refusal(address), errorType: .CONNECTION_FAILED)
    }

    static func destinationNotAllowed(host: String, port: Int) -> TunnelFailure {
        TunnelFailure(reason: DestinationPolicy.refusal(host: host, port: port), errorType: .CONNECTION_FAILED)
    }

    static func endpointNotFound(_ name: String) -> TunnelFailure {
        TunnelFailure(reason: "Endpoint host '\(name)' not found", errorType: .CONNECTION_FAILED)
    }

    static let accessRevoked = TunnelFailure(reason: "Access to host not allowed after a configuration reload",
                                             errorType: .CONNECTION_FAILED)

    static func hostKeyRejected(_ hostName: String) -> TunnelFailure {
        TunnelFailure(reason: "Host key verification failed for \(hostName)", errorType: .AUTHENTICATION_FAILED)
    }

    static let keyUnreadable = TunnelFailure(reason: "Authentication failed: cannot read the configured key",
                                             errorType: .AUTHENTICATION_FAILED)

    /// `problem` begins "Authentication failed: " (PrivateKeyInfo.unsupportedInThisBuild).
    static func keyUnsupported(_ problem: String) -> TunnelFailure {
        TunnelFailure(reason: problem, errorType: .AUTHENTICATION_FAILED)
    }

    static let invalidConfiguration = TunnelFailure(reason: "Invalid tunnel configuration", errorType: .UNKNOWN)

    static let remoteOnAppliance = TunnelFailure(reason: "Remote forwarding is not available on the appliance itself",
                                                 errorType: .UNKNOWN)

    /// The listener of a running tunnel failed (`text`: the socket call and its errno).
    static func listenerFailed(_ text: String) -> TunnelFailure {
        TunnelFailure("Listener failed: \(text)", classifying: text)
    }

    /// The 60 s watchdog of tunnels-api.md §8.
    static let attemptTimedOut = TunnelFailure(reason: "Connection attempt timed out after 60 s", errorType: .TIMEOUT)

    static let unavailable = TunnelFailure(reason: UnavailableDriver.reason, errorType: .UNKNOWN)

    /// The terminal failure after the last retry: the last failure's reason behind the prefix, its errorType.
    func exhausted() -> TunnelFailure {
        TunnelFailure(reason: "Max retries exhausted: " + reason, errorType: errorType)
    }

    /// Authentication and bind failures are not retried (tunnels-api.md §8): retrying cannot heal them.
    var isTerminal: Bool { errorType == .AUTHENTICATION_FAILED || errorType == .CONNECTION_FAILED }
}
