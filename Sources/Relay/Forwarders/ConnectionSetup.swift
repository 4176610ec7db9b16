import CLinux

/// One accepted client on its way to a relay: the SOCKS5 handshake (when asked), then a `Dialer` (name resolution,
/// the policy check per address, a non-blocking connect to the first allowed address that answers). It ends exactly once, either handing both
/// sockets to `onReady` or closing the client (after the SOCKS reply that says why: the `StreamOpenOutcome`'s).
/// A client over the forward's limit never gets here (`SOCKSRefusals`). Loop thread only.
final class ConnectionSetup {
    enum Phase { case greeting, request, resolving, connecting, finished }

    private let reactor: Reactor
    private let resolver: Resolver
    private let allow: DirectForwarder.Policy
    let client: Int32
    private let socks: Bool
    let deadlineMs: Int64
    private(set) var phase: Phase
    private var input: [UInt8] = []
    private var handshake = SOCKS5Server()
    private var host = ""
    private var port: UInt16 = 0
    private var dialer: Dialer?
    private var target: Int32 = -1
    /// Whose share of the resolver a lookup takes.
    private let key: String
    /// (client, target) connected; the setup no longer owns them.
    var onReady: ((Int32, Int32) -> Void)?
    /// The client was closed (refused, failed or timed out).
    var onClosed: (() -> Void)?

    init(reactor: Reactor, resolver: Resolver, key: String, allow: @escaping DirectForwarder.Policy, client: Int32,
         fixed: (String, UInt16)?, deadlineMs: Int64) {
        self.reactor = reactor
        self.key = key
        self.resolver = resolver
        self.allow = allow
        self.client = client
        self.socks = fixed == nil
        self.deadlineMs = deadlineMs
        if let (h, p) = fixed {
            host = h
            port = p
        }
        phase = fixed == nil ? .greeting : .resolving
    }

    func start() {
        if socks {
            if !reactor.watch(client, events: CL_EPOLLIN, { [self] _ in self.readClient() }) {
                fail(.failed)
            }
        } else {
            resolve()
        }
    }

    private func readClient() {
        guard let bytes = TCPSocket.receive(client, max: 512) else { return }
        if bytes.isEmpty { return fail(nil) }     // gone before the handshake ended: nobody to answer
        input += bytes
        let step = handshake.step(input[...])
        if step.outcome == .refuse { return finishWith(step.answer) }
        if !step.answer.isEmpty {
            guard TCPSocket.sendSmall(client, step.answer) else { return fail(nil) }
        }
        input.removeFirst(step.consumed)   // after a CONNECT, early payload stays: sent to the target once connected
        if handshake.greeted { phase = .request }
        guard step.outcome == .connect else { return }
        host = step.host
        port = step.port
        reactor.unwatch(client)        // the relay reads the rest
        resolve()
    }

    private func resolve() {
        phase = .resolving
        // the setup's own deadline bounds the whole dial (DirectForwarder's tick), so no per-address limit here
        let dialer = Dialer(reactor: reactor, resolver: resolver, key: key, host: host, port: port,
                            perAddressMs: Int64.max, allow: { [self] address in self.allow(self.host, address, self.port) }) {
            [self] outcome in self.dialed(outcome)
        }
        self.dialer = dialer
        dialer.start()
        if phase == .resolving && !dialer.resolving { phase = .connecting }
    }

    private func dialed(_ outcome: Dialer.Outcome) {
        dialer = nil
        guard phase == .resolving || phase == .connecting else {   // timed out or stopped meanwhile
            if outcome.fd >= 0 { _ = close(outcome.fd) }
            return
        }
        guard outcome.kind == .connected else { return fail(StreamOpenOutcome(dial: outcome.kind, errno: outcome.errno)) }
        target = outcome.fd
        connected()
    }

    private func dropTarget() {
        dialer?.cancel()
        dialer = nil
        guard target >= 0 else { return }
        reactor.unwatch(target)
        _ = close(target)
        target = -1
    }

    private func connected() {
        if socks {
            guard TCPSocket.sendSmall(client, SOCKS5.reply(StreamOpenOutcome.opened.socksReply)) else { return fail(nil) }
            if !input.isEmpty && !TCPSocket.sendSmall(target, input) { return fail(nil) }
        }
        phase = .finished
        let fd = target
        target = -1
        let ready = onReady
        onReady = nil
        onClosed = nil
        ready?(client, fd)
    }

    /// The deadline passed: a SOCKS client whose CONNECT was under way hears 04; one that never finished its
    /// handshake is closed (no request was made, so no reply is due).
    func timeout() { fail(phase == .greeting || phase == .request ? nil : .timedOut) }

    /// Closes everything without a reply (the forwarder is stopping).
    func abort() { fail(nil) }

    /// `outcome` nil: closed without a reply (nothing was asked, or nobody is left to hear it).
    private func fail(_ outcome: StreamOpenOutcome?) {
        guard phase != .finished else { return }
        finishWith(socks ? outcome.map { SOCKS5.reply($0.socksReply) } : nil)
    }

    private func finishWith(_ reply: [UInt8]?) {
        guard phase != .finished else { return }
        phase = .finished
        dropTarget()
        reactor.unwatch(client)
        if let reply { _ = TCPSocket.sendSmall(client, reply) }
        // unread bytes at close turn the FIN into a RST, which can destroy the reply before the client reads it
        while let more = TCPSocket.receive(client, max: 4096), !more.isEmpty {}
        _ = close(client)
        let closed = onClosed
        onReady = nil
        onClosed = nil
        closed?()
    }
}
