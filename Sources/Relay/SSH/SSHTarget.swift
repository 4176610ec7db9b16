import CLinux

/// Where and how to log in.
public struct SSHTarget {
    /// An IP literal or a DNS name (looked up at every start through `Resolver.shared`, `lookupKey`'s share).
    public var host: String
    public var port: UInt16
    /// Whose share of the resolver the lookup takes (the user the session runs for).
    public var lookupKey = ""
    /// Whose share of the relay buffers and receive windows the session's streams take (the user it runs for).
    public var share = PoolShare.unbounded
    /// The inventory name, for reasons such as `Host key verification failed for <name>`.
    public var hostName: String
    public var user: String
    public var credentials: SSHCredentials
    public var hostKey: HostKeyPolicy
    /// 0 disables keepalives (and dead-peer detection).
    public var keepaliveIntervalMs: Int
    public var keepaliveCountMax: Int

    public init(host: String, port: UInt16, hostName: String, user: String, credentials: SSHCredentials,
                hostKey: HostKeyPolicy, keepaliveIntervalMs: Int, keepaliveCountMax: Int) {
        self.host = host
        self.port = port
        self.hostName = hostName
        self.user = user
        self.credentials = credentials
        self.hostKey = hostKey
        self.keepaliveIntervalMs = keepaliveIntervalMs
        self.keepaliveCountMax = keepaliveCountMax
    }
}

extension SSHTarget {
    /// The host as known_hosts and pins know it: an IP literal in its canonical text, a name in lower case
    /// without a trailing dot (OpenSSH with `CheckHostIP no`).
    public var knownHostsName: String {
        if let address = SocketAddress(ip: host, port: port) { return address.ipString }
        var name = host.lowercased()
        if name.hasSuffix(".") { name.removeLast() }
        return name
    }

    /// `host:port` (`[v6]:port`) for reasons such as `SSH connection to <this> failed`.
    public var endpointText: String {
        if let address = SocketAddress(ip: host, port: port) { return address.description }
        return "\(host):\(port)"
    }
}

/// What the session carries once it is up (tunnels-api.md §7, direct mode). A struct with a plain kind. It became one
/// when the Embedded build seemed to take wrong cases of switches over payload enums here; issue #25 reduced that
/// symptom to same-named constant arrays (SOCKS5.pair, tools/embedded-runtime-check): payload enums are safe.
public struct SSHForward {
    /// `exit`: no listener; streams are handed in through `SSHSession.channels` (`adopt`, `carry`,
    /// `open`): managed tunnels and C2S.
    public enum Kind { case local, dynamic, remote, exit }

    public let kind: Kind
    /// local/dynamic: the listener here.
    public let listen: SocketAddress
    /// local: the direct-tcpip target; remote: the listen address on the server.
    public let host: String
    public let port: Int
    /// remote: where each inbound channel is connected to.
    public let connectTo: SocketAddress

    /// `ssh -L`: a listener here; each connection → direct-tcpip to `targetHost:targetPort`.
    public static func local(listen: SocketAddress, targetHost: String, targetPort: Int) -> SSHForward {
        SSHForward(kind: .local, listen: listen, host: targetHost, port: targetPort, connectTo: listen)
    }

    /// `ssh -D`: a SOCKS5 listener here; each CONNECT → direct-tcpip.
    public static func dynamic(listen: SocketAddress) -> SSHForward {
        SSHForward(kind: .dynamic, listen: listen, host: "", port: 0, connectTo: listen)
    }

    /// The exit side of a managed tunnel: ready once authenticated; streams arrive through `SSHSession.channels`.
    public static func exit() -> SSHForward {
        let none = SocketAddress(ip: "127.0.0.1", port: 0)!
        return SSHForward(kind: .exit, listen: none, host: "", port: 0, connectTo: none)
    }

    /// `ssh -R`: tcpip-forward on the server; each inbound channel → a TCP connection to `connectTo`.
    public static func remote(listenHost: String, listenPort: Int, connectTo: SocketAddress) -> SSHForward {
        SSHForward(kind: .remote, listen: connectTo, host: listenHost, port: listenPort, connectTo: connectTo)
    }
}
