import CLinux
import Testing
@testable import Relay

/// The one stream-open outcome, and what derives from it: the SOCKS5 reply, the refusal counter, the classification
/// of libssh2's and errno's words.
@Suite struct StreamOpenOutcomeTests {
    @Test func socksReplyOfEveryOutcome() {
        let expected: [StreamOpenOutcome: SOCKS5.Reply] = [
            .opened: .succeeded, .overLimit: .generalFailure, .noBuffers: .generalFailure,
            .sessionUnavailable: .generalFailure, .failed: .generalFailure,
            .notAllowed: .notAllowed, .prohibited: .notAllowed,
            .connectFailed: .connectionRefused, .refused: .connectionRefused,
            .unresolved: .hostUnreachable, .unreachable: .hostUnreachable, .timedOut: .hostUnreachable,
        ]
        #expect(expected.count == StreamOpenOutcome.allCases.count)
        for outcome in StreamOpenOutcome.allCases { #expect(outcome.socksReply == expected[outcome], "\(outcome)") }
        // appliance.md §2: a SOCKS client refused over a limit hears 01
        #expect(StreamOpenOutcome.overLimit.socksReply.rawValue == 1)
    }

    @Test func onlyLimitsOfOursAreCountedAsRefusals() {
        for outcome in StreamOpenOutcome.allCases {
            switch outcome {
            case .overLimit: #expect(outcome.refusalCause == .connectionLimit)
            case .noBuffers: #expect(outcome.refusalCause == .bufferPool)
            default: #expect(outcome.refusalCause == nil, "\(outcome)")
            }
        }
    }

    @Test func countingAnOutcomeRaisesItsCounterOnly() {
        let before = Refusals.shared.snapshot()
        Refusals.shared.count(StreamOpenOutcome.overLimit)
        Refusals.shared.count(StreamOpenOutcome.prohibited)
        Refusals.shared.count(StreamOpenOutcome.opened)
        let after = Refusals.shared.snapshot()
        // other suites may count at the same time: at least ours, and nothing for the outcomes that are not limits
        #expect(after[Refusals.Cause.connectionLimit.rawValue] >= before[Refusals.Cause.connectionLimit.rawValue] + 1)
    }

    @Test func libssh2RefusalTextIsClassifiedOnce() {
        // the exact texts of libssh2 1.11's _libssh2_channel_open
        #expect(StreamOpenOutcome(sshRefusal: "Channel open failure (administratively prohibited)") == .prohibited)
        #expect(StreamOpenOutcome(sshRefusal: "Channel open failure (connect failed)") == .connectFailed)
        #expect(StreamOpenOutcome(sshRefusal: "Channel open failure (resource shortage)") == .failed)
        #expect(StreamOpenOutcome(sshRefusal: "Channel open failure (unknown channel type)") == .failed)
        #expect(StreamOpenOutcome(sshRefusal: "Would block") == .failed)
        #expect(StreamOpenOutcome(sshRefusal: "") == .failed)
    }

    @Test func connectErrnoAndDialKinds() {
        #expect(StreamOpenOutcome(connectErrno: 0) == .opened)
        #expect(StreamOpenOutcome(connectErrno: ECONNREFUSED) == .refused)
        #expect(StreamOpenOutcome(connectErrno: ETIMEDOUT) == .timedOut)
        #expect(StreamOpenOutcome(connectErrno: EHOSTUNREACH) == .unreachable)
        #expect(StreamOpenOutcome(connectErrno: ENETUNREACH) == .unreachable)
        #expect(StreamOpenOutcome(connectErrno: EMFILE) == .failed)
        #expect(StreamOpenOutcome(dial: .connected) == .opened)
        #expect(StreamOpenOutcome(dial: .unresolved) == .unresolved)
        #expect(StreamOpenOutcome(dial: .notAllowed) == .notAllowed)
        #expect(StreamOpenOutcome(dial: .refused) == .refused)
        #expect(StreamOpenOutcome(dial: .timedOut) == .timedOut)
        #expect(StreamOpenOutcome(dial: .failed) == .unreachable)
        #expect(StreamOpenOutcome(dial: .failed, errno: ENFILE) == .failed)
    }

    @Test func everyOutcomeHasItsOwnWords() {
        let words = StreamOpenOutcome.allCases.map(\.description)
        #expect(Set(words).count == words.count)
        #expect(StreamOpenOutcome.prohibited.description == "administratively prohibited")
    }
}
