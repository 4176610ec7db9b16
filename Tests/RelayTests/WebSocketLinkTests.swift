import CLinux
import Testing
@testable import Relay

/// A masked client frame (RFC 6455 §5.3).
private func clientFrame(_ opcode: UInt8, _ payload: [UInt8], fin: Bool = true) -> [UInt8] {
    let key: [UInt8] = [0x37, 0xfa, 0x21, 0x3d]
    var out: [UInt8] = [(fin ? 0x80 : 0) | opcode]
    if payload.count < 126 { out.append(0x80 | UInt8(payload.count)) }
    else { out += [0x80 | 126, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)] }
    out += key
    for (i, b) in payload.enumerated() { out.append(b ^ key[i & 3]) }
    return out
}

/// The reader over a buffer that grows as bytes "arrive", used from the front as the link uses it.
private struct Feed {
    var reader = WebSocketReader(maxFrame: 1 << 20)
    var buffer: [UInt8] = []
    var start = 0

    mutating func next() -> WebSocketReader.Event {
        buffer.withUnsafeMutableBytes { all in
            let event = reader.next(UnsafeMutableRawBufferPointer(rebasing: all[start...]))
            start += event.used
            return event
        }
    }

    /// Events until `.more`; binary payload is taken whole and collected.
    mutating func drain(_ binary: inout [UInt8]) -> [WebSocketReader.Event] {
        var seen: [WebSocketReader.Event] = []
        while true {
            let event = next()
            if event.kind == .more { return seen }
            if event.kind == .binary {
                binary += buffer[start..<start + event.count]
                start += event.count
                reader.took(event.count, of: event.count)
            }
            seen.append(event)
            if event.kind == .failure { return seen }
        }
    }
}

@Suite struct WebSocketReaderTests {
    @Test func textSplitAnywhereComesOutWholeOnce() {
        let message = Array("a message in two fragments, with a ping between".utf8)
        let wire = clientFrame(1, Array(message[..<10]), fin: false) + clientFrame(9, [1, 2, 3])
            + clientFrame(0, Array(message[10...]))
        for cut in 1..<wire.count {
            var feed = Feed()
            var binary: [UInt8] = []
            feed.buffer = Array(wire[..<cut])
            var events = feed.drain(&binary)
            feed.buffer += wire[cut...]
            events += feed.drain(&binary)
            let kinds = events.map(\.kind).filter { $0 != .frame }
            #expect(kinds == [.ping, .text], "cut at \(cut)")
            #expect(events.first { $0.kind == .ping }?.payload == [1, 2, 3])
            #expect(events.first { $0.kind == .text }?.payload == message)
            #expect(binary.isEmpty)
        }
    }

    @Test func binaryPayloadAStreamLeftBehindIsNotUnmaskedTwice() {
        let payload = (0..<300).map { UInt8($0 & 0xFF) }
        var feed = Feed()
        feed.buffer = clientFrame(2, payload)
        var event = feed.next()
        #expect(event.kind == .binary && event.count == 300)
        // the stream takes 100 bytes; the rest stays (unmasked) for the next call
        let first = Array(feed.buffer[feed.start..<feed.start + 100])
        feed.start += 100
        feed.reader.took(100, of: 300)
        event = feed.next()
        #expect(event.kind == .binary && event.count == 200 && event.used == 0)
        let rest = Array(feed.buffer[feed.start..<feed.start + 200])
        feed.start += 200
        feed.reader.took(200, of: 200)
        #expect(first + rest == payload)
        #expect(feed.next().kind == .more)
    }

    @Test func closeAndFailuresAreReported() {
        var feed = Feed()
        var binary: [UInt8] = []
        feed.buffer = clientFrame(8, [0x03, 0xE8]) + [0x81, 0x05] + Array("plain".utf8)   // then an unmasked frame
        let events = feed.drain(&binary)
        #expect(events.map(\.kind) == [.close, .failure])
        #expect(events[0].code == 1000 && events[0].failure == nil)
        #expect(events[1].failure?.code == WebSocketFrame.protocolError)
    }

