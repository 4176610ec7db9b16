import Relay

/// The C2S relay (tunnels-api.md §9): every upgraded WebSocket, the SSH sessions they share, their channels and
/// direct connections live on one reactor thread, so none of it needs a lock. The HTTP thread only hands sockets
/// over. Memory is bounded by the configuration: at most `limits.maxRelays` WebSockets, each with one receive
/// buffer of `receiveBufferSize`; SSH streams take two buffers of a pool of `bufferCount` × `bufferSize`.
public enum RelayRoom {
    case available
    /// `limits.maxRelays` WebSockets are open (→ 503).
    case full
    /// A non-admin holds their share (→ 429).
    case userShare
}

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
    let sessions: SharedSessions
    let maxConnections: Int
    private let maxRelays: Int
    private let active = Locked(0)
    /// WebSockets open now per user (issue #24: one user opened all 512 and the admin's upgrade got 503).
    private let activeByUser = Locked<[String: Int]>([:])
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
        self.pool = context.buffers
        self.rxPool = BufferPool(size: RelayService.receiveBufferSize, count: maxRelays)
        PoolRegistry.shared.register("websocket_receive", buffers: rxPool)
        PoolRegistry.shared.register("c2s", pipes: pipes)
        self.sessions = SharedSessions(reactor: reactor, pool: pool, maxConnections: maxConnections)
        reactor.post { [self] in self.reactor.setTick { [self] in self.tick() } }
        guard reactor.start(name: "c2s") else { return nil }
    }

    /// WebSockets open now (any thread); the HTTP side refuses new ones at `limits.maxRelays`.
    public var activeRelays: Int { active.get() }
    public var hasRoom: Bool { active.get() < maxRelays }

    /// A non-admin's share of `limits.maxRelays`: a quarter, at least one (as for tunnels).
    public static func userShare(_ maxRelays: Int) -> Int { max(1, maxRelays / 4) }

    /// WebSockets open per user now, for `/metrics` (any thread).
    public var relaysByUser: [(String, Int)] {
        activeByUser.get().sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }

    /// WebSockets `userId` has open now (any thread).
    public func relays(of userId: String) -> Int { activeByUser.get()[userId] ?? 0 }

    /// Room for one more WebSocket of this user: under the total and, for a non-admin, under their share.
    public func room(for user: User) -> RelayRoom {
        guard hasRoom else { return .full }
        if !user.admin && relays(of: user.id) >= RelayService.userShare(maxRelays) { return .userShare }
        return .available
    }

    private func count(_ userId: String, _ delta: Int) {
        active.update { $0 += delta }
        activeByUser.update { (counts: inout [String: Int]) in
            let next = (counts[userId] ?? 0) + delta
            counts[userId] = next > 0 ? next : nil
        }
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
            self.active.set(0)
            self.activeByUser.set([:])
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
