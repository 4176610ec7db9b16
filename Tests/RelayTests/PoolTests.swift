import CLinux
import Testing
@testable import Relay

/// Issue #16: one pool of relay buffers for every thread, pipe pools with a cap, and a registry `/metrics` reads.
@Suite struct PoolTests {
    @Test func oneBufferPoolServesTwoThreadsWithinItsCount() throws {
        let pool = BufferPool(size: 4096, count: 64)
        let taken = Locked(0)
        var threads: [Thread] = []
        for _ in 0..<2 {
            threads.append(try #require(Thread.spawn {
                var mine: [UnsafeMutableRawPointer] = []
                for _ in 0..<1000 {
                    if let buffer = pool.acquire() { mine.append(buffer) }
                    if mine.count > 20 { pool.release(mine.removeFirst()) }
                }
                taken.update { $0 += mine.count }
                for buffer in mine { pool.release(buffer) }
            }))
        }
        for thread in threads { thread.join() }
        #expect(taken.get() <= 64)
        #expect(pool.inUse == 0 && pool.available == 64)
        var all: [UnsafeMutableRawPointer] = []
        while let buffer = pool.acquire() { all.append(buffer) }
        #expect(all.count == 64)                // never more than `count`, whoever asks
        for buffer in all { pool.release(buffer) }
    }

    @Test func pipePoolRefusesBeyondItsLimit() {
        let pool = PipePool(capacity: 65536, keep: 2, largeCapacity: 65536, large: 0, limit: 3)
        let pipes = (0..<4).compactMap { _ in pool.take() }
        #expect(pipes.count == 3 && pool.alive == 3 && pool.inUse == 3)
        for pipe in pipes { pool.give(pipe) }
        #expect(pool.alive == 2 && pool.pooled == 2 && pool.inUse == 0)   // two kept, one closed
        #expect(pool.take() != nil)
        pool.drain()
    }

    @Test func registryReportsEveryPoolByName() {
        let registry = PoolRegistry()
        let buffers = BufferPool(size: 32768, count: 10)
        let pipes = PipePool(limit: 100)
        registry.register("relay", buffers: buffers)
        registry.register("relay", buffers: BufferPool(size: 32768, count: 20))   // replaces
        registry.register("local", pipes: pipes)
        let rows = registry.snapshot()
        #expect(rows.map { $0.name } == ["relay", "relay", "relay", "local"])
        #expect(rows[0].capacity == 20 && rows[0].itemBytes == 32768 && rows[0].kind == "buffers")
        #expect(rows[1].capacity == 0 && rows[1].kind == "windows" && rows[1].itemBytes == 16 << 20)
        #expect(rows[2].capacity == 0 && rows[2].kind == "standard_windows" && rows[2].itemBytes == 2 << 20)
        #expect(rows[3].capacity == 100 && rows[3].kind == "pipes" && rows[3].inUse == 0)
    }

    /// Issue #17: wide receive windows come from a budget of whole windows, given back when streams close.
    @Test func windowBudgetHandsOutWholeWindowsOnly() throws {
        #expect(WindowBudget(bytes: 0).slots == 0 && !WindowBudget(bytes: 0).take())
        #expect(WindowBudget(bytes: (16 << 20) - 1).slots == 0)
        let budget = WindowBudget(bytes: 40 << 20)
        #expect(budget.slots == 2)
        #expect(budget.take() && budget.take())
        #expect(!budget.take() && budget.inUse == 2)
        budget.give()
        #expect(budget.inUse == 1 && budget.take())
        let shared = BufferPool(size: 4096, count: 4, windowBudget: 64 << 20)
        let won = Locked(0)
        var threads: [Thread] = []
        for _ in 0..<2 {
            threads.append(try #require(Thread.spawn {
                for _ in 0..<1000 {
                    guard shared.windows.take() else { continue }
                    won.update { $0 += 1 }
                    shared.windows.give()
                }
            }))
        }
        for thread in threads { thread.join() }
        #expect(shared.windows.inUse == 0 && won.get() == 2000)
    }

    // MARK: issue #24, per-user shares of the relay buffers and windows

    @Test func aBoundedShareHoldsAQuarterAndTheTotalStillHolds() {
        var count = ShareCount(total: 8)
        let user = PoolShare(key: "u-ops", bounded: true)
        let other = PoolShare(key: "u-other", bounded: true)
        let admin = PoolShare(key: "u-admin", bounded: false)
        #expect(count.perKey == 2)
        #expect(count.take(2, for: user) && !count.take(1, for: user))      // a quarter, nothing more
        #expect(count.take(1, for: other) && count.held(by: "u-other") == 1)
        #expect(count.take(5, for: admin) && !count.take(1, for: admin))    // an admin: only the total
        #expect(!count.take(1, for: other) && count.held == 8)
        count.give(2, for: user)
        #expect(count.held(by: "u-ops") == 0 && count.rows.map { $0.0 } == ["u-admin", "u-other"])
        #expect(count.take(1, for: other) && count.take(1, for: admin))
        #expect(ShareCount(total: 0).perKey == 0 && ShareCount(total: 3).perKey == 1)
        var none = ShareCount(total: 0)
        #expect(!none.take(1, for: admin) && !none.take(1, for: user))
    }

    /// Finding 3: one user's streams took all 1024 buffers and the admin's stream was reset. A bounded key gets two
    /// buffers per stream until its quarter; other keys and the admin go on; what is released comes back to its key.
    @Test func bufferPairsAreChargedToTheirShare() {
        let pool = BufferPool(size: 4096, count: 32)
        let user = PoolShare(key: "u-ops", bounded: true)
        var pairs: [(UnsafeMutableRawPointer, UnsafeMutableRawPointer)] = []
        while let pair = pool.acquirePair(for: user) { pairs.append(pair) }
        #expect(pairs.count == 4 && pool.held(by: "u-ops") == 8 && pool.available == 24)
        let admin = PoolShare(key: "u-admin", bounded: false)
        var adminPairs: [(UnsafeMutableRawPointer, UnsafeMutableRawPointer)] = []
        while let pair = pool.acquirePair(for: admin) { adminPairs.append(pair) }
        #expect(adminPairs.count == 12 && pool.available == 0)
        #expect(pool.acquirePair(for: PoolShare(key: "u-other", bounded: true)) == nil)   // the total holds too
        #expect(pool.byKey.map { $0.0 } == ["u-admin", "u-ops"] && pool.byKey.map { $0.1 } == [24, 8])
        let (up, down) = pairs.removeLast()
        pool.releasePair(up, down, for: user)
        #expect(pool.held(by: "u-ops") == 6 && pool.available == 2)
        #expect(pool.acquirePair(for: user) != nil)
        #expect(pool.acquirePair(for: PoolShare(key: "u-other", bounded: true)) == nil)
        #expect(pool.inUse == 32)
    }

    /// Finding 5: a stalled reader parks its channel's window; a bounded key holds a quarter of the wide and of the
    /// standard windows (the default pool: 4 wide, 32 standard), and slots come back to their key.
    @Test func windowsHaveAShareEach() {
        let pool = BufferPool(size: 32768, count: 1024, windowBudget: 64 << 20)
        #expect(pool.windows.slots == 4 && pool.windows.perKey == 1)
        #expect(pool.standard.slots == 32 && pool.standard.perKey == 8 && pool.standard.window == 2 << 20)
        let user = PoolShare(key: "u-ops", bounded: true)
        #expect(pool.windows.take(user) && !pool.windows.take(user))
        #expect(pool.windows.take(.unbounded) && pool.windows.take(.unbounded) && pool.windows.take(.unbounded))
        #expect(!pool.windows.take(.unbounded))
        pool.windows.give(user)
        #expect(pool.windows.byKey.map { $0.0 } == [""] && pool.windows.take(user))
        var standard = 0
        while pool.standard.take(user) { standard += 1 }
        #expect(standard == 8 && pool.standard.take(PoolShare(key: "u-admin", bounded: false)))
        #expect(BufferPool(size: 4096, count: 16).standard.slots == 0)        // a small pool: every stream small
        #expect(BufferPool(size: 4096, count: 16, standardWindows: 3).standard.slots == 3)
    }

    /// The direct-tcpip open is built by hand (libssh2's own always asks for 2 MiB): RFC 4254 §7.2's fields.
    @Test func directTCPIPPayload() {
        let bytes = ChannelOpen.directTCPIP(host: "db", port: 5432, originator: "127.0.0.1", originatorPort: 22)
        var expected: [UInt8] = [0, 0, 0, 2]
        expected += Array("db".utf8)
        expected += [0, 0, 0x15, 0x38, 0, 0, 0, 9]
        expected += Array("127.0.0.1".utf8)
        expected += [0, 0, 0, 22]
        #expect(bytes == expected)
    }
}
