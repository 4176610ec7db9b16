import Relay

/// One authenticated SSH session per (user, host), shared by that user's C2S streams to that host: a second
/// stream costs a channel open, not a TCP connect, key exchange and login (Termix logs in again for every TCP
/// connection). A session nobody uses is closed after `idleMs`. Reactor thread only.
final class SharedSessions {
    static let idleMs: Int64 = 60_000

    struct Key: Hashable {
        var userId: String
        var hostId: Int
    }

    typealias Waiter = (SSHSession?, RelayFailure?) -> Void

    final class Entry {
        let session: SSHSession
        var ready = false
        var waiters: [Waiter] = []
        var users = 0
        var idleSinceMs: Int64 = 0
        /// Relays riding the session, told when it dies (before their streams see EOF).
        var lost: [ObjectIdentifier: (RelayFailure) -> Void] = [:]

        init(session: SSHSession) { self.session = session }
    }

    let reactor: Reactor
    let pool: BufferPool
    let maxConnections: Int
    private var entries: [Key: Entry] = [:]

    init(reactor: Reactor, pool: BufferPool, maxConnections: Int) {
        self.reactor = reactor
        self.pool = pool
        self.maxConnections = maxConnections
    }

    var count: Int { entries.count }

    /// `done` gets the ready session (the caller now counts as a user: `release` when done), or why none could
    /// be had. `target` is only used when no session exists yet.
    func acquire(_ key: Key, owner: ObjectIdentifier, target: SSHTarget, lost: @escaping (RelayFailure) -> Void,
                 done: @escaping Waiter) {
        if let entry = entries[key] {
            entry.users += 1
            entry.lost[owner] = lost
            if entry.ready { return done(entry.session, nil) }
            entry.waiters.append(done)
            return
        }
        var made: Entry?
        let session = SSHSession(reactor: reactor, pool: pool, target: target, forward: .exit(),
                                 maxConnections: maxConnections,
                                 onUp: { [self] in if let made { self.up(made) } },
                                 onDown: { [self] failure in if let made { self.down(key, made, failure) } })
        let entry = Entry(session: session)
        made = entry
        entry.users = 1
        entry.lost[owner] = lost
        entry.waiters.append(done)
        entries[key] = entry
        session.start()
    }

    func release(_ key: Key, owner: ObjectIdentifier) {
        guard let entry = entries[key], entry.lost.removeValue(forKey: owner) != nil else { return }
        entry.users -= 1
        if entry.users == 0 { entry.idleSinceMs = Clock.monotonicMs() }
    }

    func tick(nowMs: Int64) {
        for (key, entry) in entries {
            if entry.users == 0 && entry.ready && nowMs - entry.idleSinceMs > SharedSessions.idleMs {
                entries.removeValue(forKey: key)
                entry.session.close()
                continue
            }
            entry.session.tick(nowMs: nowMs)
        }
    }

    /// Ends the sessions `stale` picks at once (a reload changed their host or took the user's access away);
    /// their riders are told, as when a session dies.
    func end(where stale: (Key) -> Bool) {
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

    private func down(_ key: Key, _ entry: Entry, _ failure: RelayFailure) {
        if entries[key] === entry { entries.removeValue(forKey: key) }
        let waiting = entry.waiters
        entry.waiters = []
        let riders = Array(entry.lost.values)
        entry.lost = [:]
        for waiter in waiting { waiter(nil, failure) }
        if entry.ready { for rider in riders { rider(failure) } }
    }
}
