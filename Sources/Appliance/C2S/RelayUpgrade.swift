import Relay

/// The HTTP side of `GET /ssh/tunnel/c2s/stream` (tunnels-api.md §9), decided on the headers of an authenticated
/// request: the `Origin` rule (403), a well-formed RFC 6455 version-13 upgrade (400 or 426), room under
/// `limits.maxRelays` (503) and, for a non-admin, under a quarter of it (429), then 101 and the socket goes to the relay service.
public enum RelayUpgrade {
    static func answer(_ request: HTTPRequestHead, user: User, context: ApplianceContext) -> HTTPResponse {
        let config = context.config.get()
        guard OriginPolicy.allows(origin: request.header("Origin"), host: request.header("Host"),
                                  allowed: config.allowedOrigins) else {
            Log.warn("c2s.origin_refused", [("user", user.id), ("origin", request.header("Origin") ?? "")])
            return Router.error(403, "Origin not allowed")
        }
        guard hasToken(request.header("Upgrade"), "websocket"), hasToken(request.header("Connection"), "upgrade") else {
            return Router.error(426, "WebSocket upgrade required", headers: [("Upgrade", "websocket")])
        }
        guard request.header("Sec-WebSocket-Version") == "13" else {
            return Router.error(426, "Unsupported WebSocket version", headers: [("Sec-WebSocket-Version", "13")])
        }
        guard let key = request.header("Sec-WebSocket-Key"), Base64.decode(key)?.count == 16 else {
            return Router.error(400, "Invalid Sec-WebSocket-Key")
        }
        guard let relay = context.relay else { return Router.error(503, "Too many relays") }
        switch relay.room(for: user) {
        case .available: break
        case .full:
            Log.warn("c2s.limit_reached", [("user", user.id)])
            Refusals.shared.count(.relayLimit)
            return Router.error(503, "Too many relays")
        case .userShare:
            Log.warn("c2s.user_limit_reached", [("user", user.id)])
            Refusals.shared.count(.relayLimit)
            return Router.error(429, "Relay limit reached for this user")
        }
        var response = HTTPResponse(status: 101, contentType: "", body: [])
        response.headers = [("Upgrade", "websocket"), ("Sec-WebSocket-Accept", accept(key))]
        response.upgrade = RelayTaker(relay: relay, userId: user.id)
        return response
    }

    static func accept(_ key: String) -> String {
        Base64.encode(Digest.sha1(WebSocketFrame.acceptInput(key: key)))
    }

    /// A comma-separated header holds `token` (case-insensitive): `Connection: keep-alive, Upgrade`.
    public static func hasToken(_ header: String?, _ token: String) -> Bool {
        guard let header else { return false }
        for part in header.split(separator: ",") {
            let trimmed = part.utf8.drop { $0 == 32 || $0 == 9 }
            var text = Array(trimmed)
            while let last = text.last, last == 32 || last == 9 { text.removeLast() }
            if HTTPRequestHead.equalsIgnoringCase(String(decoding: text, as: UTF8.self), token) { return true }
        }
        return false
    }
}

/// Hands the upgraded socket and the authenticated user to the relay service.
final class RelayTaker: HTTPUpgradeTaker {
    let relay: RelayService
    let userId: String

    init(relay: RelayService, userId: String) {
        self.relay = relay
        self.userId = userId
    }

    func take(_ socket: UpgradedSocket) {
        relay.adopt(fd: socket.fd, early: socket.early, userId: userId) { socket.handBack() }
    }
}
