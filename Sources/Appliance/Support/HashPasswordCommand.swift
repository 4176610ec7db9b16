import CLinux

/// `sluice hash-password [--iterations N]`: reads a password from standard input (one line; a terminal is not
/// echoed to when it is one) and prints the `passwordHash` value for the configuration.
public enum HashPasswordCommand {
    public static func run(_ args: [String]) -> Int32 {
        var iterations = PasswordHash.defaultIterations
        if args.count == 2 && args[0] == "--iterations", let n = Int(args[1]),
           n >= PasswordHash.minimumIterations, n <= PasswordHash.maximumIterations {
            iterations = n
        } else if !args.isEmpty {
            Output.err("usage: sluice hash-password [--iterations \(PasswordHash.minimumIterations)-\(PasswordHash.maximumIterations)] < password\n")
            return 1
        }
        let interactive = isatty(0) == 1
        if interactive { Output.err("Password: ") }
        let previous = interactive ? cl_echo(0, 0) : -1
        let line = readLine(limit: 4096)
        if previous >= 0 { _ = cl_echo(0, previous); Output.err("\n") }
        guard let password = line, !password.isEmpty else {
            Output.err("sluice hash-password: no password on standard input\n")
            return 1
        }
        guard let hash = PasswordHash.make(password: password, iterations: iterations) else {
            Output.err("sluice hash-password: hashing failed\n")
            return 2
        }
        Output.out(hash.text + "\n")
        return 0
    }

    /// One line from fd 0 without its line end; nil at once-empty EOF or beyond `limit` bytes.
    static func readLine(limit: Int) -> String? {
        var bytes: [UInt8] = []
        var byte: UInt8 = 0
        while bytes.count <= limit {
            let n = read(0, &byte, 1)
            if n < 0 && clinux_errno() == EINTR { continue }
            if n <= 0 { break }
            if byte == 0x0A { break }
            bytes.append(byte)
        }
        if bytes.count > limit { return nil }
        if bytes.last == 0x0D { bytes.removeLast() }
        return bytes.isEmpty ? nil : String(decoding: bytes, as: UTF8.self)
    }
}
