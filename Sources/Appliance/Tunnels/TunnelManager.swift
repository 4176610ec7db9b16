import Relay

enum AttemptReport {
    case connected
    case failed(TunnelFailure)
    case disconnected(TunnelFailure)
    case traffic(bytesIn: Int64, bytesOut: Int64, active: Int)
}

public enum ConnectOutcome {
    case accepted
    /// A non-admin already holds their share of the registry (→ 429).
    case userLimit
    /// `limits.maxTunnels` entries and none of them idle and unconfigured (→ 503).
    case registryFull
    /// The control thread did not answer in time (→ 500).
    case unavailable
}

public enum TunnelCommandResult {
    case done
    case notFound
    /// The control thread did not answer in time (→ 500).
    case unavailable
}

/// Owns every tunnel's state on one control thread (tunnels-api.md §8): commands arrive with `Reactor.call`,
/// driver reports with `Reactor.post`, and a tick drives countdowns and the attempt watchdog. After each change it
/// publishes an immutable snapshot that HTTP handlers and the SSE hub read without touching the state.
public final class TunnelManager {
    public static let attemptTimeoutMs: Int64 = 60_000
    public static let retryResetMs: Int64 = 30_000

    let reactor: Reactor
    let driver: any TunnelDriver
    private var config: Config
    private var entries: [String: TunnelEntry] = [:]
    private var order: [String] = []
    private var attemptOwners: [UInt64: String] = [:]
    private var nextAttempt: UInt64 = 1
    private var version: UInt64 = 0
    private let published = Locked<TunnelSnapshot>(.empty)
    private var events: TunnelEvents?
    private let state: StateDirectory?
    private var autostart = AutostartState()
    /// Called on the control thread after every published change (set before `start`).
    public var onChange: ((TunnelSnapshot) -> Void)?
    /// Called on the control thread at every tick (set before `start`): the systemd watchdog pings from here, so a
    /// wedged control thread stops them.
    public var onTick: (() -> Void)?

    /// `state`: where autostart.json lives (nil: nothing is remembered across restarts).
    public init?(config: Config, driver: any TunnelDriver, state: StateDirectory? = nil) {
        guard let reactor = Reactor(tickMilliseconds: 200) else { return nil }
        self.reactor = reactor
        self.driver = driver
        self.config = config
        self.state = state
    }

    public func start() -> Bool {
        events = TunnelEvents(manager: self)
        guard reactor.start(name: "tunnels") else { return false }
        // synchronously: the registry holds the configured tunnels before the HTTP server answers anything
        return reactor.call { [self] in
            self.reactor.setTick { [self] in self.tick() }
            self.registerConfigured()
            self.publish()
            self.startAutostart()
        }
    }

    /// Ends every attempt (listeners closed, sessions ended) and stops the control thread.
    public func stop() {
        reactor.call { [self] in
            for name in self.order { if let entry = self.entries[name] { self.release(entry) } }
        }
        reactor.stop()
        events = nil
    }

    public func snapshot() -> TunnelSnapshot { published.get() }

    // MARK: commands (any thread; each waits for the control thread so the answer reflects the change)

    /// Each tunnel holds listeners and sessions, so the registry is bounded by `limits.maxTunnels`; a non-admin
    /// may hold at most `userShare` of it (issue #15: one user filled it and an admin's connect failed). Room is
    /// made by dropping idle entries (stopped or failed) that the configuration does not list: the requester's
    /// own first, then anyone's, oldest first.
    public func connect(_ request: ConnectRequest, user: User) -> ConnectOutcome {
        var outcome = ConnectOutcome.unavailable
        let answered = reactor.call { [self] in
            let name = request.name.text
            if self.entries[name] == nil {
                let limit = self.config.limits.maxTunnels
                if !user.admin {
                    let mine = self.order.filter { self.entries[$0].map { !$0.fromConfig && $0.requesterId == user.id } ?? false }
                    if mine.count >= TunnelManager.userShare(limit) && !self.evictIdle(among: mine) {
                        Log.warn("tunnel.user_limit_reached", [("tunnel", name), ("user", user.id)])
                        outcome = .userLimit
                        return
                    }
                }
                if self.entries.count >= limit && !self.evictIdle(among: self.order) {
                    Log.warn("tunnel.limit_reached", [("tunnel", name), ("maxTunnels", String(limit))])
                    outcome = .registryFull
                    return
                }
            }
            self.launch(request, requester: user.id)
            self.remember { $0.connected(request, userId: user.id) }
            outcome = .accepted
        }
        return answered ? outcome : .unavailable
    }

