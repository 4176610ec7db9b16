import CLinux

/// Host names to numeric addresses without blocking the reactor: getaddrinfo may wait seconds on DNS, so lookups run
/// on one worker thread and their answers are posted back to the reactor. IP literals never come here (the caller
/// parses them at once). One worker serialises lookups; a name is rare in a tunnel's life compared to its bytes.
public final class Resolver {
    private let reactor: Reactor
    private let jobs = Locked<[(String, ([String]) -> Void)]>([])
    private let stopping = Locked(false)
    /// A blocking semaphore eventfd: the worker sleeps in read(2) until a job or stop arrives.
    private let wake: Int32
    private var worker: Thread?

    public init?(reactor: Reactor) {
        self.reactor = reactor
        wake = eventfd(0, Int32(EFD_CLOEXEC | EFD_SEMAPHORE))
        guard wake >= 0 else { return nil }
        worker = Thread.spawn { [self] in self.run() }
        guard worker != nil else {
            close(wake)
            return nil
        }
    }

    deinit { close(wake) }

    /// `done` runs on the reactor with the addresses (IPv4 and IPv6 text), empty when the name does not resolve.
    public func resolve(_ name: String, _ done: @escaping ([String]) -> Void) {
        jobs.update { $0.append((name, done)) }
        var one: UInt64 = 1
        _ = write(wake, &one, 8)
    }

    /// Joins the worker after the lookup in progress (pending ones are dropped).
    public func stop() {
        stopping.set(true)
        jobs.update { $0.removeAll() }
        var one: UInt64 = 1
        _ = write(wake, &one, 8)
        worker?.join()
        worker = nil
    }

    private func run() {
        while true {
            var count: UInt64 = 0
            let n = read(wake, &count, 8)
            if n < 0 && clinux_errno() == EINTR { continue }
            if stopping.get() { return }
            let job = jobs.update { $0.isEmpty ? nil : $0.removeFirst() }
            guard let (name, done) = job else { continue }
            let addresses = Resolver.lookup(name)
            reactor.post { done(addresses) }
        }
    }

    /// Blocking; worker threads and tests only.
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
