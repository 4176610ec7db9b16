/// Maps requests to answers. For now: the health check; every other path is 404 as the API contract writes it.
public final class Router: HTTPHandler {
    public static let maxBodyBytes = 64 * 1024

    public init() {}

    public func head(_ request: HTTPRequestHead) -> HTTPDecision {
        if request.path == "/healthz" {
            guard request.method == "GET" || request.method == "HEAD" else {
                return .respond(.json(405, #"{"error":"Method not allowed"}"#))
            }
            return .respond(.text(200, "ok"))
        }
        return .respond(.json(404, #"{"error":"Not found"}"#))
    }

    public func complete(_ request: HTTPRequestHead, body: [UInt8]) -> HTTPResponse {
        .json(404, #"{"error":"Not found"}"#)
    }

    public func bodyTooLarge(_ request: HTTPRequestHead) -> HTTPResponse {
        .json(413, #"{"error":"Request body too large"}"#)
    }
}
