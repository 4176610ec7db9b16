import Testing
@testable import Appliance

/// tunnels-api.md §9: the first message of a C2S relay, its checks in order, and the upgrade-time rules.
@Suite struct RelayRequestTests {
    func parse(_ json: String, user: User = TunnelFixture.ops) -> RelayRequest.Parsed {
        RelayRequest.parse(Array(json.utf8), config: TunnelFixture.config, user: user)
    }

    func error(_ json: String, user: User = TunnelFixture.ops) -> String? { parse(json, user: user).error }

    @Test func localOpen() throws {
        let request = try #require(parse(#"{"type":"open","tunnelConfig":{"sourceHostId":1,"mode":"local","endpointPort":5432,"targetHost":"10.1.1.5"}}"#).request)
        #expect(request.kind == .open && request.mode == .local && request.host.id == 1)
        #expect(request.targetHost == "10.1.1.5" && request.targetPort == 5432)
    }

    @Test func localTargetDefaultsToLoopback() throws {
        for target in ["", #","targetHost":"""#, #","targetHost":null"#] {
            let json = #"{"type":"test","tunnelConfig":{"sourceHostId":1,"mode":"local","endpointPort":80"# + target + "}}"
            let request = try #require(parse(json).request, "\(target)")
            #expect(request.kind == .test && request.targetHost == "127.0.0.1")
        }
    }

    @Test func dynamicTakesTheMessageTarget() throws {
        let request = try #require(parse(#"{"type":"open","tunnelConfig":{"sourceHostId":0,"mode":"dynamic"},"targetHost":"db.lan","targetPort":5432}"#, user: TunnelFixture.admin).request)
        #expect(request.mode == .dynamic && request.targetHost == "db.lan" && request.targetPort == 5432)
        // a test of a dynamic relay checks SSH only: no target needed
        #expect(parse(#"{"type":"test","tunnelConfig":{"sourceHostId":1,"mode":"dynamic"}}"#).request != nil)
    }

    @Test func remoteListensOnTheServer() throws {
        let request = try #require(parse(#"{"type":"open","tunnelConfig":{"sourceHostId":1,"tunnelType":"remote","sourcePort":9000}}"#).request)
        #expect(request.mode == .remote && request.targetHost == "127.0.0.1" && request.targetPort == 9000)
        // Termix's default mode is remote
        #expect(parse(#"{"type":"open","tunnelConfig":{"sourceHostId":1,"sourcePort":9000}}"#).request?.mode == .remote)
    }

    @Test func invalidRequests() {
        for json in ["", "[]", "\"open\"", "{not json", #"{"type":"connect","tunnelConfig":{"sourceHostId":1}}"#,
                     #"{"tunnelConfig":{"sourceHostId":1}}"#, #"{"type":1}"#,
                     #"{"type":"open","tunnelConfig":{"sourceHostId":1,"mode":"sideways"}}"#] {
            #expect(error(json) == "Invalid client tunnel relay request", "\(json)")
        }
    }

    @Test func hostRequired() {
        for json in [#"{"type":"open"}"#, #"{"type":"open","tunnelConfig":null}"#, #"{"type":"open","tunnelConfig":{}}"#,
                     #"{"type":"open","tunnelConfig":[1]}"#, #"{"type":"open","tunnelConfig":{"sourceHostId":"1"}}"#,
                     #"{"type":"open","tunnelConfig":{"sourceHostId":1.5}}"#] {
            #expect(error(json) == "Endpoint SSH host is required", "\(json)")
        }
    }

