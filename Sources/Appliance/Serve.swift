import CLinux
import Relay

/// `sluice serve`: the HTTP API and the tunnels until SIGTERM/SIGINT; SIGHUP reloads the configuration.
/// Signals are blocked in every thread and taken synchronously by the main thread, so no handler runs in signal
/// context; the main thread also drives the SSE keepalives.
public enum Serve {
    public static func run(_ options: ServeOptions) -> Int32 {
        let files = RealFileAccess()
        guard let loaded = Startup.loadConfigReporting(flag: options.config, files: files) else { return 1 }
        let configPath = loaded.path
        var config = loaded.config
        if let state = options.state { config.stateDir = state }
        if let listen = options.listen { config.listen = listen }
        guard let address = SocketAddress(hostPort: config.listen) else {
            let source = options.listen != nil ? "--listen" : "listen"
            Output.err("\(source): '\(config.listen)' is not ADDR:PORT with a numeric address\n")
            return 1
        }

        let signals: [Int32] = [SIGTERM, SIGINT, SIGHUP]
        cl_ignore_sigpipe()
        _ = signals.withUnsafeBufferPointer { cl_block_signals($0.baseAddress, Int32($0.count)) }
        guard SSHLibrary.initialize() else {
            Log.error("ssh.init_failed")
            return 2
        }
        defer { SSHLibrary.shutdown() }

        let secret: Startup.JWTSecret
        switch Startup.jwtSecret(config) {
        case .failure(let problem):
            Log.error("state.failed", [("error", problem.message)])
            Output.err("\(problem.message)\n")
            return 2
        case .success(let found): secret = found
        }

        let shared = Locked(config)
        let drivers = DriverContext(config: shared, stateDir: config.stateDir)
        let driver = Serve.makeDriver(drivers)
        guard let manager = TunnelManager(config: config, driver: driver,
                                          state: StateDirectory(path: config.stateDir)) else {
            Log.error("serve.start_failed", [("error", "cannot create the control thread")])
            return 2
        }
        let context = ApplianceContext(config: shared, secret: Array(secret.value.utf8), manager: manager)
        manager.onChange = { _ in context.hub.publish() }
        // systemd (Type=notify): READY=1 once listening, WATCHDOG=1 from the control thread, STOPPING=1 at the end
        let systemd = SystemdNotify.fromEnvironment()
        manager.onTick = { systemd.watchdogTick() }
        guard manager.start() else {
            Log.error("serve.start_failed", [("error", "cannot start the control thread")])
            return 2
        }
        guard let relay = RelayService(context: drivers) else {
            Log.error("serve.start_failed", [("error", "cannot start the relay thread")])
            manager.stop()
            return 2
        }
        context.relay = relay
        let server = HTTPServer(handler: Router(context: context))
        guard let port = server.start(HTTPServer.Settings(address: address)) else {
            Log.error("serve.listen_failed", [("addr", address.description)])
            Output.err("sluice serve: cannot listen on \(address.description)\n")
            relay.stop()
            manager.stop()
            return 2
        }
        let bound = SocketAddress(ip: address.ipString, port: port) ?? address
        Log.info("serve.listening", [("addr", bound.description), ("version", BuildInfo.version),
                                     ("config", configPath ?? "embedded-default"), ("state", config.stateDir)])
        systemd.send("READY=1\nSTATUS=Listening on \(bound.description)")
        if configPath == nil && secret.created {
            Startup.printFirstStart(url: "http://\(bound.description)", config: config, secret: secret.value)
        }

        var current = config
        while true {
            let signal = signals.withUnsafeBufferPointer { cl_wait_signal($0.baseAddress, Int32($0.count), 250) }
            if signal == SIGTERM || signal == SIGINT {
                Log.info("serve.stopping", [("signal", signal == SIGTERM ? "TERM" : "INT")])
                systemd.send("STOPPING=1")
                break
            }
            if signal == SIGHUP {
                if let reloaded = Startup.reload(current, path: configPath, files: files) {
                    let previous = current
                    current = reloaded
                    context.config.set(reloaded)
                    manager.reload(reloaded)
                    relay.reload(from: previous, to: reloaded)
                    context.hub.publish()
                    Log.info("config.reloaded", [("hosts", String(reloaded.hosts.count)),
                                                 ("users", String(reloaded.users.count))])
                }
            }
            context.hub.tick(keepaliveSeconds: current.sseKeepaliveSeconds)
            server.expireHeaders()
        }

        // MHD aborts when stopped with suspended connections: end the streams first, then the rest.
        context.hub.closeAll()
        let deadline = Clock.monotonicMs() + 2000
        while context.hub.count > 0 && Clock.monotonicMs() < deadline { usleep(10_000) }
        // upgraded sockets too must be handed back before MHD stops
        relay.stop()
        manager.stop()
        server.stop()
        Log.info("serve.stopped")
        return 0
    }
}

