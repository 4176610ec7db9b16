import CLinux
import Testing
@testable import Relay

/// A SOCKS client refused over a limit, on a running reactor over a socketpair: nothing before its greeting, then
/// `05 00`, then the outcome's reply and the close; bounded in number and in time.
@Suite(.serialized) struct SOCKSRefusalsTests {
    final class Harness {
        let reactor = Reactor(tickMilliseconds: 1000)!
        var refusals: SOCKSRefusals?

        init(capacity: Int = 64, timeoutMs: Int64 = 10_000) {
            _ = reactor.start(name: "refusals-test")
            _ = reactor.call { [self] in self.refusals = SOCKSRefusals(reactor: self.reactor, capacity: capacity, timeoutMs: timeoutMs) }
        }

        /// A client end whose other end is refused with `outcome`.
        func client(_ outcome: StreamOpenOutcome) -> Int32 {
            var ends: [Int32] = [-1, -1]
            #expect(cl_socketpair(&ends) == 0)
            let server = ends[0]
            _ = reactor.call { [self] in self.refusals?.refuse(server, outcome) }
            return ends[1]
        }

        func onLoop(_ body: @escaping (SOCKSRefusals) -> Void) { _ = reactor.call { [self] in body(self.refusals!) } }

        func finish() {
            onLoop { $0.closeAll() }
            reactor.stop()
        }
    }

    /// True when `fd` has nothing to read (and no EOF) for `ms`.
    static func quiet(_ fd: Int32, ms: Int32) -> Bool {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&p, 1, ms) == 0
    }

    @Test func greetingAnsweredThenTheOutcomesReply() {
        let h = Harness()
        defer { h.finish() }
        let c = h.client(.overLimit)
        #expect(SOCKSRefusalsTests.quiet(c, ms: 200))      // never bytes before the greeting
        Peer.write(c, [5, 1, 0])
        #expect(Peer.read(c) == [5, 0])
        Peer.write(c, [5, 1, 0, 1, 127, 0, 0, 1, 0, 80])
        #expect(Peer.readAll(c) == [5, 1, 0, 1, 0, 0, 0, 0, 0, 0])
        close(c)
        var waiting = -1
        h.onLoop { waiting = $0.waiting }
        #expect(waiting == 0)
    }

    @Test func oneSegmentAndAnotherOutcome() {
        let h = Harness()
        defer { h.finish() }
        let c = h.client(.prohibited)
        Peer.write(c, [5, 1, 0] + [5, 1, 0, 3, 4] + Array("host".utf8) + [1, 187])
        #expect(Peer.readAll(c) == [5, 0] + [5, 2, 0, 1, 0, 0, 0, 0, 0, 0])
        close(c)
    }

    @Test func malformedGreetingGetsTheParsersAnswer() {
        let h = Harness()
        defer { h.finish() }
        let c = h.client(.overLimit)
        Peer.write(c, [5, 1, 2])                            // username/password only: no acceptable method
        #expect(Peer.readAll(c) == [5, 0xFF])
        close(c)
    }

    @Test func beyondCapacityClosedAtOnceWithoutBytes() {
        let h = Harness(capacity: 1)
        defer { h.finish() }
        let first = h.client(.overLimit)
        let second = h.client(.overLimit)
        #expect(Peer.readAll(second).isEmpty)               // EOF, no reply
        Peer.write(first, [5, 1, 0])
        #expect(Peer.read(first) == [5, 0])
        close(first)
        close(second)
    }

    @Test func unfinishedHandshakeClosedAtItsDeadline() {
        let h = Harness(timeoutMs: 0)
        defer { h.finish() }
        let c = h.client(.overLimit)
        Peer.write(c, [5, 1])                               // half a greeting
        #expect(SOCKSRefusalsTests.quiet(c, ms: 100))
        h.onLoop { $0.tick(nowMs: Clock.monotonicMs() + 1) }
        #expect(Peer.readAll(c).isEmpty)
        close(c)
    }
}
