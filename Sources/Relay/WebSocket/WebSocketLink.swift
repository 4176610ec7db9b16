import CLinux

/// One upgraded WebSocket connection (RFC 6455, server side) on a reactor thread: frames in and out, control
/// frames, the closing handshake, pings and the idle limit. Text messages go to `onText`; once `bridge`d to a
/// stream socket, binary payloads are unmasked in place and written to it, and what the stream sends comes back as
/// binary frames whose payload moves by splice(2) (the frame header is written, then the payload spliced).
/// Memory is fixed per link: one receive buffer and one pipe; a slow side pauses the other, nothing queues
/// without bound but text the owner sends (which it bounds with `outputQueued`/`onDrain`).
public final class WebSocketLink {
    public static let maxFrame = 1 << 20
    public static let pingIntervalMs: Int64 = 30_000
    public static let idleLimitMs: Int64 = 90_000
    /// How long a closing handshake may wait for the peer's close frame.
    static let closeGraceMs: Int64 = 3_000
    /// Text waiting to go out: the owner stops producing above `highWater` and `onDrain` fires below `lowWater`.
    public static let highWater = 1 << 20
    public static let lowWater = 256 << 10
    /// Replies this side makes to the peer (pongs, close answers) that have not left yet: above this the link stops
    /// reading until everything queued has gone out, so a peer that pings without reading cannot grow memory.
    public static let controlLimit = 16 << 10
    /// Whatever is queued (the owner's text included): above this nothing more is read from the peer.
    public static let inputStopQueued = highWater + (64 << 10)

    public struct Codes {
        public static let normal: UInt16 = 1000
        public static let goingAway: UInt16 = 1001
        public static let policy: UInt16 = 1008
        public static let internalError: UInt16 = 1011
        public static let tryAgainLater: UInt16 = 1013
    }

    let reactor: Reactor
    public let fd: Int32
    private let handBack: () -> Void
    private let rxPool: BufferPool
    private let pipes: PipePool
    private let rx: UnsafeMutableRawPointer
    private let rxSize: Int
    private var rxStart = 0, rxEnd = 0
    /// How many bytes from `rxStart` on are payload already unmasked (left behind by a blocked stream).
    private var rxClear = 0

    // the frame being received
    private var frame: WebSocketFrame.Header?
    private var frameKind = WebSocketFrame.Opcode.binary
    private var frameDone = 0
    private var framePayload: [UInt8] = []
    private var assembler = WebSocketFrame.Assembler(maxText: WebSocketLink.maxFrame)

    // frames going out: whole control/text frames, and the binary frame being spliced
    private var out: [UInt8] = []
    private var outStart = 0
    /// Bytes of control frames queued since the last one queued had gone out, and where in `out` that last one
    /// ends: once `outStart` passes it, every control frame has left (text queued after it does not matter).
    private var controlQueued = 0
    private var controlEnd = 0
    /// When output last made progress, or was last empty: a peer that reads nothing for the idle limit is dropped.
    private var lastTxMs: Int64
    private var spliceHeader: [UInt8] = []
    private var spliceHeaderSent = 0
    private var spliceLeft = 0

    // the bridged stream
    private var sink: Int32 = -1
    private var pipe: SplicePipe?
    private var sinkBlocked = false     // received payload waits in `rx` for the stream to take it
    private var sinkEOF = false

    private var inputPaused = false
    private var closeSent = false
    private var closeReceived = false
    private var closingSinceMs: Int64 = 0
    private var ended = false
    private var fdMask: UInt32 = 0
    private var sinkMask: UInt32 = 0
    private var lastRxMs: Int64
    private var lastPingMs: Int64
    private var busy = false
    private var drainArmed = false

    /// A complete text message (UTF-8 checked, at most 1 MiB).
    public var onText: (([UInt8]) -> Void)?
    /// Text output fell below `lowWater` after having passed `highWater`.
    public var onDrain: (() -> Void)?
    /// The connection is over (socket handed back); called once, never after `abort`.
    public var onEnd: (() -> Void)?
    /// Bytes relayed in each direction once bridged (client → stream, stream → client).
    public private(set) var bytesUp: Int64 = 0
    public private(set) var bytesDown: Int64 = 0
    /// The close code this side sent or answered; 0 while open.
    public private(set) var closeCode: UInt16 = 0

