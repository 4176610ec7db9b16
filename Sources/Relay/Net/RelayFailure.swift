import CLinux

/// Why a connection, an SSH session or a forward failed, as the data plane knows it: a plain kind, what failed
/// (`subject`) and the words of the failure's source (`detail`: errno text, libssh2's or the server's message).
/// A struct with a raw-value kind (not for the Embedded build's sake: issue #25 found no payload-enum miscompile,
/// see SOCKS5.pair). The Appliance turns it into the reason text and `errorType` of
/// tunnels-api.md §8 and §9 in one place (`TunnelFailure`); nothing reads the text to learn what happened.
public struct RelayFailure: Equatable, CustomStringConvertible {
    public enum Kind: UInt8 {
        /// The TCP connect to the SSH server failed. subject: the address; detail: the errno text.
        case connectFailed
        /// The same, refused (ECONNREFUSED).
        case connectRefused
        /// The TCP connect did not complete in time. subject: the address.
        case connectTimedOut
        /// Handshake, authentication and forward setup did not complete in time.
        case setupTimedOut
        /// The SSH handshake failed. detail: libssh2's text.
        case handshakeFailed
        /// The host-key algorithm preference is not usable. subject: the preference.
        case hostKeyAlgorithm
        /// The server's host key is not the expected one. subject: the host's name.
        case hostKeyMismatch
        /// The server refused every configured method. subject: the user; detail: what was refused.
        case authRejected
        /// A transport error while authenticating. detail: libssh2's text.
        case authError
        /// A listener here could not be set up. subject: the address; detail: the errno text.
        case listenFailed
        /// The server refused a `tcpip-forward`. subject: the port.
        case forwardRefused
        /// The peer closed the connection. detail: empty, or what closed it (broken pipe, the disconnect message).
        case peerClosed
        /// The connection was reset (ECONNRESET).
        case connectionReset
        /// The connection failed otherwise. detail: the errno text.
        case connectionLost
        /// The SSH transport failed. detail: libssh2's text (empty: the session simply ended).
        case sessionError
        /// `keepaliveCountMax` keepalives went unanswered.
        case keepaliveTimeout
        /// The channel that was to carry another session was refused. subject: "<inner> through <outer>";
        /// detail: the server's refusal.
        case carrierRefused
        /// A resource here failed (socket pair, session object, no room in a session). detail: what.
        case local
        /// The host's name did not resolve (no answer, NXDOMAIN, SERVFAIL, the lookup's timeout or its bound).
        /// subject: the name as configured.
        case unresolved
    }

    public let kind: Kind
    public let subject: String
    public let detail: String

    public init(_ kind: Kind, subject: String = "", detail: String = "") {
        self.kind = kind
        self.subject = subject
        self.detail = detail
    }

    /// A TCP connect to `address` failed with `code`.
    public static func connect(_ address: SocketAddress, errno code: Int32) -> RelayFailure {
        RelayFailure(code == ECONNREFUSED ? .connectRefused : .connectFailed, subject: address.description,
                     detail: FileIO.errorText(code))
    }

    /// A connection failed with `code` (after it was up).
    public static func connection(errno code: Int32) -> RelayFailure {
        if code == ECONNRESET { return RelayFailure(.connectionReset) }
        if code == EPIPE { return RelayFailure(.peerClosed, detail: "broken pipe") }
        return RelayFailure(.connectionLost, detail: FileIO.errorText(code))
    }

    /// For logs only (the words shown to users are the Appliance's).
    public var description: String {
        var text = "kind=\(kind.rawValue)"
        if !subject.isEmpty { text += " subject=\(subject)" }
        if !detail.isEmpty { text += " detail=\(detail)" }
        return text
    }
}
