import CLinux

/// The streams of one remote-mode relay, each a connected socket with a number: what a socket sends is read in
/// bounded chunks for the owner to pass on as messages, and what the owner hands in is written to it. Reading
/// stops while the owner's output is full (`pauseReading`); a socket that does not take its bytes holds at most
/// `maxPending` of them, and `onPressure` asks the owner to stop its own source meanwhile. One reactor thread.
public final class StreamTable {
    public static let chunk = 16 * 1024
    public static let maxPending = 1 << 20
    static let resumeBelow = 256 << 10
    /// Unwritten bytes of all streams of one relay together (issue #15: 512 streams × 1 MiB each was the only
    /// bound); pressure ends once the total is back under a quarter of it.
    public static let maxTotalPending = 4 << 20

    final class Stream {
        let id: Int
        let fd: Int32
        var pending: [UInt8] = []
        var pendingStart = 0
        var shutRequested = false
        var mask: UInt32 = 0

        init(id: Int, fd: Int32) {
            self.id = id
            self.fd = fd
        }

        var queued: Int { pending.count - pendingStart }
    }

    let reactor: Reactor
    private var streams: [Int: Stream] = [:]
    private var nextId = 1
    private var readingPaused = false
    private var pressure = false
    private var scratch = [UInt8](repeating: 0, count: StreamTable.chunk)

    /// Bytes a stream sent.
    public var onData: ((Int, [UInt8]) -> Void)?
    /// A stream ended: nil when it closed normally, else why it failed.
    public var onClosed: ((Int, String?) -> Void)?
    /// true: some stream holds `maxPending` unwritten bytes, or all of them `maxTotalPending` (stop feeding
    /// `write`); false: every stream below a quarter of its bound, and the total below a quarter of its own.
    public var onPressure: ((Bool) -> Void)?

    public init(reactor: Reactor) { self.reactor = reactor }

    /// Takes `fd` (connected, non-blocking) and returns its id.
    public func add(_ fd: Int32) -> Int {
        let stream = Stream(id: nextId, fd: fd)
        nextId += 1
        streams[stream.id] = stream
        update(stream)
        return stream.id
    }

    /// False for an unknown (or already closed) stream.
    @discardableResult
    public func write(_ id: Int, _ bytes: [UInt8]) -> Bool {
        guard let stream = streams[id], !stream.shutRequested else { return false }
        if stream.pendingStart > 0 && stream.pendingStart == stream.pending.count {
            stream.pending.removeAll(keepingCapacity: true)
            stream.pendingStart = 0
        }
        stream.pending += bytes
        flush(stream)
        return true
    }

    /// The client closed the stream: it ends once its pending bytes are out.
    public func shut(_ id: Int) {
        guard let stream = streams[id] else { return }
        stream.shutRequested = true
        flush(stream)
    }

    public func pauseReading(_ paused: Bool) {
        guard readingPaused != paused else { return }
        readingPaused = paused
        for stream in Array(streams.values) { update(stream) }
    }

    public func closeAll() {
        for stream in Array(streams.values) { drop(stream) }
    }

    private func flush(_ stream: Stream) {
        while stream.queued > 0 {
            let n = stream.pending.withUnsafeBytes {
                send(stream.fd, $0.baseAddress! + stream.pendingStart, $0.count - stream.pendingStart, CL_MSG_NOSIGNAL)
            }
            if n > 0 {
                stream.pendingStart += n
                continue
            }
            let code = clinux_errno()
            if n < 0 && (code == EAGAIN || code == EINTR) { break }
            return finish(stream, n < 0 ? FileIO.errorText(code) : nil)
        }
        if stream.shutRequested && stream.queued == 0 { return finish(stream, nil, report: false) }
        update(stream)
        checkPressure()
    }

    private func readable(_ stream: Stream) {
        guard !readingPaused, streams[stream.id] === stream else { return }
        let n = scratch.withUnsafeMutableBytes { recv(stream.fd, $0.baseAddress, $0.count, 0) }
        if n > 0 {
            onData?(stream.id, Array(scratch[0..<n]))
            return
        }
        let code = clinux_errno()
        if n < 0 && (code == EAGAIN || code == EINTR) { return }
        finish(stream, n < 0 ? FileIO.errorText(code) : nil)
    }

    private func event(_ stream: Stream, _ events: UInt32) {
        if events & CL_EPOLLOUT != 0 { flush(stream) }
        guard streams[stream.id] === stream else { return }
        if events & (CL_EPOLLIN | CL_EPOLLHUP | CL_EPOLLERR) != 0 { readable(stream) }
    }

    private func update(_ stream: Stream) {
        guard streams[stream.id] === stream else { return }
        var mask: UInt32 = 0
        if !readingPaused && !stream.shutRequested { mask |= CL_EPOLLIN }
        if stream.queued > 0 { mask |= CL_EPOLLOUT }
        guard mask != stream.mask else { return }
        stream.mask = mask
        if mask == 0 {
            reactor.unwatch(stream.fd)
        } else if !reactor.watch(stream.fd, events: mask, { [self] events in self.event(stream, events) }) {
            finish(stream, "cannot watch the stream")
        }
    }

    private func finish(_ stream: Stream, _ error: String?, report: Bool = true) {
        drop(stream)
        if report { onClosed?(stream.id, error) }
        checkPressure()
    }

    private func drop(_ stream: Stream) {
        guard streams.removeValue(forKey: stream.id) != nil else { return }
        if stream.mask != 0 { reactor.unwatch(stream.fd) }
        CLinux.close(stream.fd)
    }

    private func checkPressure() {
        var most = 0, total = 0
        for stream in streams.values {
            most = max(most, stream.queued)
            total += stream.queued
        }
        if !pressure && (most >= StreamTable.maxPending || total >= StreamTable.maxTotalPending) {
            pressure = true
            onPressure?(true)
        } else if pressure && most < StreamTable.resumeBelow && total < StreamTable.maxTotalPending / 4 {
            pressure = false
            onPressure?(false)
        }
    }
}
