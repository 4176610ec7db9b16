/// The tunnels the configuration file lists (appliance.md §2), as the connect requests a Termix client would send
/// for them. Pure: read from a `Config`.
enum ConfiguredTunnels {
    /// A configured tunnel as its connect request (retryInterval is in seconds in the file); managed endpoints are
    /// looked up as the host's owner.
    static func request(_ host: Host, index: Int, tunnel: TunnelConfig, config: Config) -> ConnectRequest? {
        guard let name = TunnelName.parse(TunnelName.configured(host: host, index: index, tunnel: tunnel)) else { return nil }
        let owner = config.user(id: host.owner)
        return ConnectRequest(
            name: name, host: host, mode: tunnel.mode, sourcePort: tunnel.sourcePort, endpointHost: tunnel.endpointHost,
            endpointPort: tunnel.endpointPort, bindHost: tunnel.bindHost.isEmpty ? "127.0.0.1" : tunnel.bindHost,
            targetHost: tunnel.targetHost, maxRetries: tunnel.maxRetries == 0 ? 3 : tunnel.maxRetries,
            retryIntervalMs: tunnel.retryIntervalSeconds <= 0 ? 5000 : tunnel.retryIntervalSeconds * 1000,
            autoStart: tunnel.autoStart, keepaliveInterval: host.keepaliveInterval,
            keepaliveCountMax: host.keepaliveCountMax,
            endpoint: owner.flatMap { EndpointLookup.managedEndpoint(tunnel.endpointHost, config: config, user: $0) })
    }

    static func request(named name: String, config: Config) -> ConnectRequest? {
        for host in config.hosts {
            for (index, tunnel) in host.tunnels.enumerated()
            where TunnelName.configured(host: host, index: index, tunnel: tunnel) == name {
                return request(host, index: index, tunnel: tunnel, config: config)
            }
        }
        return nil
    }

    /// Every configured tunnel's name and source host, in file order.
    static func names(_ config: Config) -> [(name: String, hostId: Int)] {
        var names: [(name: String, hostId: Int)] = []
        for host in config.hosts {
            for (index, tunnel) in host.tunnels.enumerated() {
                names.append((TunnelName.configured(host: host, index: index, tunnel: tunnel), host.id))
            }
        }
        return names
    }
}
