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

/// Sends each attempt to the driver for its source host: the appliance itself (`local: true`, kernel relay) or an
/// SSH server.
public final class CompositeDriver: TunnelDriver {
    let localHost: any TunnelDriver
    let ssh: any TunnelDriver
    private let owners = Locked<[UInt64: Bool]>([:])   // attempt → handled by localHost

    public init(localHost: any TunnelDriver, ssh: any TunnelDriver) {
        self.localHost = localHost
        self.ssh = ssh
    }

    public func start(_ request: ConnectRequest, attempt: UInt64, events: TunnelEvents) {
        owners.update { $0[attempt] = request.host.local }
        (request.host.local ? localHost : ssh).start(request, attempt: attempt, events: events)
    }

    public func stop(attempt: UInt64) {
        guard let isLocal = owners.update({ $0.removeValue(forKey: attempt) }) else { return }
        (isLocal ? localHost : ssh).stop(attempt: attempt)
    }
}