    /// A non-admin's share of `maxTunnels`: a quarter, at least one.
    static func userShare(_ maxTunnels: Int) -> Int { max(1, maxTunnels / 4) }

    /// Removes the first entry of `names` that nothing runs for and the configuration does not list.
    private func evictIdle(among names: [String]) -> Bool {
        for name in names {
            guard let entry = entries[name], !entry.fromConfig, entry.attempt == 0, !entry.waiting else { continue }
            remove(entry)
            return true
        }
        return false
    }

    public func disconnect(_ name: String, user: User) -> TunnelCommandResult {
        stopCommand(name, user: user) { entry in
            var status = TunnelStatus(state: .disconnected)
            status.manualDisconnect = true
            return status
        }
    }

    public func cancel(_ name: String, user: User) -> TunnelCommandResult {
        stopCommand(name, user: user) { _ in
            var status = TunnelStatus(state: .failed)
            status.reason = "Retry cancelled"
            return status
        }
    }

    /// SIGHUP: tunnels of removed hosts stop and leave the registry; tunnels whose requester may no longer use
    /// their source or managed endpoint host stop (issue #15: a reload must revoke access, not restart it);
    /// tunnels of changed hosts (or whose endpoint changed) restart with the new inventory; new configured tunnels
    /// are listed; tunnels of unchanged hosts keep running.
    public func reload(_ newConfig: Config) {
        reactor.call { [self] in
            let old = self.config
            self.config = newConfig
            for name in Array(self.order) {
                guard let entry = self.entries[name] else { continue }
                guard let host = newConfig.host(id: entry.hostId) else {
                    self.remove(entry)
                    continue
                }
                guard var request = entry.request else { continue }
                let active = entry.attempt != 0 || entry.waiting
                // a configured tunnel started on its owner's authority (autoStart) follows the host's new owner
                if entry.fromConfig, let before = old.host(id: entry.hostId), entry.requesterId == before.owner {
                    entry.requesterId = host.owner
                }
                let requester = entry.requesterId.flatMap { newConfig.user(id: $0) }
                let endpoint = requester.flatMap {
                    EndpointLookup.managedEndpoint(request.endpointHost, config: newConfig, user: $0)
                }
                var revoked: TunnelFailure?
                if requester == nil || !newConfig.mayUse(host, requester!) {
                    revoked = .accessRevoked
                } else if request.endpoint != nil && endpoint == nil {
                    revoked = .endpointNotFound(request.endpointHost)
                }
                // a direct remote tunnel's target was checked against `destinations` when it started
                let recheck = request.mode == .remote && endpoint == nil && old.destinations != newConfig.destinations
                let changed = old.host(id: entry.hostId) != host || request.endpoint != endpoint || recheck
                request.host = host
                request.endpoint = endpoint
                entry.request = request
                if let revoked {
                    guard active else { continue }
                    self.release(entry)
                    entry.retryCount = 0
                    var status = TunnelStatus(state: .failed)
                    status.reason = revoked.reason
                    status.errorType = revoked.errorType
                    self.setStatus(entry, status)
                    Log.warn("tunnel.revoked", [("tunnel", name), ("reason", revoked.reason)])
                } else if changed && active {
                    self.release(entry)
                    entry.retryCount = 0
                    self.beginAttempt(entry, keepWaiting: false)
                }
            }
            let known = Set(self.order)
            let configured = self.registerConfigured()
            self.remember { $0.prune(configured: configured) }
            for name in configured where !known.contains(name) {
                if let request = self.configuredRequest(named: name), request.autoStart,
                   !self.autostart.stopped.contains(name) {
                    self.launch(request, requester: request.host.owner)
                }
            }
            for name in self.order {
                guard let entry = self.entries[name], entry.fromConfig, !configured.contains(name),
                      entry.request == nil || entry.attempt == 0 && !entry.waiting else { continue }
                self.remove(entry)
            }
            self.publish()
        }
    }

