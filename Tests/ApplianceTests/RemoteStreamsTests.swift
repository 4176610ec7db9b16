import CLinux
import Testing
@testable import Appliance
import Relay

/// A remote-mode relay's streams (tunnels-api.md §9): the client's `data` (base64) and `close` messages, anything
/// else ignored; and, over socket pairs on a running reactor, each server connection as a stream of `connection`,
/// `data` and `close` messages.
@Suite struct RemoteStreamsTests {
    func parse(_ json: String) -> RemoteStreams.Command? { RemoteStreams.Command.parse(Array(json.utf8)) }

    @Test func dataAndClose() {
        #expect(parse(#"{"type":"data","streamId":"3","data":"aGVsbG8="}"#) == .data(id: 3, bytes: Array("hello".utf8)))
        #expect(parse(#"{"type":"data","streamId":"0","data":""}"#) == .data(id: 0, bytes: []))
        #expect(parse(#"{"type":"close","streamId":"12"}"#) == .close(id: 12))
    }

    @Test func dataThatIsNotBase64IsNotWritten() {
        #expect(parse(#"{"type":"data","streamId":"3","data":"not base64!"}"#) == .badData)
        #expect(parse(#"{"type":"data","streamId":"3"}"#) == .badData)
    }

    @Test func anythingElseIsIgnored() {
        for text in [#"{"type":"data","streamId":3,"data":""}"#,          // §9: streamId is a string
                     #"{"type":"close","streamId":"x"}"#,
                     #"{"type":"close"}"#,
                     #"{"type":"open","streamId":"1"}"#,
                     #"["data"]"#, "not json", ""] {
            #expect(parse(text) == nil, "\(text)")
        }
    }

    /// Waits at most 10 s for bytes on `fd`; [] on EOF.
    static func read(_ fd: Int32) -> [UInt8]? {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&p, 1, 10_000) == 1 else { return nil }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        return n > 0 ? Array(buffer[..<n]) : []
    }

    @Test func eachServerConnectionIsAStreamOfMessages() throws {
        let reactor = try #require(Reactor(tickMilliseconds: 100))
        #expect(reactor.start(name: "remote-test"))
        defer { reactor.stop() }
        var ws: [Int32] = [-1, -1], a: [Int32] = [-1, -1], b: [Int32] = [-1, -1]
        try #require(cl_socketpair(&ws) == 0 && cl_socketpair(&a) == 0 && cl_socketpair(&b) == 0)
        defer { for fd in [ws[0], a[1], b[1]] { CLinux.close(fd) } }
        let client = WebSocketTestClient(fd: ws[0])
        var streams: RemoteStreams?
        var link: WebSocketLink?
        _ = reactor.call {
            link = WebSocketLink(reactor: reactor, fd: ws[1], early: [], rxPool: BufferPool(size: 65536, count: 1),
                                 pipes: PipePool(), handBack: { CLinux.close(ws[1]) })
            link?.start()
            if let link { streams = RemoteStreams(reactor: reactor, link: link) }
        }
        let table = try #require(streams)
        defer { _ = reactor.call { table.close(); link?.abort() } }

        // two connections from the server (a[0], b[0] are the channels' ends; a[1], b[1] the far peers)
        _ = reactor.call { table.add(a[0]) }
        #expect(client.receiveText() == #"{"type":"connection","streamId":"1"}"#)
        _ = reactor.call { table.add(b[0]) }
        #expect(client.receiveText() == #"{"type":"connection","streamId":"2"}"#)
        // bytes of a stream go out as base64 `data`
        _ = FileIO.writeAll(a[1], Array("hello".utf8))
        #expect(client.receiveText() == #"{"type":"data","streamId":"1","data":"aGVsbG8="}"#)
        // the client's `data` reaches its stream; to an unknown stream it is answered with a `close`
        _ = reactor.call { table.message(Array(#"{"type":"data","streamId":"1","data":"d29ybGQ="}"#.utf8)) }
        #expect(Self.read(a[1]) == Array("world".utf8))
        _ = reactor.call { table.message(Array(#"{"type":"data","streamId":"9","data":"eA=="}"#.utf8)) }
        #expect(client.receiveText() == #"{"type":"close","streamId":"9","error":"Unknown stream"}"#)
        // the client closes stream 1: its peer sees EOF, and no `close` comes back for it
        _ = reactor.call { table.message(Array(#"{"type":"close","streamId":"1"}"#.utf8)) }
        #expect(Self.read(a[1]) == [])
        // the server side of stream 2 closes: the client is told
        CLinux.close(b[1])
        b[1] = -1
        #expect(client.receiveText() == #"{"type":"close","streamId":"2"}"#)
    }
}