    @Test func textThatIsNotUTF8IsRefused() {
        var feed = Feed()
        var binary: [UInt8] = []
        feed.buffer = clientFrame(1, [0xC3, 0x28])
        #expect(feed.drain(&binary).last?.failure?.code == WebSocketFrame.invalidData)
    }
}

@Suite struct WebSocketOutboxTests {
    @Test func controlRepliesCountUntilTheLastHasGone() {
        var outbox = WebSocketOutbox()
        outbox.queue(.pong, [1, 2, 3])
        outbox.queue(.text, Array(repeating: 65, count: 200))
        outbox.queue(.pong, [4])
        #expect(outbox.controlQueued == 5 + 3)
        #expect(outbox.queued == 5 + 204 + 3)
        outbox.sent(5 + 204)        // the second pong has not left: the replies are still owed
        #expect(outbox.controlQueued == 8)
        outbox.sent(3)
        #expect(outbox.controlQueued == 0 && outbox.queued == 0)
    }

    @Test func whatWentOutIsDroppedSoASlowReaderDoesNotGrowIt() {
        var outbox = WebSocketOutbox()
        let piece = [UInt8](repeating: 7, count: 10_000)
        for _ in 0..<1000 {
            outbox.queue(.text, piece)
            outbox.sent(outbox.queued - 5_000)   // the peer reads all but a little each time
        }
        #expect(outbox.queued == 5_000)
        #expect(outbox.bytes.count < 4 * (64 << 10))
        #expect(Array(outbox.bytes[outbox.start...]) == Array(repeating: 7, count: 5_000))
    }
}

@Suite struct WebSocketTimersTests {
    func due(_ timers: inout WebSocketTimers, nowMs: Int64, closing: Bool, outputBlocked: Bool,
             reading: Bool) -> WebSocketTimers.Due {
        timers.due(nowMs: nowMs, closing: closing, outputBlocked: outputBlocked, reading: reading)
    }

    @Test func pingsIdleAndTheClosingGrace() {
        var timers = WebSocketTimers(nowMs: 0)
        #expect(due(&timers, nowMs: 29_999, closing: false, outputBlocked: false, reading: true) == .nothing)
        #expect(due(&timers, nowMs: 30_000, closing: false, outputBlocked: false, reading: true) == .ping)
        #expect(due(&timers, nowMs: 30_001, closing: false, outputBlocked: false, reading: true) == .nothing)
        timers.received(60_000)
        #expect(due(&timers, nowMs: 150_000, closing: false, outputBlocked: false, reading: true) == .ping)
        #expect(due(&timers, nowMs: 150_001, closing: false, outputBlocked: false, reading: true) == .closeIdle)
        // a link that is not reading (its stream or owner paused it) cannot see pongs: not idle
        #expect(due(&timers, nowMs: 150_001, closing: false, outputBlocked: false, reading: false) == .nothing)
        // output no one takes for the idle limit: gone, whatever the peer still sends
        timers.sent(100_000)
        timers.received(190_000)
        #expect(due(&timers, nowMs: 190_001, closing: false, outputBlocked: true, reading: true) == .end)
        timers.closing(200_000)
        #expect(due(&timers, nowMs: 203_000, closing: true, outputBlocked: false, reading: true) == .nothing)
        #expect(due(&timers, nowMs: 203_001, closing: true, outputBlocked: false, reading: true) == .end)
    }
}

/// A link on a running reactor, its client end driven from the test thread.
private final class LinkRig {
    let reactor: Reactor
    let client: Int32
    let serverEnd: Int32
    var link: WebSocketLink?
    let ended = Locked(false)
    let handedBack = Locked(false)
    let texts = Locked<[[UInt8]]>([])

