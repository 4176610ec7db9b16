import CLinux

/// sd_notify(3) without libsystemd: one datagram per message to the AF_UNIX socket named by `$NOTIFY_SOCKET`
/// (a path, or an abstract name written `@name`). Without `$NOTIFY_SOCKET` (not started by systemd, or not
/// `Type=notify`) every call does nothing.
///
/// The watchdog is on when systemd sets `$WATCHDOG_USEC` (and `$WATCHDOG_PID`, when set, names this process);
/// `watchdogTick` then sends `WATCHDOG=1` every half interval, as sd_watchdog_enabled(3) advises. Call it from the
/// thread whose liveness the pings should prove: a thread that wedges stops them and systemd restarts the service.
public final class SystemdNotify {
    /// The socket address as given (`/run/systemd/notify`, `@abstract`); nil: notifications are off.
    public let socketPath: String?
    /// Half of `$WATCHDOG_USEC`, in milliseconds; nil: no watchdog.
    public let watchdogIntervalMs: Int64?
    private var nextPingMs: Int64 = 0

    public init(socketPath: String?, watchdogUsec: String?, watchdogPid: String?) {
        self.socketPath = (socketPath?.isEmpty ?? true) ? nil : socketPath
        var interval: Int64? = nil
        if self.socketPath != nil, let text = watchdogUsec, let usec = Int64(text), usec > 0 {
            let forUs = watchdogPid.map { Int64($0) == Int64(getpid()) } ?? true
            if forUs { interval = max(1, usec / 2000) }
        }
        watchdogIntervalMs = interval
    }

    /// From `$NOTIFY_SOCKET`, `$WATCHDOG_USEC` and `$WATCHDOG_PID`.
    public static func fromEnvironment() -> SystemdNotify {
        SystemdNotify(socketPath: env("NOTIFY_SOCKET"), watchdogUsec: env("WATCHDOG_USEC"),
                      watchdogPid: env("WATCHDOG_PID"))
    }

    public var enabled: Bool { socketPath != nil }

    /// Sends `state` (newline-separated `KEY=value` assignments); false when it could not be delivered.
    @discardableResult
    public func send(_ state: String) -> Bool {
        guard let path = socketPath else { return false }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let name = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        let abstract = name.first == UInt8(ascii: "@")
        // a path needs room for its NUL; an abstract name is exactly its bytes, the leading '@' becoming NUL
        guard name.count > 1 || !abstract, name.count + (abstract ? 0 : 1) <= capacity else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, byte) in name.enumerated() { raw[i] = byte }
            if abstract { raw[0] = 0 }
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + name.count + (abstract ? 0 : 1))
        let fd = socket(AF_UNIX, CL_SOCK_DGRAM | CL_SOCK_CLOEXEC, 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var message = state
        let sent = message.withUTF8 { bytes in
            withUnsafePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                    sendto(fd, bytes.baseAddress, bytes.count, 0, sa, length)
                }
            }
        }
        return sent == message.utf8.count
    }

    /// Sends `WATCHDOG=1` when the watchdog is on and half an interval has passed since the last ping.
    public func watchdogTick(nowMs: Int64 = Clock.monotonicMs()) {
        guard let interval = watchdogIntervalMs, nowMs >= nextPingMs else { return }
        nextPingMs = nowMs + interval
        send("WATCHDOG=1")
    }

    private static func env(_ name: String) -> String? {
        guard let value = getenv(name) else { return nil }
        return String(cString: value)
    }
}
