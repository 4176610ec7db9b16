import Testing
@testable import Appliance
import Relay

/// One SSH session per (user, host) shared by that user's C2S streams: who makes it, who waits for it, who is told
/// when it dies, and when it is closed. Fake sessions, a fake clock: no sockets.
@Suite struct SharedSessionsTests {
    final class FakeSession: SharedSession {
        var started = 0, closed = 0, ticks = 0
        var up: () -> Void = {}
        var down: (RelayFailure) -> Void = { _ in }
        func start() { started += 1 }
        func close() { closed += 1 }
        func tick(nowMs: Int64) { ticks += 1 }
    }

    /// A relay riding a session: what it was given, and whether it was told of a loss.
    final class Rider {
        var session: FakeSession?
        var failure: RelayFailure?
        var answers = 0
        var lost: RelayFailure?
        var id: ObjectIdentifier { ObjectIdentifier(self) }
    }

    final class Bench {
        let sessions = SharedSessions<FakeSession>()
        var made: [FakeSession] = []

        func acquire(_ key: SharedSessionKey, _ rider: Rider) {
            sessions.acquire(key, owner: rider.id, make: { up, down in
                let s = FakeSession()
                s.up = up
                s.down = down
                self.made.append(s)
                return s
            }, lost: { failure in rider.lost = failure }, done: { session, failure in
                rider.answers += 1
                rider.session = session
                rider.failure = failure
            })
        }
    }

    static let ops1 = SharedSessionKey(userId: "u-ops", hostId: 1)
    static let admin1 = SharedSessionKey(userId: "u-admin", hostId: 1)
    static let ops2 = SharedSessionKey(userId: "u-ops", hostId: 2)
    static let t0: Int64 = 1_000_000

    @Test func oneSessionPerUserAndHostSharedByItsStreams() {
        let bench = Bench()
        let a = Rider(), b = Rider(), c = Rider()
        bench.acquire(Self.ops1, a)
        bench.acquire(Self.ops1, b)
        #expect(bench.made.count == 1 && bench.made[0].started == 1)
        #expect(a.answers == 0 && b.answers == 0)   // both wait for the session to be up
        bench.made[0].up()
        #expect(a.session === bench.made[0] && b.session === bench.made[0] && a.answers == 1 && b.answers == 1)
        // once up, a third stream gets it at once
        bench.acquire(Self.ops1, c)
        #expect(c.session === bench.made[0] && bench.made.count == 1)
        #expect(bench.sessions.users(Self.ops1) == 3)
        // another user, or another host: a session of its own
        bench.acquire(Self.admin1, Rider())
        bench.acquire(Self.ops2, Rider())
        #expect(bench.made.count == 3 && bench.sessions.count == 3)
    }

    @Test func aSessionThatFailsToComeUpAnswersItsWaitersAndIsForgotten() {
        let bench = Bench()
        let a = Rider(), b = Rider()
        bench.acquire(Self.ops1, a)
        bench.acquire(Self.ops1, b)
        bench.made[0].down(RelayFailure(.authRejected, subject: "ops"))
        #expect(a.session == nil && a.failure?.kind == .authRejected && b.failure?.kind == .authRejected)
        // waiters hear it once, as a failed acquire, not as the loss of a running stream
        #expect(a.lost == nil && b.lost == nil)
        #expect(bench.sessions.count == 0)
        // the next stream logs in again
        bench.acquire(Self.ops1, Rider())
        #expect(bench.made.count == 2)
    }

    @Test func theLossOfARunningSessionReachesEveryRider() {
        let bench = Bench()
        let a = Rider(), b = Rider(), gone = Rider()
        bench.acquire(Self.ops1, a)
        bench.acquire(Self.ops1, b)
        bench.acquire(Self.ops1, gone)
        bench.made[0].up()
        bench.sessions.release(Self.ops1, owner: gone.id, nowMs: Self.t0)
        bench.made[0].down(RelayFailure(.keepaliveTimeout))
        #expect(a.lost?.kind == .keepaliveTimeout && b.lost?.kind == .keepaliveTimeout)
        #expect(gone.lost == nil)   // released before: not told
        #expect(bench.sessions.count == 0)
        // a late down of the forgotten session does not touch a new one
        bench.acquire(Self.ops1, Rider())
        bench.made[0].down(RelayFailure(.peerClosed))
        #expect(bench.sessions.count == 1)
    }

    @Test func anIdleSessionClosesAfter60Seconds() {
        let bench = Bench()
        let a = Rider(), b = Rider()
        bench.acquire(Self.ops1, a)
        bench.made[0].up()
        bench.sessions.release(Self.ops1, owner: a.id, nowMs: Self.t0)
        // released twice, or by a stranger: counted once
        bench.sessions.release(Self.ops1, owner: a.id, nowMs: Self.t0)
        bench.sessions.release(Self.ops1, owner: ObjectIdentifier(b), nowMs: Self.t0)
        bench.sessions.tick(nowMs: Self.t0 + 60_000)
        #expect(bench.made[0].closed == 0 && bench.made[0].ticks == 1 && bench.sessions.count == 1)
        // a new stream within the idle time reuses it and holds it open
        bench.acquire(Self.ops1, b)
        #expect(bench.made.count == 1 && b.session === bench.made[0])
        bench.sessions.tick(nowMs: Self.t0 + 120_000)
        #expect(bench.made[0].closed == 0)
        bench.sessions.release(Self.ops1, owner: b.id, nowMs: Self.t0 + 120_000)
        bench.sessions.tick(nowMs: Self.t0 + 180_001)
        #expect(bench.made[0].closed == 1 && bench.sessions.count == 0)
    }

    @Test func aSessionAbandonedDuringSetupIdlesOutOnceUp() {
        let bench = Bench()
        let a = Rider()
        bench.acquire(Self.ops1, a)
        bench.sessions.release(Self.ops1, owner: a.id, nowMs: Self.t0)
        // still logging in: not closed under a login in progress, whatever the time
        bench.sessions.tick(nowMs: Self.t0 + 600_000)
        #expect(bench.made[0].closed == 0)
        bench.made[0].up()
        bench.sessions.tick(nowMs: Self.t0 + 600_000)
        #expect(bench.made[0].closed == 1 && bench.sessions.count == 0)
    }

    @Test func aReloadEndsThePickedSessionsAndTellsTheirRiders() {
        let bench = Bench()
        let ops = Rider(), admin = Rider()
        bench.acquire(Self.ops1, ops)
        bench.acquire(Self.admin1, admin)
        for s in bench.made { s.up() }
        bench.sessions.end { $0.userId == "u-ops" }
        #expect(bench.made[0].closed == 1 && ops.lost?.kind == .local && ops.lost?.detail == "configuration reloaded")
        #expect(bench.made[1].closed == 0 && admin.lost == nil && bench.sessions.count == 1)
        bench.sessions.closeAll()
        #expect(bench.made[1].closed == 1 && bench.sessions.count == 0)
    }
}
