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
        #expect(rows.map { $0.name } == ["relay", "relay", "local"])
        #expect(rows[0].capacity == 20 && rows[0].itemBytes == 32768 && rows[0].kind == "buffers")
        #expect(rows[1].capacity == 0 && rows[1].kind == "windows" && rows[1].itemBytes == 16 << 20)
        #expect(rows[2].capacity == 100 && rows[2].kind == "pipes" && rows[2].inUse == 0)
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
}
