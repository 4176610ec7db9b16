import Relay

/// The HTTP API (tunnels-api.md §1, §2, §6, §11). Decides in the order of §1: route (404/405), then
/// authentication from the headers, then the body (413, then `Invalid JSON body`).
public final class Router: HTTPHandler {
    public static let maxBodyBytes = 64 * 1024

    let context: ApplianceContext

    public init(context: ApplianceContext) {
        self.context = context
    }

    enum Route {
        case healthz, health, metrics, status, stream, statusOf(String), connect, disconnect, cancel
        case page, login, logout, configs, relay
    }

    static let tunnelPrefix = "/ssh/tunnel/status/"

    /// The route and the methods it answers; nil for an unknown path.
    static func route(_ path: String) -> (Route, [String])? {
        switch path {
        case "/healthz": return (.healthz, ["GET", "HEAD"])
        case "/health": return (.health, ["GET", "HEAD"])   // what Termix's desktop client probes: JSON
        case "/": return (.page, ["GET", "HEAD"])
        case "/users/login": return (.login, ["POST"])
        case "/users/logout": return (.logout, ["POST"])
        case "/ssh/tunnel/configs": return (.configs, ["GET"])
        case "/metrics": return (.metrics, ["GET"])
        case "/ssh/tunnel/status": return (.status, ["GET"])
        case "/ssh/tunnel/status/stream": return (.stream, ["GET"])
        case "/ssh/tunnel/connect": return (.connect, ["POST"])
        case "/ssh/tunnel/disconnect": return (.disconnect, ["POST"])
        case "/ssh/tunnel/cancel": return (.cancel, ["POST"])
        case "/ssh/tunnel/c2s/stream": return (.relay, ["GET"])
        default:
            if path.hasPrefix(tunnelPrefix) && path.utf8.count > tunnelPrefix.utf8.count {
                return (.statusOf(String(path.dropFirst(tunnelPrefix.count))), ["GET"])
            }
            return nil
        }
    }

    static func error(_ status: Int, _ message: String, headers: [(String, String)] = []) -> HTTPResponse {
        .json(status, JSONWriter.error(message), headers: headers)
    }

    func authenticate(_ request: HTTPRequestHead) -> Result<User, AuthFailure> {
        RequestAuth.authenticate(cookie: request.header("Cookie"), authorization: request.header("Authorization"),
                                 config: context.config.get(), secret: context.secret, now: Clock.unixSeconds())
    }

    static func answer(_ failure: AuthFailure) -> HTTPResponse {
        let (status, body, headers) = RequestAuth.answer(failure)
        return .json(status, body, headers: headers)
    }

    public func head(_ request: HTTPRequestHead) -> HTTPDecision {
        guard let (route, methods) = Router.route(request.path) else {
            return .respond(Router.error(404, "Not found"))
        }
        guard methods.contains(request.method) else { return .respond(Router.error(405, "Method not allowed")) }
        // the probes (/healthz, Termix's /health) answer whatever Host names the box: they carry no data
        if case .healthz = route {} else if case .health = route {} else {
            let config = context.config.get()
            if !HostPolicy.allows(host: request.header("Host"), serverNames: config.serverNames,
                                  allowedOrigins: config.allowedOrigins) {
                return .respond(Router.error(421, HostPolicy.refusal))
            }
        }
        if case .healthz = route {} else if case .health = route {} else if case .page = route {} else {
            var login = false
            if case .login = route { login = true }
            if CrossSite.originRefused(request, allowedOrigins: context.config.get().allowedOrigins, login: login) {
                return .respond(Router.error(403, "Origin not allowed"))
            }
        }
        switch route {
        case .healthz: return .respond(.text(200, "ok"))
        case .health: return .respond(.json(200, "{\"status\":\"ok\"}"))
        case .page: return .respond(StatusPage.response())
        case .login: return .readBody(limit: Router.maxBodyBytes)
        case .logout: return .respond(Session.logout(request))
        default: break
        }
        let user: User
        switch authenticate(request) {
        case .failure(let failure): return .respond(Router.answer(failure))
        case .success(let found): user = found
        }
        switch route {
        case .metrics:
            guard user.admin else { return .respond(Router.error(403, "Admin access required")) }
            return .respond(HTTPResponse(status: 200, contentType: "text/plain; version=0.0.4; charset=utf-8",
                                         body: Array(context.metricsText().utf8)))
        case .status:
            let json = context.statusJSON(for: user)
            return .respond(.json(200, json))
        case .statusOf(let name):
            let config = context.config.get()
            guard let row = context.manager.snapshot().row(named: name), let host = config.host(id: row.hostId),
                  config.mayUse(host, user) else {
                return .respond(Router.error(404, "Tunnel not found"))
            }
            let body: JSONValue = .object([("name", .string(name)), ("status", row.status.json())])
            return .respond(.json(200, JSONWriter.write(body)))
        case .stream:
            guard let subscriber = context.hub.subscribe(userId: user.id) else {
                return .respond(Router.error(503, "Too many subscribers"))
            }
            var response = HTTPResponse(status: 200, contentType: "text/event-stream", body: [], headers: [
                ("Cache-Control", "no-store, no-transform"), ("Connection", "keep-alive"), ("X-Accel-Buffering", "no"),
            ])
            response.stream = subscriber
            return .respond(response)
        case .configs:
            return .respond(.json(200, JSONWriter.write(context.configuredTunnels(for: user))))
        case .relay:
            return .respond(RelayUpgrade.answer(request, user: user, context: context))
        case .connect, .disconnect, .cancel:
            return .readBody(limit: Router.maxBodyBytes)
        case .healthz, .health, .page, .login, .logout:
            return .respond(Router.error(405, "Method not allowed"))   // answered above
        }
    }

