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

    /// Issue #24: at start-up the records obey the run-time limits; admins' first, so a user who filled their share
    /// (or a file written under other limits) never costs the admin's record; unknown users' records go.
    @Test func recordsAreBoundedPerUserAdminsFirst() {
        var state = AutostartState()
        for i in 0..<12 { state.connected(request("1::\(i)::edge::\(8100 + i)::::22", autoStart: true), userId: "u-ops") }
        state.connected(request("1::50::edge::8150::::22", autoStart: true), userId: "u-gone")
        state.connected(request("1::60::edge::8160::::22", autoStart: true), userId: "u-admin")
        let admins = ["u-admin": true, "u-ops": false, "u-other": false]
        let dropped = state.bound(room: 3, share: 2, isAdmin: { admins[$0] })
        #expect(state.entries.map { $0.name } == ["1::0::edge::8100::::22", "1::1::edge::8101::::22",
                                                  "1::60::edge::8160::::22"])
        #expect(dropped.count == 11)
        #expect(dropped.contains("1::50::edge::8150::::22"))
        // no room at all still drops, never keeps more than the room
        var none = state
        _ = none.bound(room: 0, share: 2, isAdmin: { admins[$0] })
        #expect(none.entries.isEmpty)
    }

    @Test func forgetDropsTheRecord() {
        var state = AutostartState()
        state.connected(request("1::0::edge::8080::::22", autoStart: true), userId: "u")
        state.forget("1::0::edge::8080::::22")
        #expect(state.entries.isEmpty)
    }

    @Test func theLargestRecordFitsItsBound() {
        var host = Host(id: 1, name: "edge", owner: "u")
        host.ip = "10.0.0.1"
        let head = "1::0::", tail = "::8080::::22"
        let name = head + String(repeating: "\u{1}", count: ConnectValidation.maxNameBytes - head.utf8.count - tail.utf8.count) + tail
        let long = String(repeating: "\u{1}", count: ConnectValidation.maxHostBytes)
        let r = ConnectRequest(name: TunnelName.parse(name)!, host: host, mode: .local, sourcePort: 65535,
                               endpointHost: "", endpointPort: 65535, bindHost: long, targetHost: long,
                               maxRetries: Int(Int32.max), retryIntervalMs: Int(Int32.max), autoStart: true,
                               keepaliveInterval: Int(Int32.max), keepaliveCountMax: Int(Int32.max))
        var state = AutostartState()
        state.connected(r, userId: String(repeating: "u", count: 64))
        let record = JSONWriter.write(state.json())
        #expect(record.utf8.count <= AutostartState.maxRecordBytes)
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
