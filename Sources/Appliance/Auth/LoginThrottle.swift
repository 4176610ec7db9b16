import Relay

/// Slows password guessing per user name and per client address: after a few failures each further attempt must
/// wait, doubling up to a cap. Names are tracked only for users that exist (there are as many as the
/// configuration has), so guesses at made-up names count against their address alone and cannot crowd a real
/// user's lock out of the table (issue #15). Bounded: beyond `capacity` address records are forgotten, those
/// no longer locked first, the oldest locked ones only when every record is locked.
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

    public func failed(user: String, address: String, nowMs: Int64, knownUser: Bool = true) {
        lock.withLock {
            for key in knownUser ? ["u:" + user, "a:" + address] : ["a:" + address] {
                var record = records[key] ?? Record(failures: 0, lockedUntilMs: 0, lastMs: nowMs)
                record.failures += 1
                record.lastMs = nowMs
                if record.failures > LoginThrottle.freeFailures {
                    let shift = min(record.failures - LoginThrottle.freeFailures - 1, 20)
                    record.lockedUntilMs = nowMs + min(LoginThrottle.baseDelayMs << Int64(shift), LoginThrottle.maxDelayMs)
                }
                records[key] = record
            }
            if records.count > capacity { evict(nowMs: nowMs) }
        }
    }

    public func succeeded(user: String, address: String) {
        lock.withLock {
            records["u:" + user] = nil
            records["a:" + address] = nil
        }
    }

    /// Drops address records down to three quarters of `capacity` (so this runs once per many failures, not on
    /// each): unlocked ones first; locked ones, oldest first, only if that is not enough. User records stay.
    private func evict(nowMs: Int64) {
        let target = capacity * 3 / 4
        for (key, record) in records where records.count > target && key.hasPrefix("a:") && record.lockedUntilMs <= nowMs {
            records[key] = nil
        }
        guard records.count > target else { return }
        let locked = records.filter { $0.key.hasPrefix("a:") }.sorted { $0.value.lastMs < $1.value.lastMs }
        for (key, _) in locked.prefix(records.count - target) { records[key] = nil }
    }
}
