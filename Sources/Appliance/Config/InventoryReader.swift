/// `users` and `hosts` (with their `auth` and `tunnels`) of the configuration file.
struct InventoryReader {
    let files: ConfigFiles
    var problems: ProblemList { files.problems }

    static let userKeys = ["id", "username", "admin", "passwordHash"]
    static let hostKeys = ["id", "name", "local", "ip", "port", "username", "owner", "sharedWith", "auth", "hostKey",
                           "keepaliveInterval", "keepaliveCountMax", "tunnels"]
    static let authKeys = ["type", "password", "passwordFile", "keyFile", "passphrase", "passphraseFile"]
    static let tunnelKeys = ["mode", "sourcePort", "endpointHost", "endpointPort", "bindHost", "targetHost",
                             "maxRetries", "retryInterval", "autoStart"]
    /// What an SSH connection needs and the appliance itself has no use for.
    static let sshOnlyKeys = ["auth", "ip", "port", "username", "hostKey"]

    func users(_ items: [(String, JSONValue)]) -> [User] {
        var users: [User] = []
        var ids: [String] = []
        for (path, value) in items {
            guard let o = ObjectReader(value, at: path, keys: InventoryReader.userKeys, problems: problems) else {
                continue
            }
            let id = o.string("id", required: true, nonEmpty: true)
            let username = o.string("username", required: true, nonEmpty: true)
            let admin = o.bool("admin") ?? false
            let hash = o.string("passwordHash", nonEmpty: true)
            if let hash, PasswordHash.parse(hash) == nil {
                o.report("passwordHash", "must be a hash made by `sluice hash-password` (pbkdf2-sha256$…)")
            }
            if let id = id {
                if ids.contains(id) { o.report("id", "duplicate id " + ConfigPath.quoted(id)) }
                ids.append(id)
            }
            users.append(User(id: id ?? "", username: username ?? "", admin: admin, passwordHash: hash.map { Secret($0) }))
        }
        return users
    }

    func hosts(_ items: [(String, JSONValue)], userIds: [String]) -> [Host] {
        var hosts: [Host] = []
        var ids: [Int] = []
        for (path, value) in items {
            guard let o = ObjectReader(value, at: path, keys: InventoryReader.hostKeys, problems: problems) else {
                continue
            }
            let id = o.integer("id", 0...configMaxInteger, required: true)
            if let id = id {
                if ids.contains(id) { o.report("id", "duplicate id \(id)") }
                ids.append(id)
            }
            hosts.append(host(o, id: id ?? -1, userIds: userIds))
        }
        return hosts
    }

    private func host(_ o: ObjectReader, id: Int, userIds: [String]) -> Host {
        let owner = o.string("owner", required: true, nonEmpty: true)
        if let owner = owner, !userIds.contains(owner) { o.report("owner", "unknown user " + ConfigPath.quoted(owner)) }
        var host = Host(id: id, name: o.string("name") ?? "", owner: owner ?? "")
        host.local = o.bool("local") ?? false
        for (path, user) in o.strings("sharedWith") ?? [] {
            if userIds.contains(user) { host.sharedWith.append(user) } else { problems.add(path, "unknown user " + ConfigPath.quoted(user)) }
        }
        if host.local {
            for key in InventoryReader.sshOnlyKeys where o.has(key) { o.report(key, "not allowed on a local host") }
        } else {
            readSSH(o, into: &host)
        }
        host.keepaliveInterval = o.integer("keepaliveInterval", 0...configMaxInteger) ?? host.keepaliveInterval
        host.keepaliveCountMax = o.integer("keepaliveCountMax", 0...configMaxInteger) ?? host.keepaliveCountMax
        for (path, value) in o.array("tunnels") ?? [] {
            host.tunnels.append(tunnel(path, value, onLocalHost: host.local))
        }
        return host
    }

