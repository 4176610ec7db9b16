import CLinux

/// The stream a WebSocket link is bridged to: binary payload from the client is written to it, and what it sends
/// goes back to the client as binary frames whose payload moves by splice(2) through one pipe (the frame header is
/// sent, then the payload spliced). The pipe outlives the stream until the frame under way has gone out.
final class WebSocketStreamBridge {
    enum Move { case progressed, idle, blocked, failed }
    enum Fill { case framed, wait, ended, failed }

    private let reactor: Reactor
    private let pipes: PipePool
    private var stream: Int32
    private var pipe: SplicePipe?
    private var mask: UInt32 = 0
    private var header: [UInt8] = []
    private var headerSent = 0
    /// Payload of the frame under way still in the pipe.
    private(set) var left = 0
    /// Client payload waits in the link's buffer until the stream can take it.
    var blocked = false
    private(set) var eof = false
    private(set) var bytesUp: Int64 = 0
    private(set) var bytesDown: Int64 = 0

    /// Owns `stream` and `pipe` from here.
    init(reactor: Reactor, pipes: PipePool, stream: Int32, pipe: SplicePipe) {
        self.reactor = reactor
        self.pipes = pipes
        self.stream = stream
        self.pipe = pipe
    }

    var isOpen: Bool { stream >= 0 }
    var frameUnderWay: Bool { headerSent < header.count || left > 0 }

    /// Client payload to the stream: the count taken (less when the stream is full), nil when the stream failed.
    func write(_ piece: UnsafeMutableRawBufferPointer) -> Int? {
        var done = 0
        while done < piece.count {
            let n = send(stream, piece.baseAddress! + done, piece.count - done, CL_MSG_NOSIGNAL)
            if n > 0 {
                done += n
                continue
            }
            let code = clinux_errno()
            if code == EINTR { continue }
            if code == EAGAIN { break }
            return nil
        }
        bytesUp += Int64(done)
        return done
    }

    /// Moves the frame under way (its header, then its payload) to the client socket `fd`.
    func sendFrame(to fd: Int32) -> Move {
        if headerSent < header.count {
            let n = header.withUnsafeBytes {
                send(fd, $0.baseAddress! + headerSent, $0.count - headerSent, CL_MSG_NOSIGNAL | CL_MSG_MORE)
            }
            if n > 0 {
                headerSent += n
                return .progressed
            }
            return WebSocketStreamBridge.outcome(n)
        }
        guard left > 0, let pipe else { return .idle }
        let n = splice(pipe.readFd, nil, fd, nil, left, UInt32(SPLICE_F_MOVE | SPLICE_F_NONBLOCK))
        guard n > 0 else { return WebSocketStreamBridge.outcome(n) }
        left -= n
        pipe.buffered -= n
        bytesDown += Int64(n)
        if left == 0 && stream < 0 { releasePipe() }
        return .progressed
    }

    /// What the stream has sent, into the pipe as the next frame's payload (only when no frame is under way).
    func fill() -> Fill {
        guard stream >= 0, let pipe, !eof else { return .wait }
        let n = splice(stream, nil, pipe.writeFd, nil, pipe.capacity, UInt32(SPLICE_F_MOVE | SPLICE_F_NONBLOCK))
        if n > 0 {
            pipe.buffered += n
            header = WebSocketFrame.header(.binary, payloadLength: n)
            headerSent = 0
            left = n
            return .framed
        }
        if n == 0 {
            eof = true
            return .ended
        }
        let code = clinux_errno()
        return code == EAGAIN || code == EINTR ? .wait : .failed
    }

    /// Sets the stream's interest; false when the reactor refused it.
    func watch(_ want: UInt32, _ handler: @escaping (UInt32) -> Void) -> Bool {
        guard stream >= 0, want != mask else { return true }
        mask = want
        if want == 0 {
            reactor.unwatch(stream)
            return true
        }
        return reactor.watch(stream, events: want, handler)
    }

    /// Closes the stream; the pipe stays until the frame under way has gone out.
    func closeStream() {
        guard stream >= 0 else { return }
        if mask != 0 { reactor.unwatch(stream) }
        mask = 0
        CLinux.close(stream)
        stream = -1
        blocked = false
        if left == 0 { releasePipe() }
    }

    func end() {
        closeStream()
        releasePipe()
    }

    private func releasePipe() {
        guard let pipe else { return }
        pipes.give(pipe)
        self.pipe = nil
    }

    private static func outcome(_ n: Int) -> Move {
        if n == 0 { return .blocked }
        let code = clinux_errno()
        return code == EAGAIN || code == EINTR ? .blocked : .failed
    }
}
