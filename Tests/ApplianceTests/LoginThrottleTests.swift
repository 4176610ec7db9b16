import Testing
@testable import Appliance

@Suite struct LoginThrottleTests {
    @Test func slowsAfterFreeFailuresPerAddressAndName() {
        let throttle = LoginThrottle()
        for _ in 0..<LoginThrottle.freeFailures {
            #expect(throttle.waitMs(user: "admin", address: "10.0.0.1", nowMs: 0) == 0)
            throttle.failed(user: "admin", address: "10.0.0.1", nowMs: 0)
        }
        #expect(throttle.waitMs(user: "admin", address: "10.0.0.1", nowMs: 0) == 0)
        throttle.failed(user: "admin", address: "10.0.0.1", nowMs: 0)
        #expect(throttle.check(user: "admin", address: "10.0.0.1", nowMs: 10).reason != nil)
        #expect(throttle.check(user: "ops", address: "10.0.0.1", nowMs: 10).reason == .address)   // the attacker's address
        #expect(throttle.waitMs(user: "admin", address: "10.0.0.9", nowMs: 10) == 0)   // a fresh address: the user passes
        #expect(throttle.waitMs(user: "ops", address: "10.0.0.9", nowMs: 10) == 0)
        #expect(throttle.waitMs(user: "admin", address: "10.0.0.1", nowMs: 1001) == 0)
        throttle.failed(user: "admin", address: "10.0.0.1", nowMs: 1001)
        #expect(throttle.waitMs(user: "admin", address: "10.0.0.1", nowMs: 1001) == 2000)   // doubling
    }

    /// Issue #24: guesses for `admin` from rotating addresses lock the name only for addresses that failed too; a
    /// correct password from an address with no failures, or where admin logged in before, still passes.
    @Test func rotatingAddressesDoNotLockTheUserOut() {
        let throttle = LoginThrottle()
        throttle.succeeded(user: "admin", address: "10.0.0.50", nowMs: 0)        // the admin's desk, known good
        for i in 0..<9 { throttle.failed(user: "admin", address: "10.6.6.\(i)", nowMs: 0) }
        #expect(throttle.waitMs(user: "admin", address: "10.0.0.77", nowMs: 1) == 0)   // no failures of its own
        #expect(throttle.waitMs(user: "admin", address: "10.0.0.50", nowMs: 1) == 0)   // known good
        // an attacking address that failed once more is held by the name's lock
        throttle.failed(user: "admin", address: "10.6.6.0", nowMs: 1)
        #expect(throttle.check(user: "admin", address: "10.6.6.0", nowMs: 2).reason == .user)
        // the admin who mistyped at their desk is slowed only by their own count there
        throttle.failed(user: "admin", address: "10.0.0.50", nowMs: 2)
        #expect(throttle.waitMs(user: "admin", address: "10.0.0.50", nowMs: 3) == 0)
    }

    /// Issue #24: behind a reverse proxy (one address) failures under made-up names lock that address, but a user
    /// who logged in through it before still passes.
    @Test func aProxysFailuresDoNotLockKnownUsers() {
        let throttle = LoginThrottle()
        throttle.succeeded(user: "ops", address: "10.0.0.2", nowMs: 0)
        for i in 0..<6 { throttle.failed(user: "nobody\(i)", address: "10.0.0.2", nowMs: 0, knownUser: false) }
        #expect(throttle.check(user: "admin", address: "10.0.0.2", nowMs: 1).reason == .address)
        #expect(throttle.waitMs(user: "ops", address: "10.0.0.2", nowMs: 1) == 0)
        // guessing ops's password through the proxy is still slowed, per name and address
        for _ in 0..<5 { throttle.failed(user: "ops", address: "10.0.0.2", nowMs: 1) }
        #expect(throttle.check(user: "ops", address: "10.0.0.2", nowMs: 2).reason == .userFromAddress)
    }

    /// Issue #24: the password worker's reserved places are for logins likely to be real: where the user logged in
    /// before, or for a user who logged in before from an address that failed nothing itself.
    @Test func trustedLoginsAreThoseThatSucceededBefore() {
        let throttle = LoginThrottle()
        #expect(!throttle.trusted(user: "admin", address: "10.0.0.1"))
        throttle.succeeded(user: "admin", address: "10.0.0.1", nowMs: 0)
        #expect(throttle.trusted(user: "admin", address: "10.0.0.1"))
        #expect(throttle.trusted(user: "admin", address: "10.0.0.7"))      // a new address without failures
        #expect(!throttle.trusted(user: "ops", address: "10.0.0.1"))       // not another user
        throttle.failed(user: "admin", address: "10.0.0.7", nowMs: 1)
        #expect(!throttle.trusted(user: "admin", address: "10.0.0.7"))     // an address guessing is not trusted
        for i in 0..<6 { throttle.failed(user: "x\(i)", address: "10.0.0.1", nowMs: 1, knownUser: false) }
        #expect(throttle.trusted(user: "admin", address: "10.0.0.1"))      // where admin logged in, still
    }

    /// Issue #15: failures under made-up user names filled the table and the full sort evicted the admin's lock.
    @Test func madeUpNamesCannotEvictARealUsersLock() {
        let throttle = LoginThrottle(capacity: 16)
        for _ in 0..<10 { throttle.failed(user: "admin", address: "10.0.0.1", nowMs: 0) }   // locked for about a minute
        for i in 0..<1000 {
            throttle.failed(user: "guess\(i)", address: "10.1.\(i / 250).\(i % 250)", nowMs: Int64(2 + i), knownUser: false)
        }
        // the name's lock survived: an address that failed too is held by it
        throttle.failed(user: "ops", address: "10.9.9.9", nowMs: 1002)
        #expect(throttle.check(user: "admin", address: "10.9.9.9", nowMs: 1003).reason == .user)
    }

    @Test func boundedTable() {
        let throttle = LoginThrottle(capacity: 10)
        for i in 0..<100 { throttle.failed(user: "u\(i)", address: "a\(i)", nowMs: Int64(i)) }
        #expect(throttle.waitMs(user: "u0", address: "a0", nowMs: 0) == 0)
    }
}
