extension Config {
    /// The permission model (tunnels-api.md §3): owner, `sharedWith`, or admin. Always against the inventory, the
    /// one rule for every route, relay and reload that asks whether a user may use a host.
    public func mayUse(_ host: Host, _ user: User) -> Bool {
        user.admin || host.owner == user.id || host.sharedWith.contains(user.id)
    }
}
