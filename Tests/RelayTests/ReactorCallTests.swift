import CLinux
import Testing
@testable import Relay

/// `Reactor.call` that times out: the body never runs once the caller gave up (`call`), or runs in order later
/// (`callEventually`). The loop is held busy past the timeout by a body that sleeps on it.
@Suite(.serialized) struct ReactorCallTests {
    /// Blocks the loop thread for `ms` (the body is posted, so the loop is inside it when this returns).
    static func block(_ reactor: Reactor, ms: Int) {
        let inside = Completion()
        reactor.post {
            inside.signal()
            usleep(UInt32(ms * 1000))
        }
        #expect(inside.wait(timeoutMs: 5000))
    }

    @Test func answeredCallRuns() {
        let reactor = Reactor(tickMilliseconds: 1000)!
        #expect(reactor.start(name: "call-test"))
        defer { reactor.stop() }
        let ran = Locked(false)
        #expect(reactor.call(timeoutMs: 2000) { ran.set(true) })
        #expect(ran.get())
    }

    @Test func timedOutCallNeverRuns() {
        let reactor = Reactor(tickMilliseconds: 1000)!
        #expect(reactor.start(name: "call-test"))
        defer { reactor.stop() }
        ReactorCallTests.block(reactor, ms: 400)
        let ran = Locked(false)
        let answered = reactor.call(timeoutMs: 50) { ran.set(true) }
        #expect(!answered)
        // the loop is free again and has passed the cancelled body: it did not run, and never will
        let after = Locked(false)
        #expect(reactor.call(timeoutMs: 5000) { after.set(true) })
        #expect(after.get())
        #expect(!ran.get())
    }

    @Test func lateCallEventuallyRunsInOrder() {
        let reactor = Reactor(tickMilliseconds: 1000)!
        #expect(reactor.start(name: "call-test"))
        defer { reactor.stop() }
        ReactorCallTests.block(reactor, ms: 400)
        let order = Locked<[Int]>([])
        let answered = reactor.callEventually(timeoutMs: 50) { order.update { $0.append(1) } }
        #expect(!answered)
        #expect(order.get().isEmpty)
        // posted after it: runs after it
        #expect(reactor.call(timeoutMs: 5000) { order.update { $0.append(2) } })
        #expect(order.get() == [1, 2])
    }

    @Test func manyRacingCallsEachRunOnlyWhenAnsweredTrue() {
        // calls whose timeout falls around the moment the loop frees up: whatever each answers is the truth
        let reactor = Reactor(tickMilliseconds: 1000)!
        #expect(reactor.start(name: "call-test"))
        defer { reactor.stop() }
        for round in 0..<20 {
            ReactorCallTests.block(reactor, ms: 20)
            let ran = Locked(false)
            let answered = reactor.call(timeoutMs: 20) { ran.set(true) }
            #expect(reactor.call(timeoutMs: 5000) {})
            #expect(ran.get() == answered, "round \(round)")
        }
    }
}
