import Relay
import CLinux

/// The only place Sluice writes (appliance.md §3; the root filesystem is read-only on the appliance). A damaged file
/// never stops Sluice: it is set aside as `<name>.corrupt-<unixtime>` for the operator and treated as absent.
public final class StateDirectory {
    public let path: String
    /// State files are small (autostart.json lists at most `limits.maxTunnels` tunnels); anything larger is damage.
    public static let readLimit = 1 << 20

    public init(path: String) {
        self.path = path
    }

    public func file(_ name: String) -> String { "\(path)/\(name)" }

    /// `mkdir -p`, creating missing folders 0700 (the folder holds the JWT secret).
    public func prepare() -> String? {
        let bytes = Array(path.utf8)
        for i in 0...bytes.count where i == bytes.count || (bytes[i] == UInt8(ascii: "/") && i > 0) {
            let prefix = String(decoding: bytes[0..<i], as: UTF8.self)
            var mode: UInt32 = 0
            // Existing parents are left alone: they may sit on the read-only root.
            if cl_stat_mode(prefix, &mode) == 0 { continue }
            if mkdir(prefix, 0o700) != 0 && clinux_errno() != EEXIST {
                return "cannot create state directory \(prefix): \(AtomicFile.errorText())"
            }
        }
        var mode: UInt32 = 0
        guard cl_stat_mode(path, &mode) == 0, mode & 0o170000 == 0o040000 else {
            return "state directory \(path) is not a directory"
        }
        guard access(path, W_OK) == 0 else { return "state directory \(path) is not writable" }
        removeStaleTempFiles()
        return nil
    }

    /// A power cut during `AtomicFile.write` leaves its temp file (never the target half-written); nothing reads
    /// those, so they are dropped at start, before any writer runs.
    func removeStaleTempFiles() {
        guard let dir = opendir(path) else { return }
        var stale: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if AtomicFile.isTempName(name) { stale.append(name) }
        }
        closedir(dir)
        for name in stale where unlink(file(name)) == 0 {
            Log.info("state.stale_temp_removed", [("file", file(name))])
        }
    }

    /// 64 lowercase hex characters from getrandom(2), created once; a damaged one is set aside and replaced (tokens
    /// signed with it stop working, but Sluice starts).
    public func jwtSecret() -> (secret: String, created: Bool)? {
        let name = "jwt_secret"
        if exists(name) {
            if let bytes = AtomicFile.read(file(name), limit: 4096), let secret = StateDirectory.secret(bytes) {
                return (secret, false)
            }
            quarantine(name, problem: "not a secret of at least 64 characters")
        }
        guard let random = StateDirectory.randomBytes(32) else {
            Log.error("state.jwt_secret_failed", [("problem", "getrandom failed: \(AtomicFile.errorText())")])
            return nil
        }
        let secret = StateDirectory.hex(random)
        if let problem = AtomicFile.write(file(name), Array(secret.utf8), mode: 0o600) {
            Log.error("state.write_failed", [("file", file(name)), ("problem", problem)])
            return nil
        }
        return (secret, true)
    }

    /// `limit`: the largest file the limits in force allow (at least `readLimit`).
    public func readJSON(_ name: String, limit: Int = StateDirectory.readLimit) -> JSONValue? {
        guard exists(name) else { return nil }
        let limit = max(limit, StateDirectory.readLimit)
        guard let bytes = AtomicFile.read(file(name), limit: limit) else {
            quarantine(name, problem: "unreadable or larger than \(limit) bytes")
            return nil
        }
        do {
            return try JSONParser.parse(bytes, maxMembers: JSONParser.fileMaxMembers)
        } catch {
            quarantine(name, problem: error.description)
            return nil
        }
    }

    public func writeJSON(_ name: String, _ value: JSONValue) -> String? {
        AtomicFile.write(file(name), Array(JSONWriter.write(value).utf8), mode: 0o600)
    }

    func exists(_ name: String) -> Bool {
        var mode: UInt32 = 0
        return cl_stat_mode(file(name), &mode) == 0
    }

    func quarantine(_ name: String, problem: String) {
        let aside = "\(file(name)).corrupt-\(time(nil))"
        if rename(file(name), aside) == 0 {
            Log.warn("state.corrupt", [("file", file(name)), ("renamed", aside), ("problem", problem)])
        } else {
            Log.error("state.corrupt", [("file", file(name)), ("problem", problem),
                                        ("rename", AtomicFile.errorText())])
        }
    }

    /// The file's text without one trailing newline (an operator may have written it with echo), when it is UTF-8 of
    /// at least 64 characters: the JWT secret is used as its UTF-8 bytes.
    static func secret(_ bytes: [UInt8]) -> String? {
        var bytes = bytes
        if bytes.last == UInt8(ascii: "\n") {
            bytes.removeLast()
            if bytes.last == UInt8(ascii: "\r") { bytes.removeLast() }
        }
        guard UTF8Check.firstInvalid(bytes) == nil else { return nil }
        let text = String(decoding: bytes, as: UTF8.self)
        return text.unicodeScalars.count >= 64 ? text : nil
    }

    static func randomBytes(_ count: Int) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: count)
        var filled = 0
        while filled < count {
            let n = out.withUnsafeMutableBytes { getrandom($0.baseAddress! + filled, count - filled, 0) }
            if n < 0 && clinux_errno() == EINTR { continue }
            if n <= 0 { return nil }
            filled += n
        }
        return out
    }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
