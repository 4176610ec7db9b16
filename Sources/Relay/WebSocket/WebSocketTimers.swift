/// The times of one WebSocket link, without I/O: when it pings, when it gives up on a peer that is idle or takes
/// none of its output, and when a closing handshake has waited long enough. The link marks what happened; `due`
/// says what the clock asks for now.
struct WebSocketTimers {
    enum Due { case nothing, ping, closeIdle, end }

    private(set) var lastRxMs: Int64
    /// When output last made progress, or was last empty.
    private(set) var lastTxMs: Int64
    private var lastPingMs: Int64
    private var closingSinceMs: Int64 = 0

    init(nowMs: Int64) {
        lastRxMs = nowMs
        lastTxMs = nowMs
        lastPingMs = nowMs
    }

    mutating func received(_ nowMs: Int64) { lastRxMs = nowMs }
    mutating func sent(_ nowMs: Int64) { lastTxMs = nowMs }
    mutating func closing(_ nowMs: Int64) { closingSinceMs = nowMs }

    /// `closing`: this side sent its close frame; `outputBlocked`: output waits for the peer; `reading`: the link
    /// reads from the peer now (one paused by its owner or its stream cannot see pongs, so is not idle).
    mutating func due(nowMs: Int64, closing: Bool, outputBlocked: Bool, reading: Bool) -> Due {
        if closing { return nowMs - closingSinceMs > WebSocketLink.closeGraceMs ? .end : .nothing }
        // a peer that takes none of our output for the idle limit is gone, whatever it still sends
        if outputBlocked && nowMs - lastTxMs > WebSocketLink.idleLimitMs { return .end }
        if reading && nowMs - lastRxMs > WebSocketLink.idleLimitMs { return .closeIdle }
        guard nowMs - lastPingMs >= WebSocketLink.pingIntervalMs else { return .nothing }
        lastPingMs = nowMs
        return .ping
    }
}
