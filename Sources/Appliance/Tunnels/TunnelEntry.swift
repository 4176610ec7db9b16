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
