import CLinux
import Relay

/// Reads the configuration file (appliance.md §2) and validates all of it, collecting every problem with its JSON
/// path, so an operator fixes a file in one round instead of one error per restart.
public enum ConfigLoader {
    public static let systemPath = "/etc/sluice/sluice.json"
    static let fileLimit = 1024 * 1024
    static let topKeys = ["listen", "stateDir", "jwtSecretFile", "allowedOrigins", "serverNames", "sseKeepaliveSeconds",
                          "bindAllow", "destinations", "limits", "users", "hosts"]
    static let limitKeys = ["bufferSize", "bufferCount", "maxTunnels", "maxConnectionsPerTunnel", "maxRelays",
                            "buffersPerStream", "receiveWindowBudget"]

    /// Reads and validates a config file; relative paths resolve against the file's folder.
    public static func load(path: String, files: any FileAccess = RealFileAccess()) -> Result<Config, ConfigErrors> {
        var absolute = path
        if !path.hasPrefix("/"), let cwd = RealFileAccess.currentDirectory() {
            absolute = ConfigFiles.resolve(path, against: cwd)
        }
        if !files.exists(absolute) {
            return .failure(ConfigErrors([ConfigProblem("", "configuration file \(path) not found")]))
        }
        if files.isDirectory(absolute) {
            return .failure(ConfigErrors([ConfigProblem("", "configuration file \(path) is a directory")]))
        }
        guard let bytes = files.read(absolute, limit: fileLimit) else {
            return .failure(ConfigErrors([ConfigProblem(
                "", "configuration file \(path) cannot be read (no permission, or larger than 1 MiB)")]))
        }
        switch parse(bytes, baseDir: ConfigFiles.folder(of: absolute), files: files) {
        case .success(var config):
            config.sourcePath = absolute
            return .success(config)
        case .failure(let errors):
            return .failure(errors)
        }
    }

    /// Pure core: validate JSON bytes; `baseDir` resolves relative paths; every problem collected with its JSON path.
    public static func parse(_ bytes: [UInt8], baseDir: String, files: any FileAccess) -> Result<Config, ConfigErrors> {
        let root: JSONValue
        do throws(JSONParseError) {
            root = try JSONParser.parse(bytes, maxMembers: JSONParser.fileMaxMembers)
        } catch {
            return .failure(ConfigErrors([ConfigProblem("", "invalid JSON: \(error.description)")]))
        }
        let problems = ProblemList()
        let context = ConfigFiles(baseDir: baseDir, files: files, problems: problems)
        var config = Config()
        if let o = ObjectReader(root, at: "", keys: topKeys, problems: problems) {
            readTop(o, context, into: &config)
        }
        if !problems.items.isEmpty { return .failure(ConfigErrors(problems.items)) }
        return .success(config)
    }

    private static func readTop(_ o: ObjectReader, _ files: ConfigFiles, into config: inout Config) {
        if let listen = o.string("listen") {
            if SocketAddress(hostPort: listen) != nil {
                config.listen = listen
            } else {
                o.report("listen", "must be ADDR:PORT with a numeric IP address (IPv6 in brackets)")
            }
        }
        if let dir = o.string("stateDir", nonEmpty: true) { config.stateDir = files.resolve(dir) }
        if let secretFile = o.string("jwtSecretFile", nonEmpty: true) {
            let path = files.resolve(secretFile)
            files.checkJWTSecret(path, at: o.at("jwtSecretFile"))
            config.jwtSecretFile = path
        }
        if let origins = o.strings("allowedOrigins") {
            config.allowedOrigins = checked(origins, o.problems, "must be scheme://host[:port] with scheme http or https, without a path") {
                ConfigSyntax.isOrigin($0)
            }
        }
        if let names = o.strings("serverNames") {
            config.serverNames = checked(names, o.problems, "must be a host name (no scheme, no port)") {
                ConfigSyntax.isHostName($0)
            }
        }
        config.sseKeepaliveSeconds = o.integer("sseKeepaliveSeconds", 1...configMaxInteger) ?? config.sseKeepaliveSeconds
        if let addresses = o.strings("bindAllow") {
            config.bindAllow = checked(addresses, o.problems, "must be an IP address (no brackets, no port)") {
                ConfigSyntax.isIP($0)
            }
        }
        if let d = o.object("destinations", keys: ["allow", "deny"]) {
            if let allow = d.strings("allow") { config.destinations.allow = destinations(allow, d.problems) }
            if let deny = d.strings("deny") { config.destinations.deny = destinations(deny, d.problems) }
        }
        if let l = o.object("limits", keys: limitKeys) { readLimits(l, into: &config.limits) }
        let inventory = InventoryReader(files: files)
        if let users = o.array("users") { config.users = inventory.users(users) }
        if let hosts = o.array("hosts") { config.hosts = inventory.hosts(hosts, userIds: config.users.map { $0.id }) }
    }

    private static func checked(_ items: [(String, String)], _ problems: ProblemList, _ problem: String,
                                _ valid: (String) -> Bool) -> [String] {
        var out: [String] = []
        for (path, text) in items {
            if valid(text) { out.append(text) } else { problems.add(path, problem) }
        }
        return out
    }

    private static func destinations(_ items: [(String, String)], _ problems: ProblemList) -> [String] {
        var out: [String] = []
        for (path, text) in items {
            switch DestinationEntry.parse(text) {
            case .success: out.append(text)
            case .failure(let error): problems.add(path, error.message)
            }
        }
        return out
    }

    private static func readLimits(_ o: ObjectReader, into limits: inout Limits) {
        let range = 1...configMaxInteger
        limits.bufferSize = o.integer("bufferSize", range) ?? limits.bufferSize
        limits.bufferCount = o.integer("bufferCount", range) ?? limits.bufferCount
        limits.maxTunnels = o.integer("maxTunnels", range) ?? limits.maxTunnels
        limits.maxConnectionsPerTunnel = o.integer("maxConnectionsPerTunnel", range) ?? limits.maxConnectionsPerTunnel
        limits.maxRelays = o.integer("maxRelays", range) ?? limits.maxRelays
        limits.receiveWindowBudget = o.integer("receiveWindowBudget", 0...configMaxInteger) ?? limits.receiveWindowBudget
        // accepted (and range-checked) for configurations written to the spec, with no effect: a stream holds
        // exactly one pool buffer per direction, so the bound is `bufferSize × bufferCount` (issue #16)
        _ = o.integer("buffersPerStream", range)
    }

    /// The embedded default (appliance.md §1): listen 127.0.0.1:30003; stateDir = stateEnv ?? "./.sluice-state";
    /// one admin user id "admin" username "admin"; host 0 named "appliance" with local: true, owner "admin".
    public static func embeddedDefault(stateEnv: String?) -> Config {
        var config = Config()
        config.listen = "127.0.0.1:30003"
        if let state = stateEnv, !state.isEmpty { config.stateDir = state }
        config.users = [User(id: "admin", username: "admin", admin: true)]
        var appliance = Host(id: 0, name: "appliance", owner: "admin")
        appliance.local = true
        config.hosts = [appliance]
        return config
    }

    /// Lookup order: --config flag, else $SLUICE_CONFIG, else /etc/sluice/sluice.json if it exists, else nil
    /// (= embedded default). An empty $SLUICE_CONFIG counts as unset.
    public static func resolvePath(flag: String?, env: String?, files: any FileAccess) -> String? {
        if let flag = flag { return flag }
        if let env = env, !env.isEmpty { return env }
        return files.exists(systemPath) ? systemPath : nil
    }
}
