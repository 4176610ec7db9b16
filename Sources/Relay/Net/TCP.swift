import CLinux

/// Non-blocking TCP sockets for the forwarders. Results carry errno so callers can word the failure.
public enum TCP {
    public static func listen(_ address: SocketAddress, backlog: Int32 = 512) -> (fd: Int32, errno: Int32) {
        let fd = socket(Int32(address.storage.ss_family), CL_SOCK_STREAM | CL_SOCK_NONBLOCK | CL_SOCK_CLOEXEC, 0)
        guard fd >= 0 else { return (-1, clinux_errno()) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(4))
        let bound = address.withSockaddr { bind(fd, $0, $1) }
        guard bound == 0, CLinux.listen(fd, backlog) == 0 else {
            let e = clinux_errno()
            close(fd)
            return (-1, e)
        }
        return (fd, 0)
    }

    /// Starts a connect; `fd` is ready when EPOLLOUT fires and `pendingError` is 0.
    public static func connect(_ address: SocketAddress) -> (fd: Int32, errno: Int32) {
        let fd = socket(Int32(address.storage.ss_family), CL_SOCK_STREAM | CL_SOCK_NONBLOCK | CL_SOCK_CLOEXEC, 0)
        guard fd >= 0 else { return (-1, clinux_errno()) }
        let rc = address.withSockaddr { CLinux.connect(fd, $0, $1) }
        if rc != 0 {
            let e = clinux_errno()
            if e != EINPROGRESS {
                close(fd)
                return (-1, e)
            }
        }
        noDelay(fd)
        return (fd, 0)
    }

    /// nil when nothing is waiting (or the peer already went away).
    public static func accept(_ listener: Int32) -> Int32? {
        while true {
            let fd = cl_accept_nonblocking(listener)
            if fd >= 0 {
                noDelay(fd)
                return fd
            }
            let e = clinux_errno()
            if e == EINTR || e == ECONNABORTED { continue }
            return nil
        }
    }

    public static func pendingError(_ fd: Int32) -> Int32 {
        var error: Int32 = 0
        var length = socklen_t(4)
        guard getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0 else { return clinux_errno() }
        return error
    }

    public static func noDelay(_ fd: Int32) {
        var one: Int32 = 1
        setsockopt(fd, CL_IPPROTO_TCP, TCP_NODELAY, &one, socklen_t(4))
    }
}
