/// The autostart record (`AutostartState`) as the manager keeps it: read at start, written (atomically) whenever
/// it changes. Control thread only.
final class AutostartStore {
    private let state: StateDirectory?
    private(set) var current = AutostartState()

    /// `state` nil: nothing is remembered across restarts.
    init(state: StateDirectory?) { self.state = state }

    /// A failed write (disk full) is logged; the tunnel itself is unaffected.
    func remember(_ change: (inout AutostartState) -> Void) {
        guard let state else { return }
        var next = current
        change(&next)
        guard next != current else { return }
        current = next
        if let problem = state.writeJSON(AutostartState.fileName, next.json()) {
            Log.error("state.write_failed", [("file", AutostartState.fileName), ("problem", problem)])
        }
    }

    /// At start: configured autoStart tunnels that no user stopped, then the API's autoStart tunnels within the
    /// run-time limits (`AutostartState.bound`: admins' first, a non-admin's share, the room `maxTunnels` leaves
    /// next to the configured tunnels), each checked again against the inventory and permissions of now; with the
    /// user each starts as. Records beyond the limits are dropped from the file.
    func load(_ config: Config, configured: Int) -> [(request: ConnectRequest, requester: String)] {
        guard let state else { return [] }
        let limit = config.limits.maxTunnels * AutostartState.maxRecordBytes + StateDirectory.readLimit
        current = state.readJSON(AutostartState.fileName, limit: limit).map { AutostartState.parse($0) }
            ?? AutostartState()
        var bounded = current
        let dropped = bounded.bound(room: max(0, config.limits.maxTunnels - configured),
                                    share: TunnelManager.userShare(config.limits.maxTunnels),
                                    isAdmin: { config.user(id: $0)?.admin })
        for name in dropped {
            Log.warn("tunnel.autostart_skipped", [("tunnel", name), ("reason", "unknown user or over the limits")])
        }
        if !dropped.isEmpty { remember { $0 = bounded } }
        var launches: [(request: ConnectRequest, requester: String)] = []
        for host in config.hosts {
            for (index, tunnel) in host.tunnels.enumerated() where tunnel.autoStart {
                guard let request = ConfiguredTunnels.request(host, index: index, tunnel: tunnel, config: config),
                      !current.stopped.contains(request.name.text) else { continue }
                launches.append((request, host.owner))
                Log.info("tunnel.autostart", [("tunnel", request.name.text), ("source", "config")])
            }
        }
        for item in current.entries {
            guard let user = config.user(id: item.userId) else {
                Log.warn("tunnel.autostart_skipped", [("tunnel", item.name), ("reason", "unknown user")])
                continue
            }
            switch ConnectValidation.validate(body: Array(JSONWriter.write(item.body).utf8), config: config, user: user) {
            case .success(let request):
                launches.append((request, user.id))
                Log.info("tunnel.autostart", [("tunnel", item.name), ("source", "api")])
            case .failure(let error):
                Log.warn("tunnel.autostart_skipped", [("tunnel", item.name), ("reason", error.message)])
            }
        }
        return launches
    }
}
