import Testing
@testable import Appliance

/// A remote-mode relay's client messages (tunnels-api.md §9): `data` with base64, `close`, anything else ignored.
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
}
