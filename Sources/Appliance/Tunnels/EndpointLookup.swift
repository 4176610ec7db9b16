/// tunnels-api.md §7: whether `endpointHost` names an inventory host (a managed, two-session tunnel) or is a plain
/// address. Hosts the user may not use are skipped, never matched, so the lookup cannot reach across users.
public enum EndpointLookup {
    public static func managedEndpoint(_ endpointHost: String, config: Config, user: User) -> Host? {
        if endpointHost.isEmpty || endpointHost == "127.0.0.1" || endpointHost == "localhost" { return nil }
        let usable = config.hosts.filter { config.mayUse($0, user) }
        if let byId = usable.first(where: { String($0.id) == endpointHost }) { return byId }
        if let byName = usable.first(where: { !$0.name.isEmpty && $0.name == endpointHost }) { return byName }
        if let byIP = usable.first(where: { !$0.ip.isEmpty && $0.ip == endpointHost }) { return byIP }
        return usable.first { !$0.ip.isEmpty && "\($0.username)@\($0.ip)" == endpointHost }
    }
}
