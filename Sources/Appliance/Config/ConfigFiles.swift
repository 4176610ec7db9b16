import Relay
/// The files a configuration names: paths resolved against the configuration's folder, secret and key files checked
/// (and secrets read) while the configuration is validated, so a broken reference is found before anything starts.
struct ConfigFiles {
    let baseDir: String
    let files: any FileAccess
    let problems: ProblemList

    static let secretLimit = 64 * 1024
    static let jwtSecretMinimum = 64

    /// Absolute paths stay as written; relative ones are joined to `base` without `.` segments or doubled slashes.
    static func resolve(_ path: String, against base: String) -> String {
        if path.hasPrefix("/") { return path }
        var parts: [Substring] = []
        for part in (base + "/" + path).split(separator: "/") where part != "." { parts.append(part) }
        let absolute = base.hasPrefix("/")
        if parts.isEmpty { return absolute ? "/" : "." }
        return (absolute ? "/" : "") + parts.joined(separator: "/")
    }

    /// The folder of a file path (`/etc/sluice/sluice.json` → `/etc/sluice`).
    static func folder(of path: String) -> String {
        let bytes = Array(path.utf8)
        guard let slash = bytes.lastIndex(of: UInt8(ascii: "/")) else { return "." }
        return slash == 0 ? "/" : String(decoding: bytes[..<slash], as: UTF8.self)
    }

    func resolve(_ path: String) -> String { ConfigFiles.resolve(path, against: baseDir) }

    /// The file's bytes, or nil after reporting why it cannot serve.
    private func contents(_ path: String, at jsonPath: String, limit: Int) -> [UInt8]? {
        if !files.exists(path) {
            problems.add(jsonPath, "file not found")
            return nil
        }
        if files.isDirectory(path) {
            problems.add(jsonPath, "is a directory, not a file")
            return nil
        }
        guard let bytes = files.read(path, limit: limit) else {
            problems.add(jsonPath, "cannot be read (no permission, or larger than \(limit / 1024) KiB)")
            return nil
        }
        return bytes
    }

    /// A secret file's text without one trailing newline (`echo secret > file` must work). Never reports the text.
    func secret(_ path: String, at jsonPath: String) -> Secret? {
        guard var bytes = contents(path, at: jsonPath, limit: ConfigFiles.secretLimit) else { return nil }
        if bytes.last == 0x0A {
            bytes.removeLast()
            if bytes.last == 0x0D { bytes.removeLast() }
        }
        if UTF8Check.firstInvalid(bytes) != nil {
            problems.add(jsonPath, "must hold UTF-8 text")
            return nil
        }
        if bytes.isEmpty {
            problems.add(jsonPath, "file is empty")
            return nil
        }
        return Secret(String(decoding: bytes, as: UTF8.self))
    }

    /// `jwtSecretFile`: must exist and hold enough characters to be a real HS256 key.
    func checkJWTSecret(_ path: String, at jsonPath: String) {
        guard let secret = secret(path, at: jsonPath) else { return }
        if secret.value.unicodeScalars.count < ConfigFiles.jwtSecretMinimum {
            problems.add(jsonPath, "must hold at least \(ConfigFiles.jwtSecretMinimum) characters")
        }
    }

    /// A private key file: present, readable, and PEM-armoured (OpenSSH and PEM keys both are), which catches a
    /// `.pub` file named by mistake. The key itself is read again when a session starts.
    func checkPrivateKey(_ path: String, at jsonPath: String) {
        guard let bytes = contents(path, at: jsonPath, limit: ConfigFiles.secretLimit) else { return }
        var start = 0
        while start < bytes.count && (bytes[start] == 0x20 || bytes[start] == 0x0A || bytes[start] == 0x0D
                                       || bytes[start] == 0x09) {
            start += 1
        }
        if !bytes[start...].starts(with: "-----BEGIN ".utf8) {
            problems.add(jsonPath, "is not a private key (expected an OpenSSH or PEM private key)")
        }
    }
}
