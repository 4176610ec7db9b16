import CLinux
import CMicroHTTPD
import Relay

/// libmicrohttpd in its own polling thread (epoll, suspend/resume allowed for SSE, upgrade allowed for WebSocket).
/// Handlers run on MHD's thread and must not block: an answer that takes long to compute (a password hash) comes
/// back `deferred` and runs on the server's one worker thread while its connection is suspended.
public final class HTTPServer {
    public struct Settings {
        public var address: SocketAddress
        public var connectionLimit: UInt32 = 1024
        /// One address holds at most a quarter of the connections (issue #15: 1100 half-sent requests from one
        /// address took every slot; issue #24: at a half, two addresses still did), so four are needed to fill
        /// them. A reverse proxy in front counts as one address (`X-Forwarded-For` is not trusted).
        public var perIPLimit: UInt32 = 256
        /// Until a request's headers are complete (slowloris): MHD's daemon-wide idle timeout, and the deadline
        /// for the whole header (`HeaderDeadlines`), which trickled bytes do not extend.
        public var headerTimeoutSeconds: UInt32 = 10
        /// Idle limit once a request's headers are in (bodies, keep-alive between requests).
        public var timeoutSeconds: UInt32 = 60
        public var memoryLimit: Int = 32 * 1024
        /// Deferred answers waiting or running, in all and per client address (a login costs ~0.1 s of a core).
        public var deferredLimit = 8
        public var deferredPerAddress = 2
        /// Places of `deferredLimit` kept for logins that jump the queue (`LoginThrottle.trusted`).
        public var deferredReserved = 2

        public init(address: SocketAddress) { self.address = address }
    }

    let handler: any HTTPHandler
    private var daemon: OpaquePointer?
    /// Set before the daemon starts, read on its thread.
    private(set) var requestTimeoutSeconds: UInt32 = 60
    /// Runs deferred answers; nil when its thread could not start (they then run on MHD's thread, as before).
    private(set) var worker: WorkerThread?
    /// Fed on MHD's thread, expired from `expireHeaders` (the serve loop); a socket is shut down with the lock held,
    /// and MHD reports a connection closed (which takes the lock) before it closes the socket, so a named
    /// descriptor is always still this connection's.
    let deadlineLock = Lock()
    var deadlines = HeaderDeadlines(deadlineMs: 10_000)

    public init(handler: any HTTPHandler) {
        self.handler = handler
    }

    /// Starts listening; returns the bound port (useful with port 0), or nil when the address cannot be bound.
    public func start(_ settings: Settings) -> UInt16? {
        var flags = CMHD_SERVER_FLAGS
        if settings.address.isIPv6 { flags |= CMHD_USE_IPV6 }
        let context = Unmanaged.passUnretained(self).toOpaque()
        requestTimeoutSeconds = settings.timeoutSeconds
        deadlines = HeaderDeadlines(deadlineMs: Int64(settings.headerTimeoutSeconds) * 1000)
        worker = WorkerThread(capacity: settings.deferredLimit, perKeyLimit: settings.deferredPerAddress,
                              reserved: settings.deferredReserved)
        daemon = settings.address.withSockaddr { sa, _ -> OpaquePointer? in
            var options = cmhd_options(address: sa, connection_limit: settings.connectionLimit,
                                       per_ip_limit: settings.perIPLimit, timeout_seconds: settings.headerTimeoutSeconds,
                                       memory_limit: settings.memoryLimit, thread_pool_size: 1,
                                       notify_connection: httpConnectionNotified, notify_cls: context)
            return cmhd_start_daemon(flags, &options, httpAccessHandler, context,
                                     httpRequestCompleted, context)
        }
        guard let daemon else { return nil }
        return cmhd_bound_port(daemon)
    }

    /// Shuts down connections whose request headers are overdue (call every few hundred milliseconds).
    public func expireHeaders() {
        deadlineLock.withLock {
            for fd in deadlines.expired(nowMs: Clock.monotonicMs()) { _ = shutdown(fd, Int32(SHUT_RDWR)) }
        }
    }

