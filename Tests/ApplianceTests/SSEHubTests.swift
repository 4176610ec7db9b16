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

    @Test func aSlowReaderGetsTheLatestBeyondTheBound() throws {
        let views = Views()
        let hub = SSEHub { _ in views.current }
        let s = try #require(hub.subscribe(userId: "u"))
        for i in 0..<100 {
            views.current = #"{"n":\#(i)}"#
            hub.publish()
        }
        #expect(s.waiting.count <= SSEHub.queueLimit)
        let text = SSEHubQueueTests.drain(s)
        let events = text.split(separator: "\n").filter { $0.hasPrefix("data: ") }
        #expect(events.count <= SSEHub.queueLimit)
        #expect(events.last == "data: {\"n\":99}")   // the newest is never lost
        #expect(hub.queued(userId: "u") == 0)
    }
}

/// Issue #24: a change is serialised once per distinct view and the one buffer is shared by every subscriber of
/// it; a slow subscriber's backlog is bounded in bytes, per subscriber and per user, beyond which it holds the
/// latest snapshot only.
@Suite struct SSEHubShareTests {
    final class Views {
        var current = "{}"
        var renders = 0
    }

    @Test func oneSerialisationPerViewSharedByEverySubscriber() throws {
        let views = Views()
        // u1 and u2 may use the same hosts: one view key
        let hub = SSEHub(viewKey: { $0 == "admin" ? "*" : "hosts:1" },
                         view: { _ in views.renders += 1; return views.current })
        var held: [SSESubscriber] = []
        for user in ["u1", "u2", "u1", "u2", "admin"] { held.append(try #require(hub.subscribe(userId: user))) }
        views.renders = 0
        views.current = #"{"t":1}"#
        hub.publish()
        #expect(views.renders == 2)    // "hosts:1" and "*", not five subscribers nor three users
        let first = try #require(held[0].waiting.last)
        for s in held[1..<4] { #expect(s.waiting.last === first) }
        #expect(held[4].waiting.last !== first)
    }

    @Test func aStalledSubscriberHoldsBoundedBytes() throws {
        let views = Views()
        let hub = SSEHub { _ in views.current }
        let s = try #require(hub.subscribe(userId: "u"))
        let big = String(repeating: "x", count: 100_000)
        for i in 0..<50 {
            views.current = #"{"n":\#(i),"p":"\#(big)"}"#
            hub.publish()
        }
        #expect(s.waitingBytes <= SSEHub.maxQueuedBytesPerSubscriber)
        #expect(s.waiting.count >= 1)
        let latest = try #require(s.waiting.last)
        #expect(String(decoding: latest.bytes, as: UTF8.self).hasPrefix("event: statuses\ndata: {\"n\":49,"))
        // a snapshot over the subscriber's bound is still delivered, alone
        views.current = "{\"p\":\"" + String(repeating: "y", count: SSEHub.maxQueuedBytesPerSubscriber) + "\"}"
        hub.publish()
        #expect(s.waiting.count == 1)
        #expect(hub.queued(userId: "u") == s.waitingBytes)
    }

    @Test func oneUsersStreamsHoldBoundedBytesAndCostNoOneElse() throws {
        let views = Views()
        let hub = SSEHub { _ in views.current }
        var held: [SSESubscriber] = []
        for _ in 0..<SSEHub.maxSubscribersPerUser { held.append(try #require(hub.subscribe(userId: "u-ops"))) }
        let admin = try #require(hub.subscribe(userId: "u-admin"))
        let big = String(repeating: "x", count: 60_000)
        var size = 0
        for i in 0..<40 {
            views.current = #"{"n":\#(i),"p":"\#(big)"}"#
            size = views.current.utf8.count + 30
            hub.publish()
        }
        // the backlog beyond each subscriber's latest snapshot stays within the user's bound
        var backlog = 0
        var distinct: [ObjectIdentifier: Int] = [:]
        for s in held {
            backlog += s.waitingBytes - (s.waiting.last?.count ?? 0)
            for e in s.waiting { distinct[ObjectIdentifier(e)] = e.count }
        }
        #expect(backlog <= SSEHub.maxQueuedBytesPerUser)
        #expect(hub.queuedBytes == held.reduce(0) { $0 + $1.waitingBytes } + admin.waitingBytes)
        // the memory really held: shared buffers, not a copy per subscriber
        #expect(distinct.values.reduce(0, +) <= SSEHub.maxQueuedBytesPerSubscriber + size)
        // the admin's own stream keeps its whole backlog within its own bounds
        #expect(admin.waiting.count >= 2)
    }
}

/// Issue #24: an event being sent cannot be replaced, so a reader that stalls mid-event pins its snapshot. A user's
/// streams hold at most `maxSendingBytesPerUser` of them once newer events come; beyond it the stalled ones end.
@Suite struct SSEHubSendingTests {
    final class Views { var n = 0 }

    static func readSome(_ s: SSESubscriber, _ count: Int) -> HTTPStreamRead {
        var buffer = [UInt8](repeating: 0, count: count)
        return buffer.withUnsafeMutableBytes { s.read(into: $0) }
    }

    @Test func streamsStalledMidEventAreBoundedPerUser() throws {
        let views = Views()
        let big = String(repeating: "a", count: 300_000)
        let hub = SSEHub { _ in #"{"x":"\#(big)\#(views.n)"}"# }
        var ops: [SSESubscriber] = []
        for _ in 0..<10 {
            let s = try #require(hub.subscribe(userId: "u-ops"))
            guard case .bytes = SSEHubSendingTests.readSome(s, 1024) else { Issue.record("no bytes"); return }
            ops.append(s)
        }
        let admin = try #require(hub.subscribe(userId: "u-admin"))
        _ = SSEHubSendingTests.readSome(admin, 1024)
        #expect(hub.sending(userId: "u-ops") > 3_000_000)       // ten snapshots in flight: nothing newer yet
        views.n = 1
        hub.publish()
        #expect(hub.sending(userId: "u-ops") <= SSEHub.maxSendingBytesPerUser)
        let ended = ops.filter { s in
            if case .end = SSEHubSendingTests.readSome(s, 1024) { return true }
            return false
        }
        #expect(ended.count == 4 && ops.filter { $0.cutOff }.count == 4)
        #expect(!admin.cutOff && admin.waiting.count == 1)       // another user's stream goes on
        for s in ops { s.finished() }
        admin.finished()
        #expect(hub.sendingBytes == 0 && hub.queuedBytes == 0)
    }

    @Test func aWholeEventNoLongerCountsOnceHandedOver() throws {
        let hub = SSEHub { _ in "{}" }
        let s = try #require(hub.subscribe(userId: "u"))
        guard case .bytes = SSEHubSendingTests.readSome(s, 1 << 16) else { Issue.record("no bytes"); return }
        #expect(hub.sendingBytes == 0 && s.sending == nil)
    }
}
