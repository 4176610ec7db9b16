import Testing
@testable import Appliance

@Suite struct TunnelNameTests {
    @Test func sixPartsParse() throws {
        let name = try #require(TunnelName.parse("1::0::edge::8080::db::5432"))
        #expect(name.text == "1::0::edge::8080::db::5432")
        #expect(name.parts == ["1", "0", "edge", "8080", "db", "5432"])
        #expect(name.hostId == 1)
    }

    @Test func dynamicNameKeepsEmptyEndpoint() throws {
        let name = try #require(TunnelName.parse("3::0::edge::1080::::0"))
        #expect(name.parts == ["3", "0", "edge", "1080", "", "0"])
    }

    @Test func otherPartCountsAreRefused() {
        #expect(TunnelName.parse("") == nil)
        #expect(TunnelName.parse("edge") == nil)
        #expect(TunnelName.parse("1::0::edge::8080::db") == nil)
        #expect(TunnelName.parse("1::0::edge::8080::db::5432::x") == nil)
        #expect(TunnelName.parse("1:0:edge:8080:db:5432") == nil)
    }

    @Test func splitsLikeJavaScript() throws {
        // "a:::b".split("::") is ["a", ":b"] in JavaScript.
        let name = try #require(TunnelName.parse("1::0::a:::b::db::5432"))
        #expect(name.parts == ["1", "0", "a", ":b", "db", "5432"])
        #expect(TunnelName.parse("::::::::::")?.parts == ["", "", "", "", "", ""])
    }

    @Test func hostIdIsCanonicalDecimalOnly() {
        #expect(TunnelName.parse("01::0::e::1::h::2")?.hostId == nil)
        #expect(TunnelName.parse("x::0::e::1::h::2")?.hostId == nil)
        #expect(TunnelName.parse("+1::0::e::1::h::2")?.hostId == nil)
        #expect(TunnelName.parse("0::0::e::1::h::2")?.hostId == 0)
    }

    @Test func configuredNamesMatchTermix() {
        var host = Host(id: 1, name: "edge", owner: "u")
        host.ip = "192.0.2.10"
        host.username = "pi"
        var tunnel = TunnelConfig()
        tunnel.sourcePort = 8080
        tunnel.endpointPort = 80
        #expect(TunnelName.configured(host: host, index: 2, tunnel: tunnel) == "1::2::edge::8080::::80")
        host.name = ""
        tunnel.endpointHost = "db"
        #expect(TunnelName.configured(host: host, index: 0, tunnel: tunnel) == "1::0::pi@192.0.2.10::8080::db::80")
    }
}
