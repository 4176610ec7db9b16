import Relay

/// What the HTTP side shares with the rest of the appliance: the live configuration (replaced whole on SIGHUP),
/// the JWT secret, the tunnel manager and the SSE hub.
public final class ApplianceContext {
    public let config: Locked<Config>
    public let secret: [UInt8]
    public let manager: TunnelManager
    public let hub: SSEHub

    public init(config shared: Locked<Config>, secret: [UInt8], manager: TunnelManager) {
        self.config = shared
        self.secret = secret
        self.manager = manager
        self.hub = SSEHub(view: { userId in
            let current = shared.get()
            guard let user = current.user(id: userId) else { return nil }
            return JSONWriter.write(manager.snapshot().json(for: user, config: current))
        })
    }

    public func statusJSON(for user: User) -> String {
        JSONWriter.write(manager.snapshot().json(for: user, config: config.get()))
    }

    public func metricsText() -> String {
        Metrics.render(snapshot: manager.snapshot(), subscribers: hub.count)
    }
}
