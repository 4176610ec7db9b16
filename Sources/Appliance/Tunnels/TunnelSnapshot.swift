/// What the API and the SSE hub read: an immutable copy of every tunnel's status, in registration order.
public struct TunnelRow {
    public let name: String
    public let hostId: Int
    public let status: TunnelStatus
}

public struct TunnelSnapshot {
    public let version: UInt64
    public let rows: [TunnelRow]

    public static let empty = TunnelSnapshot(version: 0, rows: [])

    public func row(named name: String) -> TunnelRow? { rows.first { $0.name == name } }

    /// The GET /ssh/tunnel/status object for one user: only tunnels whose source host they may use.
    public func json(for user: User, config: Config) -> JSONValue {
        var members: [(String, JSONValue)] = []
        for row in rows {
            guard let host = config.host(id: row.hostId), config.mayUse(host, user) else { continue }
            members.append((row.name, row.status.json()))
        }
        return .object(members)
    }
}
