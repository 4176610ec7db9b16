import CLinux

/// The process's one name resolver: host names to numeric addresses (A and AAAA, in the libc's order) without
/// blocking any reactor. getaddrinfo cannot be cancelled and may wait seconds on a DNS server that never answers,
/// so lookups run on a few worker threads, bounded so that one user cannot make another wait:
///
/// - `workers` threads (4); a key (a user) has at most `perKeyRunning` (2) of them at once, so a user whose names
///   hang on a dead server still leaves two workers to everyone else;
/// - at most `perKeyPending` (16) lookups of one key queued or running, and `pending` (64) in all; beyond that a
///   lookup is answered at once as not resolved;
/// - every lookup is answered within `timeoutMs` (10 s): one still queued or running then is answered as not
///   resolved (a running one keeps its worker, and its key's share, until getaddrinfo returns).
///
/// Answers are posted to the caller's reactor, exactly once. IP literals never come here (callers parse them).
public final class Resolver {
    public struct Limits {
        public var workers = 4
        public var perKeyRunning = 2
        public var perKeyPending = 16
        public var pending = 64
        public var timeoutMs: Int64 = 10_000
        public init() {}
    }

    /// How a lookup ended (for logs and tests; every kind but `resolved` reads "does not resolve").
    public enum Outcome: UInt8 { case resolved, notFound, timedOut, refused }

    public typealias Answer = ([String]) -> Void

    private final class Job {
        let name: String
        let key: String
        let reactor: Reactor
        let deadlineMs: Int64
        /// nil once answered (under the mutex).
        var done: Answer?

        init(name: String, key: String, reactor: Reactor, deadlineMs: Int64, done: @escaping Answer) {
            self.name = name
            self.key = key
            self.reactor = reactor
            self.deadlineMs = deadlineMs
            self.done = done
        }
    }

    /// The process's resolver (`Resolver.lookup`, the libc's getaddrinfo).
    public static let shared = Resolver(limits: Limits(), lookup: Resolver.lookup)

    public let limits: Limits
    private let lookupName: (String) -> [String]
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let work: UnsafeMutablePointer<pthread_cond_t>
    private let sleep: UnsafeMutablePointer<pthread_cond_t>
    private var queue: [Job] = []
    private var running: [Job] = []
    private var runningPerKey: [String: Int] = [:]
    /// Queued or running, per key and in all (a timed-out running lookup counts until getaddrinfo returns).
    private var pendingPerKey: [String: Int] = [:]
    private var total = 0
    private var stopping = false
    private var threads: [Thread] = []
    private var counts: [Int] = [0, 0, 0, 0]

    /// `lookup` is blocking (worker threads only); tests give one that waits as a dead DNS server does.
    public init(limits: Limits, lookup: @escaping (String) -> [String]) {
        self.limits = limits
        lookupName = lookup
        _ = cl_resolver_configure()
        mutex = cl_mutex_new()
        work = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
        sleep = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
        pthread_cond_init(work, nil)
        pthread_cond_init(sleep, nil)
        for _ in 0..<max(1, limits.workers) {
            if let thread = Thread.spawn({ [self] in self.runWorker() }) { threads.append(thread) }
        }
        if let thread = Thread.spawn({ [self] in self.runTimer() }) { threads.append(thread) }
    }

    deinit {
        pthread_cond_destroy(work)
        pthread_cond_destroy(sleep)
        work.deallocate()
        sleep.deallocate()
        cl_mutex_free(mutex)
    }

    /// Looks `name` up for `key` (a user id); `done` runs on `reactor` with the addresses (IPv4 and IPv6 text),
    /// empty when the name does not resolve, timed out or was over a bound. Returns false when refused at once.
    @discardableResult
    public func resolve(_ name: String, key: String, on reactor: Reactor, _ done: @escaping Answer) -> Bool {
        let job = Job(name: name, key: key, reactor: reactor, deadlineMs: Clock.monotonicMs() + limits.timeoutMs,
                      done: done)
        pthread_mutex_lock(mutex)
        let mine = pendingPerKey[key] ?? 0
        let room = !stopping && !threads.isEmpty && total < limits.pending && mine < limits.perKeyPending
        if room {
            pendingPerKey[key] = mine + 1
            total += 1
            queue.append(job)
            pthread_cond_broadcast(work)
            pthread_cond_signal(sleep)     // the timer sleeps while nothing is pending
        } else {
            counts[Int(Outcome.refused.rawValue)] += 1
        }
        pthread_mutex_unlock(mutex)
        if !room { reactor.post { done([]) } }
        return room
    }

    /// Lookups queued or running (running ones past their deadline included), in all and for `key`.
    public func pending(key: String? = nil) -> Int {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        guard let key else { return total }
        return pendingPerKey[key] ?? 0
    }

