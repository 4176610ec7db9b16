import Testing
@testable import Appliance

@Suite struct AutostartTests {
    func request(_ name: String, autoStart: Bool) -> ConnectRequest {
        var host = Host(id: 1, name: "edge", owner: "u")
        host.ip = "10.0.0.1"
        host.username = "pi"
        return ConnectRequest(name: TunnelName.parse(name)!, host: host, mode: .local, sourcePort: 8080,
                              endpointHost: "", endpointPort: 22, bindHost: "127.0.0.1", targetHost: "",
                              maxRetries: 3, retryIntervalMs: 5000, autoStart: autoStart, keepaliveInterval: 30000,
                              keepaliveCountMax: 3)
    }

    @Test func connectRemembersOnlyAutoStart() {
        var state = AutostartState()
        state.connected(request("1::0::edge::8080::::22", autoStart: true), userId: "u")
        state.connected(request("1::1::edge::8081::::22", autoStart: false), userId: "u")
        #expect(state.entries.map { $0.name } == ["1::0::edge::8080::::22"])
        // a later connect without autoStart forgets it
        state.connected(request("1::0::edge::8080::::22", autoStart: false), userId: "u")
        #expect(state.entries.isEmpty)
    }

    @Test func userStopOfConfiguredTunnelIsRememberedUntilNextConnect() {
        var state = AutostartState()
        state.stoppedByUser("1::0::edge::8080::::22", configuredAutoStart: true)
        state.stoppedByUser("1::0::edge::8080::::22", configuredAutoStart: true)
        #expect(state.stopped == ["1::0::edge::8080::::22"])
        state.connected(request("1::0::edge::8080::::22", autoStart: false), userId: "u")
        #expect(state.stopped.isEmpty)
    }

    @Test func roundTripsThroughJSONWithoutSecrets() throws {
        var state = AutostartState()
        state.connected(request("1::0::edge::8080::::22", autoStart: true), userId: "u-ops")
        state.stoppedByUser("2::0::db::5432::::5432", configuredAutoStart: true)
        let text = JSONWriter.write(state.json())
        #expect(!text.contains("password") && !text.contains("keyFile"))
        let again = AutostartState.parse(try JSONParser.parse(text))
        #expect(again == state)
        // the remembered body validates again as a connect request
        #expect(again.entries[0].body["autoStart"] == .bool(true))
    }

    @Test func pruneForgetsRemovedNames() {
        var state = AutostartState()
        state.stoppedByUser("a::0::x::1::::1", configuredAutoStart: true)
        state.stoppedByUser("b::0::x::1::::1", configuredAutoStart: true)
        state.prune(configured: ["b::0::x::1::::1"])
        #expect(state.stopped == ["b::0::x::1::::1"])
    }

    @Test func lenientParse() throws {
        let state = AutostartState.parse(try JSONParser.parse(#"{"tunnels":[{"userId":"u"},7,{"userId":"u","body":{"name":"n"}}],"stopped":["a","a",3]}"#))
        #expect(state.entries.count == 1)
        #expect(state.stopped == ["a"])
    }
}
