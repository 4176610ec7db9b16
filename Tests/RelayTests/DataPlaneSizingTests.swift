import CLinux
import Testing
@testable import Relay

@Suite struct DataPlaneSizingTests {
    @Test func localReadsAreWholeChannelPackets() {
        #expect(ChannelPipe.upChunk(32768) == 32700)
        #expect(ChannelPipe.upChunk(65536) == 65400)
        #expect(ChannelPipe.upChunk(262144) == 261600)
        #expect(ChannelPipe.upChunk(32700) == 32700)
        #expect(ChannelPipe.upChunk(4096) == 4096)
    }

    @Test func theFirstPipesAreLargeTheRestDefault() {
        let pool = PipePool(capacity: 65536, keep: 4, largeCapacity: 1 << 20, large: 2)
        let a = pool.take()!, b = pool.take()!, c = pool.take()!
        #expect(a.capacity == 1 << 20)
        #expect(b.capacity == 1 << 20)
        #expect(c.capacity == 65536)
        #expect(pool.largeAlive == 2)
        // a pooled large pipe is handed out before an ordinary one
        pool.give(c)
        pool.give(a)
        #expect(pool.take() === a)
        // a pipe with bytes in it is closed, and its large slot comes free
        a.buffered = 10
        pool.give(a)
        #expect(pool.largeAlive == 1)
        let d = pool.take()!
        #expect(d.capacity == 1 << 20)
        pool.give(b)
        pool.give(d)
        pool.drain()
        #expect(pool.largeAlive == 0)
        #expect(pool.pooled == 0)
    }
}
