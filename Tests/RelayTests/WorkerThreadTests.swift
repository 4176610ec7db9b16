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

    /// Issue #24: logins from a handful of addresses filled the queue; the reserved places take priority jobs only,
    /// and those run before the others still waiting.
    @Test func reservedPlacesTakePriorityJobsFirst() throws {
        let worker = try #require(WorkerThread(capacity: 4, perKeyLimit: 2, reserved: 2))
        let gate = Completion()
        let seen = Locked<[String]>([])
        func job(_ name: String) -> WorkerThread.Job {
            { _ in
                _ = gate.wait(timeoutMs: 5000)
                seen.update { $0.append(name) }
            }
        }
        let running = Completion()
        #expect(worker.submit(key: "10.0.0.1") { cancelled in
            running.signal()
            job("a")(cancelled)
        })
        #expect(running.wait(timeoutMs: 5000))                              // "a" is running, the rest will wait
        #expect(worker.submit(key: "10.0.0.2", job("b")))
        #expect(!worker.submit(key: "10.0.0.3", job("c")))                  // the unreserved places are taken
        #expect(worker.submit(key: "10.0.0.4", priority: true, job("p")))
        #expect(worker.submit(key: "10.0.0.5", priority: true, job("q")))
        #expect(!worker.submit(key: "10.0.0.6", priority: true, job("r")))  // the whole queue is full
        gate.signal()
        worker.stop()
        let order = seen.get()
        #expect(order == ["a", "p", "q", "b"])
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