    /// nil when no receive buffer is free (the caller closes the socket). `early` holds bytes that arrived with
    /// the upgrade request; `handBack` returns the socket to its owner (libmicrohttpd closes it) and runs once.
    public init?(reactor: Reactor, fd: Int32, early: [UInt8], rxPool: BufferPool, pipes: PipePool,
                 handBack: @escaping () -> Void) {
        guard early.count <= rxPool.size, let buffer = rxPool.acquire() else { return nil }
        self.reactor = reactor
        self.fd = fd
        self.handBack = handBack
        self.rxPool = rxPool
        self.pipes = pipes
        self.rx = buffer
        self.rxSize = rxPool.size
        let now = Clock.monotonicMs()
        lastRxMs = now
        lastPingMs = now
        lastTxMs = now
        early.withUnsafeBytes { if let base = $0.baseAddress { rx.copyMemory(from: base, byteCount: $0.count) } }
        rxEnd = early.count
    }

    public func start() { step() }

    public var outputQueued: Int { out.count - outStart }

    // MARK: owner's calls

    public func sendText(_ text: [UInt8]) {
        guard !ended, !closeSent else { return }
        queue(.text, text)
        if outputQueued > WebSocketLink.highWater { drainArmed = true }
        step()
    }

    /// Stops (or resumes) taking frames from the peer; bytes stay in the kernel meanwhile.
    public func pauseInput(_ paused: Bool) {
        guard inputPaused != paused else { return }
        inputPaused = paused
        if !paused {
            lastRxMs = Clock.monotonicMs()
            reactor.post { [self] in self.step() }
        }
    }

    /// From now on binary payloads go to `stream` and its bytes come back as binary frames. The link owns
    /// `stream` from here and closes it when it ends. False when no pipe could be made (the stream is closed).
    public func bridge(_ stream: Int32) -> Bool {
        guard !ended, let made = pipes.take() else {
            CLinux.close(stream)
            return false
        }
        sink = stream
        pipe = made
        step()
        return true
    }

    /// Starts the closing handshake; the link ends when the peer answers, hangs up, or after a grace period.
    public func close(_ code: UInt16, _ reason: String = "") {
        guard !ended else { return }
        beginClose(code, reason)
        step()
    }

    /// Ends at once without a closing handshake and without calling `onEnd`.
    public func abort() {
        onEnd = nil
        end()
    }

    /// Pings, the idle limit, and the closing grace period.
    public func tick(nowMs: Int64) {
        guard !ended else { return }
        if closeSent {
            if nowMs - closingSinceMs > WebSocketLink.closeGraceMs { end() }
            return
        }
        // a peer that takes none of our output for the idle limit is gone, whatever it still sends
        if outputBlocked && nowMs - lastTxMs > WebSocketLink.idleLimitMs { return end() }
        // a link that does not read (paused by its owner or its stream) cannot see pongs: not idle then
        if wantsInput && nowMs - lastRxMs > WebSocketLink.idleLimitMs { return close(Codes.goingAway, "idle") }
        if nowMs - lastPingMs >= WebSocketLink.pingIntervalMs {
            lastPingMs = nowMs
            queue(.ping, [])
            step()
        }
    }

    // MARK: the loop

    /// Moves what can move without blocking, then sets the interest of both sockets.
    private func step() {
        guard !ended, !busy else { return }
        busy = true
        defer { busy = false }
        for _ in 0..<16 {
            let before = (rxStart, rxEnd, outStart, out.count, spliceLeft, bytesDown)
            if !receive() { return end() }
            if ended { return }
            if !transmit() { return end() }
            if ended { return }
            if closeSent && (closeReceived || peerGone) && outputQueued == 0 && spliceLeft == 0 {
                return end()
            }
            let after = (rxStart, rxEnd, outStart, out.count, spliceLeft, bytesDown)
            if before == after { break }
        }
        if !outputBlocked { lastTxMs = Clock.monotonicMs() }
        if drainArmed && outputQueued < WebSocketLink.lowWater {
            drainArmed = false
            onDrain?()
            if ended { return }
        }
        updateInterest()
    }

