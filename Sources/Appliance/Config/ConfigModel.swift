/// The validated configuration (spec: appliance.md §2). Built only by `ConfigLoader`, which checks the whole file
/// first; everything downstream may trust these values. Paths are absolute (resolved against the config file's
/// folder); secrets are read from their files at load time and held as `Secret`.
public struct Config {
    public var listen: String = "127.0.0.1:30003"
    public var stateDir: String = "./.sluice-state"
    /// nil: the secret lives in `<stateDir>/jwt_secret`.
    public var jwtSecretFile: String?
    public var allowedOrigins: [String] = []
    /// Host names the appliance answers to besides IP literals, `localhost` and the hosts of `allowedOrigins`
    /// (`HostPolicy`: DNS rebinding).
    public var serverNames: [String] = []
    public var sseKeepaliveSeconds: Int = 30
    public var bindAllow: [String] = ["127.0.0.1", "::1"]
    public var destinations = Destinations()
    public var limits = Limits()
    public var users: [User] = []
    public var hosts: [Host] = []
    /// The file this came from; nil for the embedded default.
    public var sourcePath: String?

    public init() {}

    public func user(id: String) -> User? { users.first { $0.id == id } }
    public func host(id: Int) -> Host? { hosts.first { $0.id == id } }
}

public struct Destinations: Equatable {
    public var allow: [String] = ["127.0.0.0/8", "::1"]
    public var deny: [String] = []
    public init() {}
}

public struct Limits: Equatable {
    public var bufferSize = 32768
    public var bufferCount = 1024
    public var maxTunnels = 256
    public var maxConnectionsPerTunnel = 512
    public var maxRelays = 512
    /// Bytes of wide (16 MiB) SSH receive windows at once, process-wide (Relay's `WindowBudget`): 4 by default.
    public var receiveWindowBudget = 64 << 20
    public init() {}
}

public struct User: Equatable {
    public var id: String
    public var username: String
    public var admin: Bool
    /// PBKDF2 hash for password login (a later issue); never returned or logged.
    public var passwordHash: Secret?

    public init(id: String, username: String, admin: Bool = false, passwordHash: Secret? = nil) {
        self.id = id
        self.username = username
        self.admin = admin
        self.passwordHash = passwordHash
    }
}

/// A secret value: its description never shows it, so it cannot leak into a log line or an answer by accident.
public struct Secret: Equatable, CustomStringConvertible {
    public let value: String
    public init(_ value: String) { self.value = value }
    public var description: String { "<redacted>" }
}

public enum HostAuth: Equatable {
    case none
    case password(Secret)
    /// `keyFile` is an absolute path; the key is read when a session starts (it may be rotated on disk).
    case key(keyFile: String, passphrase: Secret?)
}

public struct Host: Equatable {
    public var id: Int
    public var name: String
    /// The appliance itself: no SSH; tunnels relay in the kernel.
    public var local: Bool = false
    public var ip: String = ""
    public var port: Int = 22
    public var username: String = ""
    public var owner: String
    public var sharedWith: [String] = []
    public var auth: HostAuth = .none
    /// An OpenSSH public-key line or `SHA256:<base64>`; nil: trust on first use.
    public var hostKey: String?
    public var keepaliveInterval: Int = 30000
    public var keepaliveCountMax: Int = 3
    public var tunnels: [TunnelConfig] = []

    public init(id: Int, name: String, owner: String) {
        self.id = id
        self.name = name
        self.owner = owner
    }

    /// The display part of configured tunnel names: `name`, else `user@ip`.
    public var displayName: String { name.isEmpty ? "\(username)@\(ip)" : name }
}

public enum TunnelMode: String, Equatable {
    case local, remote, dynamic
}

/// A tunnel of the configuration file (`hosts[i].tunnels[j]`). `retryInterval` is in seconds here, as Termix
/// stores it; the API's is in milliseconds.
public struct TunnelConfig: Equatable {
    public var mode: TunnelMode = .local
    public var sourcePort: Int = 0
    public var endpointHost: String = ""
    public var endpointPort: Int = 0
    public var bindHost: String = "127.0.0.1"
    public var targetHost: String = ""
    public var maxRetries: Int = 3
    public var retryIntervalSeconds: Int = 5
    public var autoStart: Bool = false

    public init() {}
}