    func report(_ attempt: UInt64, _ report: AttemptReport) {
        reactor.post { [self] in
            guard let name = self.attemptOwners[attempt], let entry = self.entries[name],
                  entry.attempt == attempt else { return }   // a stale report from a released attempt
            switch report {
            case .connected:
                entry.attempting = false
                entry.connected = true
                entry.waiting = false
                entry.connectedSinceMs = Clock.monotonicMs()
                self.setStatus(entry, TunnelStatus(state: .connected))
            case .failed(let failure):
                self.attemptEnded(entry, failure, wasConnected: false)
            case .disconnected(let failure):
                self.attemptEnded(entry, failure, wasConnected: entry.connected)
            case .traffic(let bytesIn, let bytesOut, let active):
                var status = entry.status
                status.bytesIn = bytesIn
                status.bytesOut = bytesOut
                status.activeConnections = active
                if status != entry.status {
                    entry.status = status
                    self.publish()
                }
            }
        }
    }

    // MARK: control thread

    private func stopCommand(_ name: String, user: User,
                             _ final: @escaping (TunnelEntry) -> TunnelStatus) -> TunnelCommandResult {
        var result = TunnelCommandResult.unavailable
        let answered = reactor.call { [self] in
            guard let entry = self.entries[name], let host = self.config.host(id: entry.hostId),
                  self.config.mayUse(host, user) else {
                result = .notFound
                return
            }
            self.release(entry)
            entry.retryCount = 0
            self.setStatus(entry, final(entry))
            let configuredAutoStart = entry.fromConfig && self.configuredRequest(named: name)?.autoStart == true
            self.remember { $0.stoppedByUser(name, configuredAutoStart: configuredAutoStart) }
            result = .done
        }
        return answered ? result : .unavailable
    }

    private func launch(_ request: ConnectRequest, requester: String) {
        let entry = entry(for: request.name.text, hostId: request.host.id)
        release(entry)
        entry.request = request
        entry.requesterId = requester
        entry.retryCount = 0
        beginAttempt(entry, keepWaiting: false)
    }

    /// Changes the autostart record and writes it (atomically) when it changed. A failed write (disk full) is
    /// logged; the tunnel itself is unaffected.
    private func remember(_ change: (inout AutostartState) -> Void) {
        guard let state else { return }
        var next = autostart
        change(&next)
        guard next != autostart else { return }
        autostart = next
        if let problem = state.writeJSON(AutostartState.fileName, next.json()) {
            Log.error("state.write_failed", [("file", AutostartState.fileName), ("problem", problem)])
        }
    }

    /// At start: configured autoStart tunnels that no user stopped, then the API's autoStart tunnels, each checked
    /// again against the inventory and permissions of now.
    private func startAutostart() {
        guard let state else { return }
        autostart = state.readJSON(AutostartState.fileName).map { AutostartState.parse($0) } ?? AutostartState()
        for host in config.hosts {
            for (index, tunnel) in host.tunnels.enumerated() where tunnel.autoStart {
                guard let request = TunnelManager.request(configured: host, index: index, tunnel: tunnel, config: config),
                      !autostart.stopped.contains(request.name.text) else { continue }
                launch(request, requester: host.owner)
                Log.info("tunnel.autostart", [("tunnel", request.name.text), ("source", "config")])
            }
        }
        for item in autostart.entries {
            guard let user = config.user(id: item.userId) else {
                Log.warn("tunnel.autostart_skipped", [("tunnel", item.name), ("reason", "unknown user")])
                continue
            }
            switch ConnectValidation.validate(body: Array(JSONWriter.write(item.body).utf8), config: config, user: user) {
            case .success(let request):
                launch(request, requester: user.id)
                Log.info("tunnel.autostart", [("tunnel", item.name), ("source", "api")])
            case .failure(let error):
                Log.warn("tunnel.autostart_skipped", [("tunnel", item.name), ("reason", error.message)])
            }
        }
    }

