/// Password hashes for `users[].passwordHash`: `pbkdf2-sha256$<iterations>$<salt, base64>$<hash, base64>`, made by
/// `sluice hash-password`. PBKDF2-HMAC-SHA256 from the flavour's crypto library (`Digest`); compared in constant time.
public struct PasswordHash: Equatable {
    public static let scheme = "pbkdf2-sha256"
    public static let defaultIterations = 100_000
    static let minimumIterations = 1000
    static let maximumIterations = 10_000_000

    public let iterations: Int
    public let salt: [UInt8]
    public let hash: [UInt8]

    public static func parse(_ text: String) -> PasswordHash? {
        let parts = text.split(separator: "$", omittingEmptySubsequences: false).map { String($0) }
        guard parts.count == 4, parts[0] == scheme, let iterations = Int(parts[1]),
              iterations >= minimumIterations, iterations <= maximumIterations,
              let salt = Base64.decode(parts[2]), salt.count >= 8,
              let hash = Base64.decode(parts[3]), hash.count >= 16, hash.count <= 64 else { return nil }
        return PasswordHash(iterations: iterations, salt: salt, hash: hash)
    }

    public static func make(password: String, iterations: Int = defaultIterations) -> PasswordHash? {
        let salt = SecureRandom.bytes(16)
        guard let hash = derive(password: password, salt: salt, iterations: iterations, length: 32) else { return nil }
        return PasswordHash(iterations: iterations, salt: salt, hash: hash)
    }

    public var text: String { "\(PasswordHash.scheme)$\(iterations)$\(Base64.encode(salt))$\(Base64.encode(hash))" }

    public func verify(_ password: String) -> Bool {
        guard let candidate = PasswordHash.derive(password: password, salt: salt, iterations: iterations,
                                                  length: hash.count) else { return false }
        return Digest.constantTimeEquals(candidate, hash)
    }

    static func derive(password: String, salt: [UInt8], iterations: Int, length: Int) -> [UInt8]? {
        Digest.pbkdf2SHA256(password: Array(password.utf8), salt: salt, iterations: iterations, length: length)
    }
}
