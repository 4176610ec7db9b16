import Relay

/// The words of tunnels-api.md §9 for a relay whose stream could not be set up: SSH refusals are named, anything
/// else is `Failed to open relay` (the detail goes to the log only). Typed failures are worded by `TunnelFailure`.
enum RelayWording {
    static let openFailed = "Failed to open relay"

    /// A stream that did not open (through SSH or from the appliance itself): the `error` message and the close
    /// code, from its outcome alone. `host`/`port`: the target as asked.
    static func stream(_ outcome: StreamOpenOutcome, host: String, port: Int) -> (message: String, code: UInt16) {
        switch outcome {
        case .prohibited:
            return ("SSH forwarding was rejected by the endpoint server: administratively prohibited",
                    WebSocketLink.Codes.internalError)
        case .notAllowed:
            return (DestinationPolicy.refusal(host: host, port: port), WebSocketLink.Codes.policy)
        case .unresolved: return (unreachable("cannot resolve \(host)"), WebSocketLink.Codes.internalError)
        case .connectFailed, .refused, .unreachable, .timedOut:
            return (unreachable(outcome.description), WebSocketLink.Codes.internalError)
        case .opened, .overLimit, .noBuffers, .sessionUnavailable, .failed:
            return (openFailed, WebSocketLink.Codes.internalError)
        }
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
