import CLinux
import CMicroHTTPD
import Relay

/// libmicrohttpd in its own polling thread (epoll, suspend/resume allowed for SSE, upgrade allowed for WebSocket).
/// Handlers run on MHD's thread and must not block.
public final class HTTPServer {
    public struct Settings {
        public var address: SocketAddress
        public var connectionLimit: UInt32 = 1024
        public var perIPLimit: UInt32 = 0
        public var timeoutSeconds: UInt32 = 60
        public var memoryLimit: Int = 32 * 1024

        public init(address: SocketAddress) { self.address = address }
    }

    let handler: any HTTPHandler
    private var daemon: OpaquePointer?

    public init(handler: any HTTPHandler) {
        self.handler = handler
    }

    /// Starts listening; returns the bound port (useful with port 0), or nil when the address cannot be bound.
    public func start(_ settings: Settings) -> UInt16? {
        var flags = CMHD_SERVER_FLAGS
        if settings.address.isIPv6 { flags |= CMHD_USE_IPV6 }
        let context = Unmanaged.passUnretained(self).toOpaque()
        daemon = settings.address.withSockaddr { sa, _ -> OpaquePointer? in
            var options = cmhd_options(address: sa, connection_limit: settings.connectionLimit,
                                       per_ip_limit: settings.perIPLimit, timeout_seconds: settings.timeoutSeconds,
                                       memory_limit: settings.memoryLimit, thread_pool_size: 1)
            return cmhd_start_daemon(flags, &options, httpAccessHandler, context,
                                     httpRequestCompleted, context)
        }
        guard let daemon else { return nil }
        return cmhd_bound_port(daemon)
    }

    public func stop() {
        guard let daemon else { return }
        MHD_stop_daemon(daemon)
        self.daemon = nil
    }

    deinit { stop() }
}

/// Per-request state kept in MHD's `con_cls` while a body streams in.
final class HTTPRequestState {
    let head: HTTPRequestHead
    let limit: Int
    var body: [UInt8] = []
    var tooLarge = false

    init(head: HTTPRequestHead, limit: Int) {
        self.head = head
        self.limit = limit
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
            if !state.tooLarge {
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
        let response = state.tooLarge ? server.handler.bodyTooLarge(state.head)
                                      : server.handler.complete(state.head, body: state.body)
        return queue(response, on: connection)
    }

    let head = HTTPRequestHead(method: String(cString: method), path: String(cString: url),
                               headers: requestHeaders(connection))
    switch server.handler.head(head) {
    case .respond(let response):
        return queue(response, on: connection)
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
    guard let conCls, let state = conCls.pointee else { return }
    Unmanaged<HTTPRequestState>.fromOpaque(state).release()
    conCls.pointee = nil
}

/// Collects the request headers through MHD's iterator.
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

private func queue(_ response: HTTPResponse, on connection: OpaquePointer) -> MHD_Result {
    var body = response.body
    let made = body.withUnsafeMutableBytes { raw in
        MHD_create_response_from_buffer(raw.count, raw.baseAddress, .RESPMEM_MUST_COPY)
    }
    guard let made else { return .NO }
    for (name, value) in response.headers {
        _ = MHD_add_response_header(made, name, value)
    }
    if !response.headers.contains(where: { HTTPRequestHead.equalsIgnoringCase($0.0, "Cache-Control") }) {
        _ = MHD_add_response_header(made, "Cache-Control", "no-store")
    }
    let result = MHD_queue_response(connection, UInt32(response.status), made)
    MHD_destroy_response(made)
    return result
}