    /// Lookups ended by outcome (`Outcome.rawValue` order), for /metrics.
    public func outcomes() -> [Int] {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return counts
    }

    /// Answers what is queued as not resolved and joins the threads after the lookups in progress (tests; the
    /// shared resolver lives as long as the process).
    public func stop() {
        pthread_mutex_lock(mutex)
        stopping = true
        let dropped = queue
        queue.removeAll()
        for job in dropped { job.done = nil }
        pthread_cond_broadcast(work)
        pthread_cond_broadcast(sleep)
        pthread_mutex_unlock(mutex)
        for thread in threads { thread.join() }
        threads.removeAll()
    }

    // MARK: threads

    /// The first queued job whose key has a worker to spare; under the mutex.
    private func takeNext() -> Job? {
        guard let index = queue.firstIndex(where: { (runningPerKey[$0.key] ?? 0) < limits.perKeyRunning }) else {
            return nil
        }
        let job = queue.remove(at: index)
        runningPerKey[job.key, default: 0] += 1
        running.append(job)
        return job
    }

    private func runWorker() {
        pthread_mutex_lock(mutex)
        while true {
            if stopping { break }
            guard let job = takeNext() else {
                pthread_cond_wait(work, mutex)
                continue
            }
            pthread_mutex_unlock(mutex)
            let addresses = lookupName(job.name)
            pthread_mutex_lock(mutex)
            if let index = running.firstIndex(where: { $0 === job }) { running.remove(at: index) }
            release(job)
            let done = job.done
            job.done = nil
            if done != nil { counts[Int((addresses.isEmpty ? Outcome.notFound : Outcome.resolved).rawValue)] += 1 }
            pthread_cond_broadcast(work)   // the key's share has a worker again
            if let done {
                pthread_mutex_unlock(mutex)
                job.reactor.post { done(addresses) }
                pthread_mutex_lock(mutex)
            }
        }
        pthread_mutex_unlock(mutex)
    }

    /// Under the mutex: the job no longer holds a worker nor a place.
    private func release(_ job: Job) {
        let runningLeft = (runningPerKey[job.key] ?? 1) - 1
        runningPerKey[job.key] = runningLeft > 0 ? runningLeft : nil
        forget(job)
    }

    private func forget(_ job: Job) {
        let left = (pendingPerKey[job.key] ?? 1) - 1
        pendingPerKey[job.key] = left > 0 ? left : nil
        total -= 1
    }

    /// Every 100 ms while lookups are pending (asleep otherwise): lookups past their deadline are answered as not
    /// resolved (queued ones leave the queue).
    private func runTimer() {
        pthread_mutex_lock(mutex)
        while !stopping {
            if queue.isEmpty && running.isEmpty {
                pthread_cond_wait(sleep, mutex)
                continue
            }
            var deadline = timespec()
            clock_gettime(CLOCK_REALTIME, &deadline)
            deadline.tv_nsec += 100_000_000
            if deadline.tv_nsec >= 1_000_000_000 {
                deadline.tv_sec += 1
                deadline.tv_nsec -= 1_000_000_000
            }
            _ = pthread_cond_timedwait(sleep, mutex, &deadline)
            let now = Clock.monotonicMs()
            var expired: [Job] = []
            queue.removeAll { job in
                guard job.deadlineMs <= now else { return false }
                forget(job)
                expired.append(job)
                return true
            }
            for job in running where job.deadlineMs <= now && job.done != nil { expired.append(job) }
            var answers: [(Job, Answer)] = []
            for job in expired {
                if let done = job.done { answers.append((job, done)) }
                job.done = nil
            }
            counts[Int(Outcome.timedOut.rawValue)] += answers.count
            if answers.isEmpty { continue }
            pthread_mutex_unlock(mutex)
            for (job, done) in answers { job.reactor.post { done([]) } }
            pthread_mutex_lock(mutex)
        }
        pthread_mutex_unlock(mutex)
    }

    /// Blocking; worker threads and tests only. A and AAAA through the libc's getaddrinfo (see `cl_resolve`).
    public static func lookup(_ name: String) -> [String] {
        var buffer = [CChar](repeating: 0, count: 1024)
        let used = Int(cl_resolve(name, &buffer, buffer.count))
        guard used > 0 else { return [] }
        var result: [String] = []
        var start = 0
        for i in 0..<used where buffer[i] == 0 {
            let bytes = buffer[start..<i].map { UInt8(bitPattern: $0) }
            let text = String(decoding: bytes, as: UTF8.self)
            if !result.contains(text) { result.append(text) }
            start = i + 1
        }
        return result
    }
}