    @Test func unknownAndForbiddenHostsAnswerAlike() {
        // 4 belongs to another user, 2 is not shared with ops, 99 does not exist: one answer, so ids cannot be probed
        for id in [4, 2, 99, -1] {
            #expect(error(#"{"type":"open","tunnelConfig":{"sourceHostId":\#(id),"mode":"local","endpointPort":80}}"#)
                    == "Access denied to this host")
        }
        // permission comes before the target checks: nothing is learned about a forbidden host's request
        #expect(error(#"{"type":"open","tunnelConfig":{"sourceHostId":4,"mode":"local","endpointPort":0}}"#)
                == "Access denied to this host")
    }

    @Test func invalidTargets() {
        for config in [#""mode":"local""#, #""mode":"local","endpointPort":0"#, #""mode":"local","endpointPort":65536"#,
                       #""mode":"local","endpointPort":"80""#, #""mode":"local","endpointPort":80,"targetHost":5"#] {
            #expect(error(#"{"type":"open","tunnelConfig":{"sourceHostId":1,\#(config)}}"#) == "Invalid client tunnel target",
                    "\(config)")
        }
        for top in ["", #","targetHost":"db""#, #","targetHost":"","targetPort":80"#, #","targetHost":"db","targetPort":0"#] {
            #expect(error(#"{"type":"open","tunnelConfig":{"sourceHostId":1,"mode":"dynamic"}\#(top)}"#)
                    == "Invalid client tunnel target", "\(top)")
        }
    }

    @Test func invalidRemotePorts() {
        for port in ["", #","sourcePort":0"#, #","sourcePort":65536"#, #","sourcePort":"22""#] {
            #expect(error(#"{"type":"open","tunnelConfig":{"sourceHostId":1,"mode":"remote"\#(port)}}"#) == "Invalid remote port")
        }
    }
}

@Suite struct RelayUpgradeTests {
    @Test func acceptKeyOfRFC6455() {
        #expect(RelayUpgrade.accept("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    }

    @Test func headerTokens() {
        #expect(RelayUpgrade.hasToken("keep-alive, Upgrade", "upgrade"))
        #expect(RelayUpgrade.hasToken("WebSocket", "websocket"))
        #expect(!RelayUpgrade.hasToken("keep-alive", "upgrade"))
        #expect(!RelayUpgrade.hasToken("upgrades", "upgrade"))
        #expect(!RelayUpgrade.hasToken(nil, "upgrade"))
    }

    @Test func origins() {
        let allowed = ["https://termix.example.org", "http://10.0.0.5:8080"]
        #expect(OriginPolicy.allows(origin: nil, host: "127.0.0.1:30003", allowed: []))
        #expect(OriginPolicy.allows(origin: "https://termix.example.org", host: "x", allowed: allowed))
        #expect(OriginPolicy.allows(origin: "HTTPS://TERMIX.example.org:443", host: "x", allowed: allowed))
        #expect(OriginPolicy.allows(origin: "http://10.0.0.5:8080", host: "x", allowed: allowed))
        #expect(!OriginPolicy.allows(origin: "http://10.0.0.5", host: "x", allowed: allowed))
        #expect(!OriginPolicy.allows(origin: "https://termix.example.org.evil.com", host: "x", allowed: allowed))
        #expect(!OriginPolicy.allows(origin: "null", host: "x", allowed: allowed))
        #expect(!OriginPolicy.allows(origin: "https://termix.example.org/path", host: "x", allowed: allowed))
        // the request's own host
        #expect(OriginPolicy.allows(origin: "http://127.0.0.1:30003", host: "127.0.0.1:30003", allowed: []))
        #expect(OriginPolicy.allows(origin: "http://Box.Lan", host: "box.lan:80", allowed: []))
        #expect(OriginPolicy.allows(origin: "https://box.lan", host: "box.lan:443", allowed: []))
        #expect(!OriginPolicy.allows(origin: "https://box.lan", host: "box.lan:80", allowed: []))
        #expect(!OriginPolicy.allows(origin: "http://127.0.0.1:1", host: "127.0.0.1:30003", allowed: []))
        #expect(!OriginPolicy.allows(origin: "http://127.0.0.1:30003", host: nil, allowed: []))
    }
}
