import Testing
@testable import Appliance
import Relay

/// The C2S relay's words for SSH refusals (tunnels-api.md §9).
@Suite struct RelayWordingTests {
    @Test func c2sWordsForSSHRefusals() {
        #expect(RelayWording.remoteRefusal(RelayFailure(.forwardRefused, subject: "9000"))
                == "Remote port is not available on the endpoint server: Remote port forwarding failed for listen port 9000")
        #expect(RelayWording.remoteRefusal(RelayFailure(.keepaliveTimeout)) == nil)
        #expect(RelayWording.channelRefusal("open failed: administratively prohibited")
                == "SSH forwarding was rejected by the endpoint server: open failed: administratively prohibited")
        #expect(RelayWording.channelRefusal("connect failed")
                == "Tunnel target is not reachable from the endpoint host: connect failed")
    }
}