    private var peerGone = false
    private var broken = false

    private var wantsInput: Bool { !inputPaused && !sinkBlocked && !peerGone && !outputBacklogged }

    /// The peer does not read what it makes us send (tunnels-api.md §9: never buffered without bound).
    private var outputBacklogged: Bool {
        controlQueued > WebSocketLink.controlLimit || outputQueued > WebSocketLink.inputStopQueued
    }

    /// False when the connection must end now (reset, or EOF without a closing handshake).
    private func receive() -> Bool {
        if !processInput() { return false }
        guard !ended, wantsInput else { return true }
        if rxStart == rxEnd {
            rxStart = 0
            rxEnd = 0
        } else if rxEnd == rxSize && rxStart > 0 {
            // a header split at the end of the buffer: move the partial frame to the front
            (rx + 0).copyMemory(from: rx + rxStart, byteCount: rxEnd - rxStart)
            rxEnd -= rxStart
            rxStart = 0
        }
        guard rxEnd < rxSize else { return true }
        let n = recv(fd, rx + rxEnd, rxSize - rxEnd, 0)
        if n > 0 {
            rxEnd += n
            lastRxMs = Clock.monotonicMs()
            return processInput()
        }
        if n == 0 {
            peerGone = true
            // a peer that hangs up after our close frame has done its part; otherwise this is abnormal (1006)
            return closeSent
        }
        let code = clinux_errno()
        return code == EAGAIN || code == EINTR
    }

    /// Frames from what is in `rx`; false when the connection must end at once.
    private func processInput() -> Bool {
        if broken {
            // after a protocol error the byte stream means nothing: wait for the peer to hang up
            rxStart = rxEnd
            return true
        }
        while !inputPaused && !sinkBlocked && !ended && !broken && !outputBacklogged {
            if frame == nil {
                let scan = WebSocketFrame.scanHeader(UnsafeRawBufferPointer(start: rx + rxStart, count: rxEnd - rxStart),
                                                     maxPayload: WebSocketLink.maxFrame)
                if let failure = scan.failure {
                    fail(failure)
                    return true
                }
                guard let header = scan.header else { return true }
                rxStart += header.headerLength
                frame = header
                frameDone = 0
                framePayload = []
                if !header.opcode.isControl {
                    let begun = assembler.begin(header)
                    if let failure = begun.failure {
                        fail(failure)
                        return true
                    }
                    frameKind = begun.kind
                } else {
                    frameKind = header.opcode
                }
            }
            guard let header = frame else { return true }
            let take = min(rxEnd - rxStart, header.payloadLength - frameDone)
            if take > 0 {
                let piece = UnsafeMutableRawBufferPointer(start: rx + rxStart, count: take)
                // bytes a blocked stream left behind were unmasked already
                if rxClear < take {
                    WebSocketFrame.unmask(UnsafeMutableRawBufferPointer(start: rx + rxStart + rxClear, count: take - rxClear),
                                          key: header.mask ?? 0, position: frameDone + rxClear)
                }
                rxClear = 0
                if frameKind == .binary {
                    let written = deliverBinary(piece)
                    if written < 0 { return false }
                    rxStart += written
                    frameDone += written
                    if written < take {
                        rxClear = take - written
                        sinkBlocked = true
                        return true
                    }
                } else {
                    framePayload.append(contentsOf: UnsafeRawBufferPointer(piece))
                    rxStart += take
                    frameDone += take
                }
            }
            guard frameDone == header.payloadLength else { return true }
            frame = nil
            completeFrame(header)
        }
        return true
    }

