import Relay

/// The compiled `destinations` of the live configuration, shared by every thread that judges a connection (the
/// C2S relay's, the local host's): rebuilt only when a reload changed them.
public final class DestinationPolicyCache {
    private let config: Locked<Config>
    private let cached: Locked<(Destinations, DestinationPolicy)?> = Locked(nil)

    public init(config: Locked<Config>) { self.config = config }

    public func current() -> DestinationPolicy {
        let destinations = config.get().destinations
        return cached.update { entry in
            if let (seen, policy) = entry, seen == destinations { return policy }
            let policy = DestinationPolicy(destinations)
            entry = (destinations, policy)
            return policy
        }
    }

    /// The judge of each resolved address of one connection out of the appliance itself (`Dialer`'s `allow`), by
    /// the configuration live when the addresses arrive.
    public func rule(host: String, port: Int) -> (String) -> Bool {
        { [self] address in self.current().allows(host: host, address: address, port: port) }
    }
}
