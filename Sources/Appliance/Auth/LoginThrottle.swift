import Relay

/// Slows password guessing so that an attacker slows the attacker, not the user (issue #24: nine wrong passwords
/// for `admin` from rotating addresses locked every real admin login out). After `freeFailures` failures each further
/// attempt must wait, doubling up to a cap, counted three ways:
/// - per address (`a:`): every name tried from an address that keeps failing;
/// - per name and address (`p:`): one name guessed from one address;
/// - per name (`u:`, real users only): the name guessed from many addresses. This lock does not apply to an address
///   with no failure of its own, nor to one where that user logged in before (`g:`, known good): a correct password
///   from such an address passes whatever others are doing. Known good also lifts the address lock (a reverse
///   proxy is one address for every client behind it), never the name-and-address one.
/// Names of made-up users are never tracked by name (issue #15: they cannot crowd a real user's record out).
/// Bounded: beyond `capacity` records are forgotten (not user records), unlocked ones first, then the oldest.
public final class LoginThrottle {
    public static let freeFailures = 3
    public static let baseDelayMs: Int64 = 1000
    public static let maxDelayMs: Int64 = 5 * 60 * 1000
    public let capacity: Int

    /// Which lock holds an attempt back: each has its own answer.
    public enum Reason: Equatable {
        case address
        case user
        case userFromAddress
    }

    struct Record {
        var failures: Int
        var lockedUntilMs: Int64
        var lastMs: Int64
    }

    private let lock = Lock()
    private var records: [String: Record] = [:]

    public init(capacity: Int = 4096) { self.capacity = capacity }

    static func pair(_ user: String, _ address: String) -> String { user + "\u{0}" + address }

    /// Milliseconds to wait before another attempt for this user from this address may be tried; 0 when allowed.
    public func waitMs(user: String, address: String, nowMs: Int64) -> Int64 {
        check(user: user, address: address, nowMs: nowMs).waitMs
    }

    /// The longest wait that applies, and the lock it comes from.
    public func check(user: String, address: String, nowMs: Int64) -> (waitMs: Int64, reason: Reason?) {
        lock.withLock {
            let pair = LoginThrottle.pair(user, address)
            let knownGood = records["g:" + pair] != nil
            let addressFailed = (records["a:" + address]?.failures ?? 0) > 0
            var applies: [(String, Reason)] = [("p:" + pair, .userFromAddress)]
            if !knownGood { applies.append(("a:" + address, .address)) }
            if !knownGood && addressFailed { applies.append(("u:" + user, .user)) }
            var wait: Int64 = 0
            var which: Reason?
            for (key, kind) in applies {
                if let record = records[key], record.lockedUntilMs - nowMs > wait {
                    wait = record.lockedUntilMs - nowMs
                    which = kind
                }
            }
            return (wait, which)
        }
    }

    public func failed(user: String, address: String, nowMs: Int64, knownUser: Bool = true) {
        lock.withLock {
            var keys = ["a:" + address, "p:" + LoginThrottle.pair(user, address)]
            if knownUser { keys.append("u:" + user) }
            for key in keys {
                var record = records[key] ?? Record(failures: 0, lockedUntilMs: 0, lastMs: nowMs)
                record.failures += 1
                record.lastMs = nowMs
                if record.failures > LoginThrottle.freeFailures {
                    let shift = min(record.failures - LoginThrottle.freeFailures - 1, 20)
                    let delay = min(LoginThrottle.baseDelayMs << Int64(shift), LoginThrottle.maxDelayMs)
                    record.lockedUntilMs = nowMs + delay
                }
                records[key] = record
            }
            if records.count > capacity { evict(nowMs: nowMs) }
        }
    }

    /// Whether a login may take the password worker's reserved places (issue #24): the user logged in from this
    /// address before, or logged in before at all and this address has no failure of its own.
    public func trusted(user: String, address: String) -> Bool {
        lock.withLock {
            if records["g:" + LoginThrottle.pair(user, address)] != nil { return true }
            return records["s:" + user] != nil && (records["a:" + address]?.failures ?? 0) == 0
        }
    }

    /// The user's name-and-address record goes and the address becomes known good for that user (`s:`: the user
    /// has logged in). The address and name records stay: someone else's success does not wipe an attacker's count.
    public func succeeded(user: String, address: String, nowMs: Int64 = 0) {
        lock.withLock {
            let pair = LoginThrottle.pair(user, address)
            records["p:" + pair] = nil
            records["g:" + pair] = Record(failures: 0, lockedUntilMs: 0, lastMs: nowMs)
            records["s:" + user] = Record(failures: 0, lockedUntilMs: 0, lastMs: nowMs)
            if records.count > capacity { evict(nowMs: nowMs) }
        }
    }

    /// Drops records other than user records down to three quarters of `capacity` (so this runs once per many
    /// failures, not on each): unlocked ones first; locked ones, oldest first, only if that is not enough.
    private func evict(nowMs: Int64) {
        let target = capacity * 3 / 4
        for (key, record) in records where records.count > target && !key.hasPrefix("u:") && !key.hasPrefix("g:")
            && !key.hasPrefix("s:") && record.lockedUntilMs <= nowMs {
            records[key] = nil
        }
        guard records.count > target else { return }
        let rest = records.filter { !$0.key.hasPrefix("u:") }.sorted { $0.value.lastMs < $1.value.lastMs }
        for (key, _) in rest.prefix(records.count - target) { records[key] = nil }
    }
}
