import Testing
@testable import Appliance

/// Issue #24 item 7: the header deadline counts from the connection's start (or the end of its previous request),
/// whatever trickles in meanwhile; answered requests, streams and upgraded connections are not cut.
@Suite struct HeaderDeadlinesTests {
    @Test func overdueHeadersAreNamedOnce() {
        var d = HeaderDeadlines(deadlineMs: 10_000)
        d.started(1, fd: 7, nowMs: 0)
        d.started(2, fd: 8, nowMs: 5_000)
        #expect(d.expired(nowMs: 9_999) == [])
        #expect(d.expired(nowMs: 10_000) == [7])     // no activity can move it: there is no call for bytes
        #expect(d.expired(nowMs: 20_000) == [8])
        #expect(d.expired(nowMs: 60_000) == [])
    }

    @Test func aRequestBeingAnsweredIsNotCutAndTheNextOneGetsItsOwnDeadline() {
        var d = HeaderDeadlines(deadlineMs: 10_000)
        d.started(1, fd: 7, nowMs: 0)
        d.headersIn(1)
        #expect(d.expired(nowMs: 500_000) == [])      // a long stream or a slow body
        d.requestDone(1, nowMs: 500_000)
        #expect(d.expired(nowMs: 509_999) == [])
        #expect(d.expired(nowMs: 510_000) == [7])
    }

    @Test func upgradedAndClosedConnectionsAreForgotten() {
        var d = HeaderDeadlines(deadlineMs: 10_000)
        d.started(1, fd: 7, nowMs: 0)
        d.started(2, fd: 8, nowMs: 0)
        d.headersIn(1)
        d.upgraded(1)
        d.requestDone(1, nowMs: 1)                   // whatever MHD reports after the upgrade
        d.closed(2)
        #expect(d.expired(nowMs: 100_000) == [])
        #expect(d.entries.isEmpty)
    }
}