    public func complete(_ request: HTTPRequestHead, body: [UInt8]) -> HTTPResponse {
        guard let (route, _) = Router.route(request.path) else { return Router.error(404, "Not found") }
        if !body.isEmpty && !CrossSite.isJSON(request.header("Content-Type")) {
            // checked after authentication for the API routes (§1's order), before anything reads the body
            if case .login = route { return Router.unsupportedMediaType }
            if case .failure(let failure) = authenticate(request) { return Router.answer(failure) }
            return Router.unsupportedMediaType
        }
        if case .login = route {
            return context.session.login(request, body: body, config: context.config.get(), secret: context.secret)
        }
        let user: User
        switch authenticate(request) {
        case .failure(let failure): return Router.answer(failure)
        case .success(let found): user = found
        }
        if !body.isEmpty, (try? JSONParser.parse(body)) == nil {
            return Router.error(400, "Invalid JSON body")
        }
        switch route {
        case .connect:
            switch ConnectValidation.validate(body: body, config: context.config.get(), user: user) {
            case .failure(let error): return Router.error(error.status, error.message)
            case .success(let request):
                switch context.manager.connect(request, user: user) {
                case .accepted: break
                case .userLimit: return Router.error(429, "Tunnel limit reached for this user")
                case .registryFull: return Router.error(503, "Tunnel limit reached")
                case .unavailable: return Router.error(500, "Failed to connect tunnel")
                }
                Log.info("tunnel.connect_requested", [("tunnel", request.name.text), ("user", user.id)])
                return .json(200, JSONWriter.write(.object([
                    ("message", .string("Connection request received")), ("tunnelName", .string(request.name.text)),
                ])))
            }
        case .disconnect, .cancel:
            let isCancel: Bool
            if case .cancel = route { isCancel = true } else { isCancel = false }
            let name: String
            switch ConnectValidation.tunnelName(body: body) {
            case .failure(let error): return Router.error(error.status, error.message)
            case .success(let found): name = found
            }
            let result = isCancel ? context.manager.cancel(name, user: user)
                                  : context.manager.disconnect(name, user: user)
            switch result {
            case .notFound: return Router.error(404, "Tunnel not found")
            case .unavailable:
                return Router.error(500, isCancel ? "Failed to cancel tunnel retry" : "Failed to disconnect tunnel")
            case .done:
                Log.info(isCancel ? "tunnel.cancel_requested" : "tunnel.disconnect_requested",
                         [("tunnel", name), ("user", user.id)])
                return .json(200, JSONWriter.write(.object([
                    ("message", .string(isCancel ? "Cancel request received" : "Disconnect request received")),
                    ("tunnelName", .string(name)),
                ])))
            }
        default:
            return Router.error(405, "Method not allowed")
        }
    }

    static let unsupportedMediaType = Router.error(415, "Content-Type must be application/json")

    public func bodyTooLarge(_ request: HTTPRequestHead) -> HTTPResponse {
        Router.error(413, "Request body too large")
    }
}
