/// Wide receive windows, shared by every SSH channel of the process. A channel's receive window is what the server
/// may send before we read: libssh2's default (2 MiB) caps one stream at 2 MiB per round trip (20 MB/s at 100 ms),
/// while a window of `wide` bytes lets a long link run at its TCP ceiling. But the window is also what libssh2
/// parks for a channel whose reader stalled (the transport is read for the others), so wide windows are handed out
/// from a fixed budget: `slots` channels at a time hold one, the rest keep the default, and a slot is held until its
/// stream closes (a window once granted cannot be taken back in SSH). Only streams of sessions over a long link ask
/// (`SSHChannels.longLink`). Taken and given once per stream, under a lock.
public final class WindowBudget {
    /// Bytes of one wide window.
    public static let wide = 16 << 20
    /// libssh2's `LIBSSH2_CHANNEL_WINDOW_DEFAULT`: every channel opens (and every forwarded channel is accepted)
    /// with it; a wide one is raised from there.
    public static let standard = 2 << 20
    /// The session round trip (`SSHSession.linkRTTMicros`: the kernel's minimum RTT of its TCP socket) from which a
    /// stream asks for a wide window: below it the standard window allows 400 MB/s per stream.
    public static let longLinkMicros: Int64 = 5000
    public let slots: Int
    private let lock = Lock()
    private var taken = 0

    /// `bytes` of budget: whole wide windows only (0 turns them off).
    public init(bytes: Int) { slots = max(0, bytes / WindowBudget.wide) }

    public var inUse: Int { lock.withLock { taken } }

    func take() -> Bool {
        lock.withLock {
            guard taken < slots else { return false }
            taken += 1
            return true
        }
    }

    func give() { lock.withLock { taken -= 1 } }
}