    func connectionKey(_ connection: OpaquePointer) -> UInt { UInt(bitPattern: Int(bitPattern: connection)) }

    public func stop() {
        // Every deferred answer resumes its connection (those still queued with their `instead`): MHD aborts when
        // stopped with a connection suspended.
        worker?.stop()
        worker = nil
        guard let daemon else { return }
        MHD_stop_daemon(daemon)
        self.daemon = nil
    }

    /// Suspends the connection and hands the work to the worker, which stores the answer and resumes it; MHD then
    /// calls the access handler again, which sends the stored answer.
    fileprivate func runDeferred(_ deferred: HTTPDeferred, state: HTTPRequestState,
                                 connection: OpaquePointer) -> MHD_Result {
        guard let worker else { return queue(deferred.work(), on: connection) }
        state.waiting = true
        MHD_suspend_connection(connection)
        let accepted = worker.submit(key: state.head.remoteAddress, priority: deferred.priority) { cancelled in
            state.decided = cancelled ? deferred.instead : deferred.work()
            MHD_resume_connection(connection)
        }
        if !accepted {
            state.decided = deferred.instead
            MHD_resume_connection(connection)
        }
        return .YES
    }

    deinit { stop() }
}

/// Per-request state kept in MHD's `con_cls` while a body streams in.
final class HTTPRequestState {
    let head: HTTPRequestHead
    let limit: Int
    var body: [UInt8] = []
    var tooLarge = false
    /// Decided from the headers alone, sent on the next call: MHD closes any connection whose response is queued
    /// in the first call, so answering there would cost every client its keep-alive.
    var decided: HTTPResponse?
    /// A deferred answer is being computed; the connection is suspended until `decided` is set.
    var waiting = false

    init(head: HTTPRequestHead, limit: Int, decided: HTTPResponse? = nil) {
        self.head = head
        self.limit = limit
        self.decided = decided
    }
}

private func httpAccessHandler(
    _ cls: UnsafeMutableRawPointer?, _ connection: OpaquePointer?, _ url: UnsafePointer<CChar>?,
    _ method: UnsafePointer<CChar>?, _ version: UnsafePointer<CChar>?, _ uploadData: UnsafePointer<CChar>?,
    _ uploadSize: UnsafeMutablePointer<Int>?, _ conCls: UnsafeMutablePointer<UnsafeMutableRawPointer?>?
) -> MHD_Result {
    guard let cls, let connection, let url, let method, let uploadSize, let conCls else { return .NO }
    let server = Unmanaged<HTTPServer>.fromOpaque(cls).takeUnretainedValue()

    if let existing = conCls.pointee {
        let state = Unmanaged<HTTPRequestState>.fromOpaque(existing).takeUnretainedValue()
        if uploadSize.pointee > 0 {
            let count = uploadSize.pointee
            if !state.tooLarge && state.decided == nil {
                if state.body.count + count > state.limit {
                    state.tooLarge = true
                    state.body = []
                } else if let uploadData {
                    uploadData.withMemoryRebound(to: UInt8.self, capacity: count) {
                        state.body.append(contentsOf: UnsafeBufferPointer(start: $0, count: count))
                    }
                }
            }
            uploadSize.pointee = 0   // consumed (or discarded, so that the 413 can go out at the end)
            return .YES
        }
        if let decided = state.decided { return queue(decided, on: connection) }
        if state.waiting { return .YES }
        let response = state.tooLarge ? server.handler.bodyTooLarge(state.head)
                                      : server.handler.complete(state.head, body: state.body)
        if let deferred = response.deferred {
            return server.runDeferred(deferred, state: state, connection: connection)
        }
        return queue(response, on: connection)
    }

    // the headers are complete: from here on the connection gets the ordinary idle limit
    cmhd_set_timeout(connection, server.requestTimeoutSeconds)
    let key = server.connectionKey(connection)
    server.deadlineLock.withLock { server.deadlines.headersIn(key) }
    let head = HTTPRequestHead(method: String(cString: method), path: String(cString: url),
                               headers: requestHeaders(connection), remoteAddress: clientAddress(connection))
    switch server.handler.head(head) {
    case .respond(let response):
        // A request that carries a body is answered at once (and its connection closed) rather than read in vain.
        let declared = head.header("Content-Length").flatMap { Int($0) } ?? 0
        if declared > 0 || head.header("Transfer-Encoding") != nil {
            return queue(response, on: connection)
        }
        let state = HTTPRequestState(head: head, limit: 0, decided: response)
        conCls.pointee = Unmanaged.passRetained(state).toOpaque()
        return .YES
    case .readBody(let limit):
        if let length = head.header("Content-Length"), let declared = Int(length), declared > limit {
            return queue(server.handler.bodyTooLarge(head), on: connection)
        }
        let state = HTTPRequestState(head: head, limit: limit)
        conCls.pointee = Unmanaged.passRetained(state).toOpaque()
        return .YES
    }
}

