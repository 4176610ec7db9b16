import CLinux

/// How one attempt to open a stream ended: the value every opener reports (an SSH channel's direct-tcpip open, a
/// SOCKS CONNECT or fixed target of the appliance's own forwards, a C2S stream through SSH or from the appliance,
/// a managed tunnel's carrier). What a client is told derives from it by one function each: the SOCKS5 reply code
/// (`socksReply`, here), the refusal counter of `/metrics` (`refusalCause`, here) and the words of tunnels-api.md
/// §9 (`RelayWording.stream`, in the Appliance). A raw-value kind: text never says what happened; the words of
/// libssh2 and errno are classified once, where they arise (`init(sshRefusal:)`, `init(connectErrno:)`).
public enum StreamOpenOutcome: UInt8, CaseIterable, CustomStringConvertible {
    case opened
    /// Refused here: the tunnel's (or session's) connection limit.
    case overLimit
    /// Refused here: the relay buffer pool has no two buffers free.
    case noBuffers
    /// Refused here: the session is not up, or is ending.
    case sessionUnavailable
    /// Refused here: no resolved address is allowed by `destinations`.
    case notAllowed
    /// The SSH server refused: administratively prohibited (its policy, e.g. `PermitOpen`).
    case prohibited
    /// The SSH server could not connect to the target ("connect failed": sshd tells refused and unreachable alike).
    case connectFailed
    /// The target refused the connection (ECONNREFUSED).
    case refused
    /// The target's name did not resolve.
    case unresolved
    /// No route to the target (unreachable network or host, or another connect error).
    case unreachable
    /// The target did not answer in time.
    case timedOut
    /// Anything else: a resource here, an unknown SSH reason, a transport error.
    case failed

    /// The SOCKS5 reply (RFC 1928 §6) a client that asked for this stream gets.
    public var socksReply: SOCKS5.Reply {
        switch self {
        case .opened: return .succeeded
        case .overLimit, .noBuffers, .sessionUnavailable, .failed: return .generalFailure
        case .notAllowed, .prohibited: return .notAllowed
        case .connectFailed, .refused: return .connectionRefused
        case .unresolved, .unreachable, .timedOut: return .hostUnreachable
        }
    }

    /// The `/metrics` refusal counter this outcome raises: only refusals because a limit was reached
    /// (appliance.md §2); a target that cannot be reached is not a refusal of ours.
    public var refusalCause: Refusals.Cause? {
        switch self {
        case .overLimit: return .connectionLimit
        case .noBuffers: return .bufferPool
        default: return nil
        }
    }

    /// For logs and a managed tunnel's carrier failure (`RelayFailure.detail`); never parsed.
    public var description: String {
        switch self {
        case .opened: return "opened"
        case .overLimit: return "over the connection limit"
        case .noBuffers: return "no relay buffers free"
        case .sessionUnavailable: return "the SSH session is not ready"
        case .notAllowed: return "destination not allowed"
        case .prohibited: return "administratively prohibited"
        case .connectFailed: return "connect failed"
        case .refused: return "connection refused"
        case .unresolved: return "name not resolved"
        case .unreachable: return "host unreachable"
        case .timedOut: return "connection timed out"
        case .failed: return "open failed"
        }
    }

    /// libssh2's text for a refused direct-tcpip open (`_libssh2_channel_open`: "Channel open failure
    /// (administratively prohibited)", "(connect failed)", "(unknown channel type)", "(resource shortage)"):
    /// the one place that reads it.
    public init(sshRefusal message: String) {
        if ByteSearch.contains(message, "administratively prohibited") {
            self = .prohibited
        } else if ByteSearch.contains(message, "connect failed") {
            self = .connectFailed
        } else {
            self = .failed
        }
    }

    /// A failed TCP connect's errno (0: it connected).
    public init(connectErrno code: Int32) {
        switch code {
        case 0: self = .opened
        case ECONNREFUSED: self = .refused
        case ETIMEDOUT: self = .timedOut
        // out of something here, not the target's fault
        case EMFILE, ENFILE, ENOBUFS, ENOMEM, EADDRNOTAVAIL: self = .failed
        default: self = .unreachable
        }
    }

    /// A `Dialer`'s answer (`failed`: by the last connect's errno).
    public init(dial kind: Dialer.Kind, errno code: Int32 = 0) {
        switch kind {
        case .connected: self = .opened
        case .unresolved: self = .unresolved
        case .notAllowed: self = .notAllowed
        case .refused: self = .refused
        case .failed: self = code == 0 ? .unreachable : StreamOpenOutcome(connectErrno: code)
        case .timedOut: self = .timedOut
        }
    }
}
