import Relay

/// Password login for the status page: `POST /users/login` sets the `jwt` cookie and returns the token;
/// `POST /users/logout` clears it. Failed logins are slowed per address, per name and address, and per name for
/// addresses that failed themselves (`LoginThrottle`).
public final class Session {
    public static let tokenTTL: Int64 = 86400
    let throttle = LoginThrottle()
    /// Spent on unknown users too, so the answer's timing does not tell which user names exist: at the iteration
    /// count the configured hashes use (issue #15: a fixed default told them apart when the counts differ).
    static func decoy(for config: Config) -> PasswordHash {
        let iterations = config.users.lazy.compactMap { $0.passwordHash.flatMap { PasswordHash.parse($0.value) } }
            .first?.iterations ?? PasswordHash.defaultIterations
        return PasswordHash(iterations: iterations, salt: [UInt8](repeating: 7, count: 16),
                            hash: [UInt8](repeating: 0, count: 32))
    }

    public init() {}

    /// The answers of the throttle, one per lock, apart from the busy worker's `Too many login attempts`.
    static func throttled(_ lock: LoginThrottle.Reason) -> String {
        switch lock {
        case .address: return "Too many failed logins from this address"
        case .user: return "Too many failed logins for this user"
        case .userFromAddress: return "Too many failed logins for this user from this address"
        }
    }

    func login(_ request: HTTPRequestHead, body: [UInt8], config: Config, secret: [UInt8]) -> HTTPResponse {
        guard let json = try? JSONParser.parse(body), let username = json["username"]?.stringValue,
              let password = json["password"]?.stringValue, !username.isEmpty, !password.isEmpty else {
            return Router.error(400, "Username and password are required")
        }
        let now = Clock.monotonicMs()
        let (wait, lock) = throttle.check(user: username, address: request.remoteAddress, nowMs: now)
        if wait > 0, let lock {
            return Router.error(429, Session.throttled(lock), headers: [("Retry-After", String((wait + 999) / 1000))])
        }
        // PBKDF2 costs ~0.1 s of a core (more on a board): it runs on the server's worker, not on the thread that
        // answers every other request (issue #15). A client with logins already waiting is told to retry.
        let busy = Router.error(429, "Too many login attempts", headers: [("Retry-After", "1")])
        let throttle = self.throttle
        let address = request.remoteAddress
        let forwardedProto = request.header("X-Forwarded-Proto")
        // a login from where this user logged in before, or for a user who did from an address that failed nothing,
        // takes the reserved places and goes first: a queue filled from a handful of addresses does not stop it
        let trusted = throttle.trusted(user: username, address: address)
        return .deferred(instead: busy, priority: trusted) {
            Session.verify(username: username, password: password, address: address, forwardedProto: forwardedProto,
                           config: config, secret: secret, throttle: throttle)
        }
    }

    static func verify(username: String, password: String, address: String, forwardedProto: String?, config: Config,
                       secret: [UInt8], throttle: LoginThrottle) -> HTTPResponse {
        let user = config.users.first { $0.username == username }
        let hash = user?.passwordHash.flatMap { PasswordHash.parse($0.value) }
        let valid = (hash ?? Session.decoy(for: config)).verify(password) && hash != nil
        let now = Clock.monotonicMs()
        guard valid, let user else {
            throttle.failed(user: username, address: address, nowMs: now, knownUser: user != nil)
            Log.warn("auth.login_failed", [("username", username), ("addr", address)])
            return Router.error(401, "Invalid username or password")
        }
        throttle.succeeded(user: username, address: address, nowMs: now)
        let token = JWT.sign(userId: user.id, secret: secret, now: Clock.unixSeconds(), ttl: Session.tokenTTL)
        Log.info("auth.login", [("user", user.id), ("addr", address)])
        return .json(200, JSONWriter.write(.object([("token", .string(token))])),
                     headers: [("Set-Cookie", Session.cookie(token, forwardedProto: forwardedProto))])
    }

    static func logout(_ request: HTTPRequestHead) -> HTTPResponse {
        .json(200, JSONWriter.write(.object([("message", .string("Logged out"))])),
              headers: [("Set-Cookie", RequestAuth.clearCookie)])
    }

    /// HttpOnly and SameSite=Strict always (issue #15: no cross-site navigation carries it); Secure when a reverse
    /// proxy says the client came over HTTPS.
    static func cookie(_ token: String, forwardedProto: String?) -> String {
        var cookie = "jwt=\(token); Path=/; Max-Age=\(tokenTTL); HttpOnly; SameSite=Strict"
        let proto = forwardedProto?.split(separator: ",").first.map { String($0) } ?? ""
        if proto.trimmingSpaces().lowercasedASCII() == "https" { cookie += "; Secure" }
        return cookie
    }
}

extension String {
    func trimmingSpaces() -> String {
        var bytes = Array(utf8)
        while bytes.last == 0x20 || bytes.last == 0x09 { bytes.removeLast() }
        while bytes.first == 0x20 || bytes.first == 0x09 { bytes.removeFirst() }
        return String(decoding: bytes, as: UTF8.self)
    }

    func lowercasedASCII() -> String {
        String(decoding: utf8.map { $0 >= 65 && $0 <= 90 ? $0 + 32 : $0 }, as: UTF8.self)
    }
}
