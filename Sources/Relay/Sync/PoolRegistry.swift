/// Every pool of relay memory the process holds, by name, for `/metrics` and for checking the bound that
/// docs/operations.md states: relay buffers (`bufferSize × bufferCount`, one pool for all SSH streams), the wide
/// receive windows their channels may hold in libssh2, the WebSocket receive buffers (`maxRelays` × 64 KiB) and the
/// splice pipes of each relaying thread (a cap on pipes open). Pools register once, when their owner starts; a name registered again replaces the earlier pool.
public final class PoolRegistry {
    public static let shared = PoolRegistry()

    public struct Row {
        public let name: String
        /// "buffers", "pipes", "windows" (a buffer pool's wide receive windows, parked in libssh2) or
        /// "standard_windows" (its 2 MiB ones).
        public let kind: String
        /// Bytes per buffer; a pipe's ordinary capacity.
        public let itemBytes: Int
        /// The most that may exist at once.
        public let capacity: Int
        public let inUse: Int
    }

    /// What one key (a user) holds of a buffer pool now: buffers, wide or standard windows (issue #24's shares).
    public struct ShareRow {
        public let name: String
        public let kind: String
        public let key: String
        public let held: Int
    }

    private let lock = Lock()
    private var buffers: [(String, BufferPool)] = []
    private var pipes: [(String, PipePool)] = []

    public init() {}

    public func register(_ name: String, buffers pool: BufferPool) {
        lock.withLock {
            buffers.removeAll { $0.0 == name }
            buffers.append((name, pool))
        }
    }

    public func register(_ name: String, pipes pool: PipePool) {
        lock.withLock {
            pipes.removeAll { $0.0 == name }
            pipes.append((name, pool))
        }
    }

    /// Every key's holding of every buffer pool, keys that hold nothing left out.
    public func shares() -> [ShareRow] {
        let b = lock.withLock { buffers }
        var rows: [ShareRow] = []
        for (name, pool) in b {
            for (key, held) in pool.byKey where !key.isEmpty { rows.append(ShareRow(name: name, kind: "buffers", key: key, held: held)) }
            for (key, held) in pool.windows.byKey where !key.isEmpty {
                rows.append(ShareRow(name: name, kind: "windows", key: key, held: held))
            }
            for (key, held) in pool.standard.byKey where !key.isEmpty {
                rows.append(ShareRow(name: name, kind: "standard_windows", key: key, held: held))
            }
        }
        return rows
    }

    public func snapshot() -> [Row] {
        let (b, p) = lock.withLock { (buffers, pipes) }
        var rows: [Row] = []
        for (name, pool) in b {
            rows.append(Row(name: name, kind: "buffers", itemBytes: pool.size, capacity: pool.count, inUse: pool.inUse))
            rows.append(Row(name: name, kind: "windows", itemBytes: WindowBudget.wide, capacity: pool.windows.slots,
                            inUse: pool.windows.inUse))
            rows.append(Row(name: name, kind: "standard_windows", itemBytes: WindowBudget.standard,
                            capacity: pool.standard.slots, inUse: pool.standard.inUse))
        }
        for (name, pool) in p {
            rows.append(Row(name: name, kind: "pipes", itemBytes: pool.capacity, capacity: pool.limit, inUse: pool.inUse))
        }
        return rows
    }
}
