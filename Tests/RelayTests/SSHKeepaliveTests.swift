import Testing
@testable import Relay

@Suite struct SSHKeepaliveTests {
    @Test func silenceForCountMaxPlusOneIntervalsIsDeath() {
        var keepalive = SSHKeepalive(intervalMs: 1500, countMax: 2)
        #expect(keepalive.enabled && keepalive.seconds == 2)       // libssh2 takes whole seconds, rounded up
        #expect(keepalive.silenceLimitMs == 6000)
        #expect(!keepalive.dead(nowMs: 16_000, lastHeardMs: 10_000))
        #expect(keepalive.dead(nowMs: 16_001, lastHeardMs: 10_000))
        // only a moved reply count is an answer
        let seen = [keepalive.answered(replies: 0), keepalive.answered(replies: 1), keepalive.answered(replies: 1)]
        #expect(seen == [false, true, false])
    }

    @Test func withoutKeepalivesASilentPeerIsNotJudged() {
        let keepalive = SSHKeepalive(intervalMs: 0, countMax: 3)
        #expect(!keepalive.enabled)
        #expect(!keepalive.dead(nowMs: 10_000_000, lastHeardMs: 0))
    }
}
