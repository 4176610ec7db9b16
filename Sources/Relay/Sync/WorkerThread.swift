import CLinux

/// One thread that runs jobs handed to it by other threads, in order, from a bounded queue: for work too slow for
/// a polling thread (password hashing on the HTTP server's). A job beyond `capacity` (queued and running together),
/// or beyond `perKeyLimit` for its key, is refused at once, so one client cannot queue work for everyone else. The
/// last `reserved` places take only priority jobs, which also run before the others (issue #24: logins from a handful
/// of addresses filled all eight places, and a user's correct password was answered 429).
public final class WorkerThread {
    /// `cancelled` is true for jobs still queued when the worker stops: they must finish quickly (answer, not work).
    public typealias Job = (_ cancelled: Bool) -> Void

    public let capacity: Int
    public let perKeyLimit: Int
    public let reserved: Int
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let cond: UnsafeMutablePointer<pthread_cond_t>
    private var queue: [(key: String, job: Job)] = []
    /// The first `priorityQueued` jobs of `queue` are priority jobs.
    private var priorityQueued = 0
    /// Jobs per key and in all, queued or running: `capacity` bounds both together.
    private var perKey: [String: Int] = [:]
    private var total = 0
    private var stopping = false
    private var thread: Thread?

    /// nil when the thread cannot be created.
    public init?(capacity: Int, perKeyLimit: Int, reserved: Int = 0) {
        self.capacity = capacity
        self.perKeyLimit = perKeyLimit
        self.reserved = min(max(0, reserved), capacity)
        mutex = cl_mutex_new()
        cond = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
        pthread_cond_init(cond, nil)
        let started = Completion()
        thread = Thread.spawn { [self] in
            started.signal()
            run()
        }
        guard thread != nil else { return nil }
        _ = started.wait(timeoutMs: 5000)
    }

    deinit {
        pthread_cond_destroy(cond)
        cond.deallocate()
        cl_mutex_free(mutex)
    }

    /// Jobs queued or running.
    public var pending: Int {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return total
    }

    /// Queues `job`; false when the queue (less the reserved places, unless `priority`) or the key's share is full,
    /// or the worker is stopping. A priority job goes ahead of every other job still queued.
    public func submit(key: String, priority: Bool = false, _ job: @escaping Job) -> Bool {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        let mine = perKey[key] ?? 0
        guard !stopping, total < (priority ? capacity : capacity - reserved), mine < perKeyLimit else { return false }
        perKey[key] = mine + 1
        total += 1
        if priority {
            queue.insert((key: key, job: job), at: priorityQueued)
            priorityQueued += 1
        } else {
            queue.append((key: key, job: job))
        }
        pthread_cond_signal(cond)
        return true
    }

    /// Runs what is running to its end, every job still queued with `cancelled`, and joins the thread.
    public func stop() {
        pthread_mutex_lock(mutex)
        stopping = true
        pthread_cond_broadcast(cond)
        pthread_mutex_unlock(mutex)
        thread?.join()
        thread = nil
    }

    private func run() {
        while true {
            pthread_mutex_lock(mutex)
            while queue.isEmpty && !stopping { pthread_cond_wait(cond, mutex) }
            if queue.isEmpty {
                pthread_mutex_unlock(mutex)
                return
            }
            let next = queue.removeFirst()
            if priorityQueued > 0 { priorityQueued -= 1 }
            let cancelled = stopping
            pthread_mutex_unlock(mutex)

            next.job(cancelled)

            pthread_mutex_lock(mutex)
            let left = (perKey[next.key] ?? 1) - 1
            perKey[next.key] = left > 0 ? left : nil
            total -= 1
            pthread_mutex_unlock(mutex)
        }
    }
}
