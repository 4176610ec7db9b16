import Relay

/// What `SharedSessions` asks of a session: `SSHSession`, or a fake in the unit tests (no sockets there).
protocol SharedSession: AnyObject {
    func start()
    func close()
    func tick(nowMs: Int64)
}

extension SSHSession: SharedSession {}

/// Whose session: one per (user, host).
struct SharedSessionKey: Hashable {
    var userId: String
    var hostId: Int
}

/// One authenticated SSH session per (user, host), shared by that user's C2S streams to that host: a second
/// stream costs a channel open, not a TCP connect, key exchange and login (Termix logs in again for every TCP
/// connection). A session nobody uses is closed after `idleMs`. Reactor thread only.
final class SharedSessions<Session: SharedSession> {
    static var idleMs: Int64 { 60_000 }

    typealias Waiter = (Session?, RelayFailure?) -> Void
    /// Makes the session (not started) with the callbacks it must call once up and when it ends.
    typealias Make = (_ up: @escaping () -> Void, _ down: @escaping (RelayFailure) -> Void) -> Session

    final class Entry {
        let session: Session
        var ready = false
        var waiters: [Waiter] = []
        var idleSinceMs: Int64 = 0
        /// Relays riding the session (its users), told when it dies (before their streams see EOF).
        var lost: [ObjectIdentifier: (RelayFailure) -> Void] = [:]

        init(session: Session) { self.session = session }
    }

    private var entries: [SharedSessionKey: Entry] = [:]

    init() {}

    /// Sessions open or being set up.
    var count: Int { entries.count }

    /// Relays riding the session of `key` now.
    func users(_ key: SharedSessionKey) -> Int { entries[key]?.lost.count ?? 0 }

    /// `done` gets the ready session (the caller now counts as a user: `release` when done), or why none could
    /// be had. `make` is only called when no session exists yet.
    func acquire(_ key: SharedSessionKey, owner: ObjectIdentifier, make: Make, lost: @escaping (RelayFailure) -> Void,
                 done: @escaping Waiter) {
        if let entry = entries[key] {
            entry.lost[owner] = lost
            if entry.ready { return done(entry.session, nil) }
            entry.waiters.append(done)
            return
        }
        var made: Entry?
        let session = make({ [self] in if let made { self.up(made) } },
                           { [self] failure in if let made { self.down(key, made, failure) } })
        let entry = Entry(session: session)
        made = entry
        entry.lost[owner] = lost
        entry.waiters.append(done)
        entries[key] = entry
        session.start()
    }

    /// `owner` no longer rides the session; the last one starts its idle time.
    func release(_ key: SharedSessionKey, owner: ObjectIdentifier, nowMs: Int64) {
        guard let entry = entries[key], entry.lost.removeValue(forKey: owner) != nil else { return }
        if entry.lost.isEmpty { entry.idleSinceMs = nowMs }
    }

    func tick(nowMs: Int64) {
        for (key, entry) in entries {
            if entry.lost.isEmpty && entry.ready && nowMs - entry.idleSinceMs > SharedSessions.idleMs {
                entries.removeValue(forKey: key)
                entry.session.close()
                continue
            }
            entry.session.tick(nowMs: nowMs)
        }
    }

    /// Ends the sessions `stale` picks at once (a reload changed their host or took the user's access away);
    /// their riders are told, as when a session dies.
    func end(where stale: (SharedSessionKey) -> Bool) {
        for (key, entry) in entries where stale(key) {
            entries.removeValue(forKey: key)
            entry.session.close()
            down(key, entry, RelayFailure(.local, detail: "configuration reloaded"))
        }
    }

    func closeAll() {
        for entry in entries.values { entry.session.close() }
        entries = [:]
    }

    private func up(_ entry: Entry) {
        entry.ready = true
        let waiting = entry.waiters
        entry.waiters = []
        for waiter in waiting { waiter(entry.session, nil) }
    }

    private func down(_ key: SharedSessionKey, _ entry: Entry, _ failure: RelayFailure) {
        if entries[key] === entry { entries.removeValue(forKey: key) }
        let waiting = entry.waiters
        entry.waiters = []
        let riders = Array(entry.lost.values)
        entry.lost = [:]
        for waiter in waiting { waiter(nil, failure) }
        if entry.ready { for rider in riders { rider(failure) } }
    }
}
