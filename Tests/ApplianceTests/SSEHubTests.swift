import Testing
@testable import Appliance
import Relay

/// Issue #15: status streams are capped per user as well as in total.
@Suite struct SSEHubLimitTests {
    @Test func oneUserCannotTakeEveryStream() {
        let hub = SSEHub { _ in "{}" }
        var held: [SSESubscriber] = []
        for _ in 0..<SSEHub.maxSubscribersPerUser {
            guard let s = hub.subscribe(userId: "u-ops") else { Issue.record("refused under the cap"); return }
            held.append(s)
        }
        #expect(hub.subscribe(userId: "u-ops") == nil)
        #expect(hub.subscribe(userId: "u-admin") != nil)
        held[0].finished()
        #expect(hub.subscribe(userId: "u-ops") != nil)
    }
}

/// tunnels-api.md §8 and issue #15: `disconnected`, `retrying` and `waiting` are published in one go; each must
/// reach a subscriber that has not read yet, not only the last. Beyond the queue's bound they coalesce.
@Suite struct SSEHubQueueTests {
    final class Views { var current = "{}" }

    static func drain(_ s: SSESubscriber) -> String {
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let r = buffer.withUnsafeMutableBytes { s.read(into: $0) }
            guard case .bytes(let n) = r else { break }
            out += buffer[0..<n]
        }
        return String(decoding: out, as: UTF8.self)
    }

    @Test func everyTransitionReachesASubscriber() throws {
        let views = Views()
        let hub = SSEHub { _ in views.current }
        let s = try #require(hub.subscribe(userId: "u"))
        for state in ["disconnected", "retrying", "waiting"] {
            views.current = #"{"t":{"status":"\#(state)"}}"#
            hub.publish()
        }
        let text = SSEHubQueueTests.drain(s)
        #expect(text == "event: statuses\ndata: {}\n\n"
            + "event: statuses\ndata: {\"t\":{\"status\":\"disconnected\"}}\n\n"
            + "event: statuses\ndata: {\"t\":{\"status\":\"retrying\"}}\n\n"
            + "event: statuses\ndata: {\"t\":{\"status\":\"waiting\"}}\n\n")
    }

    @Test func aSlowReaderCoalescesBeyondTheBound() throws {
        let views = Views()
        let hub = SSEHub { _ in views.current }
        let s = try #require(hub.subscribe(userId: "u"))
        for i in 0..<100 {
            views.current = #"{"n":\#(i)}"#
            hub.publish()
        }
        let text = SSEHubQueueTests.drain(s)
        let events = text.split(separator: "\n").filter { $0.hasPrefix("data: ") }
        #expect(events.count == SSEHub.queueLimit)
        #expect(events.last == "data: {\"n\":99}")   // the newest is never lost
    }
}
