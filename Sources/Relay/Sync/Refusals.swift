/// Connections refused because a limit was reached, counted process-wide by cause for `/metrics`
/// (appliance.md §2: a connection beyond a limit is refused and counted). Any thread.
public final class Refusals {
    public static let shared = Refusals()

    public enum Cause: Int, CaseIterable {
        /// `limits.maxConnectionsPerTunnel`
        case connectionLimit = 0
        /// the relay buffer pool (`bufferCount`) or the WebSocket receive buffers were all in use
        case bufferPool = 1
        /// `limits.maxRelays`
        case relayLimit = 2
        /// the process is close to its descriptor limit (RLIMIT_NOFILE)
        case descriptors = 3

        public var label: String {
            self == .connectionLimit ? "connection_limit" : self == .bufferPool ? "buffer_pool"
                : self == .relayLimit ? "relay_limit" : "fd_limit"
        }
    }

    private let counts = Locked<[Int]>([0, 0, 0, 0])

    public func count(_ cause: Cause) { counts.update { $0[cause.rawValue] += 1 } }

    /// A stream refused with `outcome`: counted when it was a limit of ours (`StreamOpenOutcome.refusalCause`).
    public func count(_ outcome: StreamOpenOutcome) {
        if let cause = outcome.refusalCause { count(cause) }
    }

    public func snapshot() -> [Int] { counts.get() }
}
