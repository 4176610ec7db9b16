import CLinux
import Testing
@testable import Relay

@Suite struct WorkerThreadTests {
    @Test func runsJobsInOrderOffTheCallersThread() throws {
        let worker = try #require(WorkerThread(capacity: 4, perKeyLimit: 4))
        let seen = Locked<[Int]>([])
        let cancels = Locked(0)
        let done = Completion()
        for i in 0..<3 {
            let accepted = worker.submit(key: "a") { cancelled in
                if cancelled { cancels.update { $0 += 1 } }
                seen.update { $0.append(i) }
                if i == 2 { done.signal() }
            }
            #expect(accepted)
        }
        #expect(done.wait(timeoutMs: 5000))
        #expect(seen.get() == [0, 1, 2])
        #expect(cancels.get() == 0)
        worker.stop()
    }

    /// Issue #15: one client address cannot take the worker from everyone else, and the queue is bounded.
    @Test func refusesBeyondCapacityAndPerKeyShare() throws {
        let worker = try #require(WorkerThread(capacity: 3, perKeyLimit: 2))
        let gate = Completion()
        let ran = Locked(0)
        let job: WorkerThread.Job = { _ in
            _ = gate.wait(timeoutMs: 5000)
            ran.update { $0 += 1 }
        }
        #expect(worker.submit(key: "10.0.0.1", job))
        #expect(worker.submit(key: "10.0.0.1", job))
        #expect(!worker.submit(key: "10.0.0.1", job))     // its share is full
        #expect(worker.submit(key: "10.0.0.2", job))
        #expect(!worker.submit(key: "10.0.0.3", job))     // the queue is full (one running, two waiting)
        #expect(worker.pending == 3)
        gate.signal()
        worker.stop()
        #expect(ran.get() == 3)
        #expect(worker.pending == 0)
        #expect(!worker.submit(key: "10.0.0.3", job))     // stopped
    }

    /// Jobs still queued at stop run cancelled (answer at once), so every suspended connection gets resumed.
    @Test func stopRunsQueuedJobsCancelled() throws {
        let worker = try #require(WorkerThread(capacity: 4, perKeyLimit: 4))
        let gate = Completion()
        let started = Completion()
        let outcomes = Locked<[Bool]>([])
        let first = worker.submit(key: "k") { cancelled in
            started.signal()
            _ = gate.wait(timeoutMs: 5000)
            outcomes.update { $0.append(cancelled) }
        }
        #expect(first)
        #expect(started.wait(timeoutMs: 5000))
        for _ in 0..<2 {
            let queued = worker.submit(key: "k") { cancelled in outcomes.update { $0.append(cancelled) } }
            #expect(queued)
        }
        let stopper = Thread.spawn { worker.stop() }
        usleep(50_000)
        gate.signal()
        stopper?.join()
        #expect(outcomes.get() == [false, true, true])
    }
}
