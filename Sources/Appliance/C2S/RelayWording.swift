import Relay

/// The words of tunnels-api.md §9 for a relay whose stream could not be set up: SSH refusals are named, anything
/// else is `Failed to open relay` (the detail goes to the log only). Typed failures are worded by `TunnelFailure`.
enum RelayWording {
    static let openFailed = "Failed to open relay"

    /// libssh2's text for a refused direct-tcpip open: sshd says "administratively prohibited" when its policy
    /// forbids the forward, "connect failed" when the target does not answer (the server's words, classified).
    static func channelRefusal(_ message: String) -> String {
        if ByteSearch.contains(message, "prohibited") { return "SSH forwarding was rejected by the endpoint server: \(message)" }
        return unreachable(message)
    }

    static func unreachable(_ why: String) -> String { "Tunnel target is not reachable from the endpoint host: \(why)" }

    /// The remote session failed before `ready`: a refused `tcpip-forward` is named, nil for anything else.
    static func remoteRefusal(_ failure: RelayFailure) -> String? {
        guard failure.kind == .forwardRefused else { return nil }
        return "Remote port is not available on the endpoint server: " + TunnelFailure(failure).reason
    }

    static let noRemoteOnAppliance = "Remote port is not available on the endpoint server: remote forwarding is not "
        + "available on the appliance itself"
}
