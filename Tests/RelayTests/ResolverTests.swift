import CLinux
import Testing
@testable import Relay

/// The one resolver's bounds (issue #24 item 8): a user whose names hang on a DNS server that never answers takes at
/// most its share of workers and places, every lookup is answered within the timeout, and exactly once.
@Suite(.serialized) struct ResolverTests {
    /// A lookup that blocks on "dead" names as on a DNS server that never answers, until released.
    final class DeadServer {
        let release = Completion()
        let started = Locked(0)
        func lookup(_ name: String) -> [String] {
            if name.hasSuffix(".dead") {
                started.update { $0 += 1 }
                _ = release.wait(timeoutMs: 30_000)
                return []
            }
            return name == "host.test" ? ["192.0.2.7", "2001:db8::7"] : []
        }
    }

    final class Answers {
        let got = Locked<[String: [String]]>([:])
        let times = Locked<[String: Int]>([:])
        func record(_ id: String, _ addresses: [String]) {
            got.update { $0[id] = addresses }
            times.update { $0[id, default: 0] += 1 }
        }
        func wait(_ id: String, ms: Int) -> [String]? {
            let until = Clock.monotonicMs() + Int64(ms)
            while Clock.monotonicMs() < until {
                if let answer = got.get()[id] { return answer }
                usleep(5_000)
            }
            return got.get()[id]
        }
    }

    func running(_ limits: Resolver.Limits, _ server: DeadServer) -> (Reactor, Resolver) {
        let reactor = Reactor(tickMilliseconds: 100)!
        _ = reactor.start(name: "resolver-test")
        return (reactor, Resolver(limits: limits, lookup: server.lookup))
    }

    @Test func fortyHangingLookupsOfOneUserDoNotDelayAnother() {
        let server = DeadServer()
        let (reactor, resolver) = running(Resolver.Limits(), server)
        let answers = Answers()
        var accepted = 0
        for i in 0..<40 {
            if resolver.resolve("n\(i).dead", key: "mallory", on: reactor, { answers.record("m\(i)", $0) }) { accepted += 1 }
        }
        #expect(accepted == 16)                             // perKeyPending; the rest answered at once
        #expect(answers.wait("m39", ms: 1000) == [])
        let started = Clock.monotonicMs()
        resolver.resolve("host.test", key: "alice", on: reactor) { answers.record("alice", $0) }
        #expect(answers.wait("alice", ms: 2000) == ["192.0.2.7", "2001:db8::7"])
        #expect(Clock.monotonicMs() - started < 500)
        #expect(server.started.get() == 2)                  // perKeyRunning: mallory holds two workers, no more
        #expect(resolver.pending(key: "mallory") == 16)
        server.release.signal()
        resolver.stop()
        reactor.stop()
    }

    @Test func aHangingLookupIsAnsweredAtItsTimeoutExactlyOnce() {
        let server = DeadServer()
        var limits = Resolver.Limits()
        limits.timeoutMs = 300
        let (reactor, resolver) = running(limits, server)
        let answers = Answers()
        let started = Clock.monotonicMs()
        resolver.resolve("a.dead", key: "u", on: reactor) { answers.record("running", $0) }
        resolver.resolve("b.dead", key: "u", on: reactor) { answers.record("running2", $0) }
        resolver.resolve("c.dead", key: "u", on: reactor) { answers.record("queued", $0) }
        #expect(answers.wait("queued", ms: 2000) == [])
        #expect(answers.wait("running", ms: 2000) == [])
        let elapsed = Clock.monotonicMs() - started
        #expect(elapsed >= 250 && elapsed < 1500)
        // the timed-out running lookups keep their workers (and the user's places) until getaddrinfo returns
        #expect(resolver.pending(key: "u") == 2)
        server.release.signal()
        let until = Clock.monotonicMs() + 2000
        while resolver.pending() > 0 && Clock.monotonicMs() < until { usleep(5_000) }
        #expect(resolver.pending() == 0)
        usleep(50_000)
        #expect(answers.times.get().values.allSatisfy { $0 == 1 })
        #expect(resolver.outcomes()[Int(Resolver.Outcome.timedOut.rawValue)] == 3)
        resolver.stop()
        reactor.stop()
    }

    @Test func theTotalBoundHoldsAcrossUsers() {
        let server = DeadServer()
        var limits = Resolver.Limits()
        limits.pending = 6
        limits.perKeyPending = 4
        let (reactor, resolver) = running(limits, server)
        var accepted = 0
        for user in 0..<4 {
            for i in 0..<4 where resolver.resolve("x\(i).dead", key: "u\(user)", on: reactor, { _ in }) { accepted += 1 }
        }
        #expect(accepted == 6)
        #expect(resolver.pending() == 6)
        server.release.signal()
        resolver.stop()
        reactor.stop()
    }

    @Test func theLibcAnswersLocalhost() {
        let addresses = Resolver.lookup("localhost")
        #expect(addresses.contains("127.0.0.1") || addresses.contains("::1"))
    }
}
