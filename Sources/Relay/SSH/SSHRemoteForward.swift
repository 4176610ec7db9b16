import CLinux
import CSSH2

/// The remote forward of a session (`ssh -R`): it asks the server to listen (tcpip-forward), takes the channels
/// the server opens for each connection there, connecting each to `connectTo`, or handing it through a socketpair
/// to `inbound` (a managed tunnel's other session, a C2S relay), and cancels the forward before the session ends.
final class SSHRemoteForward {
    enum Request { case granted, pending, refused }

    static let cancelLimitMs: Int64 = 1_000

    private let host: String
    private let port: Int
    private let connectTo: SocketAddress
    /// Given one end of a socketpair the channel is pumped to; false: refused (that end is closed by the taker).
    private var inbound: ((Int32) -> Bool)?
    private var listener: OpaquePointer?
    /// The port the server granted (useful with port 0).
    private(set) var grantedPort = 0

    init(_ forward: SSHForward, inbound: ((Int32) -> Bool)?) {
        host = forward.host
        port = forward.port
        connectTo = forward.connectTo
        self.inbound = inbound
    }

    /// One step of the tcpip-forward request (libssh2 answers EAGAIN until the server's reply is in).
    func request(_ session: OpaquePointer) -> Request {
        var bound: Int32 = 0
        if let made = libssh2_channel_forward_listen_ex(session, host, Int32(port), &bound, 64) {
            listener = made
            grantedPort = port == 0 ? Int(bound) : port
            return .granted
        }
        return libssh2_session_last_errno(session) == LIBSSH2_ERROR_EAGAIN ? .pending : .refused
    }

    var listening: Bool { listener != nil }

    /// Every channel the server has opened for a connection to the forwarded port.
    func accept(into channels: SSHChannels) {
        guard let listener else { return }
        while let channel = libssh2_channel_forward_accept(listener) {
            if let inbound {
                handOver(channel, to: inbound, channels)
                continue
            }
            guard case .success(let started) = TCPSocket.connect(connectTo) else {
                channels.freeChannel(channel)
                continue
            }
            TCPSocket.setNoDelay(started.fd)
            guard let pipe = channels.makePipe(fd: started.fd, phase: .connecting, forwarded: true) else {
                CLinux.close(started.fd)
                channels.freeChannel(channel)
                continue
            }
            pipe.channel = channel
            pipe.updateWatch()
        }
    }

    /// The channel is pumped to one end of a socketpair; the other end goes to `inbound`.
    private func handOver(_ channel: OpaquePointer, to inbound: (Int32) -> Bool, _ channels: SSHChannels) {
        var ends: [Int32] = [-1, -1]
        guard cl_socketpair(&ends) == 0 else { return channels.freeChannel(channel) }
        guard let pipe = channels.makePipe(fd: ends[0], phase: .relay, forwarded: true) else {
            CLinux.close(ends[0])
            CLinux.close(ends[1])
            return channels.freeChannel(channel)
        }
        pipe.channel = channel
        guard inbound(ends[1]) else { return pipe.abort() }
        pipe.progress()
    }

    /// A stopped remote forward must be gone on the server before the stop is reported (tunnels-api.md §6: issue
    /// #15 found the server's listener still accepting after `disconnected`). Closing the session only tells sshd to
    /// clean up later; `cancel-tcpip-forward` is what closes the listener, but libssh2 sends it without asking for
    /// a reply. sshd handles a connection's messages in order, so the answer to a channel open sent right after the
    /// cancel (confirmation or refusal alike) proves the cancel was done. Bounded: an unresponsive server costs at
    /// most `limitMs` on the session's reactor thread, and then the session is closed as before.
    func cancel(_ session: OpaquePointer, io: SSHIO, limitMs: Int64 = SSHRemoteForward.cancelLimitMs) {
        defer { inbound = nil }
        guard let listener, io.error == 0, !io.sawEOF else { return }
        let deadline = Clock.monotonicMs() + limitMs
        // one turn: what libssh2 queued goes out, then wait a little for the server's bytes
        func waitTurn() -> Bool {
            guard io.flush(), io.error == 0, !io.sawEOF, Clock.monotonicMs() < deadline else { return false }
            var ready = pollfd(fd: io.fd, events: Int16(POLLIN), revents: 0)
            _ = poll(&ready, 1, 20)
            io.drained = false
            return true
        }
        while libssh2_channel_forward_cancel(listener) == LIBSSH2_ERROR_EAGAIN {
            guard waitTurn() else { return }
        }
        self.listener = nil
        _ = io.flush()
        while true {
            // window and packet sizes hardly matter: nothing is sent on this channel
            if libssh2_channel_open_ex(session, "session", 7, 64 * 1024, 32 * 1024, nil, 0) != nil {
                return   // answered; the channel goes with the session
            }
            guard libssh2_session_last_errno(session) == LIBSSH2_ERROR_EAGAIN else { return }   // refused: answered too
            guard waitTurn() else { return }
        }
    }

    /// The session is gone: libssh2 freed the listener with it.
    func drop() {
        listener = nil
        inbound = nil
    }
}
