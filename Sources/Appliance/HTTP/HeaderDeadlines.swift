/// Issue #24 (item 7, from #15): a request's headers must be complete within a deadline counted from the start of
/// the connection, or from the end of its previous request on a kept-alive connection: MHD's own timeout is an
/// inactivity timer, which a byte every few seconds resets forever. Pure bookkeeping; `HTTPServer` feeds it MHD's
/// connection events and shuts the sockets it names down (MHD then sees the end and closes them itself).
struct HeaderDeadlines {
    struct Entry {
        var fd: Int32
        var sinceMs: Int64
        /// Waiting for a request's headers (false while a request is being answered).
        var waiting: Bool
    }

    let deadlineMs: Int64
    private(set) var entries: [UInt: Entry] = [:]

    init(deadlineMs: Int64) { self.deadlineMs = deadlineMs }

    mutating func started(_ key: UInt, fd: Int32, nowMs: Int64) {
        entries[key] = Entry(fd: fd, sinceMs: nowMs, waiting: true)
    }

    /// The headers of a request are complete.
    mutating func headersIn(_ key: UInt) { entries[key]?.waiting = false }

    /// A request was answered: the connection may carry another, whose headers get the same deadline.
    mutating func requestDone(_ key: UInt, nowMs: Int64) {
        guard entries[key] != nil else { return }
        entries[key]!.waiting = true
        entries[key]!.sinceMs = nowMs
    }

    /// The connection switched protocols (WebSocket): no more HTTP requests on it.
    mutating func upgraded(_ key: UInt) { entries[key] = nil }

    mutating func closed(_ key: UInt) { entries[key] = nil }

    /// The sockets whose headers are overdue, each named once.
    mutating func expired(nowMs: Int64) -> [Int32] {
        var fds: [Int32] = []
        for (key, entry) in entries where entry.waiting && nowMs - entry.sinceMs >= deadlineMs {
            fds.append(entry.fd)
            entries[key]!.waiting = false
        }
        return fds
    }
}
