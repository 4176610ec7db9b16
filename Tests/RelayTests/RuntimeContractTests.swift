import CSupport
import Testing
@testable import Relay

/// The same contract the product checks at start (the product links the Embedded runtime plus
/// Sources/CSupport/EmbeddedRuntimeFixes.c; these tests run on full Swift's runtime, which must hold it too).
@Suite struct RuntimeContractTests {
    @Test func bridgeObjectRetainReturnsItsArgument() {
        #expect(RuntimeContract.violation() == nil)
        #expect(csupport_embedded_runtime_fixed() == 0)   // the fix is the product's only
    }

    @Test func probesCoverBothStringRepresentations() {
        // small strings are at most 15 UTF-8 bytes on 64-bit targets; the check must see both kinds
        #expect(RuntimeContract.digits(15).utf8.count == 15)
        #expect(RuntimeContract.digits(40).utf8.count == 40)
        #expect(RuntimeContract.digits(9) == "185296307")
    }
}