extension Serve {
    /// The data plane: the appliance's own host relays in the kernel; every other host goes through SSH.
    static func makeDriver(_ context: DriverContext) -> any TunnelDriver {
        let localHost: any TunnelDriver = LocalHostDriver(context: context) ?? UnavailableDriver()
        let ssh: any TunnelDriver = SSHDriver(context: context) ?? UnavailableDriver()
        return CompositeDriver(localHost: localHost, ssh: ssh)
    }
}

/// The start-up steps of `serve` and `token` that need the configuration and the state directory.
public enum Startup {
    public struct JWTSecret {
        public let value: String
        public let created: Bool
    }

    public static func loadConfig(path: String?, files: any FileAccess) -> Result<Config, ConfigErrors> {
        guard let path else { return .success(ConfigLoader.embeddedDefault(stateEnv: Environment.get("SLUICE_STATE"))) }
        return ConfigLoader.load(path: path, files: files)
    }

    /// What every command that reads the configuration does first: `--config`, else `$SLUICE_CONFIG`, else the
    /// default places; each problem goes to standard error (nil then: the command exits 1).
    static func loadConfigReporting(flag: String?, files: any FileAccess) -> (path: String?, config: Config)? {
        let path = ConfigLoader.resolvePath(flag: flag, env: Environment.get("SLUICE_CONFIG"), files: files)
        switch loadConfig(path: path, files: files) {
        case .failure(let errors):
            for problem in errors.problems { Output.err("\(problem.description)\n") }
            return nil
        case .success(let loaded): return (path, loaded)
        }
    }

    /// `jwtSecretFile` when configured (validated at load), else `<stateDir>/jwt_secret`, created on first start.
    public static func jwtSecret(_ config: Config) -> Result<JWTSecret, StartupError> {
        // the state directory is needed either way (known_hosts, autostart.json)
        if let problem = StateDirectory(path: config.stateDir).prepare() {
            return .failure(StartupError("stateDir: \(problem)"))
        }
        if let file = config.jwtSecretFile {
            guard let bytes = RealFileAccess().read(file, limit: 64 * 1024) else {
                return .failure(StartupError("jwtSecretFile: cannot read \(file)"))
            }
            return .success(JWTSecret(value: SecretText.trimmingOneNewline(bytes), created: false))
        }
        let state = StateDirectory(path: config.stateDir)
        guard let (value, created) = state.jwtSecret() else {
            return .failure(StartupError("stateDir: cannot create \(config.stateDir)/jwt_secret"))
        }
        return .success(JWTSecret(value: value, created: created))
    }

    static func printFirstStart(url: String, config: Config, secret: String) {
        guard let admin = config.users.first(where: { $0.admin }) else { return }
        let token = JWT.sign(userId: admin.id, secret: Array(secret.utf8), now: Clock.unixSeconds(),
                             ttl: TokenCommand.defaultTTL)
        Output.out("Sluice is listening on \(url)\nAdmin token (\(admin.id), valid 24 h): \(token)\n")
    }

    /// SIGHUP: a valid new configuration replaces the old; an invalid one is refused and the old one stays.
    static func reload(_ current: Config, path: String?, files: any FileAccess) -> Config? {
        guard let path else {
            Log.info("config.reload_skipped", [("reason", "embedded default in use")])
            return nil
        }
        switch ConfigLoader.load(path: path, files: files) {
        case .failure(let errors):
            for problem in errors.problems { Log.warn("config.reload_problem", [("problem", problem.description)]) }
            Log.warn("config.reload_refused", [("problems", String(errors.problems.count))])
            return nil
        case .success(var next):
            // these take effect only at the next start
            if next.listen != current.listen { Log.info("config.restart_needed", [("key", "listen")]) }
            if next.stateDir != current.stateDir { Log.info("config.restart_needed", [("key", "stateDir")]) }
            if next.jwtSecretFile != current.jwtSecretFile { Log.info("config.restart_needed", [("key", "jwtSecretFile")]) }
            next.listen = current.listen
            next.stateDir = current.stateDir
            next.jwtSecretFile = current.jwtSecretFile
            return next
        }
    }
}

public struct StartupError: Error {
    public let message: String
    public init(_ message: String) { self.message = message }
}

public enum Environment {
    public static func get(_ name: String) -> String? {
        guard let value = getenv(name) else { return nil }
        let text = String(cString: value)
        return text.isEmpty ? nil : text
    }
}

/// Secret files lose one trailing newline (`\n` or `\r\n`), so `echo secret > file` works.
public enum SecretText {
    public static func trimmingOneNewline(_ bytes: [UInt8]) -> String {
        var end = bytes.count
        if end > 0 && bytes[end - 1] == 0x0A {
            end -= 1
            if end > 0 && bytes[end - 1] == 0x0D { end -= 1 }
        }
        return String(decoding: bytes[0..<end], as: UTF8.self)
    }
}