private func httpRequestCompleted(
    _ cls: UnsafeMutableRawPointer?, _ connection: OpaquePointer?,
    _ conCls: UnsafeMutablePointer<UnsafeMutableRawPointer?>?, _ reason: MHD_RequestTerminationCode
) {
    if let cls, let connection {
        let server = Unmanaged<HTTPServer>.fromOpaque(cls).takeUnretainedValue()
        let key = server.connectionKey(connection)
        // an upgraded connection (answered from its headers) carries no more requests: no header deadline
        let upgrade = conCls?.pointee.map {
            Unmanaged<HTTPRequestState>.fromOpaque($0).takeUnretainedValue().decided?.upgrade != nil
        } ?? false
        server.deadlineLock.withLock {
            if upgrade {
                server.deadlines.upgraded(key)
            } else {
                server.deadlines.requestDone(key, nowMs: Clock.monotonicMs())
            }
        }
    }
    guard let conCls, let state = conCls.pointee else { return }
    Unmanaged<HTTPRequestState>.fromOpaque(state).release()
    conCls.pointee = nil
}

/// MHD's connection start and end: the header deadline's bookkeeping.
private func httpConnectionNotified(_ cls: UnsafeMutableRawPointer?, _ connection: OpaquePointer?,
                                    _ socketContext: UnsafeMutablePointer<UnsafeMutableRawPointer?>?,
                                    _ code: MHD_ConnectionNotificationCode) {
    guard let cls, let connection else { return }
    let server = Unmanaged<HTTPServer>.fromOpaque(cls).takeUnretainedValue()
    let key = server.connectionKey(connection)
    if Int32(code.rawValue) == CMHD_NOTIFY_STARTED {
        let fd = cmhd_connection_fd(connection)
        guard fd >= 0 else { return }
        server.deadlineLock.withLock { server.deadlines.started(key, fd: fd, nowMs: Clock.monotonicMs()) }
    } else {
        server.deadlineLock.withLock { server.deadlines.closed(key) }
    }
}

/// Collects the request headers through MHD's iterator.
private func clientAddress(_ connection: OpaquePointer) -> String {
    guard let raw = cmhd_client_address(connection), let address = SocketAddress(raw) else { return "" }
    return address.ipString
}

final class HeaderCollector { var headers: [(String, String)] = [] }

private func requestHeaders(_ connection: OpaquePointer) -> [(String, String)] {
    let collector = HeaderCollector()
    let context = Unmanaged.passUnretained(collector).toOpaque()
    _ = MHD_get_connection_values(connection, .HEADER_KIND, { cls, _, key, value in
        guard let cls, let key else { return .YES }
        let collector = Unmanaged<HeaderCollector>.fromOpaque(cls).takeUnretainedValue()
        if collector.headers.count < 100 {
            collector.headers.append((String(cString: key), value.map { String(cString: $0) } ?? ""))
        }
        return .YES
    }, context)
    return collector.headers
}

/// Keeps a stream and its connection together for MHD's reader and free callbacks.
final class HTTPStreamContext {
    let stream: any HTTPStream
    let connection: OpaquePointer
    init(stream: any HTTPStream, connection: OpaquePointer) {
        self.stream = stream
        self.connection = connection
    }
}

