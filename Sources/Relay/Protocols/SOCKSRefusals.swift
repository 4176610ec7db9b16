import CLinux

/// SOCKS5 clients refused before anything of ours is theirs (over a limit): each still gets a valid exchange, never
/// bytes before its greeting (appliance.md §2) — its greeting answered `05 00`, its request read, then the
/// refusal's reply (`StreamOpenOutcome.socksReply`), then the close. Holds no pool buffer, only the few handshake
/// bytes (`SOCKS5Server.maxHandshake` at most). Bounded: at most `capacity` clients wait at once (beyond that one
/// is closed at once) and each for `timeoutMs` at most. Used by both dynamic paths (`SSHChannels` through SSH,
/// `DirectForwarder` on the appliance itself). Loop thread only.
public final class SOCKSRefusals {
    private final class Client {
        let fd: Int32
        let outcome: StreamOpenOutcome
        let deadlineMs: Int64
        var input: [UInt8] = []
        var handshake = SOCKS5Server()

        init(fd: Int32, outcome: StreamOpenOutcome, deadlineMs: Int64) {
            self.fd = fd
            self.outcome = outcome
            self.deadlineMs = deadlineMs
        }
    }

    public static let defaultCapacity = 64
    public static let defaultTimeoutMs: Int64 = 10_000

    private let reactor: Reactor
    private let capacity: Int
    private let timeoutMs: Int64
    private var clients: [Int32: Client] = [:]

    public init(reactor: Reactor, capacity: Int = SOCKSRefusals.defaultCapacity,
                timeoutMs: Int64 = SOCKSRefusals.defaultTimeoutMs) {
        self.reactor = reactor
        self.capacity = capacity
        self.timeoutMs = timeoutMs
    }

    public var waiting: Int { clients.count }

    /// Takes `fd` (owned from here on) to refuse it with `outcome` once its request is in. Counting the refusal is
    /// the caller's (it refused).
    public func refuse(_ fd: Int32, _ outcome: StreamOpenOutcome) {
        guard clients.count < capacity, clients[fd] == nil else {
            _ = close(fd)
            return
        }
        let client = Client(fd: fd, outcome: outcome, deadlineMs: Clock.monotonicMs() + timeoutMs)
        guard reactor.watch(fd, events: CL_EPOLLIN, { [self] _ in self.readable(client) }) else {
            _ = close(fd)
            return
        }
        clients[fd] = client
    }

    /// A client whose handshake did not finish in time is closed without a reply (no request: no reply due).
    public func tick(nowMs: Int64) {
        for client in Array(clients.values) where client.deadlineMs <= nowMs { finish(client, nil) }
    }

    /// Closes every waiting client without a reply (the forward or the session is going away).
    public func closeAll() {
        for client in Array(clients.values) { finish(client, nil) }
    }

    private func readable(_ client: Client) {
        guard clients[client.fd] === client else { return }
        guard let bytes = TCPSocket.receive(client.fd, max: 512) else { return }
        if bytes.isEmpty { return finish(client, nil) }     // gone before its request: nobody to answer
        client.input += bytes
        let step = client.handshake.step(client.input[...])
        // a malformed handshake gets the parser's own answer (05 FF, 07, 08, or 01)
        if step.outcome == .refuse { return finish(client, step.answer) }
        if !step.answer.isEmpty {
            guard TCPSocket.sendSmall(client.fd, step.answer) else { return finish(client, nil) }
        }
        client.input.removeFirst(step.consumed)
        guard step.outcome == .connect else { return }
        finish(client, SOCKS5.reply(client.outcome.socksReply))
    }

    private func finish(_ client: Client, _ reply: [UInt8]?) {
        guard clients.removeValue(forKey: client.fd) != nil else { return }
        reactor.unwatch(client.fd)
        if let reply { _ = TCPSocket.sendSmall(client.fd, reply) }
        // unread bytes at close turn the FIN into a RST, which can destroy the reply before the client reads it
        while let more = TCPSocket.receive(client.fd, max: 4096), !more.isEmpty {}
        _ = close(client.fd)
    }
}
