import CLinux

/// One outgoing TCP connection to a host given as an IP literal or a DNS name: the one rule for every place that
/// connects out (SSH sessions, SOCKS CONNECTs and fixed targets of the appliance's own forwards). A name is looked
/// up through the process's `Resolver` at every dial (an address that changed is followed); the addresses that
/// `allow` lets through are tried in the resolver's order, each with a non-blocking connect for at most
/// `perAddressMs`, until one answers. Reactor thread only; `done` runs exactly once unless `cancel` came first.
public final class Dialer {
    /// Why a dial failed (`connected` when it did not). A raw-value kind, as RelayFailure's.
    public enum Kind: UInt8 { case connected, unresolved, notAllowed, refused, failed, timedOut }

    public struct Outcome {
        public let kind: Kind
        /// The connected socket (the caller owns it, unwatched), -1 on failure.
        public let fd: Int32
        /// The address connected to, or the last one tried.
        public let address: SocketAddress?
        /// Every address tried, in order.
        public let tried: [String]
        /// The last connect's errno (0 when none was made).
        public let errno: Int32
    }

    private let reactor: Reactor
    private let resolver: Resolver
    private let key: String
    public let host: String
    public let port: UInt16
    private let perAddressMs: Int64
    private let allow: ((String) -> Bool)?
    private var done: ((Outcome) -> Void)?
    private var candidates: [String] = []
    private var next = 0
    private var fd: Int32 = -1
    private var current: SocketAddress?
    private var startedMs: Int64 = 0
    private var lastError: Int32 = 0
    private var timedOut = false
    public private(set) var tried: [String] = []
    /// True while the name is being looked up.
    public private(set) var resolving = false

    /// `key`: whose share of the resolver a lookup takes (the user). `allow`: the policy for each address.
    public init(reactor: Reactor, resolver: Resolver, key: String, host: String, port: UInt16, perAddressMs: Int64,
                allow: ((String) -> Bool)? = nil, done: @escaping (Outcome) -> Void) {
        self.reactor = reactor
        self.resolver = resolver
        self.key = key
        self.host = host
        self.port = port
        self.perAddressMs = perAddressMs
        self.allow = allow
        self.done = done
    }

    /// True when `host` is an IP literal (no lookup needed).
    public static func isLiteral(_ host: String) -> Bool { SocketAddress(ip: host, port: 0) != nil }

    /// What `judge` found: some address may be dialled, or why none may.
    public enum Verdict: UInt8 { case allowed, unresolved, notAllowed }

    /// A dial's first two steps without the connect, for a target that is judged before anything listens (the
    /// appliance's own fixed-target forwards, tunnels-api.md §6): `host` as `start` takes it (a literal at once, a
    /// name through the resolver with `key`'s share), every address against `allow`. `done` gets the verdict and
    /// the allowed addresses in the resolver's order, exactly once, on `reactor`'s thread (at once for a literal).
    public static func judge(reactor: Reactor, resolver: Resolver, key: String, host: String,
                             allow: ((String) -> Bool)?, done: @escaping (Verdict, [String]) -> Void) {
        let verdict = { (addresses: [String]) in
            guard !addresses.isEmpty else { return done(.unresolved, []) }
            let allowed = admitted(addresses, allow)
            done(allowed.isEmpty ? .notAllowed : .allowed, allowed)
        }
        if isLiteral(host) { return verdict([host]) }
        resolver.resolve(host, key: key, on: reactor, verdict)
    }

    /// The addresses `allow` lets through, in the resolver's order: the one policy rule of `start` and `judge`.
    private static func admitted(_ addresses: [String], _ allow: ((String) -> Bool)?) -> [String] {
        allow.map { rule in addresses.filter { rule($0) } } ?? addresses
    }

    public func start() {
        if Dialer.isLiteral(host) { return use([host]) }
        resolving = true
        resolver.resolve(host, key: key, on: reactor) { [self] addresses in
            guard self.resolving, self.done != nil else { return }   // cancelled meanwhile
            self.resolving = false
            self.use(addresses)
        }
    }

    /// Gives up on an address that has not answered within `perAddressMs` and tries the next (reactor tick).
    public func tick(nowMs: Int64) {
        guard fd >= 0, nowMs - startedMs > perAddressMs else { return }
        timedOut = true
        lastError = ETIMEDOUT
        dropSocket()
        connectNext()
    }

    /// Closes a connect in progress; `done` is not called.
    public func cancel() {
        done = nil
        resolving = false
        dropSocket()
    }

    private func use(_ addresses: [String]) {
        guard !addresses.isEmpty else { return finish(.unresolved) }
        candidates = Dialer.admitted(addresses, allow)
        guard !candidates.isEmpty else { return finish(.notAllowed) }
        connectNext()
    }

    private func connectNext() {
        while next < candidates.count {
            let text = candidates[next]
            next += 1
            guard let address = SocketAddress(ip: text, port: port) else { continue }
            tried.append(text)
            current = address
            switch TCPSocket.connect(address) {
            case .failure(let error):
                lastError = error.code
                timedOut = false
            case .success(let (socket, pending)):
                fd = socket
                startedMs = Clock.monotonicMs()
                if !pending { return connected() }
                if reactor.watch(socket, events: CL_EPOLLOUT, { [self] _ in self.connectDone() }) { return }
                lastError = clinux_errno()
                timedOut = false
                dropSocket()
            }
        }
        finish(timedOut ? .timedOut : lastError == ECONNREFUSED ? .refused : .failed)
    }

    private func connectDone() {
        let code = TCPSocket.connectResult(fd)
        if code == 0 { return connected() }
        lastError = code
        timedOut = false
        dropSocket()
        connectNext()
    }

    private func dropSocket() {
        guard fd >= 0 else { return }
        reactor.unwatch(fd)
        _ = close(fd)
        fd = -1
    }

    private func connected() {
        reactor.unwatch(fd)
        let socket = fd
        fd = -1
        guard let report = done else {
            _ = close(socket)
            return
        }
        done = nil
        report(Outcome(kind: .connected, fd: socket, address: current, tried: tried, errno: 0))
    }

    private func finish(_ kind: Kind) {
        guard let report = done else { return }
        done = nil
        report(Outcome(kind: kind, fd: -1, address: current, tried: tried, errno: lastError))
    }
}
