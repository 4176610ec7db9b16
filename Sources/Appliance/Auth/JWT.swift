/// JSON Web Tokens as Termix issues them (jsonwebtoken, HS256, claims userId/iat/exp, optional pendingTOTP), so
/// a Termix server and Sluice sharing one secret accept each other's tokens (tunnels-api.md §2).
public struct JWTClaims: Equatable {
    public var userId: String
    public var exp: Int64
    public var iat: Int64?
    public var pendingTOTP: Bool

    public init(userId: String, exp: Int64, iat: Int64? = nil, pendingTOTP: Bool = false) {
        self.userId = userId
        self.exp = exp
        self.iat = iat
        self.pendingTOTP = pendingTOTP
    }
}

/// `missingClaim` also covers a required claim of the wrong type; a wrong-typed optional claim is `malformed`.
public enum JWTError: Error, Equatable {
    case malformed, unsupportedAlgorithm, badSignature, expired, missingClaim(String)
    /// `nbf` is still in the future (jsonwebtoken refuses such a token too).
    case notYetValid
}

public enum JWT {
    /// Far above any token Sluice or Termix issues; bounds the work an unauthenticated request can cause.
    public static let maxTokenLength = 8192

    /// Byte for byte what jsonwebtoken's `sign({userId}, secret, {expiresIn: ttl})` produces at `now`.
    public static func sign(userId: String, secret: [UInt8], now: Int64, ttl: Int64) -> String {
        let payload = JSONValue.object([
            ("userId", .string(userId)),
            ("iat", .number(JSONNumber(integer: now))),
            ("exp", .number(JSONNumber(integer: now + ttl))),
        ])
        return sign(payload: payload, secret: secret)
    }

    static func sign(payload: JSONValue, secret: [UInt8]) -> String {
        let input = Base64.urlEncode(Array(#"{"alg":"HS256","typ":"JWT"}"#.utf8)) + "."
            + Base64.urlEncode(Array(JSONWriter.write(payload).utf8))
        return input + "." + Base64.urlEncode(Digest.hmacSHA256(key: secret, message: Array(input.utf8)))
    }

    /// The header is checked before the signature (the algorithm is pinned, never taken from the token), and the
    /// payload is read only once the signature holds.
    public static func verify(_ token: String, secret: [UInt8], now: Int64) -> Result<JWTClaims, JWTError> {
        let bytes = Array(token.utf8)
        guard bytes.count <= maxTokenLength else { return .failure(.malformed) }
        let parts = bytes.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard parts.count == 3,
              let headerBytes = Base64.decode(parts[0], url: true),
              let payloadBytes = Base64.decode(parts[1], url: true),
              let signature = Base64.decode(parts[2], url: true),
              let header = object(headerBytes)
        else { return .failure(.malformed) }

        guard header["alg"] == .string("HS256") else { return .failure(.unsupportedAlgorithm) }
        // RFC 7515 §4.1.11: extensions we do not understand must not be ignored.
        guard header["crit"] == nil else { return .failure(.malformed) }

        let signingInput = Array(bytes[0..<(parts[0].count + 1 + parts[1].count)])
        guard !secret.isEmpty,
              Digest.constantTimeEquals(Digest.hmacSHA256(key: secret, message: signingInput), signature)
        else { return .failure(.badSignature) }

        guard let payload = object(payloadBytes) else { return .failure(.malformed) }
        return claims(payload, now: now)
    }

    static func claims(_ payload: JSONValue, now: Int64) -> Result<JWTClaims, JWTError> {
        guard let userId = payload["userId"]?.stringValue, !userId.isEmpty else {
            return .failure(.missingClaim("userId"))
        }
        guard let exp = payload["exp"]?.numberValue?.integer else { return .failure(.missingClaim("exp")) }
        var iat: Int64?
        if let value = payload["iat"] {
            guard let integer = value.numberValue?.integer else { return .failure(.malformed) }
            iat = integer
        }
        var notBefore: Int64?
        if let value = payload["nbf"] {
            guard let integer = value.numberValue?.integer else { return .failure(.malformed) }
            notBefore = integer
        }
        var pendingTOTP = false
        if let value = payload["pendingTOTP"] {
            guard let flag = value.boolValue else { return .failure(.malformed) }
            pendingTOTP = flag
        }
        guard now < exp else { return .failure(.expired) }
        // issue #15: a token that says it is not valid yet is not honoured early
        if let notBefore, now < notBefore { return .failure(.notYetValid) }
        return .success(JWTClaims(userId: userId, exp: exp, iat: iat, pendingTOTP: pendingTOTP))
    }

    static func object(_ bytes: [UInt8]) -> JSONValue? {
        guard let value = try? JSONParser.parse(bytes), value.isObject else { return nil }
        return value
    }
}
