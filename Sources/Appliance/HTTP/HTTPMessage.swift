/// What the HTTP layer hands to the router and gets back: plain values, no libmicrohttpd, so routing and every
/// answer can be unit-tested without sockets.
public struct HTTPRequestHead {
    public var method: String
    public var path: String
    public var headers: [(String, String)]
    /// The peer's IP address as text ("" when unknown); for throttling, never for authentication.
    public var remoteAddress: String

    public init(method: String, path: String, headers: [(String, String)] = [], remoteAddress: String = "") {
        self.method = method
        self.path = path
        self.headers = headers
        self.remoteAddress = remoteAddress
    }

    /// Case-insensitive header lookup (first occurrence).
    public func header(_ name: String) -> String? {
        for (key, value) in headers where HTTPRequestHead.equalsIgnoringCase(key, name) { return value }
        return nil
    }

    static func equalsIgnoringCase(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        guard x.count == y.count else { return false }
        for i in 0..<x.count where lower(x[i]) != lower(y[i]) { return false }
        return true
    }

    static func lower(_ b: UInt8) -> UInt8 { b >= 65 && b <= 90 ? b + 32 : b }
}

public struct HTTPResponse {
    public var status: Int
    public var headers: [(String, String)]
    public var body: [UInt8]
    /// A response of unknown length produced as it goes (Server-Sent Events); `body` is unused then.
    public var stream: (any HTTPStream)?
    /// A 101 Switching Protocols: once it is sent, the socket goes to this taker (`body` is unused).
    public var upgrade: (any HTTPUpgradeTaker)?
    /// An answer too slow to compute on the server's thread (a password hash): the server runs it on its worker and
    /// holds the connection meanwhile (`body` is unused).
    public var deferred: HTTPDeferred?

    public init(status: Int, contentType: String, body: [UInt8], headers: [(String, String)] = []) {
        self.status = status
        self.headers = [("Content-Type", contentType)] + headers
        self.body = body
    }

    public static func text(_ status: Int, _ text: String) -> HTTPResponse {
        HTTPResponse(status: status, contentType: "text/plain; charset=utf-8", body: Array(text.utf8))
    }

    /// JSON text produced by the caller (the JSON writer lives in the JSON module).
    public static func json(_ status: Int, _ json: String, headers: [(String, String)] = []) -> HTTPResponse {
        HTTPResponse(status: status, contentType: "application/json", body: Array(json.utf8), headers: headers)
    }
}

/// Work that produces the answer off the server's thread, and the answer to give instead when it cannot be run
/// (the worker is busy with other clients' work, or the server is stopping).
public final class HTTPDeferred {
    public let work: () -> HTTPResponse
    public let instead: HTTPResponse
    /// Takes the worker's reserved places and runs before other waiting work (`WorkerThread.reserved`).
    public let priority: Bool

    public init(instead: HTTPResponse, priority: Bool = false, _ work: @escaping () -> HTTPResponse) {
        self.work = work
        self.instead = instead
        self.priority = priority
    }
}

extension HTTPResponse {
    public static func deferred(instead: HTTPResponse, priority: Bool = false,
                                _ work: @escaping () -> HTTPResponse) -> HTTPResponse {
        var response = HTTPResponse(status: 0, contentType: "", body: [])
        response.deferred = HTTPDeferred(instead: instead, priority: priority, work)
        return response
    }
}

public enum HTTPStreamRead {
    case bytes(Int)   // this many bytes were written into the buffer
    case wait         // nothing now: the server suspends the connection until `HTTPStreamWaker.wake`
    case end          // the stream is over
}

/// Resumes a suspended streaming connection; valid until the stream's `finished` is called.
public final class HTTPStreamWaker {
    let resume: () -> Void
    init(_ resume: @escaping () -> Void) { self.resume = resume }
    public func wake() { resume() }
}

/// The producer of a streaming response. Every call comes from the server's thread except `wake`.
public protocol HTTPStream: AnyObject {
    /// The connection is in place; keep the waker to resume it when data arrives.
    func attach(_ waker: HTTPStreamWaker)
    func read(into buffer: UnsafeMutableRawBufferPointer) -> HTTPStreamRead
    /// The connection is gone (closed by the peer, timed out, or the server is stopping). Never wake after this.
    func finished()
}

/// The socket of a connection that switched protocols. It stays libmicrohttpd's: never close `fd`; call
/// `handBack` exactly once when done with it (any thread), and never touch `fd` after that.
public final class UpgradedSocket {
    public let fd: Int32
    /// Bytes the client sent right after its request, already read from the socket.
    public let early: [UInt8]
    private let close: () -> Void

    init(fd: Int32, early: [UInt8], close: @escaping () -> Void) {
        self.fd = fd
        self.early = early
        self.close = close
    }

    public func handBack() { close() }
}

/// Takes over a connection after a 101 answer; called on the server's thread, must not block.
public protocol HTTPUpgradeTaker: AnyObject {
    func take(_ socket: UpgradedSocket)
}

/// The router's answer once the request line and headers are in: answer now (404, 405, 401, …) without reading
/// the body, or read a body of at most `limit` bytes and call `complete`.
public enum HTTPDecision {
    case respond(HTTPResponse)
    case readBody(limit: Int)
}

/// The application side of the server. A class protocol: Embedded Swift has existentials only for those.
public protocol HTTPHandler: AnyObject {
    func head(_ request: HTTPRequestHead) -> HTTPDecision
    func complete(_ request: HTTPRequestHead, body: [UInt8]) -> HTTPResponse
    /// The answer for a body over the limit, decided from Content-Length or while it streams in.
    func bodyTooLarge(_ request: HTTPRequestHead) -> HTTPResponse
}