    private func configuredRequest(named name: String) -> ConnectRequest? {
        for host in config.hosts {
            for (index, tunnel) in host.tunnels.enumerated()
            where TunnelName.configured(host: host, index: index, tunnel: tunnel) == name {
                return TunnelManager.request(configured: host, index: index, tunnel: tunnel, config: config)
            }
        }
        return nil
    }

    /// A configured tunnel as the connect request a Termix client would send for it (retryInterval is in seconds
    /// in the file); managed endpoints are looked up as the host's owner.
    static func request(configured host: Host, index: Int, tunnel: TunnelConfig, config: Config) -> ConnectRequest? {
        guard let name = TunnelName.parse(TunnelName.configured(host: host, index: index, tunnel: tunnel)) else { return nil }
        let owner = config.user(id: host.owner)
        return ConnectRequest(
            name: name, host: host, mode: tunnel.mode, sourcePort: tunnel.sourcePort, endpointHost: tunnel.endpointHost,
            endpointPort: tunnel.endpointPort, bindHost: tunnel.bindHost.isEmpty ? "127.0.0.1" : tunnel.bindHost,
            targetHost: tunnel.targetHost, maxRetries: tunnel.maxRetries == 0 ? 3 : tunnel.maxRetries,
            retryIntervalMs: tunnel.retryIntervalSeconds <= 0 ? 5000 : tunnel.retryIntervalSeconds * 1000,
            autoStart: tunnel.autoStart, keepaliveInterval: host.keepaliveInterval,
            keepaliveCountMax: host.keepaliveCountMax,
            endpoint: owner.flatMap { EndpointLookup.managedEndpoint(tunnel.endpointHost, config: config, user: $0) })
    }

    @discardableResult
    private func registerConfigured() -> Set<String> {
        var names = Set<String>()
        for host in config.hosts {
            for (index, tunnel) in host.tunnels.enumerated() {
                let name = TunnelName.configured(host: host, index: index, tunnel: tunnel)
                names.insert(name)
                if let existing = entries[name] {
                    existing.fromConfig = true
                } else {
                    let entry = TunnelEntry(name: name, hostId: host.id, status: stamped(TunnelStatus(state: .disconnected)),
                                            fromConfig: true)
                    entries[name] = entry
                    order.append(name)
                }
            }
        }
        return names
    }

    private func entry(for name: String, hostId: Int) -> TunnelEntry {
        if let existing = entries[name] { return existing }
        let entry = TunnelEntry(name: name, hostId: hostId, status: stamped(TunnelStatus(state: .disconnected)),
                                fromConfig: false)
        entries[name] = entry
        order.append(name)
        return entry
    }

    private func remove(_ entry: TunnelEntry) {
        release(entry)
        entries[entry.name] = nil
        order.removeAll { $0 == entry.name }
        publish()
    }

    /// Frees the attempt's resources synchronously; reports from it are ignored from now on.
    private func release(_ entry: TunnelEntry) {
        if entry.attempt != 0 {
            let attempt = entry.attempt
            attemptOwners[attempt] = nil
            entry.attempt = 0
            driver.stop(attempt: attempt)
        }
        entry.attempting = false
        entry.connected = false
        entry.waiting = false
    }

    private func beginAttempt(_ entry: TunnelEntry, keepWaiting: Bool) {
        guard let request = entry.request, let events else { return }
        let attempt = nextAttempt
        nextAttempt += 1
        entry.attempt = attempt
        attemptOwners[attempt] = entry.name
        entry.attempting = true
        entry.connected = false
        entry.attemptStartedMs = Clock.monotonicMs()
        if keepWaiting {
            var status = entry.status
            status.nextRetryIn = nil
            setStatus(entry, status)
            entry.waiting = false
        } else {
            entry.waiting = false
            setStatus(entry, TunnelStatus(state: .connecting))
        }
        driver.start(request, attempt: attempt, events: events)
    }

