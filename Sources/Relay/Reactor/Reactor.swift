import CLinux

/// One epoll loop on one thread. Other threads hand it work with `post` (an eventfd wakes it); a periodic tick
/// (timerfd) drives timeouts and countdowns. File descriptors are watched with `watch`, and their handlers run on
/// the loop thread, so everything the loop owns needs no lock.
public final class Reactor {
    public typealias Handler = (UInt32) -> Void

    private let epoll: Int32
    private let wakeFd: Int32
    private let tickFd: Int32
    private let queueLock = Lock()
    private var queue: [() -> Void] = []
    private var handlers: [Int32: Handler] = [:]
    private var onTick: (() -> Void)?
    private var running = true
    private var thread: Thread?

    /// nil when the kernel refuses the descriptors (fd limit reached).
    public init?(tickMilliseconds: Int) {
        epoll = epoll_create1(Int32(EPOLL_CLOEXEC))
        wakeFd = eventfd(0, Int32(EFD_CLOEXEC | EFD_NONBLOCK))
        tickFd = timerfd_create(CLOCK_MONOTONIC, Int32(TFD_CLOEXEC | TFD_NONBLOCK))
        // on failure deinit closes what was opened: a class's deinit runs after a failable init that had set every
        // property returns nil, so closing here too would close each number twice (and the second close can take a
        // descriptor another thread has just been given)
        guard epoll >= 0, wakeFd >= 0, tickFd >= 0 else { return nil }
        var spec = itimerspec()
        spec.it_interval.tv_sec = tickMilliseconds / 1000
        spec.it_interval.tv_nsec = (tickMilliseconds % 1000) * 1_000_000
        spec.it_value = spec.it_interval
        timerfd_settime(tickFd, 0, &spec, nil)
        addToEpoll(wakeFd, CL_EPOLLIN)
        addToEpoll(tickFd, CL_EPOLLIN)
    }

    deinit {
        for fd in [epoll, wakeFd, tickFd] where fd >= 0 { close(fd) }
    }

    private func addToEpoll(_ fd: Int32, _ events: UInt32) {
        var event = epoll_event()
        event.events = events
        event.data.fd = fd
        epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event)
    }

    /// Runs `body` on the loop thread, in posting order.
    public func post(_ body: @escaping () -> Void) {
        queueLock.withLock { queue.append(body) }
        var one: UInt64 = 1
        _ = write(wakeFd, &one, 8)
    }

    /// Runs `body` on the loop thread and waits for it, at most `timeoutMs` for the loop to take it: true once it
    /// ran; false when the loop did not take it in time, and then it never runs (cancelled), so a caller may answer
    /// an error for it. The loop and the caller giving up race for one claim: whoever takes it first decides. A body
    /// the loop took just before the caller gave up is waited for to its end (loop work never blocks), so true and
    /// false are both the truth.
    public func call(timeoutMs: Int = 5000, _ body: @escaping () -> Void) -> Bool {
        let claim = CallClaim()
        let done = Completion()
        post {
            guard claim.take() else { return }   // the caller gave up: it answered without this
            body()
            done.signal()
        }
        if done.wait(timeoutMs: timeoutMs) { return true }
        if claim.take() { return false }
        done.wait()
        return true
    }

    /// Runs `body` on the loop thread in any case, and waits for it at most `timeoutMs`: true once it ran; false
    /// when it had not run by then — it is still to come, and runs before anything posted after this call. For
    /// work that must happen whether or not anyone waits for it (releasing an attempt, stopping).
    @discardableResult
    public func callEventually(timeoutMs: Int = 5000, _ body: @escaping () -> Void) -> Bool {
        let done = Completion()
        post {
            body()
            done.signal()
        }
        return done.wait(timeoutMs: timeoutMs)
    }

    /// Loop thread only.
    public func setTick(_ body: @escaping () -> Void) { onTick = body }

    /// Loop thread only: watch `fd` for `events` (EPOLLIN/EPOLLOUT…); replaces an earlier registration.
    public func watch(_ fd: Int32, events: UInt32, _ handler: @escaping Handler) -> Bool {
        var event = epoll_event()
        event.events = events
        event.data.fd = fd
        let op = handlers[fd] == nil ? EPOLL_CTL_ADD : EPOLL_CTL_MOD
        guard epoll_ctl(epoll, op, fd, &event) == 0 else { return false }
        handlers[fd] = handler
        return true
    }

    /// Loop thread only.
    public func unwatch(_ fd: Int32) {
        guard handlers.removeValue(forKey: fd) != nil else { return }
        epoll_ctl(epoll, EPOLL_CTL_DEL, fd, nil)
    }

    public func start(name: String) -> Bool {
        thread = Thread.spawn { [self] in self.loop() }
        return thread != nil
    }

    /// Stops the loop after the work already posted, and joins its thread.
    public func stop() {
        post { [self] in self.running = false }
        thread?.join()
        thread = nil
    }

    private func loop() {
        var events = [epoll_event](repeating: epoll_event(), count: 64)
        while running {
            let n = epoll_wait(epoll, &events, Int32(events.count), -1)
            if n < 0 {
                if clinux_errno() == EINTR { continue }
                break
            }
            for i in 0..<Int(n) {
                let fd = events[i].data.fd
                if fd == wakeFd {
                    var count: UInt64 = 0
                    _ = read(wakeFd, &count, 8)
                    runQueue()
                } else if fd == tickFd {
                    var expirations: UInt64 = 0
                    _ = read(tickFd, &expirations, 8)
                    onTick?()
                } else if let handler = handlers[fd] {
                    handler(events[i].events)
                }
            }
        }
        runQueue()
    }

    private func runQueue() {
        while true {
            let batch = queueLock.withLock { () -> [() -> Void] in
                let taken = queue
                queue = []
                return taken
            }
            if batch.isEmpty { return }
            for work in batch { work() }
        }
    }
}

/// The one claim of a `Reactor.call`: taken by the loop (the body runs) or by the caller that gave up (it never will).
final class CallClaim {
    private let lock = Lock()
    private var taken = false

    /// True for the first taker only.
    func take() -> Bool {
        lock.withLock {
            if taken { return false }
            taken = true
            return true
        }
    }
}
