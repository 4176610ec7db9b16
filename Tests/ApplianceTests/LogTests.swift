import Testing
@testable import Appliance
import Relay

@Suite struct LogTests {
    @Test func quotesOnlyWhenNeeded() {
        #expect(Log.quoted("plain") == "plain")
        #expect(Log.quoted("two words") == "\"two words\"")
        #expect(Log.quoted("a=b") == "\"a=b\"")
        #expect(Log.quoted("say \"hi\"\n") == "\"say \\\"hi\\\"\\n\"")
        #expect(Log.quoted("") == "\"\"")
    }
}
