/// Whose share of the SSH streams' memory (`BufferPool`: buffers, wide and standard receive windows) a session's
/// streams take. The relay knows keys, not users: the control plane names one per user and says whether the share
/// bounds it (issue #24: one user's 512 C2S relays took all 1024 buffers and the admin's S2S stream was reset).
public struct PoolShare {
    public var key: String
    /// false: only the pool's totals apply (an admin, the probe command).
    public var bounded: Bool

    public init(key: String, bounded: Bool) {
        self.key = key
        self.bounded = bounded
    }

    public static let unbounded = PoolShare(key: "", bounded: false)

    /// A bounded key's part of a total: a quarter, as for tunnels and relays, at least one unit where there is any.
    public static func part(of total: Int) -> Int { total <= 0 ? 0 : max(1, total / 4) }
}

/// Units of one resource held in all and per key, under a total and, for bounded keys, `perKey`. Pure accounting
/// (the owner locks), so the rule is unit-tested apart from the pool.
struct ShareCount {
    let total: Int
    let perKey: Int
    private(set) var held = 0
    private(set) var byKey: [String: Int] = [:]

    init(total: Int) {
        self.total = max(0, total)
        perKey = PoolShare.part(of: total)
    }

    func held(by key: String) -> Int { byKey[key] ?? 0 }

    /// Takes `units` for `share`; false (nothing taken) when that would pass the total or a bounded share.
    mutating func take(_ units: Int, for share: PoolShare) -> Bool {
        let mine = held(by: share.key) + units
        guard held + units <= total, !share.bounded || mine <= perKey else { return false }
        held += units
        byKey[share.key] = mine
        return true
    }

    mutating func give(_ units: Int, for share: PoolShare) {
        held -= units
        let mine = held(by: share.key) - units
        byKey[share.key] = mine > 0 ? mine : nil
    }

    /// Keys holding something, sorted (for `/metrics`).
    var rows: [(String, Int)] { byKey.sorted { $0.key < $1.key }.map { ($0.key, $0.value) } }
}
