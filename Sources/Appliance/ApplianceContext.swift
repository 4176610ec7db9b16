import Relay

/// What the HTTP side shares with the rest of the appliance: the live configuration (replaced whole on SIGHUP),
/// the JWT secret, the tunnel manager and the SSE hub.
public final class ApplianceContext {
    public let config: Locked<Config>
    public let secret: [UInt8]
    public let manager: TunnelManager
    public let hub: SSEHub
    public let session = Session()
    /// The C2S relay; nil until started (and in unit tests of the other routes).
    public var relay: RelayService?

    public init(config shared: Locked<Config>, secret: [UInt8], manager: TunnelManager) {
        self.config = shared
        self.secret = secret
        self.manager = manager
        self.hub = SSEHub(viewKey: { userId in
            // what a user sees depends only on the hosts they may use: one key per distinct set
            let current = shared.get()
            guard let user = current.user(id: userId) else { return nil }
            if user.admin { return "*" }
            var key = ""
            for host in current.hosts where current.mayUse(host, user) { key += "\(host.id)," }
            return key
        }, view: { userId in
            let current = shared.get()
            guard let user = current.user(id: userId) else { return nil }
            return JSONWriter.write(manager.snapshot().json(for: user, config: current))
        })
    }

    public func statusJSON(for user: User) -> String {
        JSONWriter.write(manager.snapshot().json(for: user, config: config.get()))
    }

    /// GET /ssh/tunnel/configs: each configured tunnel the user may use, with the connect body a client sends for it.
    public func configuredTunnels(for user: User) -> JSONValue {
        let current = config.get()
        var items: [JSONValue] = []
        for host in current.hosts where current.mayUse(host, user) {
            for (index, tunnel) in host.tunnels.enumerated() {
                guard let request = ConfiguredTunnels.request(host, index: index, tunnel: tunnel,
                                                             config: current) else { continue }
                items.append(.object([
                    ("name", .string(request.name.text)), ("hostId", .int(host.id)),
                    ("hostName", .string(host.displayName)), ("mode", .string(tunnel.mode.rawValue)),
                    ("autoStart", .bool(tunnel.autoStart)), ("body", request.body()),
                ]))
            }
        }
        return .array(items)
    }

    public func metricsText() -> String {
        Metrics.render(snapshot: manager.snapshot(), subscribers: hub.count, sseQueuedBytes: hub.queuedBytes,
                       sseSendingBytes: hub.sendingBytes, sseByUser: hub.usageByUser,
                       relays: relay?.activeRelays ?? 0, relaysByUser: relay?.relaysByUser ?? [],
                       relayText: relay?.text.held ?? 0, relayTextByUser: relay?.text.rows ?? [])
    }
}
