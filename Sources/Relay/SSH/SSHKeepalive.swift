/// When a ready session's peer counts as dead (tunnels-api.md §8 `KEEPALIVE_TIMEOUT`), without I/O. Only what
/// libssh2 has read counts as life: a reply to one of our keepalives (libssh2 counts them, patches/libssh2/0003)
/// or any other packet (`SSHIO` stamps every receive). Silence for `countMax + 1` intervals ends the session.
struct SSHKeepalive {
    /// 0: no keepalives of our own (a peer that says nothing is not judged).
    let intervalMs: Int
    let countMax: Int
    private var lastReplies: UInt = 0

    init(intervalMs: Int, countMax: Int) {
        self.intervalMs = intervalMs
        self.countMax = countMax
    }

    var enabled: Bool { intervalMs > 0 }
    /// libssh2 takes whole seconds.
    var seconds: Int { max(1, (intervalMs + 999) / 1000) }
    var silenceLimitMs: Int64 { Int64(seconds) * 1000 * Int64(max(0, countMax) + 1) }

    /// libssh2's count of keepalive replies now: true when it moved (the peer answered since the last look).
    mutating func answered(replies: UInt) -> Bool {
        guard replies != lastReplies else { return false }
        lastReplies = replies
        return true
    }

    func dead(nowMs: Int64, lastHeardMs: Int64) -> Bool { enabled && nowMs - lastHeardMs > silenceLimitMs }
}
