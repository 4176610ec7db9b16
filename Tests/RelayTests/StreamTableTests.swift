import CLinux
import Testing
@testable import Relay

/// Issue #15: the per-stream bound (1 MiB) was the only one, so 512 streams of one relay could hold 512 MiB.
@Suite struct StreamTableTotalTests {
    @Test func manyStreamsTogetherRaisePressure() throws {
        let reactor = try #require(Reactor(tickMilliseconds: 100))
        let table = StreamTable(reactor: reactor)
        var pressure: [Bool] = []
        table.onPressure = { pressure.append($0) }
        var peers: [Int32] = []
        var ids: [Int] = []
        for _ in 0..<8 {
            var ends: [Int32] = [-1, -1]
            #expect(cl_socketpair(&ends) == 0)
            _ = cl_set_int_option(ends[0], SOL_SOCKET, SO_SNDBUF, 4096)
            _ = cl_set_int_option(ends[1], SOL_SOCKET, SO_RCVBUF, 4096)
            peers.append(ends[1])        // never read: what is written stays queued in the table
            ids.append(table.add(ends[0]))
        }
        let piece = [UInt8](repeating: 7, count: 640 << 10)   // each stream stays under its own 1 MiB bound
        for id in ids { table.write(id, piece) }
        #expect(pressure == [true])
        table.closeAll()
        for fd in peers { CLinux.close(fd) }
    }
}
