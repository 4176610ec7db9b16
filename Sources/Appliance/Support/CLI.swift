import CLinux
import Relay

/// `sluice <command> [options]`. Exit codes per the appliance contract: 0 clean, 1 bad configuration or arguments,
/// 2 runtime failure.
public enum CLI {
    public static let usage = """
        usage: sluice serve [--config FILE] [--listen ADDR:PORT] [--state DIR]
               sluice token --user ID [--config FILE] [--ttl SECONDS]
               sluice check [--config FILE]
               sluice probe --host ID [--config FILE] [--state DIR]
               sluice hash-password [--iterations N] < password
               sluice version

        """

    public static func processArguments() -> [String] {
        var length = 0
        guard let raw = cl_read_cmdline(&length) else { return [] }
        defer { free(raw) }
        var arguments: [String] = []
        var start = 0
        raw.withMemoryRebound(to: UInt8.self, capacity: length) { bytes in
            for i in 0..<length where bytes[i] == 0 {
                arguments.append(String(decoding: UnsafeBufferPointer(start: bytes + start, count: i - start),
                                        as: UTF8.self))
                start = i + 1
            }
        }
        return arguments
    }

    public static func run(arguments: [String]) -> Int32 {
        if let broken = RuntimeContract.violation() {
            Output.err("sluice: \(broken)\n")
            return 2
        }
        let args = Array(arguments.dropFirst())
        guard let command = args.first else {
            Output.err(usage)
            return 1
        }
        let options = Array(args.dropFirst())
        switch command {
        case "version", "--version":
            Output.out(BuildInfo.report)
            return 0
        case "serve":
            switch ServeOptions.parse(options) {
            case .success(let parsed): return Serve.run(parsed)
            case .failure(let problem):
                Output.err("sluice serve: \(problem.message)\n")
                return 1
            }
        case "token":
            return TokenCommand.run(options)
        case "check":
            return CheckCommand.run(options)
        case "probe":
            return ProbeCommand.run(options)
        case "hash-password":
            return HashPasswordCommand.run(options)
        case "help", "--help", "-h":
            Output.out(usage)
            return 0
        default:
            Output.err("sluice: unknown command '\(command)'\n\(usage)")
            return 1
        }
    }
}

public struct UsageError: Error {
    public let message: String
    public init(_ message: String) { self.message = message }
}

public struct ServeOptions {
    public var config: String?
    public var listen: String?
    public var state: String?

    public static func parse(_ args: [String]) -> Result<ServeOptions, UsageError> {
        var options = ServeOptions()
        var i = 0
        while i < args.count {
            let flag = args[i]
            guard flag == "--config" || flag == "--listen" || flag == "--state" else {
                return .failure(UsageError("unknown option '\(flag)'"))
            }
            guard i + 1 < args.count else { return .failure(UsageError("\(flag) needs a value")) }
            let value = args[i + 1]
            switch flag {
            case "--config": options.config = value
            case "--listen": options.listen = value
            default: options.state = value
            }
            i += 2
        }
        return .success(options)
    }
}
