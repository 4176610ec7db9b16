import CLinux

/// `sluice check [--config FILE]`: validates the configuration the way `serve` would find it, printing every
/// problem as `<json-path>: <problem>` on stderr. Exit 0 valid, 1 invalid or bad arguments.
public enum CheckCommand {
    public static func run(_ args: [String]) -> Int32 {
        var flag: String? = nil
        var i = 0
        while i < args.count {
            guard args[i] == "--config" else {
                Output.err("sluice check: unknown option '\(args[i])'\nusage: sluice check [--config FILE]\n")
                return 1
            }
            guard i + 1 < args.count else {
                Output.err("sluice check: --config needs a value\n")
                return 1
            }
            flag = args[i + 1]
            i += 2
        }
        let files = RealFileAccess()
        guard let path = ConfigLoader.resolvePath(flag: flag, env: environment("SLUICE_CONFIG"), files: files) else {
            Output.out("ok: no configuration file, the embedded default is used\n")
            return 0
        }
        switch ConfigLoader.load(path: path, files: files) {
        case .success(let config):
            var tunnels = 0
            for host in config.hosts { tunnels += host.tunnels.count }
            Output.out("ok: \(path): \(config.users.count) users, \(config.hosts.count) hosts, \(tunnels) tunnels\n")
            return 0
        case .failure(let errors):
            var text = ""
            for problem in errors.problems { text += problem.description + "\n" }
            Output.err(text)
            return 1
        }
    }

    static func environment(_ name: String) -> String? {
        guard let value = getenv(name) else { return nil }
        return String(cString: value)
    }
}
