/// Who is asking (tunnels-api.md §2): the token from the request headers, checked against the secret and the
/// inventory, and the exact 401 answers. Decided from the headers alone, before any body is read.
public enum AuthFailure: Error, Equatable {
    case missingToken, invalidToken, totpRequired
}

public enum RequestAuth {
    public static let clearCookie = "jwt=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax"

    /// Cookie `jwt` first, else `Authorization: Bearer`. An empty value counts as absent, as in Termix (whose
    /// `req.cookies?.jwt || bearer` falls through on "").
    public static func token(cookie: String?, authorization: String?) -> String? {
        if let cookie, let value = cookieValue(Array(cookie.utf8), name: Array("jwt".utf8)), !value.isEmpty {
            return String(decoding: value, as: UTF8.self)
        }
        if let authorization, let value = bearer(Array(authorization.utf8)), !value.isEmpty {
            return String(decoding: value, as: UTF8.self)
        }
        return nil
    }

    /// Unknown users are refused before `pendingTOTP` is looked at: such a token is invalid whatever it says.
    public static func authenticate(cookie: String?, authorization: String?, config: Config, secret: [UInt8],
                                    now: Int64) -> Result<User, AuthFailure> {
        guard let token = token(cookie: cookie, authorization: authorization) else { return .failure(.missingToken) }
        guard case .success(let claims) = JWT.verify(token, secret: secret, now: now),
              let user = config.user(id: claims.userId)
        else { return .failure(.invalidToken) }
        if claims.pendingTOTP { return .failure(.totpRequired) }
        return .success(user)
    }

    public static func answer(_ failure: AuthFailure) -> (status: Int, body: String, headers: [(String, String)]) {
        switch failure {
        case .missingToken:
            return (401, JSONWriter.error("Missing authentication token"), [])
        case .invalidToken:
            return (401, JSONWriter.error("Invalid token"), [("Set-Cookie", clearCookie)])
        case .totpRequired:
            let body = JSONValue.object([("error", .string("TOTP verification required")),
                                         ("code", .string("TOTP_REQUIRED"))])
            return (401, JSONWriter.write(body), [])
        }
    }

    /// RFC 6265 §5.4 `name=value` pairs split on `;`; the first pair with the name wins (as the `cookie` package
    /// that Express uses does), and one pair of surrounding double quotes is dropped.
    static func cookieValue(_ header: [UInt8], name: [UInt8]) -> ArraySlice<UInt8>? {
        for pair in header.split(separator: UInt8(ascii: ";"), omittingEmptySubsequences: true) {
            guard let eq = pair.firstIndex(of: UInt8(ascii: "=")) else { continue }
            guard trim(pair[pair.startIndex..<eq]).elementsEqual(name) else { continue }
            var value = trim(pair[(eq + 1)...])
            if value.count >= 2 && value.first == 0x22 && value.last == 0x22 {
                value = value.dropFirst().dropLast()
            }
            return value
        }
        return nil
    }

    /// `Bearer <token>`, the scheme in any case (RFC 9110 §11.1), one or more blanks before the token.
    static func bearer(_ header: [UInt8]) -> ArraySlice<UInt8>? {
        let value = trim(header[...])
        let scheme = Array("bearer".utf8)
        guard value.count > scheme.count else { return nil }
        for i in 0..<scheme.count where lower(value[value.startIndex + i]) != scheme[i] { return nil }
        let rest = value[(value.startIndex + scheme.count)...]
        guard let first = rest.first, isBlank(first) else { return nil }
        return trim(rest)
    }

    static func trim(_ bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        var s = bytes
        while let b = s.first, isBlank(b) { s = s.dropFirst() }
        while let b = s.last, isBlank(b) { s = s.dropLast() }
        return s
    }

    static func isBlank(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 }
    static func lower(_ b: UInt8) -> UInt8 { b >= 65 && b <= 90 ? b + 32 : b }
}
