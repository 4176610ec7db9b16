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
    private var rx: ReceiveBuffer
    private var reader = WebSocketReader(maxFrame: WebSocketLink.maxFrame)
    /// Whole control and text frames going out (a bridged stream's binary frames go by `bridge`).
    private var outbox = WebSocketOutbox()
    private var timers: WebSocketTimers
    /// Set by `bridge` and kept to the end (its byte counts outlive the stream).
    private var bridged: WebSocketStreamBridge?

    private var inputPaused = false
    private var closeSent = false
    private var closeReceived = false
    private var ended = false
    private var peerGone = false
    private var broken = false
    private var fdMask: UInt32 = 0
    private var busy = false
    private var drainArmed = false

    /// Where unfinished text is charged, and as whom (set by the owner before `start`; nil: not charged).
    public var textBudget: (budget: TextBudget, key: String)?
    private var textCharged = 0

    /// A complete text message (UTF-8 checked, at most 1 MiB).
    public var onText: (([UInt8]) -> Void)?
    /// Text output fell below `lowWater` after having passed `highWater`.
    public var onDrain: (() -> Void)?
    /// The connection is over (socket handed back); called once, never after `abort`.
    public var onEnd: (() -> Void)?
    /// Bytes relayed in each direction once bridged (client → stream, stream → client).
    public var bytesUp: Int64 { bridged?.bytesUp ?? 0 }
    public var bytesDown: Int64 { bridged?.bytesDown ?? 0 }
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
        self.rx = ReceiveBuffer(base: buffer, size: rxPool.size, early: early)
        timers = WebSocketTimers(nowMs: Clock.monotonicMs())
    }

    public func start() { step() }

    public var outputQueued: Int { outbox.queued }

    // MARK: owner's calls

    public func sendText(_ text: [UInt8]) {
        guard !ended, !closeSent else { return }
        outbox.queue(.text, text)
        if outputQueued > WebSocketLink.highWater { drainArmed = true }
        step()
    }

    /// Stops (or resumes) taking frames from the peer; bytes stay in the kernel meanwhile.
    public func pauseInput(_ paused: Bool) {
        guard inputPaused != paused else { return }
        inputPaused = paused
        if !paused {
            timers.received(Clock.monotonicMs())
            reactor.post { [self] in self.step() }
        }
    }

    /// From now on binary payloads go to `stream` and its bytes come back as binary frames. The link owns
    /// `stream` from here and closes it when it ends. False when no pipe could be made (the stream is closed).
    public func bridge(_ stream: Int32) -> Bool {
        guard !ended, bridged == nil, let pipe = pipes.take() else {
            CLinux.close(stream)
            return false
        }
        bridged = WebSocketStreamBridge(reactor: reactor, pipes: pipes, stream: stream, pipe: pipe)
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
        switch timers.due(nowMs: nowMs, closing: closeSent, outputBlocked: outputBlocked, reading: wantsInput) {
        case .nothing: return
        case .end: end()
        case .closeIdle: close(Codes.goingAway, "idle")
        case .ping:
            outbox.queue(.ping, [])
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
            let before = (rx.start, rx.end, outbox.start, outbox.bytes.count, spliceLeft, bytesDown)
            if !receive() { return end() }
            if ended { return }
            if !transmit() { return end() }
            if ended { return }
            if closeSent && (closeReceived || peerGone) && outputQueued == 0 && spliceLeft == 0 {
                return end()
            }
            let after = (rx.start, rx.end, outbox.start, outbox.bytes.count, spliceLeft, bytesDown)
            if before == after { break }
        }
        if !outputBlocked { timers.sent(Clock.monotonicMs()) }
        if drainArmed && outputQueued < WebSocketLink.lowWater {
            drainArmed = false
            onDrain?()
            if ended { return }
        }
        updateInterest()
    }

    private var spliceLeft: Int { bridged?.left ?? 0 }
    private var streamBlocked: Bool { bridged?.blocked ?? false }
    private var wantsInput: Bool { !inputPaused && !streamBlocked && !peerGone && !outputBacklogged }

    /// The peer does not read what it makes us send (tunnels-api.md §9: never buffered without bound).
    private var outputBacklogged: Bool {
        outbox.controlQueued > WebSocketLink.controlLimit || outputQueued > WebSocketLink.inputStopQueued
    }

    /// False when the connection must end now (reset, or EOF without a closing handshake).
    private func receive() -> Bool {
        if !processInput() { return false }
        guard !ended, wantsInput else { return true }
        guard let n = rx.read(fd) else { return true }
        if n > 0 {
            timers.received(Clock.monotonicMs())
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
            rx.useAll()
            return true
        }
        while !inputPaused && !streamBlocked && !ended && !broken && !outputBacklogged {
            let event = reader.next(rx.unread)
            rx.use(event.used)
            if !chargeText() {
                fail(WebSocketFrame.Failure(code: Codes.tryAgainLater, reason: "too much unfinished text"))
                continue
            }
            switch event.kind {
            case .more:
                return true
            case .frame:
                continue
            case .failure:
                fail(event.failure ?? WebSocketFrame.Failure(code: WebSocketFrame.protocolError, reason: "bad frame"))
            case .binary:
                let written = deliverBinary(UnsafeMutableRawBufferPointer(start: rx.unread.baseAddress, count: event.count))
                rx.use(written)
                reader.took(written, of: event.count)
                if written < event.count { bridged?.blocked = true }
            case .ping:
                if !closeSent { outbox.queue(.pong, event.payload) }
            case .close:
                closeReceived = true
                // echo the peer's code, as the RFC asks (none given: no code back either)
                if let failure = event.failure { beginClose(failure.code, failure.reason) } else { beginClose(event.code, "") }
                inputPaused = true
            case .text:
                if !closeSent { onText?(event.payload) }
            }
        }
        return true
    }

    /// Binary payload to the stream (or dropped when there is none, or we are closing): the count taken.
    private func deliverBinary(_ piece: UnsafeMutableRawBufferPointer) -> Int {
        guard let bridged, bridged.isOpen, !closeSent else { return piece.count }
        guard let taken = bridged.write(piece) else {
            // the stream is gone: what the client still sends has nowhere to go
            streamFailed()
            return piece.count
        }
        return taken
    }

    /// Charges the text the reader holds now; false when the budget has no room for its growth.
    private func chargeText() -> Bool {
        guard let (budget, key) = textBudget else { return true }
        let now = reader.heldText
        guard now != textCharged else { return true }
        guard budget.change(key, by: now - textCharged) else { return false }
        textCharged = now
        return true
    }

    private func releaseText() {
        if let (budget, key) = textBudget, textCharged != 0 { _ = budget.change(key, by: -textCharged) }
        textCharged = 0
    }

    private func fail(_ failure: WebSocketFrame.Failure) {
        broken = true
        reader.abandon()
        releaseText()
        guard !closeSent else { return }
        beginClose(failure.code, failure.reason)
    }

    private func beginClose(_ code: UInt16, _ reason: String) {
        guard !closeSent else { return }
        closeCode = code == 0 ? Codes.normal : code
        outbox.queue(.close, code == 0 ? [] : WebSocketFrame.closePayload(code, reason))
        closeSent = true
        timers.closing(Clock.monotonicMs())
        // read on until the peer's close frame arrives (or it hangs up)
        if !closeReceived { inputPaused = false }
        // nothing more goes to the stream; bytes already spliced finish their frame first
        bridged?.closeStream()
    }

    /// The stream failed or ended while the client still talks: close the WebSocket.
    private func streamFailed() {
        bridged?.closeStream()
        if !closeSent { beginClose(Codes.internalError, "stream failed") }
    }

    /// False when the socket failed.
    private func transmit() -> Bool {
        while true {
            // a binary frame under way is finished before anything else may go out
            if let bridged, bridged.frameUnderWay {
                let move = bridged.sendFrame(to: fd)
                if move == .failed { peerGone = true }
                guard move == .progressed else { return move != .failed }
                timers.sent(Clock.monotonicMs())
                continue
            }
            if outbox.queued > 0 {
                let n = outbox.bytes.withUnsafeBytes { send(fd, $0.baseAddress! + outbox.start, $0.count - outbox.start, CL_MSG_NOSIGNAL) }
                guard n > 0 else { return wouldBlock(n) }
                outbox.sent(n)
                timers.sent(Clock.monotonicMs())
                continue
            }
            guard let bridged, !closeSent else { return true }
            switch bridged.fill() {
            case .framed:
                continue
            case .wait:
                return true
            case .ended:
                // the stream ended: what it sent has gone out; say goodbye normally
                bridged.closeStream()
                beginClose(Codes.normal, "")
            case .failed:
                streamFailed()
            }
        }
    }

    private func wouldBlock(_ n: Int) -> Bool {
        if n == 0 { return true }
        let code = clinux_errno()
        if code == EAGAIN || code == EINTR { return true }
        peerGone = true
        return false
    }

    private var outputBlocked: Bool { (bridged?.frameUnderWay ?? false) || outbox.queued > 0 }

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
        guard let bridged, bridged.isOpen else { return }
        var want: UInt32 = 0
        if bridged.blocked { want |= CL_EPOLLOUT }
        if !outputBlocked && !closeSent && !bridged.eof { want |= CL_EPOLLIN }
        if !bridged.watch(want, { [self] events in self.streamEvent(events) }) { streamFailed() }
    }

    private func streamEvent(_ events: UInt32) {
        if let bridged, bridged.blocked && events & (CL_EPOLLOUT | CL_EPOLLERR | CL_EPOLLHUP) != 0 {
            bridged.blocked = false
            timers.received(Clock.monotonicMs())
        }
        step()
    }

    private func end() {
        guard !ended else { return }
        ended = true
        reader.abandon()
        releaseText()
        if fdMask != 0 { reactor.unwatch(fd) }
        fdMask = 0
        bridged?.end()
        rxPool.release(rx.base)
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