private func streamReader(_ cls: UnsafeMutableRawPointer?, _ position: UInt64, _ buffer: UnsafeMutablePointer<CChar>?,
                          _ max: Int) -> Int {
    guard let cls, let buffer else { return CMHD_READER_END }
    let context = Unmanaged<HTTPStreamContext>.fromOpaque(cls).takeUnretainedValue()
    switch context.stream.read(into: UnsafeMutableRawBufferPointer(start: buffer, count: max)) {
    case .bytes(let n): return n
    case .end: return CMHD_READER_END
    case .wait:
        // legal from the content reader; a wake that raced ahead turns this into a no-op
        MHD_suspend_connection(context.connection)
        return 0
    }
}

private func streamFinished(_ cls: UnsafeMutableRawPointer?) {
    guard let cls else { return }
    let context = Unmanaged<HTTPStreamContext>.fromOpaque(cls).takeRetainedValue()
    context.stream.finished()
}

/// Holds the taker until libmicrohttpd has sent the 101 and calls back.
final class HTTPUpgradeContext {
    let taker: any HTTPUpgradeTaker
    init(taker: any HTTPUpgradeTaker) { self.taker = taker }
}

private func upgraded(_ cls: UnsafeMutableRawPointer?, _ connection: OpaquePointer?, _ conCls: UnsafeMutableRawPointer?,
                      _ extraIn: UnsafePointer<CChar>?, _ extraSize: Int, _ fd: Int32, _ urh: OpaquePointer?) {
    guard let cls else { return }
    let context = Unmanaged<HTTPUpgradeContext>.fromOpaque(cls).takeRetainedValue()
    guard let urh else { return }
    var early: [UInt8] = []
    if let extraIn, extraSize > 0 {
        extraIn.withMemoryRebound(to: UInt8.self, capacity: extraSize) {
            early = Array(UnsafeBufferPointer(start: $0, count: extraSize))
        }
    }
    let once = Locked(false)
    context.taker.take(UpgradedSocket(fd: fd, early: early) {
        guard !once.update({ (done: inout Bool) -> Bool in let was = done; done = true; return was }) else { return }
        _ = cmhd_upgrade_close(urh)
    })
}

private func makeResponse(_ response: HTTPResponse, on connection: OpaquePointer) -> OpaquePointer? {
    if let taker = response.upgrade {
        let raw = Unmanaged.passRetained(HTTPUpgradeContext(taker: taker)).toOpaque()
        guard let made = MHD_create_response_for_upgrade(upgraded, raw) else {
            Unmanaged<HTTPUpgradeContext>.fromOpaque(raw).release()
            return nil
        }
        return made
    }
    if let stream = response.stream {
        let context = HTTPStreamContext(stream: stream, connection: connection)
        let raw = Unmanaged.passRetained(context).toOpaque()
        guard let made = MHD_create_response_from_callback(CMHD_SIZE_UNKNOWN, 4096, streamReader, raw,
                                                           streamFinished) else {
            Unmanaged<HTTPStreamContext>.fromOpaque(raw).release()
            return nil
        }
        stream.attach(HTTPStreamWaker { MHD_resume_connection(connection) })
        return made
    }
    var body = response.body
    return body.withUnsafeMutableBytes { raw in
        MHD_create_response_from_buffer(raw.count, raw.baseAddress, .RESPMEM_MUST_COPY)
    }
}

private func queue(_ response: HTTPResponse, on connection: OpaquePointer) -> MHD_Result {
    guard let made = makeResponse(response, on: connection) else { return .NO }
    for (name, value) in response.headers {
        if HTTPRequestHead.equalsIgnoringCase(name, "Connection") && HTTPRequestHead.equalsIgnoringCase(value, "keep-alive") {
            _ = cmhd_send_keep_alive_header(made)   // MHD ignores this header when added by name
            continue
        }
        _ = MHD_add_response_header(made, name, value)
    }
    if !response.headers.contains(where: { HTTPRequestHead.equalsIgnoringCase($0.0, "Cache-Control") }) {
        _ = MHD_add_response_header(made, "Cache-Control", "no-store")
    }
    let result = MHD_queue_response(connection, UInt32(response.status), made)
    MHD_destroy_response(made)
    return result
}