    /// Binary payload to the stream (or dropped when there is none, or we are closing): the count taken, -1 when
    /// the stream failed.
    private func deliverBinary(_ piece: UnsafeMutableRawBufferPointer) -> Int {
        guard sink >= 0, !closeSent else { return piece.count }
        var done = 0
        while done < piece.count {
            let n = send(sink, piece.baseAddress! + done, piece.count - done, CL_MSG_NOSIGNAL)
            if n > 0 {
                done += n
                continue
            }
            let code = clinux_errno()
            if code == EINTR { continue }
            if code == EAGAIN { break }
            // the stream is gone: what the client still sends has nowhere to go
            streamFailed()
            return piece.count
        }
        bytesUp += Int64(done)
        return done
    }

    private func completeFrame(_ header: WebSocketFrame.Header) {
        let payload = framePayload
        framePayload = []
        if header.opcode == .ping {
            if !closeSent { queue(.pong, payload) }
        } else if header.opcode == .close {
            closeReceived = true
            let parsed = WebSocketFrame.parseClose(payload)
            var failure: WebSocketFrame.Failure?
            var code: UInt16?
            if case .failure(let f) = parsed { failure = f }
            if case .success(let c) = parsed { code = c }
            if let failure {
                if !closeSent { beginClose(failure.code, failure.reason) }
            } else if !closeSent {
                // echo the peer's code, as the RFC asks (none given: no code back either)
                beginClose(code ?? 0, "")
            }
            inputPaused = true
        } else if frameKind == .text {
            let part = assembler.text(payload, final: header.fin)
            if let failure = part.failure { return fail(failure) }
            if let message = part.message, !closeSent { onText?(message) }
        }
    }

    private func fail(_ failure: WebSocketFrame.Failure) {
        broken = true
        frame = nil
        guard !closeSent else { return }
        beginClose(failure.code, failure.reason)
    }

    private func beginClose(_ code: UInt16, _ reason: String) {
        guard !closeSent else { return }
        closeCode = code == 0 ? Codes.normal : code
        queue(.close, code == 0 ? [] : WebSocketFrame.closePayload(code, reason))
        closeSent = true
        closingSinceMs = Clock.monotonicMs()
        // read on until the peer's close frame arrives (or it hangs up)
        if !closeReceived { inputPaused = false }
        // nothing more goes to the stream; bytes already spliced finish their frame first
        closeSink()
    }

    /// The stream failed or ended while the client still talks: close the WebSocket.
    private func streamFailed() {
        closeSink()
        if !closeSent { beginClose(Codes.internalError, "stream failed") }
    }

    private func closeSink() {
        guard sink >= 0 else { return }
        if sinkMask != 0 { reactor.unwatch(sink) }
        sinkMask = 0
        CLinux.close(sink)
        sink = -1
        sinkBlocked = false
        if spliceLeft == 0, let pipe {
            pipes.give(pipe)
            self.pipe = nil
        }
    }

    private func queue(_ opcode: WebSocketFrame.Opcode, _ payload: [UInt8]) {
        if outStart > 0 && outStart == out.count {
            out.removeAll(keepingCapacity: out.capacity <= 64 * 1024)
            outStart = 0
            controlEnd = 0
        } else if outStart >= 64 * 1024 && outStart * 2 >= out.count {
            // a peer that reads slowly but never catches up: drop what has gone out, or `out` only grows
            out.removeFirst(outStart)
            controlEnd = max(0, controlEnd - outStart)
            outStart = 0
        }
        let header = WebSocketFrame.header(opcode, payloadLength: payload.count)
        out += header
        out += payload
        if opcode.isControl {
            controlQueued += header.count + payload.count
            controlEnd = out.count
        }
    }

