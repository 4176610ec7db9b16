import CLinux
import Relay

/// `sluice probe --host ID [--config FILE] [--state DIR]`: logs in to a configured host once and reports what an
/// operator needs to pin it: the host key's SHA256 fingerprint (as `ssh-keygen -l` prints it), the negotiated
/// algorithms, the host-key check against the configuration and whether authentication succeeds. Nothing is recorded:
/// trust on first use runs against a copy of `known_hosts`. Exit 0 when every step passed, 2 otherwise, 1 for bad
/// arguments or configuration.
public enum ProbeCommand {
    static let timeoutMs = 60_000

    final class Outcome {
        var up = false
        var reason: String?
        var hostKeyDetail: String?
        var negotiated: SSHAlgorithms.Negotiated?
        var fingerprint: [UInt8]?
        /// The addresses connected to in turn (a name's, after its lookup).
        var addresses: [String] = []
    }

    public static func run(_ args: [String]) -> Int32 {
        var hostFlag: String?
        var configFlag: String?
        var stateFlag: String?
        var i = 0
        while i < args.count {
            guard i + 1 < args.count else {
                Output.err("sluice probe: \(args[i]) needs a value\n")
                return 1
            }
            switch args[i] {
            case "--host": hostFlag = args[i + 1]
            case "--config": configFlag = args[i + 1]
            case "--state": stateFlag = args[i + 1]
            default:
                Output.err("sluice probe: unknown option '\(args[i])'\n")
                return 1
            }
            i += 2
        }
        guard let hostText = hostFlag, let hostId = Int(hostText) else {
            Output.err("sluice probe: --host ID is required (a host id of the configuration)\n")
            return 1
        }
        guard var config = Startup.loadConfigReporting(flag: configFlag, files: RealFileAccess())?.config else {
            return 1
        }
        if let stateFlag { config.stateDir = stateFlag }
        guard let host = config.host(id: hostId) else {
            Output.err("sluice probe: no host with id \(hostId) in the configuration\n")
            return 1
        }
        if host.local {
            Output.err("sluice probe: host \(hostId) is the appliance itself (local: true); there is no SSH server to probe\n")
            return 1
        }
        let built = SSHTargetBuilder.target(host, keepaliveInterval: 0, keepaliveCountMax: 0, stateDir: config.stateDir,
                                            lookupKey: "probe")
        guard var target = built.target else {
            Output.out("host: \(host.displayName) \(host.ip):\(host.port)\nverdict: FAILED: \(built.refused?.reason ?? "invalid host")\n")
            return 2
        }
        // trust on first use against a copy: a probe records nothing
        var scratchDir: String?
        var scratch: String?
        var knownBefore: [UInt8]?
        if case .knownHosts(let real) = target.hostKey {
            var template = "/tmp/sluice-probe-XXXXXX".utf8CString
            guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
                Output.err("sluice probe: cannot create a scratch folder in /tmp\n")
                return 2
            }
            let dir = String(decoding: template.dropLast().map { UInt8(truncatingIfNeeded: $0) }, as: UTF8.self)
            let copy = dir + "/known_hosts"
            scratchDir = dir
            scratch = copy
            knownBefore = FileIO.read(real, limit: 16 * 1024 * 1024)
            if let knownBefore, let problem = AtomicFile.write(copy, knownBefore, mode: 0o600) {
                Output.err("sluice probe: cannot copy \(real): \(problem)\n")
                _ = rmdir(dir)
                return 2
            }
            target.hostKey = .knownHosts(path: copy)
        }
        defer {
            if let scratch { _ = unlink(scratch) }
            if let scratchDir { _ = rmdir(scratchDir) }
        }

        let outcome = Outcome()
        let done = Completion()
        guard let reactor = Reactor(tickMilliseconds: 250), reactor.start(name: "probe") else {
            Output.err("sluice probe: cannot start the event loop\n")
            return 2
        }
        let pool = BufferPool(size: 32 * 1024, count: 4)
        let probeTarget = target
        reactor.post {
            var session: SSHSession?
            let made = SSHSession(reactor: reactor, pool: pool, target: probeTarget, forward: .exit(),
                                  maxConnections: 1,
                                  onUp: {
                                      outcome.up = true
                                      outcome.addresses = session?.addressesTried ?? []
                                      outcome.negotiated = session?.negotiated
                                      outcome.fingerprint = session?.hostKeySHA256
                                      reactor.post { session?.close(); session = nil; done.signal() }
                                  },
                                  onDown: { failure in
                                      outcome.reason = TunnelFailure(failure).reason
                                      outcome.addresses = session?.addressesTried ?? []
                                      outcome.hostKeyDetail = session?.hostKeyDetail
                                      outcome.negotiated = session?.negotiated
                                      outcome.fingerprint = session?.hostKeySHA256
                                      session = nil
                                      done.signal()
                                  })
            session = made
            reactor.setTick { session?.tick(nowMs: Clock.monotonicMs()) }
            made.start()
        }
        let finished = done.wait(timeoutMs: timeoutMs)
        reactor.stop()
        return report(host: host, target: probeTarget, outcome: outcome, finished: finished, scratch: scratch,
                      knownBefore: knownBefore)
    }

    static func report(host: Host, target: SSHTarget, outcome: Outcome, finished: Bool, scratch: String?,
                       knownBefore: [UInt8]?) -> Int32 {
        var text = "host: \(host.displayName) \(host.ip):\(host.port) user \(host.username)\n"
        if !Dialer.isLiteral(host.ip) {
            text += "addresses tried: " + (outcome.addresses.isEmpty ? "none (the name did not resolve)"
                                           : outcome.addresses.joined(separator: " ")) + "\n"
        }
        if let n = outcome.negotiated {
            text += "host key: \(n.hostKey)"
            if let fp = outcome.fingerprint { text += " " + fingerprint(fp) }
            text += "\nkex: \(n.kex)\ncipher: \(n.cipher)\nmac: \(n.mac)\n"
        }
        let handshakeDone = outcome.negotiated != nil
        if handshakeDone {
            switch target.hostKey {
            case .pinnedKey: if outcome.hostKeyDetail == nil { text += "host key check: matches the pinned key\n" }
            case .fingerprint:
                if outcome.hostKeyDetail == nil { text += "host key check: matches the pinned fingerprint\n" }
            case .knownHosts:
                if outcome.hostKeyDetail == nil {
                    let after = scratch.flatMap { FileIO.read($0, limit: 16 * 1024 * 1024) }
                    text += after == knownBefore ? "host key check: matches known_hosts\n"
                        : "host key check: not in known_hosts (trust on first use would record it; not recorded)\n"
                }
            }
            if let detail = outcome.hostKeyDetail { text += "host key check: FAILED (\(detail))\n" }
        }
        let verdict: String
        if !finished {
            verdict = "FAILED: no answer within \(timeoutMs / 1000) s"
        } else if outcome.up {
            text += "authentication: ok\n"
            verdict = "OK"
        } else {
            if handshakeDone && outcome.hostKeyDetail == nil { text += "authentication: FAILED\n" }
            verdict = "FAILED: " + (outcome.reason ?? "unknown")
        }
        text += "verdict: \(verdict)\n"
        Output.out(text)
        return outcome.up && finished ? 0 : 2
    }

    /// `SHA256:` + base64 without padding, as `ssh-keygen -l` prints it.
    static func fingerprint(_ digest: [UInt8]) -> String {
        var b64 = Base64.encode(digest)
        while b64.hasSuffix("=") { b64.removeLast() }
        return "SHA256:" + b64
    }
}
