/// Receive windows of one size, shared by every SSH channel of the process, each channel holding at most one. A
/// channel's receive window is what the server may send before we read, and also what libssh2 parks for a channel
/// whose reader stalled (the transport is read for the others), so windows are handed out from a fixed number of
/// slots, a bounded key (a non-admin) holding at most a quarter of them (issue #24 finding 5: six stalled readers of
/// one user took all four wide windows). A slot is held until its stream closes (a window once granted cannot be
/// taken back in SSH). Two budgets exist (`BufferPool`): wide windows, which let a long link run at its TCP ceiling
/// (only streams of sessions over a long link ask: `SSHChannels.longLink`), and libssh2's standard window, which every
/// other stream opens with while there is one; a stream that gets neither opens with a `small` window, so a stalled
/// reader beyond its user's share pauses the server instead of parking 2 MiB. Taken and given once per stream,
/// under a lock.
public final class WindowBudget {
    /// Bytes of one wide window.
    public static let wide = 16 << 20
    /// libssh2's `LIBSSH2_CHANNEL_WINDOW_DEFAULT`: what its own direct-tcpip opens and every forwarded channel it
    /// accepts start with.
    public static let standard = 2 << 20
    /// The window of a stream beyond the standard budget: two pool buffers' worth keeps a short link moving (libssh2
    /// tops it up by one read's size as it is read) while a stalled reader parks at most about this much.
    public static let small = 64 << 10
    /// The session round trip (`SSHSession.linkRTTMicros`: the kernel's minimum RTT of its TCP socket) from which a
    /// stream asks for a wide window: below it the standard window allows 400 MB/s per stream.
    public static let longLinkMicros: Int64 = 5000
    /// Bytes of one window of this budget.
    public let window: Int
    public let slots: Int
    private let lock = Lock()
    private var count: ShareCount

    /// `bytes` of budget in wide windows: whole ones only (0 turns them off).
    public convenience init(bytes: Int) { self.init(slots: max(0, bytes / WindowBudget.wide), window: WindowBudget.wide) }

    public init(slots: Int, window: Int) {
        self.window = window
        self.slots = max(0, slots)
        count = ShareCount(total: self.slots)
    }

    public var inUse: Int { lock.withLock { count.held } }
    /// Windows a bounded key may hold.
    public var perKey: Int { count.perKey }
    /// Windows held per key now (`/metrics`).
    public var byKey: [(String, Int)] { lock.withLock { count.rows } }

    func take(_ share: PoolShare = .unbounded) -> Bool { lock.withLock { count.take(1, for: share) } }

    func give(_ share: PoolShare = .unbounded) { lock.withLock { count.give(1, for: share) } }
}
