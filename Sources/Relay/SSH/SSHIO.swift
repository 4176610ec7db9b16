import CLinux
import CSSH2

/// The socket side of one libssh2 session. libssh2 keeps one outgoing packet pending per session and misbehaves
/// when a send returns EAGAIN (c-libraries.md §0), so `send` never does: what the kernel refuses is queued here and
/// flushed on EPOLLOUT, and callers stop feeding channels while `pending` is above `highWater`.
/// `recv` timestamps every received byte: libssh2 reports nothing about unanswered keepalives.
public final class SSHIO {
    public static let highWater = 256 * 1024
    /// Beyond this the peer has stopped reading for far too long; the session is failed rather than grown.
    static let hardLimit = 16 * 1024 * 1024

    public let fd: Int32
    private var out: [UInt8] = []
    private var head = 0
    public private(set) var lastRxMs: Int64
    /// Bumped by every successful recv: when it moves, libssh2 may have queued data for any channel.
    public private(set) var rxGeneration: UInt64 = 0
    public private(set) var sawEOF = false
    public private(set) var error: Int32 = 0
    /// Teardown: recv reports EOF and send discards, so libssh2's closing calls finish without waiting.
    var closing = false
    /// The last recv found the socket empty and epoll has not reported input since: libssh2 polls its transport
    /// after nearly every channel call, and each of those recv calls could only fail (about 45,000 per GB moved
    /// toward the peer). Cleared by the session on EPOLLIN (level-triggered, so nothing is missed) and on its tick.
    var drained = false
    var password: String = ""

    init(fd: Int32) {
        self.fd = fd
        lastRxMs = Clock.monotonicMs()
        out.reserveCapacity(64 * 1024)
    }

    public var pending: Int { out.count - head }

    /// Writes queued bytes; false on a socket error.
    func flush() -> Bool {
        while head < out.count {
            let n = out.withUnsafeBytes { raw in
                CLinux.send(fd, raw.baseAddress! + head, out.count - head, Int32(MSG_NOSIGNAL))
            }
            if n > 0 {
                head += n
                continue
            }
            let e = clinux_errno()
            if n < 0 && e == EINTR { continue }
            if n < 0 && (e == EAGAIN || e == EWOULDBLOCK) { break }
            error = n < 0 ? e : EPIPE
            return false
        }
        if head == out.count {
            out.removeAll(keepingCapacity: true)
            head = 0
        } else if head > 256 * 1024 && head * 2 > out.count {
            out.removeSubrange(0..<head)
            head = 0
        }
        return true
    }

    func onSend(_ buffer: UnsafeRawPointer, _ length: Int) -> Int {
        if closing { return length }
        if error != 0 { return -Int(error) }
        var sent = 0
        if head == out.count {
            while true {
                let n = CLinux.send(fd, buffer, length, Int32(MSG_NOSIGNAL))
                if n >= 0 { sent = n; break }
                let e = clinux_errno()
                if e == EINTR { continue }
                if e == EAGAIN || e == EWOULDBLOCK { break }
                error = e
                return -Int(e)
            }
            if sent == length { return length }
        }
        if pending + length - sent > SSHIO.hardLimit {
            error = ENOBUFS
            return -Int(ENOBUFS)
        }
        out.append(contentsOf: UnsafeRawBufferPointer(start: buffer + sent, count: length - sent))
        return length
    }

    func onRecv(_ buffer: UnsafeMutableRawPointer, _ length: Int) -> Int {
        if closing { return 0 }
        if drained { return -Int(EAGAIN) }
        while true {
            let n = CLinux.recv(fd, buffer, length, 0)
            if n > 0 {
                lastRxMs = Clock.monotonicMs()
                rxGeneration &+= 1
                return n
            }
            if n == 0 {
                sawEOF = true
                return 0
            }
            let e = clinux_errno()
            if e == EINTR { continue }
            if e == EAGAIN || e == EWOULDBLOCK {
                drained = true
                return -Int(EAGAIN)
            }
            error = e
            return -Int(e)
        }
    }

    func touch() { lastRxMs = Clock.monotonicMs() }

    static let sendCallback: cssh2_send_fn = { _, buffer, length, _, abstract in
        let io = Unmanaged<SSHIO>.fromOpaque(abstract!.pointee!).takeUnretainedValue()
        return io.onSend(buffer!, length)
    }

    static let recvCallback: cssh2_recv_fn = { _, buffer, length, _, abstract in
        let io = Unmanaged<SSHIO>.fromOpaque(abstract!.pointee!).takeUnretainedValue()
        return io.onRecv(buffer!, length)
    }

    /// Why the transport is gone: the socket's error, the peer's EOF, or what libssh2 last said of `session`.
    func goneReason(_ session: OpaquePointer?) -> RelayFailure {
        if error != 0 { return .connection(errno: error) }
        if sawEOF { return RelayFailure(.peerClosed) }
        guard let session else { return RelayFailure(.sessionError) }
        if libssh2_session_last_errno(session) == LIBSSH2_ERROR_SOCKET_DISCONNECT {
            return RelayFailure(.peerClosed, detail: SSHLibrary.lastError(session))
        }
        return RelayFailure(.sessionError, detail: SSHLibrary.lastError(session))
    }
}
