import CLinux
import Testing
@testable import Appliance
import Relay

/// The relay service on its own reactor thread, with a WebSocket over a socket pair (the test holds the client end)
/// and a loopback echo target: what it counts, what it hands back, and one relay through the appliance itself, first
/// message to close.
@Suite(.serialized) struct RelayServiceTests {
    final class Rig {
        let service: RelayService
        let client: Int32
        let handedBack = Locked(0)

        init(maxRelays: Int = 8) throws {
            var config = TunnelFixture.config
            config.limits.maxRelays = maxRelays
            let context = DriverContext(config: Locked(config), stateDir: "/tmp")
            service = try #require(RelayService(context: context))
            client = try Rig.adopt(service, userId: TunnelFixture.admin.id, handedBack: handedBack)
        }

        /// A WebSocket of `userId` as the HTTP side hands it over after the 101; the test's end is returned.
        static func adopt(_ service: RelayService, userId: String, handedBack: Locked<Int>) throws -> Int32 {
            var ends: [Int32] = [-1, -1]
            try #require(cl_socketpair(&ends) == 0)
            service.adopt(fd: ends[1], early: [], userId: userId, handBack: {
                CLinux.close(ends[1])
                handedBack.update { $0 += 1 }
            })
            return ends[0]
        }

        /// A masked client frame (RFC 6455 §5.3).
        func send(_ opcode: UInt8, _ payload: [UInt8]) {
            let key: [UInt8] = [0x11, 0x22, 0x33, 0x44]
            var frame: [UInt8] = [0x80 | opcode]
            if payload.count < 126 { frame.append(0x80 | UInt8(payload.count)) }
            else { frame += [0x80 | 126, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)] }
            frame += key
            for (i, b) in payload.enumerated() { frame.append(b ^ key[i & 3]) }
            _ = FileIO.writeAll(client, frame)
        }

        /// One server frame (unmasked, under 64 KiB): its opcode and payload; nil when none came within 10 s.
        func receive() -> (UInt8, [UInt8])? {
            guard let head = read(2) else { return nil }
            var length = Int(head[1] & 0x7F)
            if length == 126 {
                guard let more = read(2) else { return nil }
                length = Int(more[0]) << 8 | Int(more[1])
            }
            guard let payload = read(length) else { return nil }
            return (head[0] & 0x0F, payload)
        }

        private func read(_ count: Int) -> [UInt8]? {
            var out: [UInt8] = []
            while out.count < count {
                var p = pollfd(fd: client, events: Int16(POLLIN), revents: 0)
                guard poll(&p, 1, 10_000) == 1 else { return nil }
                var buffer = [UInt8](repeating: 0, count: count - out.count)
                let n = buffer.withUnsafeMutableBytes { recv(client, $0.baseAddress, $0.count, 0) }
                guard n > 0 else { return nil }
                out += buffer[..<n]
            }
            return out
        }

        func waitHandedBack(_ count: Int) -> Bool {
            for _ in 0..<5000 where handedBack.get() < count { usleep(1000) }
            return handedBack.get() >= count
        }

        private var stopped = false

        func stop() {
            guard !stopped else { return }
            stopped = true
            service.stop()
        }

        deinit {
            stop()
            CLinux.close(client)
        }
    }

    /// A loopback listener that echoes one connection.
    static func echoTarget() -> (listener: Int32, port: UInt16, thread: Relay.Thread?) {
        let fd = socket(AF_INET, CL_SOCK_STREAM | CL_SOCK_CLOEXEC, 0)
        let address = SocketAddress(ip: "127.0.0.1", port: 0)!
        _ = address.withSockaddr { bind(fd, $0, $1) }
        _ = listen(fd, 4)
        let thread = Relay.Thread.spawn {
            let conn = accept(fd, nil, nil)
            guard conn >= 0 else { return }
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = buffer.withUnsafeMutableBytes { recv(conn, $0.baseAddress, $0.count, 0) }
                if n <= 0 { break }
                _ = FileIO.writeAll(conn, Array(buffer[..<n]))
            }
            CLinux.close(conn)
        }
        return (fd, TCPSocket.localPort(fd)!, thread)
    }

    @Test func countsEachWebSocketAndHandsEveryOneBackAtStop() throws {
        let rig = try Rig(maxRelays: 4)
        let other = try Rig.adopt(rig.service, userId: TunnelFixture.ops.id, handedBack: rig.handedBack)
        defer { CLinux.close(other) }
        #expect(rig.service.activeRelays == 2)
        #expect(rig.service.relays(of: TunnelFixture.ops.id) == 1)
        // a quarter of 4 is 1: ops has its share, the admin has room under the total
        #expect(rig.service.room(for: TunnelFixture.ops) == .userShare)
        #expect(rig.service.room(for: TunnelFixture.admin) == .available)
        #expect(rig.service.relaysByUser.map { $0.0 } == [TunnelFixture.admin.id, TunnelFixture.ops.id])
        rig.stop()
        #expect(rig.handedBack.get() == 2 && rig.service.activeRelays == 0 && rig.service.relaysByUser.isEmpty)
        // stopped: a late upgrade is handed back at once
        let late = try Rig.adopt(rig.service, userId: TunnelFixture.ops.id, handedBack: rig.handedBack)
        defer { CLinux.close(late) }
        #expect(rig.handedBack.get() == 3 && rig.service.activeRelays == 0)
    }

    @Test func aRelayThroughTheApplianceItselfFromFirstMessageToClose() throws {
        let rig = try Rig()
        let target = Self.echoTarget()
        defer {
            CLinux.close(target.listener)
            target.thread?.join()
        }
        rig.send(1, Array(#"{"type":"open","tunnelConfig":{"sourceHostId":0,"mode":"local","endpointPort":\#(target.port)}}"#.utf8))
        let ready = try #require(rig.receive())
        #expect(ready.0 == 1 && ready.1 == Array(#"{"type":"ready"}"#.utf8))
        rig.send(2, Array("through the appliance".utf8))
        let echoed = try #require(rig.receive())
        #expect(echoed.0 == 2 && echoed.1 == Array("through the appliance".utf8))
        // the client closes: the close is answered, the socket handed back and the relay no longer counted
        rig.send(8, [0x03, 0xE8])
        let close = try #require(rig.receive())
        #expect(close.0 == 8 && Array(close.1.prefix(2)) == [0x03, 0xE8])
        #expect(rig.waitHandedBack(1))
        #expect(rig.service.activeRelays == 0)
    }

    @Test func aRefusedFirstMessageIsAnErrorThenClose1008() throws {
        let rig = try Rig()
        rig.send(1, Array(#"{"type":"open","tunnelConfig":{"sourceHostId":0,"mode":"remote","sourcePort":9000}}"#.utf8))
        let error = try #require(rig.receive())
        #expect(error.0 == 1 && error.1 == Array(JSONWriter.write(RelayMessage.error(RelayWording.noRemoteOnAppliance).json).utf8))
        let close = try #require(rig.receive())
        #expect(close.0 == 8 && Array(close.1.prefix(2)) == [0x03, 0xF0])   // 1008
    }
}
