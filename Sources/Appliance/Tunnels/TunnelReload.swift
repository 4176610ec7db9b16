/// What a configuration reload (SIGHUP) does to one registered tunnel (issue #15: a reload must revoke access, not
/// restart it). Pure: decided from the entry and the two configurations.
struct TunnelReload {
    /// The request with the host and managed endpoint of the new inventory.
    var request: ConnectRequest
    /// A configured tunnel started on its owner's authority (autoStart) follows the host's new owner.
    var requesterId: String?
    /// Set: the requester may no longer use the source or managed endpoint host; a running tunnel stops.
    var revoked: TunnelFailure?
    /// The host, the managed endpoint or (direct remote tunnels) `destinations` changed: a running tunnel restarts.
    var changed: Bool

    init(_ request: ConnectRequest, requesterId: String?, fromConfig: Bool, host: Host, old: Config, new: Config) {
        let before = old.host(id: host.id)
        var requesterId = requesterId
        if fromConfig, let before, requesterId == before.owner { requesterId = host.owner }
        let requester = requesterId.flatMap { new.user(id: $0) }
        let endpoint = requester.flatMap { EndpointLookup.managedEndpoint(request.endpointHost, config: new, user: $0) }
        if requester == nil || !new.mayUse(host, requester!) {
            revoked = .accessRevoked
        } else if request.endpoint != nil && endpoint == nil {
            revoked = .endpointNotFound(request.endpointHost)
        }
        // a direct remote tunnel's target was checked against `destinations` when it started
        let recheck = request.mode == .remote && endpoint == nil && old.destinations != new.destinations
        changed = before != host || request.endpoint != endpoint || recheck
        var updated = request
        updated.host = host
        updated.endpoint = endpoint
        self.request = updated
        self.requesterId = requesterId
    }
}