    init(buffer: Int = 16 << 10) throws {
        reactor = try #require(Reactor(tickMilliseconds: 100))
        var ends: [Int32] = [-1, -1]
        #expect(cl_socketpair(&ends) == 0)
        client = ends[0]
        serverEnd = ends[1]
        for fd in ends {
            _ = cl_set_int_option(fd, SOL_SOCKET, SO_SNDBUF, Int32(buffer))
            _ = cl_set_int_option(fd, SOL_SOCKET, SO_RCVBUF, Int32(buffer))
        }
        #expect(reactor.start(name: "ws-test"))
        let pool = BufferPool(size: 65536, count: 2)
        var made: WebSocketLink?
        _ = reactor.call { [self] in
            made = WebSocketLink(reactor: reactor, fd: serverEnd, early: [], rxPool: pool, pipes: PipePool(),
                                 handBack: { [self] in handedBack.set(true) })
            made?.onEnd = { [self] in ended.set(true) }
            made?.onText = { [self] text in texts.update { $0.append(text) } }
            made?.start()
        }
        link = made
        #expect(link != nil)
    }

    func onLoop<T>(_ body: @escaping (WebSocketLink) -> T) -> T? {
        var result: T?
        guard let link else { return nil }
        _ = reactor.call { result = body(link) }
        return result
    }

    /// Writes all of `bytes`, waiting while the link does not read.
    func write(_ bytes: [UInt8], waitMs: Int = 5000) -> Bool {
        var done = 0
        var waited = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { send(client, $0.baseAddress! + done, $0.count - done, CL_MSG_NOSIGNAL) }
            if n > 0 { done += n; waited = 0; continue }
            if waited >= waitMs { return false }
            usleep(1000)
            waited += 1
        }
        return true
    }

    /// Reads until `count` bytes came or nothing came for `quietMs`.
    func read(_ count: Int, quietMs: Int = 2000) -> [UInt8] {
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        var quiet = 0
        while out.count < count && quiet < quietMs {
            let n = buffer.withUnsafeMutableBytes { recv(client, $0.baseAddress, min($0.count, count - out.count), 0) }
            if n > 0 { out += buffer[..<n]; quiet = 0; continue }
            if n == 0 { break }
            usleep(1000)
            quiet += 1
        }
        return out
    }

    func waitFor(_ flag: Locked<Bool>, ms: Int = 5000) -> Bool {
        for _ in 0..<ms where !flag.get() { usleep(1000) }
        return flag.get()
    }

    deinit {
        reactor.stop()
        CLinux.close(client)
    }
}

@Suite struct WebSocketLinkTests {
    /// tunnels-api.md §9 (issue #15): a peer that pings without reading stops being read; nothing piles up.
    @Test func aPeerThatPingsWithoutReadingIsPausedAndGetsEveryPongLater() throws {
        let rig = try LinkRig()
        let ping = clientFrame(9, [UInt8](repeating: 0x55, count: 125))
        var sent = 0
        while sent < 20_000 && rig.write(ping, waitMs: 300) { sent += 1 }
        #expect(sent < 20_000)         // the link stopped taking frames: the client's writes block
        let queued = rig.onLoop { $0.outputQueued } ?? -1
        #expect(queued >= 0 && queued <= WebSocketLink.controlLimit + 127)
        // once the client reads, every ping is answered (including those still in the kernel)
        let pong = 2 + 125
        let bytes = rig.read(sent * pong)
        #expect(bytes.count == sent * pong)
        #expect(bytes.prefix(2) == [0x8A, 125])
    }

