import CLinux
import Testing
@testable import Relay

/// Blocking loopback peers for the forwarder (each on its own thread).
enum Peer {
    static func listener() -> (Int32, UInt16) {
        let fd = socket(AF_INET, CL_SOCK_STREAM | CL_SOCK_CLOEXEC, 0)
        let address = SocketAddress(ip: "127.0.0.1", port: 0)!
        _ = address.withSockaddr { bind(fd, $0, $1) }
        _ = listen(fd, 64)
        return (fd, TCPSocket.localPort(fd)!)
    }

    static func connect(_ port: UInt16) -> Int32 {
        let fd = socket(AF_INET, CL_SOCK_STREAM | CL_SOCK_CLOEXEC, 0)
        let address = SocketAddress(ip: "127.0.0.1", port: port)!
        let rc = address.withSockaddr { CLinux.connect(fd, $0, $1) }
        return rc == 0 ? fd : -1
    }

    /// Waits at most 10 s for bytes; [] on EOF, error or timeout.
    static func read(_ fd: Int32, max: Int = 65536) -> [UInt8] {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&p, 1, 10_000) == 1 else { return [] }
        var buffer = [UInt8](repeating: 0, count: max)
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        return n > 0 ? Array(buffer[0..<n]) : []
    }

    static func readAll(_ fd: Int32) -> [UInt8] {
        var all: [UInt8] = []
        while true {
            let chunk = read(fd)
            if chunk.isEmpty { return all }
            all += chunk
        }
    }

    static func write(_ fd: Int32, _ bytes: [UInt8]) { _ = FileIO.writeAll(fd, bytes) }

    /// FNV-1a over everything read until EOF; answers "<count> <hash>" and closes.
    static func checksumSink(_ listener: Int32) {
        let fd = accept(listener, nil, nil)
        var hash: UInt64 = 0xcbf29ce484222325
        var count = 0
        while true {
            let chunk = read(fd)
            if chunk.isEmpty { break }
            for b in chunk { hash = (hash ^ UInt64(b)) &* 0x100000001b3 }
            count += chunk.count
        }
        write(fd, Array("\(count) \(hash)".utf8))
        close(fd)
    }

    /// Echoes until EOF, then half-closes too.
    static func echo(_ listener: Int32) {
        let fd = accept(listener, nil, nil)
        while true {
            let chunk = read(fd)
            if chunk.isEmpty { break }
            write(fd, chunk)
        }
        _ = shutdown(fd, CL_SHUT_WR)
        _ = read(fd)
        close(fd)
    }
}

final class Harness {
    let reactor = Reactor(tickMilliseconds: 100)!
    let pool = PipePool()
    let resolver: Resolver
    var forwarder: DirectForwarder?

    init() {
        resolver = Resolver(limits: Resolver.Limits(), lookup: Resolver.lookup)
        _ = reactor.start(name: "test")
    }

    func start(_ mode: DirectForwarder.Mode, allow: @escaping DirectForwarder.Policy = { _, _, _ in true }) -> UInt16 {
        var port: UInt16 = 0
        _ = reactor.call { [self] in
            let f = DirectForwarder(reactor: self.reactor, pool: self.pool, resolver: self.resolver,
                                    settings: .init(bind: SocketAddress(ip: "127.0.0.1", port: 0)!, mode: mode),
                                    allow: allow)
            if f.start() == nil { port = f.port }
            self.forwarder = f
        }
        return port
    }

    func counters() -> (Int64, Int64, Int) {
        var result: (Int64, Int64, Int) = (0, 0, 0)
        _ = reactor.call { [self] in
            result = (self.forwarder!.bytesOut, self.forwarder!.bytesIn, self.forwarder!.activeConnections)
        }
        return result
    }

    func finish() {
        _ = reactor.call { [self] in self.forwarder?.stop() }
        resolver.stop()
        reactor.stop()
    }
}

