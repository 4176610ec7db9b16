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

        var ws: WebSocketTestClient { WebSocketTestClient(fd: client) }

        func waitHandedBack(_ count: Int) -> Bool { waitUntil { self.handedBack.get() >= count } }

        /// `condition` within 5 s.
        func waitUntil(_ condition: () -> Bool) -> Bool {
            for _ in 0..<5000 where !condition() { usleep(1000) }
            return condition()
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
        rig.ws.send(1, Array(#"{"type":"open","tunnelConfig":{"sourceHostId":0,"mode":"local","endpointPort":\#(target.port)}}"#.utf8))
        let ready = try #require(rig.ws.receive())
        #expect(ready.0 == 1 && ready.1 == Array(#"{"type":"ready"}"#.utf8))
        rig.ws.send(2, Array("through the appliance".utf8))
        let echoed = try #require(rig.ws.receive())
        #expect(echoed.0 == 2 && echoed.1 == Array("through the appliance".utf8))
        // the client closes: the close is answered, the socket handed back and the relay no longer counted
        rig.ws.send(8, [0x03, 0xE8])
        let close = try #require(rig.ws.receive())
        #expect(close.0 == 8 && Array(close.1.prefix(2)) == [0x03, 0xE8])
        #expect(rig.waitHandedBack(1))
        // the link hands the socket back first, then tells the relay, which the service forgets
        #expect(rig.waitUntil { rig.service.activeRelays == 0 })
    }

    @Test func aRefusedFirstMessageIsAnErrorThenClose1008() throws {
        let rig = try Rig()
        rig.ws.send(1, Array(#"{"type":"open","tunnelConfig":{"sourceHostId":0,"mode":"remote","sourcePort":9000}}"#.utf8))
        let error = try #require(rig.ws.receive())
        #expect(error.0 == 1 && error.1 == Array(JSONWriter.write(RelayMessage.error(RelayWording.noRemoteOnAppliance).json).utf8))
        let close = try #require(rig.ws.receive())
        #expect(close.0 == 8 && Array(close.1.prefix(2)) == [0x03, 0xF0])   // 1008
    }
}