    @Test func bridgedStreamBothWaysThenTheClosingHandshake() throws {
        let rig = try LinkRig(buffer: 256 << 10)
        var ends: [Int32] = [-1, -1]
        #expect(cl_socketpair(&ends) == 0)
        let stream = ends[1]
        let bridged = rig.onLoop { $0.bridge(ends[0]) } ?? false
        #expect(bridged)
        // a binary frame in two writes reaches the stream unmasked
        let upFrame = clientFrame(2, Array("hello".utf8))
        #expect(rig.write(Array(upFrame[..<4])) && rig.write(Array(upFrame[4...])))
        var got = [UInt8](repeating: 0, count: 16)
        var n = -1
        for _ in 0..<2000 where n <= 0 {
            n = got.withUnsafeMutableBytes { recv(stream, $0.baseAddress, $0.count, 0) }
            if n <= 0 { usleep(1000) }
        }
        #expect(n == 5 && Array(got[..<5]) == Array("hello".utf8))
        // what the stream sends comes back as a binary frame
        _ = Array("world".utf8).withUnsafeBytes { send(stream, $0.baseAddress, $0.count, CL_MSG_NOSIGNAL) }
        #expect(rig.read(7) == [0x82, 5] + Array("world".utf8))
        #expect(rig.onLoop { ($0.bytesUp, $0.bytesDown) }.map { $0 == (5, 5) } ?? false)
        // the client closes: the link echoes its code, ends, closes the stream and hands the socket back
        #expect(rig.write(clientFrame(8, [0x03, 0xE8])))
        #expect(rig.read(4) == [0x88, 2, 0x03, 0xE8])
        #expect(rig.waitFor(rig.ended) && rig.waitFor(rig.handedBack))
        n = got.withUnsafeMutableBytes { recv(stream, $0.baseAddress, $0.count, 0) }
        #expect(n == 0)                 // EOF: the link closed its end of the stream
        CLinux.close(stream)
    }

    @Test func textGoesToTheOwnerAndAProtocolErrorCloses1002() throws {
        let rig = try LinkRig()
        #expect(rig.write(clientFrame(1, Array("{\"type\":\"x\"}".utf8))))
        for _ in 0..<2000 where rig.texts.get().isEmpty { usleep(1000) }
        #expect(rig.texts.get() == [Array("{\"type\":\"x\"}".utf8)])
        _ = rig.onLoop { $0.sendText(Array("ok".utf8)) }
        #expect(rig.read(4) == [0x81, 2] + Array("ok".utf8))
        #expect(rig.write([0x82, 0x01, 0x00]))        // an unmasked client frame
        let close = rig.read(4)
        #expect(close.count == 4 && close[0] == 0x88 && UInt16(close[2]) << 8 | UInt16(close[3]) == 1002)
    }
}

/// Issue #24 item 4: unfinished text is counted (the frame being read and earlier fragments) and charged to a
/// budget with a total and a share per key.
@Suite struct TextBudgetTests {
    @Test func heldTextCountsFragmentsAndThePartialFrame() {
        var feed = Feed()
        var binary: [UInt8] = []
        let first = clientFrame(1, [UInt8](repeating: 0x61, count: 300), fin: false)
        feed.buffer = first
        _ = feed.drain(&binary)
        #expect(feed.reader.heldText == 300)
        let second = clientFrame(0, [UInt8](repeating: 0x62, count: 200))
        feed.buffer += second[..<100]                 // a header and part of the payload
        _ = feed.drain(&binary)
        #expect(feed.reader.heldText > 300 && feed.reader.heldText < 500)
        feed.buffer += second[100...]
        let events = feed.drain(&binary)
        #expect(events.contains { $0.kind == .text && $0.payload.count == 500 })
        #expect(feed.reader.heldText == 0)
        feed.buffer += clientFrame(1, [UInt8](repeating: 0x61, count: 50), fin: false)
        _ = feed.drain(&binary)
        #expect(feed.reader.heldText == 50)
        feed.reader.abandon()
        #expect(feed.reader.heldText == 0)
        // binary payload is never held as text
        feed = Feed()
        feed.buffer = clientFrame(2, [UInt8](repeating: 1, count: 300), fin: false)
        _ = feed.drain(&binary)
        #expect(feed.reader.heldText == 0)
    }

    @Test func budgetHasATotalAndAShare() {
        let budget = TextBudget(total: 1000, perKey: 400)
        #expect(budget.change("a", by: 400))
        #expect(!budget.change("a", by: 1))            // over a's share
        #expect(budget.change("b", by: 400))
        #expect(!budget.change("c", by: 201))          // over the total
        #expect(budget.change("c", by: 200))
        #expect(budget.held == 1000)
        #expect(budget.change("a", by: -400))          // giving back always works
        #expect(budget.held(by: "a") == 0 && budget.held == 600)
        #expect(budget.change("c", by: 200))
    }
}