    private func readSSH(_ o: ObjectReader, into host: inout Host) {
        if let ip = o.string("ip", nonEmpty: true) {
            // a name is resolved at every attempt, never here (`check` may run offline: appliance.md §2)
            if ConfigSyntax.isIP(ip) || ConfigSyntax.isDNSName(ip) {
                host.ip = ip
            } else {
                o.report("ip", "must be an IP address or a host name")
            }
        } else if !o.has("ip") {
            o.report("ip", "is required for a non-local host")
        }
        host.port = o.integer("port", 1...65535) ?? host.port
        if let username = o.string("username", nonEmpty: true) {
            host.username = username
        } else if !o.has("username") {
            o.report("username", "is required for a non-local host")
        }
        if let auth = o.object("auth", keys: InventoryReader.authKeys) { host.auth = self.auth(auth) }
        if let pin = o.string("hostKey") {
            if let problem = ConfigSyntax.hostKeyProblem(pin) { o.report("hostKey", problem) } else { host.hostKey = pin }
        }
    }

    private func auth(_ o: ObjectReader) -> HostAuth {
        guard let type = o.string("type", required: true) else { return .none }
        let allowed: [String]
        switch type {
        case "none": allowed = []
        case "password": allowed = ["password", "passwordFile"]
        case "key": allowed = ["keyFile", "passphrase", "passphraseFile"]
        default:
            o.report("type", "must be password, key or none")
            return .none
        }
        for key in InventoryReader.authKeys.dropFirst() where o.has(key) && !allowed.contains(key) {
            o.report(key, "not allowed with type " + type)
        }
        switch type {
        case "password":
            return secret(o, "password", "passwordFile", required: true).map { .password($0) } ?? .none
        case "key":
            let passphrase = secret(o, "passphrase", "passphraseFile", required: false)
            guard let keyFile = o.string("keyFile", required: true, nonEmpty: true) else { return .none }
            let path = files.resolve(keyFile)
            files.checkPrivateKey(path, at: o.at("keyFile"))
            return .key(keyFile: path, passphrase: passphrase)
        default:
            return .none
        }
    }

    /// A secret given inline or in a file, never both.
    private func secret(_ o: ObjectReader, _ inline: String, _ file: String, required: Bool) -> Secret? {
        if o.has(inline) && o.has(file) {
            o.report(file, "give \(inline) or \(file), not both")
            return nil
        }
        if o.has(inline) { return o.string(inline, nonEmpty: true).map { Secret($0) } }
        if let path = o.string(file, nonEmpty: true) { return files.secret(files.resolve(path), at: o.at(file)) }
        if required && !o.has(file) { problems.add(o.path, "needs \(inline) or \(file)") }
        return nil
    }

    private func tunnel(_ path: String, _ value: JSONValue, onLocalHost: Bool) -> TunnelConfig {
        var t = TunnelConfig()
        guard let o = ObjectReader(value, at: path, keys: InventoryReader.tunnelKeys, problems: problems) else { return t }
        if let mode = o.string("mode") {
            if let parsed = TunnelMode(rawValue: mode) { t.mode = parsed } else { o.report("mode", "must be local, remote or dynamic") }
        }
        if onLocalHost && t.mode == .remote { o.report("mode", "remote tunnels are not possible on a local host") }
        t.sourcePort = o.integer("sourcePort", 1...65535, required: true) ?? 0
        t.endpointHost = o.string("endpointHost") ?? ""
        if let port = o.integer("endpointPort", 0...65535, required: t.mode != .dynamic) {
            if port == 0 && t.mode != .dynamic {
                o.report("endpointPort", "must be from 1 to 65535 (0 only for dynamic tunnels)")
            }
            t.endpointPort = port
        }
        if let bind = o.string("bindHost", nonEmpty: true) {
            if ConfigSyntax.isIPOrHostName(bind) { t.bindHost = bind } else { o.report("bindHost", "must be an IP address or a host name") }
        }
        if let target = o.string("targetHost"), !target.isEmpty {
            if ConfigSyntax.isIPOrHostName(target) { t.targetHost = target } else { o.report("targetHost", "must be an IP address or a host name") }
        }
        t.maxRetries = o.integer("maxRetries", -1...configMaxInteger) ?? t.maxRetries
        t.retryIntervalSeconds = o.integer("retryInterval", 0...configMaxInteger) ?? t.retryIntervalSeconds
        t.autoStart = o.bool("autoStart") ?? t.autoStart
        return t
    }
}
