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

/// Owns the registry of tunnels on one control thread (tunnels-api.md §8): commands arrive with `Reactor.call`,
/// driver reports with `Reactor.post`, and a tick drives countdowns and the attempt watchdog. Each tunnel's §8 life
/// is its `TunnelLifecycle`; the manager feeds it events and runs the steps it answers (release, publish, start).
/// After each change it publishes an immutable snapshot that HTTP handlers and the SSE hub read without touching
/// the state.
public final class TunnelManager {
    let reactor: Reactor
    let driver: any TunnelDriver
    private var config: Config
    private var entries: [String: TunnelEntry] = [:]
    private var order: [String] = []
    private var attemptOwners: [UInt64: String] = [:]
    private var nextAttempt: UInt64 = 1
    private var version: UInt64 = 0
    private let published = Locked<TunnelSnapshot>(.empty)
    private var events: TunnelReporter?
    private let autostart: AutostartStore
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
        self.autostart = AutostartStore(state: state)
    }

    public func start() -> Bool {
        events = TunnelReporter(manager: self)
        guard reactor.start(name: "tunnels") else { return false }
        // synchronously: the registry holds the configured tunnels before the HTTP server answers anything
        return reactor.call { [self] in
            self.reactor.setTick { [self] in self.tick() }
            let configured = self.registerConfigured()
            self.publish()
            for (request, requester) in self.autostart.load(self.config, configured: configured.count) {
                self.launch(request, requester: requester)
            }
        }
    }

    /// Ends every attempt (listeners closed, sessions ended) and stops the control thread (which runs this first).
    public func stop() {
        reactor.callEventually { [self] in
            for name in self.order { if let entry = self.entries[name] { self.run(entry, .abandon) } }
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
            self.autostart.remember { $0.connected(request, userId: user.id) }
            outcome = .accepted
        }
        return answered ? outcome : .unavailable
    }

    /// A non-admin's share of `maxTunnels`: a quarter, at least one.
    static func userShare(_ maxTunnels: Int) -> Int { max(1, maxTunnels / 4) }

    /// Removes the first entry of `names` that nothing runs for and the configuration does not list.
    private func evictIdle(among names: [String]) -> Bool {
        for name in names {
            guard let entry = entries[name], !entry.fromConfig, !entry.life.isActive else { continue }
            remove(entry)
            return true
        }
        return false
    }

    public func disconnect(_ name: String, user: User) -> TunnelCommandResult { stopCommand(name, user: user, .disconnect) }

    public func cancel(_ name: String, user: User) -> TunnelCommandResult { stopCommand(name, user: user, .cancel) }

    /// SIGHUP: tunnels of removed hosts stop and leave the registry; tunnels whose requester may no longer use
    /// their source or managed endpoint host stop (`TunnelReload`); tunnels of changed hosts (or whose endpoint
    /// changed) restart with the new inventory; new configured tunnels are listed; tunnels of unchanged hosts keep
    /// running.
    public func reload(_ newConfig: Config) {
        // applied whether or not the control thread answers in time (never lost); a late one is only logged
        let applied = reactor.callEventually { [self] in
            let old = self.config
            self.config = newConfig
            for name in Array(self.order) {
                guard let entry = self.entries[name] else { continue }
                guard let host = newConfig.host(id: entry.hostId) else {
                    self.remove(entry)
                    continue
                }
                guard let request = entry.request else { continue }
                let reload = TunnelReload(request, requesterId: entry.requesterId, fromConfig: entry.fromConfig,
                                          host: host, old: old, new: newConfig)
                entry.requesterId = reload.requesterId
                entry.request = reload.request
                if let revoked = reload.revoked {
                    guard entry.life.isActive else { continue }
                    self.run(entry, .revoke(revoked))
                    Log.warn("tunnel.revoked", [("tunnel", name), ("reason", revoked.reason)])
                } else if reload.changed && entry.life.isActive {
                    self.run(entry, .connect(maxRetries: reload.request.maxRetries,
                                             retryIntervalMs: reload.request.retryIntervalMs))
                }
            }
            let known = Set(self.order)
            let configured = self.registerConfigured()
            self.autostart.remember { $0.prune(configured: configured) }
            for name in configured where !known.contains(name) {
                if let request = ConfiguredTunnels.request(named: name, config: newConfig), request.autoStart,
                   !self.autostart.current.stopped.contains(name) {
                    self.launch(request, requester: request.host.owner)
                }
            }
            for name in self.order {
                guard let entry = self.entries[name], entry.fromConfig, !configured.contains(name),
                      entry.request == nil || !entry.life.isActive else { continue }
                self.remove(entry)
            }
            self.publish()
        }
        if !applied { Log.warn("config.reload_late", [("detail", "the control thread is busy; the reload follows")]) }
    }

    func report(_ attempt: UInt64, _ report: AttemptReport) {
        reactor.post { [self] in
            guard let name = self.attemptOwners[attempt], let entry = self.entries[name],
                  entry.attempt == attempt else { return }   // a stale report from a released attempt
            switch report {
            case .connected:
                self.run(entry, .connected)
            case .failed(let failure):
                self.run(entry, .attemptFailed(failure))
            case .disconnected(let failure):
                self.run(entry, .sessionLost(failure))
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

    private func stopCommand(_ name: String, user: User, _ event: TunnelEvent) -> TunnelCommandResult {
        var result = TunnelCommandResult.unavailable
        let answered = reactor.call { [self] in
            guard let entry = self.entries[name], let host = self.config.host(id: entry.hostId),
                  self.config.mayUse(host, user) else {
                result = .notFound
                return
            }
            self.run(entry, event)
            let configuredAutoStart = entry.fromConfig
                && ConfiguredTunnels.request(named: name, config: self.config)?.autoStart == true
            self.autostart.remember { $0.stoppedByUser(name, configuredAutoStart: configuredAutoStart) }
            result = .done
        }
        return answered ? result : .unavailable
    }

    private func launch(_ request: ConnectRequest, requester: String) {
        let entry = entry(for: request.name.text, hostId: request.host.id)
        entry.request = request
        entry.requesterId = requester
        run(entry, .connect(maxRetries: request.maxRetries, retryIntervalMs: request.retryIntervalMs))
    }

    /// Feeds one event to the tunnel's lifecycle and runs the step it answers, in its order.
    private func run(_ entry: TunnelEntry, _ event: TunnelEvent) {
        let step = entry.life.handle(event, nowMs: Clock.monotonicMs())
        if step.stopAttempt { release(entry) }
        for status in step.statuses { setStatus(entry, status) }
        if step.startAttempt { startAttempt(entry) }
    }

    @discardableResult
    private func registerConfigured() -> Set<String> {
        var names = Set<String>()
        for (name, hostId) in ConfiguredTunnels.names(config) {
            names.insert(name)
            if let existing = entries[name] {
                existing.fromConfig = true
            } else {
                entries[name] = TunnelEntry(name: name, hostId: hostId, status: stamped(TunnelStatus(state: .disconnected)),
                                            fromConfig: true)
                order.append(name)
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

    /// The entry leaves the registry, and its autostart record with it (issue #24: records stay within the limits).
    private func remove(_ entry: TunnelEntry) {
        run(entry, .abandon)
        autostart.remember { $0.forget(entry.name) }
        entries[entry.name] = nil
        order.removeAll { $0 == entry.name }
        publish()
    }

    /// Frees the attempt's resources synchronously; reports from it are ignored from now on.
    private func release(_ entry: TunnelEntry) {
        guard entry.attempt != 0 else { return }
        let attempt = entry.attempt
        attemptOwners[attempt] = nil
        entry.attempt = 0
        driver.stop(attempt: attempt)
    }

    private func startAttempt(_ entry: TunnelEntry) {
        guard var request = entry.request, let events else { return }
        request.requesterId = entry.requesterId ?? ""
        request.requesterAdmin = config.user(id: request.requesterId)?.admin ?? false
        release(entry)
        let attempt = nextAttempt
        nextAttempt += 1
        entry.attempt = attempt
        attemptOwners[attempt] = entry.name
        driver.start(request, attempt: attempt, events: events)
    }

    private func tick() {
        onTick?()
        for name in order {
            if let entry = entries[name], entry.life.isActive { run(entry, .tick) }
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
