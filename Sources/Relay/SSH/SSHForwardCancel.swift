import CLinux
import CSSH2

/// A stopped remote forward must be gone on the server before the stop is reported (tunnels-api.md §6: issue #15
/// found the server's listener still accepting after `disconnected`). Closing the session only tells sshd to clean
/// up later; `cancel-tcpip-forward` is what closes the listener, but libssh2 sends it without asking for a reply.
/// sshd handles a connection's messages in order, so the answer to a channel open sent right after the cancel
/// (confirmation or refusal alike) proves the cancel was done. Bounded: an unresponsive server costs at most
/// `limitMs` on the session's reactor thread, and then the session is closed as before.
extension SSHSession {
    static let forwardCancelLimitMs: Int64 = 1_000

    func cancelRemoteForward(limitMs: Int64 = SSHSession.forwardCancelLimitMs) {
        guard phase == .ready, let listener = remoteListener, let s = session, let io, io.error == 0, !io.sawEOF
        else { return }
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
        remoteListener = nil
        _ = io.flush()
        while true {
            // window and packet sizes hardly matter: nothing is sent on this channel
            if libssh2_channel_open_ex(s, "session", 7, 64 * 1024, 32 * 1024, nil, 0) != nil {
                return   // answered; the channel goes with the session
            }
            guard libssh2_session_last_errno(s) == LIBSSH2_ERROR_EAGAIN else { return }   // refused: answered too
            guard waitTurn() else { return }
        }
    }
}
