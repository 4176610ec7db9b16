import CLinux

/// A failed socket call: which one, and its errno.
public struct SocketError: Error, Equatable {
    public let operation: String
    public let code: Int32
    /// The bind or listen of a listener failed (a bind failure of tunnels-api.md §8), not another call.
    public let listening: Bool

    public init(_ operation: String, _ code: Int32, listening: Bool = false) {
        self.operation = operation
        self.code = code
        self.listening = listening
    }

    /// `bind 127.0.0.1:8080: address already in use`, for logs (the Appliance words failures from the code).
    public var text: String { "\(operation): \(FileIO.errorText(code))" }
}

/// Non-blocking TCP sockets as plain descriptors: the relay owns them and closes them itself.
public enum TCPSocket {
    /// A listener on `address` (port 0: the kernel picks one).
    public static func listen(_ address: SocketAddress, backlog: Int32 = 512) -> Result<Int32, SocketError> {
        let fd = socket(address.isIPv6 ? AF_INET6 : AF_INET, CL_SOCK_STREAM | CL_SOCK_NONBLOCK | CL_SOCK_CLOEXEC, 0)
        guard fd >= 0 else { return .failure(SocketError("socket", clinux_errno())) }
        // a restarted tunnel must rebind at once although its old connections linger in TIME_WAIT
        _ = cl_set_int_option(fd, SOL_SOCKET, SO_REUSEADDR, 1)
        let bound = address.withSockaddr { bind(fd, $0, $1) }
        if bound != 0 {
            let code = clinux_errno()
            close(fd)
            return .failure(SocketError("bind \(address.description)", code, listening: true))
        }
        if CLinux.listen(fd, backlog) != 0 {
            let code = clinux_errno()
            close(fd)
            return .failure(SocketError("listen \(address.description)", code, listening: true))
        }
        return .success(fd)
    }

    public enum Accepted {
        case socket(Int32)
        /// Nothing waiting (EAGAIN), or a connection that died in the backlog: try again on the next event.
        case none
        /// Out of descriptors: the listener must pause, else a level-triggered listener spins.
        case exhausted
        case failed(SocketError)
    }

    /// Forwarded connections stop this many descriptors short of the limit: the rest stays for the API (libmicrohttpd
    /// busy-waits when it cannot accept even one connection), SSH sessions, pipes and state files.
    static let reservedDescriptors = 64
    static let descriptorCeiling: Int32 = {
        let limit = cl_fd_limit()
        guard limit > 0 else { return Int32.max }
        return Int32(clamping: max(limit / 2, limit - reservedDescriptors))
    }()

    /// A connection from a tunnel listener. Descriptors are handed out lowest first, so a number at the ceiling
    /// means the process is nearly out: the connection is refused and the listener pauses, as for EMFILE.
    public static func accept(_ listener: Int32) -> Accepted {
        let fd = cl_accept(listener)
        if fd >= descriptorCeiling {
            close(fd)
            Refusals.shared.count(.descriptors)
            return .exhausted
        }
        if fd >= 0 { return .socket(fd) }
        let code = clinux_errno()
        switch code {
        case EAGAIN, EINTR, ECONNABORTED, EPROTO, EPERM: return .none
        case EMFILE, ENFILE, ENOBUFS, ENOMEM: return .exhausted
        default: return .failed(SocketError("accept", code))
        }
    }

    /// Starts a connect; `pending` means EINPROGRESS: wait for EPOLLOUT, then `connectResult`.
    public static func connect(_ address: SocketAddress) -> Result<(fd: Int32, pending: Bool), SocketError> {
        let fd = socket(address.isIPv6 ? AF_INET6 : AF_INET, CL_SOCK_STREAM | CL_SOCK_NONBLOCK | CL_SOCK_CLOEXEC, 0)
        guard fd >= 0 else { return .failure(SocketError("socket", clinux_errno())) }
        let rc = address.withSockaddr { CLinux.connect(fd, $0, $1) }
        if rc == 0 { return .success((fd, false)) }
        let code = clinux_errno()
        if code == EINPROGRESS { return .success((fd, true)) }
        close(fd)
        return .failure(SocketError("connect \(address.description)", code))
    }

    /// 0 when the connect completed, else its errno.
    public static func connectResult(_ fd: Int32) -> Int32 { cl_socket_error(fd) }

    /// Relayed bytes are forwarded as they come: Nagle would only add latency to interactive protocols.
    public static func setNoDelay(_ fd: Int32) { _ = cl_set_int_option(fd, CL_IPPROTO_TCP, TCP_NODELAY, 1) }

    public static func shutdownWrite(_ fd: Int32) { _ = shutdown(fd, CL_SHUT_WR) }

    public static func localPort(_ fd: Int32) -> UInt16? {
        let port = cl_local_port(fd)
        return port < 0 ? nil : UInt16(port)
    }

    /// A short answer (SOCKS replies) on a fresh socket, whose send buffer is empty: all of it or nothing.
    public static func sendSmall(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { raw in
            var sent = 0
            while sent < raw.count {
                let n = send(fd, raw.baseAddress! + sent, raw.count - sent, Int32(MSG_NOSIGNAL))
                if n < 0 && clinux_errno() == EINTR { continue }
                if n <= 0 { return false }
                sent += n
            }
            return true
        }
    }

    /// Reads what is there without blocking: nil on EAGAIN, [] on EOF or error.
    public static func receive(_ fd: Int32, max: Int) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: max)
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n < 0 {
            let code = clinux_errno()
            return code == EAGAIN || code == EINTR ? nil : []
        }
        return Array(buffer[0..<n])
    }
}
