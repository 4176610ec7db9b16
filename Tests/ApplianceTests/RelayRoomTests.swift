import Testing
@testable import Appliance

/// The C2S relay's room (issue #24): `limits.maxRelays` WebSockets in all, a non-admin at most a quarter of them.
@Suite struct RelayRoomTests {
    @Test func aNonAdminHoldsAQuarterAtMost() {
        var counts = RelayCounts(maxRelays: 8)
        #expect(RelayCounts.userShare(8) == 2)
        counts.add("u-ops", 1)
        #expect(counts.room(userId: "u-ops", admin: false) == .available)
        counts.add("u-ops", 1)
        #expect(counts.room(userId: "u-ops", admin: false) == .userShare)
        // others keep their own share
        #expect(counts.room(userId: "u-other", admin: false) == .available)
        #expect(counts.of("u-ops") == 2 && counts.total == 2)
    }

    @Test func theTotalBindsAdminsToo() {
        var counts = RelayCounts(maxRelays: 4)
        for _ in 0..<3 { counts.add("u-admin", 1) }
        #expect(counts.room(userId: "u-admin", admin: true) == .available)
        counts.add("u-ops", 1)
        #expect(counts.isFull)
        #expect(counts.room(userId: "u-admin", admin: true) == .full)
        #expect(counts.room(userId: "u-other", admin: false) == .full)
        counts.add("u-ops", -1)
        #expect(counts.room(userId: "u-admin", admin: true) == .available)
    }

    @Test func tinyLimitsStillAdmitOne() {
        #expect(RelayCounts.userShare(1) == 1 && RelayCounts.userShare(3) == 1)
        var counts = RelayCounts(maxRelays: 0)    // a limit below one is one
        #expect(counts.room(userId: "u-ops", admin: false) == .available)
        counts.add("u-ops", 1)
        #expect(counts.room(userId: "u-admin", admin: true) == .full)
    }

    @Test func usersWithNothingOpenAreForgotten() {
        var counts = RelayCounts(maxRelays: 8)
        counts.add("u-ops", 1)
        counts.add("u-other", 1)
        counts.add("u-ops", -1)
        #expect(counts.byUser == ["u-other": 1] && counts.total == 1)
        // an extra release never goes below zero
        counts.add("u-ops", -1)
        #expect(counts.byUser == ["u-other": 1] && counts.total == 0)
        counts.reset()
        #expect(counts.byUser.isEmpty && counts.total == 0)
    }
}
