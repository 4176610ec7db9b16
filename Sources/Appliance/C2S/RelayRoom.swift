/// Room for one more C2S WebSocket (tunnels-api.md §9), as the upgrade answers it.
public enum RelayRoom {
    case available
    /// `limits.maxRelays` WebSockets are open (→ 503).
    case full
    /// A non-admin holds their share (→ 429).
    case userShare
}

/// The WebSockets open now, in all and per user, and the room they leave: a non-admin holds at most a quarter of
/// `maxRelays` (issue #24: one user opened all 512 and the admin's upgrade got 503). Pure; `RelayService` keeps
/// it under a lock.
struct RelayCounts {
    let maxRelays: Int
    private(set) var total = 0
    /// Only users with a WebSocket open: the map does not grow with every user ever seen.
    private(set) var byUser: [String: Int] = [:]

    init(maxRelays: Int) { self.maxRelays = max(1, maxRelays) }

    /// A non-admin's share of `maxRelays`: a quarter, at least one (as for tunnels).
    static func userShare(_ maxRelays: Int) -> Int { max(1, maxRelays / 4) }

    func of(_ userId: String) -> Int { byUser[userId] ?? 0 }

    var isFull: Bool { total >= maxRelays }

    func room(userId: String, admin: Bool) -> RelayRoom {
        guard !isFull else { return .full }
        if !admin && of(userId) >= RelayCounts.userShare(maxRelays) { return .userShare }
        return .available
    }

    mutating func add(_ userId: String, _ delta: Int) {
        total = max(0, total + delta)
        let next = of(userId) + delta
        byUser[userId] = next > 0 ? next : nil
    }

    mutating func reset() {
        total = 0
        byUser = [:]
    }
}
