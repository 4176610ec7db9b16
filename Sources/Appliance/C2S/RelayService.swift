import Relay

/// The C2S relay (tunnels-api.md §9): every upgraded WebSocket, the SSH sessions they share, their channels and
/// direct connections live on one reactor thread, so none of it needs a lock. The HTTP thread only hands sockets
/// over. Memory is bounded by the configuration: at most `limits.maxRelays` WebSockets, each with one receive
/// buffer of `receiveBufferSize`; SSH streams take two buffers of a pool of `bufferCount` × `bufferSize`.
public final class RelayService {
    public static let receiveBufferSize = 64 * 1024

    let config: Locked<Config>
    let destinations: DestinationPolicyCache
    let stateDir: String
    let reactor: Reactor
    let resolver: Resolver
    let pool: BufferPool
    let rxPool: BufferPool
    let pipes = PipePool()
    /// Unfinished text messages of every relay: 32 MiB in all, 8 MiB per user (issue #24).
    public let text = TextBudget(total: RelayService.textTotal, perKey: RelayService.textTotal / 4)
    public static let textTotal = 32 << 20
    let sessions = SharedSessions<SSHSession>()
    let maxConnections: Int
    private let maxRelays: Int
    /// WebSockets open now, in all and per user (any thread).
    private let counts: Locked<RelayCounts>
    private let stopped = Locked(false)
    // loop thread only
    private var relays: [ObjectIdentifier: ClientRelay] = [:]

    public init?(context: DriverContext) {
        guard let reactor = Reactor(tickMilliseconds: 250) else { return nil }
        let limits = context.config.get().limits
        self.config = context.config
        self.destinations = context.destinations
        self.stateDir = context.stateDir
        self.reactor = reactor
        self.resolver = Resolver.shared
        self.maxRelays = max(1, limits.maxRelays)
        self.maxConnections = max(1, limits.maxConnectionsPerTunnel)
        self.counts = Locked(RelayCounts(maxRelays: limits.maxRelays))
        self.pool = context.buffers
        self.rxPool = BufferPool(size: RelayService.receiveBufferSize, count: maxRelays)
        PoolRegistry.shared.register("websocket_receive", buffers: rxPool)
        PoolRegistry.shared.register("c2s", pipes: pipes)
        reactor.post { [self] in self.reactor.setTick { [self] in self.tick() } }
        guard reactor.start(name: "c2s") else { return nil }
    }

    /// WebSockets open now (any thread); the HTTP side refuses new ones at `limits.maxRelays`.
    public var activeRelays: Int { counts.get().total }
    public var hasRoom: Bool { !counts.get().isFull }

    /// A non-admin's share of `limits.maxRelays`: a quarter, at least one (as for tunnels).
    public static func userShare(_ maxRelays: Int) -> Int { RelayCounts.userShare(maxRelays) }

    /// WebSockets open per user now, for `/metrics` (any thread).
    public var relaysByUser: [(String, Int)] {
        counts.get().byUser.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }

    /// WebSockets `userId` has open now (any thread).
    public func relays(of userId: String) -> Int { counts.get().of(userId) }

    /// Room for one more WebSocket of this user: under the total and, for a non-admin, under their share.
    public func room(for user: User) -> RelayRoom { counts.get().room(userId: user.id, admin: user.admin) }

    private func count(_ userId: String, _ delta: Int) {
        counts.update { (c: inout RelayCounts) in c.add(userId, delta) }
    }

    /// The upgrade is done: the socket is ours until `handBack` (HTTP thread; the work hops onto the loop).
    public func adopt(fd: Int32, early: [UInt8], userId: String, handBack: @escaping () -> Void) {
        if stopped.get() { return handBack() }
        count(userId, 1)
        reactor.post { [self] in
            guard let link = WebSocketLink(reactor: self.reactor, fd: fd, early: early, rxPool: self.rxPool,
                                           pipes: self.pipes, handBack: handBack) else {
                self.count(userId, -1)
                Log.warn("c2s.refused", [("reason", "no receive buffer free")])
                Refusals.shared.count(.bufferPool)
                return handBack()
            }
            link.textBudget = (self.text, userId)
            let relay = ClientRelay(service: self, link: link, userId: userId)
            self.relays[ObjectIdentifier(relay)] = relay
            relay.start()
        }
    }

    /// Closes every WebSocket (they must be handed back before the HTTP server stops) and the sessions.
    public func stop() {
        stopped.set(true)
        // never cancelled: the sockets must go back before the HTTP server stops (reactor.stop runs it first)
        reactor.callEventually { [self] in
            for relay in Array(self.relays.values) { relay.shutDown() }
            // the close frames get a moment to leave; then whatever is left is cut
            for relay in Array(self.relays.values) { relay.link.abort() }
            self.relays = [:]
            self.counts.update { (c: inout RelayCounts) in c.reset() }
            self.sessions.closeAll()
        }
        reactor.stop()
    }

    /// SIGHUP (any thread): relays and shared sessions whose host changed, or whose user may no longer use it,
    /// end now rather than when the session next idles out.
    public func reload(from old: Config, to new: Config) {
        reactor.post { [self] in
            for relay in Array(self.relays.values) { relay.revalidate(new) }
            self.sessions.end { key in
                guard let host = new.host(id: key.hostId), let user = new.user(id: key.userId) else { return true }
                return old.host(id: key.hostId) != host || !new.mayUse(host, user)
            }
        }
    }

    func remove(_ relay: ClientRelay) {
        guard relays.removeValue(forKey: ObjectIdentifier(relay)) != nil else { return }
        count(relay.userId, -1)
    }


    private func tick() {
        let now = Clock.monotonicMs()
        for relay in Array(relays.values) { relay.tick(nowMs: now) }
        sessions.tick(nowMs: now)
    }
}
