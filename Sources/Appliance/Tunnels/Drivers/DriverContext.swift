import Relay

/// What the data-plane drivers read of the appliance: the live configuration (bindAllow, destinations, limits, the
/// inventory), the state directory (known_hosts) and the one pool of relay buffers.
public final class DriverContext {
    public let config: Locked<Config>
    public let stateDir: String
    public let destinations: DestinationPolicyCache
    /// The relay buffers of every SSH stream, tunnels' and C2S relays' alike: `bufferSize × bufferCount` in all, and
    /// the budget of their wide receive windows (`receiveWindowBudget`).
    public let buffers: BufferPool

    public init(config: Locked<Config>, stateDir: String) {
        self.config = config
        self.stateDir = stateDir
        destinations = DestinationPolicyCache(config: config)
        let limits = config.get().limits
        buffers = BufferPool(size: max(4096, limits.bufferSize), count: max(2, limits.bufferCount),
                             windowBudget: limits.receiveWindowBudget)
        PoolRegistry.shared.register("relay", buffers: buffers)
    }
}
