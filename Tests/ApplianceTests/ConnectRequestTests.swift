import Testing
@testable import Appliance

/// Inventory: 0 the appliance (admin's), 1 edge (admin's, shared with ops), 2 db (admin's), 4 "db" of another user
/// listed before it, 5 a host named "2".
enum TunnelFixture {
    static let admin = User(id: "u-admin", username: "admin", admin: true)
    static let ops = User(id: "u-ops", username: "ops")
    static let other = User(id: "u-other", username: "other")

    static let config: Config = {
        var c = Config()
        c.users = [admin, ops, other]
        var appliance = Host(id: 0, name: "appliance", owner: admin.id)
        appliance.local = true
        var edge = Host(id: 1, name: "edge", owner: admin.id)
        edge.ip = "192.0.2.10"
        edge.username = "pi"
        edge.sharedWith = [ops.id]
        var foreign = Host(id: 4, name: "db", owner: other.id)
        foreign.ip = "10.9.9.9"
        var named2 = Host(id: 5, name: "2", owner: admin.id)
        named2.ip = "10.5.5.5"
        var db = Host(id: 2, name: "db", owner: admin.id)
        db.ip = "10.1.1.20"
        db.username = "admin"
        db.port = 2222
        c.hosts = [appliance, edge, foreign, named2, db]
        return c
    }()
}

@Suite struct ConnectValidationTests {
    static let base = #""name":"1::0::edge::8080::db::5432","sourceHostId":1,"tunnelIndex":0,"#
        + #""sourcePort":8080,"endpointHost":"db","endpointPort":5432"#

    func validate(_ json: String, user: User = TunnelFixture.ops) -> Result<ConnectRequest, APIError> {
        ConnectValidation.validate(body: Array(json.utf8), config: TunnelFixture.config, user: user)
    }

    /// The base body plus `extra` members.
    func validate(with extra: String, user: User = TunnelFixture.ops) -> Result<ConnectRequest, APIError> {
        validate("{" + ConnectValidationTests.base + (extra.isEmpty ? "" : "," + extra) + "}", user: user)
    }

    func error(_ result: Result<ConnectRequest, APIError>) -> APIError? {
        if case .failure(let e) = result { return e }
        return nil
    }

    func request(_ result: Result<ConnectRequest, APIError>) -> ConnectRequest? {
        if case .success(let r) = result { return r }
        return nil
    }

    let invalid = APIError(status: 400, message: "Invalid tunnel configuration")
    let mismatch = APIError(status: 400, message: "Tunnel configuration does not match tunnel name")
    let denied = APIError(status: 403, message: "Access denied to this host")
    let hostMismatch = APIError(status: 400, message: "Tunnel configuration does not match host")

    @Test func validBodyGetsDefaults() throws {
        let r = try #require(request(validate(with: "")))
        #expect(r.name.text == "1::0::edge::8080::db::5432")
        #expect(r.host.id == 1)
        #expect(r.mode == .remote)
        #expect(r.sourcePort == 8080 && r.endpointHost == "db" && r.endpointPort == 5432)
        #expect(r.bindHost == "127.0.0.1" && r.targetHost == "")
        #expect(r.maxRetries == 3 && r.retryIntervalMs == 5000 && !r.autoStart)
        #expect(r.keepaliveInterval == 30000 && r.keepaliveCountMax == 3)
    }

    @Test func givenValuesAreKept() throws {
        let r = try #require(request(validate(with: #""mode":"local","bindHost":"::1","targetHost":"10.1.1.5","#
            + #""maxRetries":-1,"retryInterval":1500,"autoStart":true,"keepaliveInterval":0,"keepaliveCountMax":7"#)))
        #expect(r.mode == .local && r.bindHost == "::1" && r.targetHost == "10.1.1.5")
        #expect(r.maxRetries == -1 && r.retryIntervalMs == 1500 && r.autoStart)
        #expect(r.keepaliveInterval == 0 && r.keepaliveCountMax == 7)
    }

    @Test func zeroAndNullMeanDefault() throws {
        let r = try #require(request(validate(with: #""maxRetries":0,"retryInterval":0,"bindHost":"","#
            + #""targetHost":null,"mode":null,"autoStart":null,"keepaliveInterval":null"#)))
        #expect(r.maxRetries == 3 && r.retryIntervalMs == 5000 && r.bindHost == "127.0.0.1")
        #expect(r.mode == .remote && !r.autoStart && r.keepaliveInterval == 30000)
    }

