import Relay

/// Turns a validated connect request into what the relay needs: where to log in, with which credentials and
/// host-key policy, and which forward to set up (tunnels-api.md §7, direct mode). Runs on the control thread, so
/// key files are read when each attempt starts (they may be rotated on disk).
enum SSHTargetBuilder {
    /// `refused` set: the attempt fails with it. `connectName` set (direct remote to a name): the forward is made by
    /// `remote(_:to:)` once the driver has judged and resolved that name.
    struct Built {
        var target: SSHTarget?
        var forward: SSHForward?
        var refused: TunnelFailure?
        var connectName: String?

        static func ready(_ target: SSHTarget?, _ forward: SSHForward) -> Built { Built(target: target, forward: forward) }
        static func refused(_ failure: TunnelFailure) -> Built { Built(refused: failure) }
    }

    /// A managed tunnel's parts (tunnels-api.md §7): the inner session's target and the forward's two ends.
    struct Managed {
        var inner: SSHTarget
        var mode: SSHChain.Mode
        var listenHost: String
        var listenPort: Int
        var exitHost: String
        var exitPort: Int
    }

    static func build(_ request: ConnectRequest, config: Config, stateDir: String) -> Built {
        let outer = target(request.host, request, stateDir: stateDir)
        guard let target = outer.target else { return outer }
        if request.endpoint != nil { return Built(target: target) }
        let built = forward(request, config: config)
        if let name = built.connectName { return Built(target: target, connectName: name) }
        guard let forward = built.forward else { return built }
        return .ready(target, forward)
    }

    /// Managed mode: the inner target and where it listens and exits; `refused` as for `build`.
    static func managed(_ request: ConnectRequest, stateDir: String) -> (Managed?, TunnelFailure?) {
        guard let endpoint = request.endpoint else { return (nil, .invalidConfiguration) }
        let built = target(endpoint, request, stateDir: stateDir)
        guard let inner = built.target else { return (nil, built.refused) }
        let bindHost = literal(request.bindHost)
        let exitHost = request.targetHost.isEmpty ? "127.0.0.1" : request.targetHost
        if request.mode == .remote {
            return (Managed(inner: inner, mode: .remote, listenHost: bindHost, listenPort: request.endpointPort,
                            exitHost: exitHost, exitPort: request.sourcePort), nil)
        }
        let mode: SSHChain.Mode = request.mode == .dynamic ? .dynamic : .local
        return (Managed(inner: inner, mode: mode, listenHost: bindHost, listenPort: request.sourcePort,
                        exitHost: exitHost, exitPort: request.endpointPort), nil)
    }

    /// Where and how to log in to one inventory host.
    static func target(_ host: Host, _ request: ConnectRequest, stateDir: String) -> Built {
        target(host, keepaliveInterval: request.keepaliveInterval, keepaliveCountMax: request.keepaliveCountMax,
               stateDir: stateDir, lookupKey: request.requesterId, bounded: !request.requesterAdmin)
    }

    /// The same, with the keepalive numbers given (C2S relays take the host's own). `bounded`: the streams take the
    /// `lookupKey` user's share of the relay buffers and windows (a non-admin's quarter, issue #24).
    static func target(_ host: Host, keepaliveInterval: Int, keepaliveCountMax: Int, stateDir: String,
                       lookupKey: String, bounded: Bool = false) -> Built {
        let credentials: SSHCredentials
        if case .key(let keyFile, let passphrase) = host.auth {
            guard let key = FileIO.read(keyFile, limit: 64 * 1024) else {
                // the status goes to every user of the host: the path stays in the operator's log (issue #15)
                Log.warn("ssh.key_unreadable", [("host", host.displayName), ("file", keyFile)])
                return .refused(.keyUnreadable)
            }
            let keyType = PrivateKeyInfo.describe(key)
            if let problem = PrivateKeyInfo.unsupportedInThisBuild(keyType) { return .refused(.keyUnsupported(problem)) }
            credentials = .privateKey(key: key, passphrase: passphrase?.value, keyType: keyType)
        } else if case .password(let secret) = host.auth {
            credentials = .password(secret.value)
        } else {
            credentials = .none
        }
        guard let hostKey = hostKeyPolicy(host, stateDir: stateDir) else {
            return .refused(.hostKeyRejected(host.displayName))
        }
        var target = SSHTarget(host: host.ip, port: UInt16(truncatingIfNeeded: host.port), hostName: host.displayName,
                               user: host.username, credentials: credentials, hostKey: hostKey,
                               keepaliveIntervalMs: keepaliveInterval, keepaliveCountMax: keepaliveCountMax)
        target.lookupKey = lookupKey
        target.share = PoolShare(key: lookupKey, bounded: bounded)
        return Built(target: target)
    }

