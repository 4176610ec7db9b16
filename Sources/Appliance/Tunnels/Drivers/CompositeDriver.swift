import Relay

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

    public func start(_ request: ConnectRequest, attempt: UInt64, events: TunnelReporter) {
        owners.update { $0[attempt] = request.host.local }
        (request.host.local ? localHost : ssh).start(request, attempt: attempt, events: events)
    }

    public func stop(attempt: UInt64) {
        guard let isLocal = owners.update({ $0.removeValue(forKey: attempt) }) else { return }
        (isLocal ? localHost : ssh).stop(attempt: attempt)
    }
}
