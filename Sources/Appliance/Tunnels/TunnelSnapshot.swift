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

/// One tunnel as the control thread sees it (never shared with other threads).
final class TunnelEntry {
    let name: String
    let hostId: Int
    /// nil until the tunnel is connected once (configured tunnels are listed before that).
    var request: ConnectRequest?
    /// Who asked for the running request (a configured tunnel: its host's owner). A reload checks that this user
    /// may still use the tunnel's hosts, and looks its managed endpoint up again as this user.
    var requesterId: String?
    var status: TunnelStatus
    var fromConfig: Bool

    /// The driver attempt that owns resources now; 0: none.
    var attempt: UInt64 = 0
    /// Its §8 state machine.
    var life = TunnelLifecycle()

    init(name: String, hostId: Int, status: TunnelStatus, fromConfig: Bool) {
        self.name = name
        self.hostId = hostId
        self.status = status
        self.fromConfig = fromConfig
    }
}
