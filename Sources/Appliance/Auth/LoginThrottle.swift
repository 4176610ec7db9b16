import Relay

/// Slows password guessing per user name and per client address: after a few failures each further attempt must
/// wait, doubling up to a cap. Bounded: the table forgets its oldest keys beyond `capacity`.
public final class LoginThrottle {
    public static let freeFailures = 3
    public static let baseDelayMs: Int64 = 1000
    public static let maxDelayMs: Int64 = 5 * 60 * 1000
    public let capacity: Int

    struct Record {
        var failures: Int
        var lockedUntilMs: Int64
        var lastMs: Int64
    }

    private let lock = Lock()
    private var records: [String: Record] = [:]

    public init(capacity: Int = 4096) { self.capacity = capacity }

    /// Milliseconds to wait before another attempt for this user or address may be tried; 0 when allowed.
    public func waitMs(user: String, address: String, nowMs: Int64) -> Int64 {
        lock.withLock {
            let keys = ["u:" + user, "a:" + address]
            var wait: Int64 = 0
            for key in keys {
                if let record = records[key], record.lockedUntilMs > nowMs { wait = max(wait, record.lockedUntilMs - nowMs) }
            }
            return wait
        }
    }

    public func failed(user: String, address: String, nowMs: Int64) {
        lock.withLock {
            for key in ["u:" + user, "a:" + address] {
                var record = records[key] ?? Record(failures: 0, lockedUntilMs: 0, lastMs: nowMs)
                record.failures += 1
                record.lastMs = nowMs
                if record.failures > LoginThrottle.freeFailures {
                    let shift = min(record.failures - LoginThrottle.freeFailures - 1, 20)
                    record.lockedUntilMs = nowMs + min(LoginThrottle.baseDelayMs << Int64(shift), LoginThrottle.maxDelayMs)
                }
                records[key] = record
            }
            if records.count > capacity { evictOldest() }
        }
    }

    public func succeeded(user: String, address: String) {
        lock.withLock {
            records["u:" + user] = nil
            records["a:" + address] = nil
        }
    }

    private func evictOldest() {
        let sorted = records.sorted { $0.value.lastMs < $1.value.lastMs }
        for (key, _) in sorted.prefix(records.count - capacity) { records[key] = nil }
    }
}
