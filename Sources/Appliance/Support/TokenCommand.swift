import Relay

/// `sluice token --user ID [--config FILE] [--ttl SECONDS]`: a JWT for a user of the inventory.
public enum TokenCommand {
    public static let defaultTTL: Int64 = 86400

    public static func run(_ args: [String]) -> Int32 {
        var user: String?
        var configFlag: String?
        var ttl = defaultTTL
        var i = 0
        while i < args.count {
            guard i + 1 < args.count else {
                Output.err("sluice token: \(args[i]) needs a value\n")
                return 1
            }
            let value = args[i + 1]
            switch args[i] {
            case "--user": user = value
            case "--config": configFlag = value
            case "--ttl":
                guard let seconds = Int64(value), seconds > 0 else {
                    Output.err("sluice token: --ttl must be a positive number of seconds\n")
                    return 1
                }
                ttl = seconds
            default:
                Output.err("sluice token: unknown option '\(args[i])'\n")
                return 1
            }
            i += 2
        }
        guard let userId = user else {
            Output.err("sluice token: --user is required\n")
            return 1
        }
        guard let config = Startup.loadConfigReporting(flag: configFlag, files: RealFileAccess())?.config else {
            return 1
        }
        guard config.user(id: userId) != nil else {
            Output.err("sluice token: no user with id '\(userId)' in the configuration\n")
            return 1
        }
        switch Startup.jwtSecret(config) {
        case .failure(let problem):
            Output.err("sluice token: \(problem.message)\n")
            return 2
        case .success(let secret):
            Output.out(JWT.sign(userId: userId, secret: Array(secret.value.utf8), now: Clock.unixSeconds(), ttl: ttl) + "\n")
            return 0
        }
    }
}