    private func attemptEnded(_ entry: TunnelEntry, _ failure: TunnelFailure, wasConnected: Bool) {
        release(entry)
        let reason = failure.reason
        let type = failure.errorType
        var status = TunnelStatus(state: wasConnected ? .disconnected : .failed)
        status.reason = reason
        status.errorType = type
        setStatus(entry, status)
        guard let request = entry.request, type != .AUTHENTICATION_FAILED, type != .CONNECTION_FAILED else {
            if wasConnected {
                var terminal = status
                terminal.state = .failed
                setStatus(entry, terminal)
            }
            return
        }
        entry.retryCount += 1
        if request.maxRetries != -1 && entry.retryCount > request.maxRetries {
            var exhausted = TunnelStatus(state: .failed)
            exhausted.retryExhausted = true
            exhausted.reason = failure.exhausted().reason
            exhausted.errorType = type
            setStatus(entry, exhausted)
            return
        }
        var retrying = TunnelStatus(state: .retrying)
        retrying.retryCount = entry.retryCount
        retrying.maxRetries = request.maxRetries
        retrying.nextRetryInMs = request.retryIntervalMs
        retrying.reason = reason
        retrying.errorType = type
        setStatus(entry, retrying)

        entry.waiting = true
        entry.waitingRemaining = max(1, (request.retryIntervalMs + 999) / 1000)
        entry.nextStepMs = Clock.monotonicMs() + 1000
        var waiting = retrying
        waiting.state = .waiting
        waiting.nextRetryInMs = nil
        waiting.nextRetryIn = entry.waitingRemaining
        setStatus(entry, waiting)
    }

    private func tick() {
        onTick?()
        let now = Clock.monotonicMs()
        for name in order {
            guard let entry = entries[name] else { continue }
            if entry.waiting && now >= entry.nextStepMs {
                entry.waitingRemaining -= 1
                if entry.waitingRemaining <= 0 {
                    beginAttempt(entry, keepWaiting: true)
                } else {
                    entry.nextStepMs += 1000
                    var status = entry.status
                    status.nextRetryIn = entry.waitingRemaining
                    setStatus(entry, status)
                }
            } else if entry.attempting && now - entry.attemptStartedMs >= TunnelManager.attemptTimeoutMs {
                attemptEnded(entry, .attemptTimedOut, wasConnected: false)
            } else if entry.connected && entry.retryCount > 0 && now - entry.connectedSinceMs >= TunnelManager.retryResetMs {
                entry.retryCount = 0   // the deviation of §8: a tunnel that stayed up earns its retries back
            }
        }
    }

    /// Sets a status, keeping the traffic counters and stamping `since` when the state itself changes.
    private func setStatus(_ entry: TunnelEntry, _ status: TunnelStatus) {
        var next = status
        next.bytesIn = entry.status.bytesIn
        next.bytesOut = entry.status.bytesOut
        next.activeConnections = entry.status.activeConnections
        next.since = entry.status.state == next.state ? entry.status.since : Clock.unixSeconds()
        if next.state != .connected && entry.status.state == .connected {
            next.activeConnections = 0
        }
        if next.state == .connecting {
            next.bytesIn = 0
            next.bytesOut = 0
        }
        guard next != entry.status else { return }
        entry.status = next
        publish()
    }

    private func stamped(_ status: TunnelStatus) -> TunnelStatus {
        var s = status
        s.since = Clock.unixSeconds()
        return s
    }

    private func publish() {
        version += 1
        var rows: [TunnelRow] = []
        rows.reserveCapacity(order.count)
        for name in order {
            if let entry = entries[name] { rows.append(TunnelRow(name: name, hostId: entry.hostId, status: entry.status)) }
        }
        let snapshot = TunnelSnapshot(version: version, rows: rows)
        published.set(snapshot)
        onChange?(snapshot)
    }
}