    /// The forward part only (no target).
    static func forward(_ request: ConnectRequest, config: Config) -> Built {
        let placeholder: SSHTarget? = nil
        let bindHost = literal(request.bindHost)
        if request.mode != .remote {
            guard BindPolicy.allows(bindHost, bindAllow: config.bindAllow),
                  let listen = SocketAddress(ip: bindHost, port: UInt16(truncatingIfNeeded: request.sourcePort)) else {
                return .refused(.bindNotAllowed(request.bindHost))
            }
            if request.mode == .dynamic { return .ready(placeholder, .dynamic(listen: listen)) }
            let target = !request.targetHost.isEmpty ? request.targetHost
                : !request.endpointHost.isEmpty ? request.endpointHost : "127.0.0.1"
            return .ready(placeholder, .local(listen: listen, targetHost: target, targetPort: request.endpointPort))
        }
        do {
            let plain = ["", "127.0.0.1", "localhost"]
            guard plain.contains(request.endpointHost) else {
                return .refused(.endpointNotFound(request.endpointHost))
            }
            guard let connectTo = SocketAddress(ip: bindHost, port: UInt16(truncatingIfNeeded: request.endpointPort)) else {
                // a name: where the server's connections go, resolved at every attempt (SSHDriver, Dialer.judge)
                return Built(connectName: bindHost)
            }
            return remote(request, to: connectTo, asked: connectTo.ipString, config: config)
        }
    }

    /// Direct remote: every connection the server forwards back leaves from the appliance to `connectTo` (`bindHost`
    /// as `asked`, or one of its addresses), so `destinations` decides (issue #15; the target is fixed for the
    /// attempt, so checking it here and again after a reload covers them all).
    static func remote(_ request: ConnectRequest, to connectTo: SocketAddress, asked: String, config: Config) -> Built {
        let port = request.endpointPort
        guard DestinationPolicy(config.destinations).allows(host: asked, address: connectTo.ipString, port: port) else {
            return .refused(.destinationNotAllowed(host: asked, port: port))
        }
        let listenHost = request.targetHost.isEmpty ? "127.0.0.1" : request.targetHost
        let placeholder: SSHTarget? = nil
        return .ready(placeholder, .remote(listenHost: listenHost, listenPort: request.sourcePort, connectTo: connectTo))
    }

    static func literal(_ host: String) -> String { BindPolicy.literal(host) }

    /// nil when the pin cannot be used (validation normally refuses such a configuration first).
    static func hostKeyPolicy(_ host: Host, stateDir: String) -> HostKeyPolicy? {
        guard let pin = host.hostKey else { return .knownHosts(path: stateDir + "/known_hosts") }
        let bytes = Array(pin.utf8)
        if bytes.starts(with: "SHA256:".utf8) {
            guard let digest = Base64.decode(bytes[7...], url: false), digest.count == 32 else { return nil }
            return .fingerprint(digest)
        }
        let fields = ConfigSyntax.split(bytes)
        guard fields.count >= 2, let blob = Base64.decode(String(decoding: fields[1], as: UTF8.self)) else { return nil }
        return .pinnedKey(algorithm: String(decoding: fields[0], as: UTF8.self), blob: blob)
    }
}