    /// False when the socket failed.
    private func transmit() -> Bool {
        while true {
            // a binary frame under way is finished before anything else may go out
            if spliceHeaderSent < spliceHeader.count {
                let n = spliceHeader.withUnsafeBytes {
                    send(fd, $0.baseAddress! + spliceHeaderSent, $0.count - spliceHeaderSent, CL_MSG_NOSIGNAL | CL_MSG_MORE)
                }
                if n > 0 {
                    spliceHeaderSent += n
                    lastTxMs = Clock.monotonicMs()
                    continue
                }
                return wouldBlock(n)
            }
            if spliceLeft > 0, let pipe {
                let n = splice(pipe.readFd, nil, fd, nil, spliceLeft, UInt32(SPLICE_F_MOVE | SPLICE_F_NONBLOCK))
                if n > 0 {
                    spliceLeft -= n
                    lastTxMs = Clock.monotonicMs()
                    pipe.buffered -= n
                    bytesDown += Int64(n)
                    if spliceLeft == 0 && sink < 0 {
                        pipes.give(pipe)
                        self.pipe = nil
                    }
                    continue
                }
                return wouldBlock(n)
            }
            if outStart < out.count {
                let n = out.withUnsafeBytes { send(fd, $0.baseAddress! + outStart, $0.count - outStart, CL_MSG_NOSIGNAL) }
                if n > 0 {
                    outStart += n
                    lastTxMs = Clock.monotonicMs()
                    if outStart >= controlEnd { controlQueued = 0 }
                    continue
                }
                return wouldBlock(n)
            }
            guard sink >= 0, let pipe, !closeSent, !sinkEOF else { return true }
            let n = splice(sink, nil, pipe.writeFd, nil, pipe.capacity, UInt32(SPLICE_F_MOVE | SPLICE_F_NONBLOCK))
            if n > 0 {
                pipe.buffered += n
                spliceHeader = WebSocketFrame.header(.binary, payloadLength: n)
                spliceHeaderSent = 0
                spliceLeft = n
                continue
            }
            if n == 0 {
                // the stream ended: what it sent has gone out; say goodbye normally
                sinkEOF = true
                closeSink()
                beginClose(Codes.normal, "")
                continue
            }
            let code = clinux_errno()
            if code == EAGAIN || code == EINTR { return true }
            streamFailed()
        }
    }

    private func wouldBlock(_ n: Int) -> Bool {
        if n == 0 { return true }
        let code = clinux_errno()
        if code == EAGAIN || code == EINTR { return true }
        peerGone = true
        return false
    }

    private var outputBlocked: Bool { spliceHeaderSent < spliceHeader.count || spliceLeft > 0 || outStart < out.count }

    private func updateInterest() {
        var mask: UInt32 = 0
        if wantsInput { mask |= CL_EPOLLIN }
        if outputBlocked { mask |= CL_EPOLLOUT }
        if mask != fdMask {
            fdMask = mask
            if mask == 0 {
                reactor.unwatch(fd)
            } else if !reactor.watch(fd, events: mask, { [self] _ in self.step() }) {
                return end()
            }
        }
        guard sink >= 0 else { return }
        var want: UInt32 = 0
        if sinkBlocked { want |= CL_EPOLLOUT }
        if !outputBlocked && !closeSent && !sinkEOF { want |= CL_EPOLLIN }
        if want != sinkMask {
            sinkMask = want
            if want == 0 {
                reactor.unwatch(sink)
            } else if !reactor.watch(sink, events: want, { [self] events in self.sinkEvent(events) }) {
                streamFailed()
            }
        }
    }

    private func sinkEvent(_ events: UInt32) {
        if sinkBlocked && events & (CL_EPOLLOUT | CL_EPOLLERR | CL_EPOLLHUP) != 0 {
            sinkBlocked = false
            lastRxMs = Clock.monotonicMs()
        }
        step()
    }

    private func end() {
        guard !ended else { return }
        ended = true
        if fdMask != 0 { reactor.unwatch(fd) }
        fdMask = 0
        closeSink()
        if let pipe {
            pipes.give(pipe)
            self.pipe = nil
        }
        rxPool.release(rx)
        // the peer must see our close frame before the FIN; unread input would turn close() into a reset
        _ = shutdown(fd, CL_SHUT_WR)
        handBack()
        let report = onEnd
        onEnd = nil
        onText = nil
        onDrain = nil
        report?()
    }
}
