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
        /// a bounded key (a non-admin) holds its share of the relay buffers (issue #24)
        case bufferShare = 4
        /// a stream the server opened (remote forward) finds its key's share of receive windows taken: its window
        /// cannot be made smaller than libssh2's 2 MiB, so it is refused (issue #24)
        case windowShare = 5

        public var label: String {
            self == .connectionLimit ? "connection_limit" : self == .bufferPool ? "buffer_pool"
                : self == .relayLimit ? "relay_limit" : self == .descriptors ? "fd_limit"
                : self == .bufferShare ? "buffer_share" : "window_share"
        }
    }

    private let counts = Locked<[Int]>([Int](repeating: 0, count: Cause.allCases.count))

    public func count(_ cause: Cause) { counts.update { $0[cause.rawValue] += 1 } }

    /// A stream refused with `outcome`: counted when it was a limit of ours (`StreamOpenOutcome.refusalCause`).
    public func count(_ outcome: StreamOpenOutcome) {
        if let cause = outcome.refusalCause { count(cause) }
    }

    public func snapshot() -> [Int] { counts.get() }
}
