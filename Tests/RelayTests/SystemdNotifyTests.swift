import CLinux
import Testing
@testable import Relay

@Suite struct SystemdNotifyTests {
    @Test func offWithoutSocket() {
        let n = SystemdNotify(socketPath: nil, watchdogUsec: "2000000", watchdogPid: nil)
        #expect(!n.enabled)
        #expect(n.watchdogIntervalMs == nil)
        #expect(!n.send("READY=1"))
        #expect(!SystemdNotify(socketPath: "", watchdogUsec: nil, watchdogPid: nil).enabled)
    }

    @Test func watchdogIsHalfTheIntervalAndOnlyForThisProcess() {
        let me = String(getpid())
        #expect(SystemdNotify(socketPath: "/x", watchdogUsec: "30000000", watchdogPid: nil).watchdogIntervalMs == 15_000)
        #expect(SystemdNotify(socketPath: "/x", watchdogUsec: "2000000", watchdogPid: me).watchdogIntervalMs == 1000)
        #expect(SystemdNotify(socketPath: "/x", watchdogUsec: "2000000", watchdogPid: "1").watchdogIntervalMs == nil)
        #expect(SystemdNotify(socketPath: "/x", watchdogUsec: "0", watchdogPid: nil).watchdogIntervalMs == nil)
        #expect(SystemdNotify(socketPath: "/x", watchdogUsec: "soon", watchdogPid: nil).watchdogIntervalMs == nil)
    }

    @Test func datagramsReachPathAndAbstractSockets() {
        let path = "/tmp/sluice-notify-test-\(getpid())"
        let abstract = "@sluice-notify-test-\(getpid())"
        for name in [path, abstract] {
            let fd = Self.bound(name)
            #expect(fd >= 0, "\(name)")
            guard fd >= 0 else { continue }
            defer { close(fd); unlink(path) }
            let n = SystemdNotify(socketPath: name, watchdogUsec: "2000000", watchdogPid: nil)
            #expect(n.send("READY=1\nSTATUS=up"))
            #expect(Self.receive(fd) == "READY=1\nSTATUS=up")
            n.watchdogTick(nowMs: 10_000)
            n.watchdogTick(nowMs: 10_500)     // not due yet: nothing sent
            n.watchdogTick(nowMs: 11_000)
            #expect(Self.receive(fd) == "WATCHDOG=1")
            #expect(Self.receive(fd) == "WATCHDOG=1")
            #expect(Self.receive(fd) == nil)
        }
    }

    static func bound(_ name: String) -> Int32 {
        let fd = socket(AF_UNIX, CL_SOCK_DGRAM | CL_SOCK_NONBLOCK, 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(name.utf8)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
            if bytes.first == UInt8(ascii: "@") { raw[0] = 0 }
        }
        let extra = bytes.first == UInt8(ascii: "@") ? 0 : 1
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + extra)
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        if rc != 0 { close(fd); return -1 }
        return fd
    }

    static func receive(_ fd: Int32) -> String? {
        var buffer = [UInt8](repeating: 0, count: 512)
        let n = recv(fd, &buffer, buffer.count, 0)
        return n < 0 ? nil : String(decoding: buffer[0..<n], as: UTF8.self)
    }
}