    @Test func modeFallsBackToTunnelType() throws {
        #expect(request(validate(with: #""tunnelType":"local""#))?.mode == .local)
        #expect(request(validate(with: #""tunnelType":"local","mode":"dynamic""#))?.mode == .dynamic)
        #expect(request(validate(with: #""tunnelType":"remote""#))?.mode == .remote)
        #expect(error(validate(with: #""tunnelType":"dynamic""#)) == invalid)
        #expect(error(validate(with: #""tunnelType":"bogus","mode":"local""#)) == invalid)
        #expect(error(validate(with: #""mode":"LOCAL""#)) == invalid)
        #expect(error(validate(with: #""mode":1"#)) == invalid)
    }

    @Test func check1MissingBodyOrName() {
        #expect(error(validate("")) == invalid)
        #expect(error(validate("[]")) == invalid)
        #expect(error(validate("\"x\"")) == invalid)
        #expect(error(validate("{}")) == invalid)
        #expect(error(validate(#"{"name":7}"#)) == invalid)
        #expect(error(validate("{nope")) == APIError(status: 400, message: "Invalid JSON body"))
    }

    @Test func check2NameMustAgree() {
        #expect(error(validate(#"{"name":"edge","sourceHostId":1}"#)) == mismatch)
        let fields = [#""sourceHostId":2"#, #""tunnelIndex":1"#, #""sourcePort":8081"#, #""endpointHost":"DB""#,
                      #""endpointPort":5433"#, #""sourceHostId":"01""#, #""endpointPort":null"#, #""endpointHost":5"#]
        for field in fields {
            let body = "{" + ConnectValidationTests.base.replacingFirstMember(named: field) + "}"
            #expect(error(validate(body)) == mismatch, "\(field)")
        }
        for name in ["sourceHostId", "tunnelIndex", "sourcePort", "endpointHost", "endpointPort"] {
            let body = "{" + ConnectValidationTests.base.removingMember(named: name) + "}"
            #expect(error(validate(body)) == mismatch, "absent \(name)")
        }
    }

    @Test func check2ComparesDecimalText() {
        // 8080.0 is the number 8080 ("8080" in JavaScript); a name part "01" never equals the number 1.
        #expect(request(validate(#"{"name":"1::0::e::8080::db::5432","sourceHostId":1.0,"tunnelIndex":0,"#
            + #""sourcePort":8.08e3,"endpointHost":"db","endpointPort":5432}"#)) != nil)
        #expect(error(validate(#"{"name":"01::0::e::8080::db::5432","sourceHostId":1,"tunnelIndex":0,"#
            + #""sourcePort":8080,"endpointHost":"db","endpointPort":5432}"#)) == mismatch)
        // A string passes the comparison, then check 3 wants an integer.
        #expect(error(validate(#"{"name":"1::0::e::8080::db::5432","sourceHostId":1,"tunnelIndex":0,"#
            + #""sourcePort":"8080","endpointHost":"db","endpointPort":5432}"#)) == invalid)
    }

    @Test func check2BeforeCheck3BeforeCheck4() {
        let wrongHost = ConnectValidationTests.base.replacingFirstMember(named: #""sourceHostId":9"#)
        #expect(error(validate("{" + wrongHost + #","mode":"bogus"}"#)) == mismatch)
        #expect(error(validate(with: #""mode":"bogus""#, user: TunnelFixture.other)) == invalid)
        #expect(error(validate(with: "", user: TunnelFixture.other)) == denied)
        #expect(error(validate(with: #""sourceIP":"1.1.1.1""#, user: TunnelFixture.other)) == denied)
    }

    @Test func check3Ports() {
        for port in ["0", "65536", "-1", "1.5"] {
            let body = #"{"name":"1::0::e::\#(port)::db::80","sourceHostId":1,"tunnelIndex":0,"#
                + #""sourcePort":\#(port),"endpointHost":"db","endpointPort":80,"mode":"local"}"#
            #expect(error(validate(body)) == invalid, "sourcePort \(port)")
        }
        let dynamic = #"{"name":"1::0::e::1080::::0","sourceHostId":1,"tunnelIndex":0,"sourcePort":1080,"#
            + #""endpointHost":"","endpointPort":0,"mode":"dynamic"}"#
        #expect(request(validate(dynamic))?.endpointPort == 0)
        #expect(error(validate(dynamic.replacingOccurrences("dynamic", "local"))) == invalid)
        #expect(request(validate(#"{"name":"1::0::e::65535::::1","sourceHostId":1,"tunnelIndex":0,"#
            + #""sourcePort":65535,"endpointHost":"","endpointPort":1}"#)) != nil)
        #expect(error(validate(#"{"name":"1::-1::e::80::::1","sourceHostId":1,"tunnelIndex":-1,"#
            + #""sourcePort":80,"endpointHost":"","endpointPort":1}"#)) == invalid)
    }

    @Test func check3RetryAndKeepaliveNumbers() {
        for extra in [#""maxRetries":-2"#, #""maxRetries":"3""#, #""maxRetries":1.5"#, #""retryInterval":-1"#,
                      #""retryInterval":1e12"#, #""keepaliveInterval":-1"#, #""keepaliveCountMax":2.5"#,
                      #""keepaliveCountMax":true"#, #""bindHost":5"#, #""targetHost":[]"#, #""autoStart":"yes""#] {
            #expect(error(validate(with: extra)) == invalid, "\(extra)")
        }
    }

    @Test func check4UnknownAndForbiddenHostsAnswerAlike() {
        let unknown = #"{"name":"99::0::e::8080::db::5432","sourceHostId":99,"tunnelIndex":0,"#
            + #""sourcePort":8080,"endpointHost":"db","endpointPort":5432}"#
        #expect(error(validate(unknown)) == denied)
        #expect(error(validate(unknown, user: TunnelFixture.admin)) == denied)
        let db = #"{"name":"2::0::db::8080::::80","sourceHostId":2,"tunnelIndex":0,"#
            + #""sourcePort":8080,"endpointHost":"","endpointPort":80}"#
        #expect(error(validate(db)) == denied)
        #expect(request(validate(db, user: TunnelFixture.admin))?.host.name == "db")
    }

    @Test func check5SourceFieldsMustMatchInventory() {
        #expect(request(validate(with: #""sourceIP":"192.0.2.10","sourceSSHPort":22,"sourceUsername":"pi""#)) != nil)
        #expect(request(validate(with: #""sourceSSHPort":"22""#)) != nil)
        #expect(error(validate(with: #""sourceIP":"192.0.2.11""#)) == hostMismatch)
        #expect(error(validate(with: #""sourceSSHPort":2222"#)) == hostMismatch)
        #expect(error(validate(with: #""sourceUsername":"root""#)) == hostMismatch)
        #expect(error(validate(with: #""sourceIP":1"#)) == hostMismatch)
    }

    @Test func credentialsInTheBodyAreIgnored() throws {
        let r = try #require(request(validate(with: #""sourcePassword":"x","sourceSSHKey":"k","endpointIP":"6.6.6.6","#
            + #""endpointSSHPort":2,"endpointUsername":"root","requestingUserId":"u-admin","sourceUserId":"u-admin""#)))
        #expect(r.host == TunnelFixture.config.host(id: 1))
    }

    @Test func remoteOnTheApplianceIsInvalid() {
        let body = #"{"name":"0::0::appliance::8080::::80","sourceHostId":0,"tunnelIndex":0,"#
            + #""sourcePort":8080,"endpointHost":"","endpointPort":80"#
        #expect(error(validate(body + "}", user: TunnelFixture.admin)) == invalid)
        #expect(error(validate(body + #","mode":"remote"}"#, user: TunnelFixture.admin)) == invalid)
        #expect(request(validate(body + #","mode":"local"}"#, user: TunnelFixture.admin))?.host.local == true)
        #expect(error(validate(body + #","mode":"local","sourceIP":"x"}"#, user: TunnelFixture.admin)) == hostMismatch)
    }

    @Test func bodyRoundTrips() throws {
        let r = try #require(request(validate(with: #""mode":"local","maxRetries":-1,"autoStart":true,"#
            + #""targetHost":"10.1.1.5","keepaliveCountMax":1"#)))
        let again = ConnectValidation.validate(body: Array(JSONWriter.write(r.body()).utf8),
                                               config: TunnelFixture.config, user: TunnelFixture.ops)
        #expect(request(again) == r)
    }

    @Test func tunnelNameBodies() {
        let required = APIError(status: 400, message: "Tunnel name required")
        for body in ["", "{}", "[]", "\"a::b\"", #"{"tunnelName":""}"#, #"{"tunnelName":5}"#, #"{"tunnelName":null}"#] {
            if case .failure(let e) = ConnectValidation.tunnelName(body: Array(body.utf8)) {
                #expect(e == required, "\(body)")
            } else {
                Issue.record("accepted \(body)")
            }
        }
        if case .failure(let e) = ConnectValidation.tunnelName(body: Array("nope".utf8)) {
            #expect(e == APIError(status: 400, message: "Invalid JSON body"))
        }
        if case .success(let name) = ConnectValidation.tunnelName(body: Array(#"{"tunnelName":"1::0::e::1::::2"}"#.utf8)) {
            #expect(name == "1::0::e::1::::2")
        } else {
            Issue.record("refused a good body")
        }
    }

    @Test func apiErrorBody() {
        #expect(APIError(status: 403, message: "Access denied to this host").body == #"{"error":"Access denied to this host"}"#)
    }
}

@Suite struct EndpointLookupTests {
    func lookup(_ endpoint: String, _ user: User) -> Int? {
        EndpointLookup.managedEndpoint(endpoint, config: TunnelFixture.config, user: user)?.id
    }

    @Test func loopbackAndEmptyArePlain() {
        for endpoint in ["", "127.0.0.1", "localhost"] { #expect(lookup(endpoint, TunnelFixture.admin) == nil) }
    }

    @Test func idThenNameThenIPThenUserAtIP() {
        #expect(lookup("2", TunnelFixture.admin) == 2)          // id beats the host named "2" listed earlier
        #expect(lookup("db", TunnelFixture.admin) == 4)         // admins may use every host: inventory order
        #expect(lookup("10.1.1.20", TunnelFixture.admin) == 2)
        #expect(lookup("admin@10.1.1.20", TunnelFixture.admin) == 2)
        #expect(lookup("edge", TunnelFixture.admin) == 1)
        #expect(lookup("pi@192.0.2.10", TunnelFixture.ops) == 1)
    }

    @Test func unusableHostsAreSkipped() {
        #expect(lookup("db", TunnelFixture.other) == 4)
        #expect(lookup("db", TunnelFixture.ops) == nil)
        #expect(lookup("2", TunnelFixture.ops) == nil)
        #expect(lookup("10.1.1.20", TunnelFixture.ops) == nil)
        #expect(lookup("1", TunnelFixture.other) == nil)
        #expect(lookup("10.9.9.9", TunnelFixture.ops) == nil)
    }

    @Test func plainAddressesAreNotHosts() {
        #expect(lookup("10.1.1.21", TunnelFixture.admin) == nil)
        #expect(lookup("02", TunnelFixture.admin) == nil)
        #expect(lookup("@", TunnelFixture.admin) == nil)
    }
}

/// String surgery on the flat base body (no Foundation here either).
fileprivate extension String {
    func replacingOccurrences(_ target: String, _ replacement: String) -> String {
        var out = ""
        var rest = Substring(self)
        while let range = rest.firstRange(of: target) {
            out += rest[..<range.lowerBound] + replacement
            rest = rest[range.upperBound...]
        }
        return out + rest
    }

    var members: [String] {
        var result: [String] = []
        var current = ""
        var inString = false
        for ch in self {
            if ch == "\"" { inString.toggle() }
            if ch == "," && !inString { result.append(current); current = ""; continue }
            current.append(ch)
        }
        result.append(current)
        return result
    }

    /// `member` is `"key":value`; replaces the member of the same key.
    func replacingFirstMember(named member: String) -> String {
        let key = String(member.prefix { $0 != ":" })
        return members.map { $0.hasPrefix(key + ":") ? member : $0 }.joined(separator: ",")
    }

    func removingMember(named key: String) -> String {
        members.filter { !$0.hasPrefix("\"\(key)\":") }.joined(separator: ",")
    }
}
