/// Bytes of unfinished text messages held by WebSocket links (issue #24: 100 relays each holding a non-final 1 MiB
/// text frame took 119 MiB, for as long as the relays lived): a total, and a share per key (the user), so one user
/// cannot take what everyone's `open` messages need. Links charge as bytes arrive and give back when the message is
/// complete or the link ends; a link whose text would go over either bound is closed (1013, try again later).
public final class TextBudget {
    public let total: Int
    public let perKey: Int
    private let lock = Lock()
    private var heldBytes = 0
    private var byKey: [String: Int] = [:]

    public init(total: Int, perKey: Int) {
        self.total = total
        self.perKey = perKey
    }

    /// Bytes held now (any thread: `/metrics`).
    public var held: Int { lock.withLock { heldBytes } }

    public func held(by key: String) -> Int { lock.withLock { byKey[key] ?? 0 } }

    /// Keys holding bytes now, sorted (`/metrics`).
    public var rows: [(String, Int)] { lock.withLock { byKey.sorted { $0.key < $1.key }.map { ($0.key, $0.value) } } }

    /// Moves `key`'s charge by `delta`; false (nothing charged) when growing would pass the total or the key's share.
    public func change(_ key: String, by delta: Int) -> Bool {
        lock.withLock {
            let mine = (byKey[key] ?? 0) + delta
            if delta > 0 && (heldBytes + delta > total || mine > perKey) { return false }
            heldBytes += delta
            byKey[key] = mine > 0 ? mine : nil
            return true
        }
    }
}