@Suite(.serialized) struct DirectForwarderTests {
    @Test func eightMiBThroughAFixedTargetWithChecksum() {
        let (listener, sinkPort) = Peer.listener()
        defer { close(listener) }
        let sink = Thread.spawn { Peer.checksumSink(listener) }
        let h = Harness()
        defer { h.finish() }
        let port = h.start(.fixed(host: "127.0.0.1", port: sinkPort))
        #expect(port != 0)

        var payload = [UInt8](repeating: 0, count: 8 << 20)
        var state: UInt32 = 12345
        var hash: UInt64 = 0xcbf29ce484222325
        for i in 0..<payload.count {
            state = state &* 1103515245 &+ 12345
            payload[i] = UInt8(truncatingIfNeeded: state >> 16)
            hash = (hash ^ UInt64(payload[i])) &* 0x100000001b3
        }
        let client = Peer.connect(port)
        #expect(client >= 0)
        Peer.write(client, payload)
        _ = shutdown(client, CL_SHUT_WR)                 // half-close: the answer still comes back
        let answer = String(decoding: Peer.readAll(client), as: UTF8.self)
        close(client)
        sink?.join()
        #expect(answer == "\(payload.count) \(hash)")
        // the relay closes once both directions ended
        var counters = h.counters()
        for _ in 0..<50 where counters.2 != 0 {
            usleep(20_000)
            counters = h.counters()
        }
        #expect(counters.0 == Int64(payload.count))
        #expect(counters.1 == Int64(answer.utf8.count))
        #expect(counters.2 == 0)
    }

    @Test func halfCloseCarriedThroughEcho() {
        let (listener, echoPort) = Peer.listener()
        defer { close(listener) }
        let echo = Thread.spawn { Peer.echo(listener) }
        let h = Harness()
        defer { h.finish() }
        let client = Peer.connect(h.start(.fixed(host: "127.0.0.1", port: echoPort)))
        Peer.write(client, Array("hello".utf8))
        _ = shutdown(client, CL_SHUT_WR)
        #expect(String(decoding: Peer.readAll(client), as: UTF8.self) == "hello")
        close(client)
        echo?.join()
    }

    @Test func deniedTargetClosesTheClient() {
        let h = Harness()
        defer { h.finish() }
        let client = Peer.connect(h.start(.fixed(host: "127.0.0.1", port: 9), allow: { _, _, _ in false }))
        #expect(client >= 0)
        #expect(Peer.readAll(client).isEmpty)
        close(client)
    }

    @Test func socksConnectBindAndDenied() {
        let (listener, echoPort) = Peer.listener()
        defer { close(listener) }
        let echo = Thread.spawn { Peer.echo(listener) }
        let h = Harness()
        defer { h.finish() }
        let port = h.start(.socks5, allow: { _, address, p in address == "127.0.0.1" && p == echoPort })

        let client = Peer.connect(port)
        Peer.write(client, [5, 1, 0])
        #expect(Peer.read(client) == [5, 0])
        Peer.write(client, [5, 1, 0, 1, 127, 0, 0, 1, UInt8(echoPort >> 8), UInt8(echoPort & 0xFF)] + Array("ping".utf8))
        var got = Peer.read(client)
        while got.count < 14 {
            let more = Peer.read(client)
            if more.isEmpty { break }
            got += more
        }
        #expect(got == SOCKS5.reply(.succeeded) + Array("ping".utf8))
        _ = shutdown(client, CL_SHUT_WR)
        #expect(Peer.readAll(client).isEmpty)
        close(client)
        echo?.join()

        for (request, code) in [([5, 2, 0, 1, 127, 0, 0, 1, 0, 80] as [UInt8], UInt8(7)),    // BIND
                                ([5, 1, 0, 1, 10, 0, 0, 1, 0, 22], 2),                        // not allowed
                                ([5, 1, 0, 9, 0, 0], 8)] {                                    // unknown ATYP
            let c = Peer.connect(port)
            Peer.write(c, [5, 1, 0] + request)
            let answer = Peer.readAll(c)
            #expect(answer == [5, 0] + [5, code, 0, 1, 0, 0, 0, 0, 0, 0])
            close(c)
        }
        let c = Peer.connect(port)
        Peer.write(c, [5, 1, 2])
        #expect(Peer.readAll(c) == [5, 0xFF])
        close(c)
    }
}
