import CLinux

/// A pthread mutex (Synchronization's `Mutex` does not exist in Embedded Swift).
public final class Lock {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    public init() {
        mutex = cl_mutex_new()
    }

    deinit { cl_mutex_free(mutex) }

    public func lock() { pthread_mutex_lock(mutex) }
    public func unlock() { pthread_mutex_unlock(mutex) }

    public func withLock<R>(_ body: () -> R) -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return body()
    }
}

/// A value shared between threads, read and replaced whole under a lock.
public final class Locked<Value> {
    private let lock = Lock()
    private var value: Value

    public init(_ value: Value) { self.value = value }

    public func get() -> Value { lock.withLock { value } }
    public func set(_ newValue: Value) { lock.withLock { value = newValue } }
    public func update<R>(_ body: (inout Value) -> R) -> R { lock.withLock { body(&value) } }
}

/// A one-shot rendezvous: one thread waits (bounded) until another signals.
public final class Completion {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private var cond = pthread_cond_t()
    private var done = false

    public init() {
        mutex = cl_mutex_new()
        pthread_cond_init(&cond, nil)
    }

    deinit {
        pthread_cond_destroy(&cond)
        cl_mutex_free(mutex)
    }

    public func signal() {
        pthread_mutex_lock(mutex)
        done = true
        pthread_cond_broadcast(&cond)
        pthread_mutex_unlock(mutex)
    }

    /// Waits with no bound: only for work known to be under way and short (`Reactor.call`'s claimed body).
    public func wait() {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while !done { pthread_cond_wait(&cond, mutex) }
    }

    /// Returns false on timeout.
    public func wait(timeoutMs: Int) -> Bool {
        var deadline = timespec()
        clock_gettime(CLOCK_REALTIME, &deadline)
        deadline.tv_sec += timeoutMs / 1000
        deadline.tv_nsec += (timeoutMs % 1000) * 1_000_000
        if deadline.tv_nsec >= 1_000_000_000 {
            deadline.tv_sec += 1
            deadline.tv_nsec -= 1_000_000_000
        }
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while !done {
            if pthread_cond_timedwait(&cond, mutex, &deadline) != 0 { return done }
        }
        return true
    }
}
