import Testing
@testable import Appliance

/// An in-memory file system: the loader's checks of referenced files run without touching the disk.
final class FakeFiles: FileAccess {
    var contents: [String: [UInt8]] = [:]
    var directories: Set<String> = []
    var unreadable: Set<String> = []

    init(_ files: [String: String] = [:], directories: Set<String> = []) {
        for (path, text) in files { contents[path] = Array(text.utf8) }
        self.directories = directories
    }

    func read(_ path: String, limit: Int) -> [UInt8]? {
        guard !unreadable.contains(path), let bytes = contents[path], bytes.count <= limit else { return nil }
        return bytes
    }

    func exists(_ path: String) -> Bool { contents[path] != nil || directories.contains(path) }
    func isDirectory(_ path: String) -> Bool { directories.contains(path) }
}

let edKeyLine = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ2kvyGlg6BKXq86Otgu8IrZX+7n6TgWeDSlvsDnb24u test"
let edFingerprint = "SHA256:6wc06wQoPTwrYNJrKUZMpy90paZUN+O8B7xkhIvpJGg"
let privateKey = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n"
let jwtSecret = String(repeating: "ab", count: 32)

/// The files the spec's example names, relative to /etc/sluice.
func exampleFiles() -> FakeFiles {
    FakeFiles(["/etc/sluice/keys/edge_ed25519": privateKey,
               "/etc/sluice/keys/edge.pass": "open sesame\n",
               "/etc/sluice/secrets/db.pass": "db-pw\r\n",
               "/var/lib/sluice/jwt_secret": jwtSecret + "\n"])
}

/// appliance.md §2's example, with a real host key line.
let exampleConfig = """
    {
      "listen": "127.0.0.1:30003",
      "stateDir": "/var/lib/sluice",
      "jwtSecretFile": "/var/lib/sluice/jwt_secret",
      "allowedOrigins": ["https://termix.example.org"],
      "sseKeepaliveSeconds": 30,
      "bindAllow": ["127.0.0.1", "::1"],
      "destinations": { "allow": ["10.0.0.0/8", "192.168.0.0/16:22-443", "db.lan:5432"], "deny": [] },
      "limits": { "bufferSize": 32768, "bufferCount": 1024, "maxTunnels": 256,
                  "maxConnectionsPerTunnel": 512, "maxRelays": 512, "buffersPerStream": 4 },
      "users": [ { "id": "u-admin", "username": "admin", "admin": true },
                 { "id": "u-ops", "username": "ops" } ],
      "hosts": [
        { "id": 0, "name": "appliance", "local": true, "owner": "u-admin" },
        { "id": 1, "name": "edge", "ip": "192.0.2.10", "port": 22, "username": "pi",
          "owner": "u-admin", "sharedWith": ["u-ops"],
          "auth": { "type": "key", "keyFile": "keys/edge_ed25519", "passphraseFile": "keys/edge.pass" },
          "hostKey": "\(edKeyLine)",
          "keepaliveInterval": 30000, "keepaliveCountMax": 3,
          "tunnels": [ { "mode": "local", "sourcePort": 8080, "endpointHost": "", "endpointPort": 80,
                         "bindHost": "127.0.0.1", "targetHost": "10.1.1.5",
                         "maxRetries": 3, "retryInterval": 10, "autoStart": true } ] },
        { "id": 2, "name": "db", "ip": "10.1.1.20", "port": 22, "username": "admin", "owner": "u-admin",
          "auth": { "type": "password", "passwordFile": "secrets/db.pass" } }
      ]
    }
    """

func parse(_ json: String, _ files: FakeFiles = FakeFiles(), baseDir: String = "/etc/sluice") -> Result<Config, ConfigErrors> {
    ConfigLoader.parse(Array(json.utf8), baseDir: baseDir, files: files)
}

/// Every problem as the check command prints it.
func problems(_ json: String, _ files: FakeFiles = FakeFiles()) -> [String] {
    if case .failure(let errors) = parse(json, files) { return errors.problems.map { $0.description } }
    return []
}

/// A configuration with one SSH host (id 1, owner u) whose members are `host`, and one user `u`.
func withHost(_ host: String) -> String {
    #"{"users":[{"id":"u","username":"u"}],"hosts":[{"id":1,"owner":"u","ip":"10.0.0.1","username":"pi","#
        + host + "}]}"
}

func withTunnel(_ tunnel: String, local: Bool = false) -> String {
    local ? #"{"users":[{"id":"u","username":"u"}],"hosts":[{"id":0,"local":true,"owner":"u","tunnels":["# + tunnel + "]}]}"
          : withHost(#""tunnels":["# + tunnel + "]")
}

@Suite struct ConfigExampleTests {
    @Test func specExampleIsValidAndFullyRead() throws {
        let config = try parse(exampleConfig, exampleFiles()).get()
        #expect(config.listen == "127.0.0.1:30003")
        #expect(config.stateDir == "/var/lib/sluice")
        #expect(config.jwtSecretFile == "/var/lib/sluice/jwt_secret")
        #expect(config.allowedOrigins == ["https://termix.example.org"])
        #expect(config.destinations.allow == ["10.0.0.0/8", "192.168.0.0/16:22-443", "db.lan:5432"])
        #expect(config.destinations.deny == [])
        #expect(config.users.map { $0.id } == ["u-admin", "u-ops"])
        #expect(config.user(id: "u-admin")?.admin == true)
        #expect(config.user(id: "u-ops")?.admin == false)
        #expect(config.hosts.count == 3)
        #expect(config.host(id: 0)?.local == true)
        let edge = try #require(config.host(id: 1))
        #expect(edge.sharedWith == ["u-ops"])
        #expect(edge.auth == .key(keyFile: "/etc/sluice/keys/edge_ed25519", passphrase: Secret("open sesame")))
        #expect(edge.hostKey == edKeyLine)
        let tunnel = try #require(edge.tunnels.first)
        #expect(tunnel.mode == .local && tunnel.sourcePort == 8080 && tunnel.endpointPort == 80)
        #expect(tunnel.targetHost == "10.1.1.5" && tunnel.retryIntervalSeconds == 10 && tunnel.autoStart)
        #expect(config.host(id: 2)?.auth == .password(Secret("db-pw")))
    }

    @Test func emptyObjectTakesTheModelDefaults() throws {
        let config = try parse("{}").get()
        #expect(config.listen == "127.0.0.1:30003")
        #expect(config.stateDir == "./.sluice-state")
        #expect(config.jwtSecretFile == nil)
        #expect(config.bindAllow == ["127.0.0.1", "::1"])
        #expect(config.destinations.allow == ["127.0.0.0/8", "::1"])
        #expect(config.limits == Limits())
        #expect(config.sseKeepaliveSeconds == 30)
        #expect(config.users.isEmpty && config.hosts.isEmpty)
    }

    @Test func hostAndTunnelDefaults() throws {
        let config = try parse(withHost(#""tunnels":[{"sourcePort":1080,"mode":"dynamic"}]"#)).get()
        let host = try #require(config.host(id: 1))
        #expect(host.port == 22 && host.auth == .none && host.hostKey == nil)
        #expect(host.keepaliveInterval == 30000 && host.keepaliveCountMax == 3)
        let t = try #require(host.tunnels.first)
        #expect(t.endpointPort == 0 && t.bindHost == "127.0.0.1" && t.maxRetries == 3)
        #expect(t.retryIntervalSeconds == 5 && !t.autoStart)
    }

    @Test func integersWrittenWithAFractionOfZeroCount() throws {
        #expect(try parse(withHost(#""port":2222.0"#)).get().host(id: 1)?.port == 2222)
        #expect(problems(withHost(#""port":22.5"#)) == ["hosts[0].port: must be an integer"])
    }

    @Test func everyProblemIsReportedAtOnce() {
        let json = """
            {"listenn": "x", "listen": "localhost:80", "sseKeepaliveSeconds": 0,
             "limits": {"bufferSize": 0, "maxTunnel": 1},
             "users": [{"id": "u", "username": ""}],
             "hosts": [{"id": 1, "owner": "u", "ip": "10.0.0.1", "username": "pi", "port": "22",
                        "auth": {"type": "key", "keyFile": "k"}},
                       {"id": 1, "owner": "x", "local": true}]}
            """
        #expect(problems(json) == [
            "listenn: unknown key",
            "listen: must be ADDR:PORT with a numeric IP address (IPv6 in brackets)",
            "sseKeepaliveSeconds: must be at least 1",
            "limits.maxTunnel: unknown key",
            "limits.bufferSize: must be at least 1",
            "users[0].username: must not be empty",
            "hosts[0].port: must be an integer",
            "hosts[0].auth.keyFile: file not found",
            "hosts[1].id: duplicate id 1",
            "hosts[1].owner: unknown user \"x\"",
        ])
    }
}

@Suite struct ConfigStructureTests {
    @Test func invalidJSONIsOneProblemWithItsPosition() throws {
        let result = problems("{\n  \"listen\": tru\n}")
        #expect(result == ["invalid JSON: invalid literal at line 2, column 13"])
        guard case .failure(let errors) = parse("[1,]") else { Issue.record("accepted"); return }
        #expect(errors.problems.count == 1 && errors.problems[0].path.isEmpty)
    }

    @Test func rootMustBeAnObject() {
        #expect(problems("[]") == ["the configuration must be a JSON object"])
    }

    @Test func unknownKeysAtEveryLevel() {
        let json = """
            {"x": 1, "destinations": {"allows": []}, "limits": {"bufferSiz": 1},
             "users": [{"id": "u", "username": "u", "role": "admin"}],
             "hosts": [{"id": 1, "owner": "u", "ip": "10.0.0.1", "username": "pi", "hostname": "h",
                        "auth": {"type": "none", "pass": "p"},
                        "tunnels": [{"sourcePort": 1, "endpointPort": 2, "tunnelType": "local"}]}],
             "a b": 1}
            """
        #expect(problems(json) == [
            "x: unknown key", "[\"a b\"]: unknown key", "destinations.allows: unknown key",
            "limits.bufferSiz: unknown key", "users[0].role: unknown key", "hosts[0].hostname: unknown key",
            "hosts[0].auth.pass: unknown key", "hosts[0].tunnels[0].tunnelType: unknown key",
        ])
    }

    @Test func wrongTypesNameTheExpectedOne() {
        let json = """
            {"listen": 30003, "stateDir": [], "allowedOrigins": "https://a", "bindAllow": [1],
             "destinations": [], "limits": {"maxRelays": "5"}, "users": {}, "hosts": [
               {"id": "1", "owner": "u", "local": "yes"}, 7]}
            """
        #expect(problems(json) == [
            "listen: must be a string", "stateDir: must be a string", "allowedOrigins: must be an array",
            "bindAllow[0]: must be a string", "destinations: must be an object", "limits.maxRelays: must be an integer",
            "users: must be an array", "hosts[0].id: must be an integer", "hosts[0].owner: unknown user \"u\"",
            "hosts[0].local: must be a boolean", "hosts[0].ip: is required for a non-local host",
            "hosts[0].username: is required for a non-local host", "hosts[1]: must be an object",
        ])
    }

    @Test func nullIsNotAnAbsentValue() {
        #expect(problems(#"{"stateDir": null}"#) == ["stateDir: must be a string"])
    }

    @Test func pathsQuoteKeysThatAreNotIdentifiers() {
        #expect(ConfigPath.member("", "listen") == "listen")
        #expect(ConfigPath.member("hosts[1]", "auth") == "hosts[1].auth")
        #expect(ConfigPath.member("limits", "a.b") == "limits[\"a.b\"]")
        #expect(ConfigPath.member("", "\n\"") == "[\"\\n\\\"\"]")
        #expect(ConfigPath.index("hosts", 3) == "hosts[3]")
    }
}

@Suite struct ConfigTopLevelTests {
    @Test func listenTakesNumericAddressesOnly() throws {
        #expect(try parse(#"{"listen": "[::1]:8080"}"#).get().listen == "[::1]:8080")
        #expect(try parse(#"{"listen": "0.0.0.0:0"}"#).get().listen == "0.0.0.0:0")
        for bad in ["localhost:30003", "127.0.0.1", "::1:80", "127.0.0.1:65536", ""] {
            #expect(problems(#"{"listen": "\#(bad)"}"#).first?.hasPrefix("listen: must be ADDR:PORT") == true, "\(bad)")
        }
    }

    @Test func stateDirResolvesAgainstTheConfigFolder() throws {
        #expect(try parse(#"{"stateDir": "state"}"#).get().stateDir == "/etc/sluice/state")
        #expect(try parse(#"{"stateDir": "./a//b/"}"#).get().stateDir == "/etc/sluice/a/b")
        #expect(try parse(#"{"stateDir": "/var/lib/sluice"}"#).get().stateDir == "/var/lib/sluice")
        #expect(problems(#"{"stateDir": ""}"#) == ["stateDir: must not be empty"])
    }

    @Test func jwtSecretFileMustHoldSixtyFourCharacters() throws {
        let files = FakeFiles(["/etc/sluice/ok": jwtSecret + "\r\n", "/etc/sluice/short": "hunter2-is-short\n",
                               "/etc/sluice/63": String(jwtSecret.dropLast()) + "\n"],
                              directories: ["/etc/sluice/dir"])
        #expect(try parse(#"{"jwtSecretFile": "ok"}"#, files).get().jwtSecretFile == "/etc/sluice/ok")
        let short = problems(#"{"jwtSecretFile": "short"}"#, files)
        #expect(short == ["jwtSecretFile: must hold at least 64 characters"])
        #expect(!short.joined().contains("hunter2"))
        #expect(problems(#"{"jwtSecretFile": "63"}"#, files) == ["jwtSecretFile: must hold at least 64 characters"])
        #expect(problems(#"{"jwtSecretFile": "missing"}"#, files) == ["jwtSecretFile: file not found"])
        #expect(problems(#"{"jwtSecretFile": "dir"}"#, files) == ["jwtSecretFile: is a directory, not a file"])
        files.unreadable.insert("/etc/sluice/ok")
        #expect(problems(#"{"jwtSecretFile": "ok"}"#, files).first?.hasPrefix("jwtSecretFile: cannot be read") == true)
    }

    @Test func allowedOrigins() throws {
        let good = ["https://termix.example.org", "http://localhost:3000", "http://192.168.1.5:8080",
                    "https://[fd00::1]:8443", "http://[::1]"]
        let list = good.map { "\"\($0)\"" }.joined(separator: ",")
        #expect(try parse(#"{"allowedOrigins": [\#(list)]}"#).get().allowedOrigins == good)
        for bad in ["termix.example.org", "ftp://a.b", "https://a.b/", "https://a.b:0", "https://", "HTTPS://a.b",
                    "https://a.b:99999", "https://[1.2.3.4]", "https://a_b.c", "https://a.b:80/x", "*"] {
            #expect(problems(#"{"allowedOrigins": ["\#(bad)"]}"#)
                    == ["allowedOrigins[0]: must be scheme://host[:port] with scheme http or https, without a path"],
                    "\(bad)")
        }
    }

    @Test func serverNames() throws {
        #expect(try parse(#"{"serverNames": ["sluice.lan", "pi-4.example.org"]}"#).get().serverNames
                == ["sluice.lan", "pi-4.example.org"])
        #expect(try parse("{}").get().serverNames == [])
        #expect(problems(#"{"serverNames": ["sluice.lan:30003", "http://a.b", "*", 7]}"#) == [
            "serverNames[3]: must be a string",
            "serverNames[0]: must be a host name (no scheme, no port)",
            "serverNames[1]: must be a host name (no scheme, no port)",
            "serverNames[2]: must be a host name (no scheme, no port)",
        ])
        #expect(problems(#"{"serverNames": "sluice.lan"}"#) == ["serverNames: must be an array"])
    }

    @Test func bindAllowTakesIPLiterals() throws {
        #expect(try parse(#"{"bindAllow": ["0.0.0.0", "::", "192.168.1.2"]}"#).get().bindAllow
                == ["0.0.0.0", "::", "192.168.1.2"])
        #expect(try parse(#"{"bindAllow": []}"#).get().bindAllow == [])
        #expect(problems(#"{"bindAllow": ["localhost", "[::1]", "127.0.0.1:80"]}"#) == [
            "bindAllow[0]: must be an IP address (no brackets, no port)",
            "bindAllow[1]: must be an IP address (no brackets, no port)",
            "bindAllow[2]: must be an IP address (no brackets, no port)",
        ])
    }

    @Test func limitsArePositiveAndBounded() throws {
        let config = try parse(#"{"limits": {"bufferSize": 65536, "buffersPerStream": 8}}"#).get()
        #expect(config.limits.bufferSize == 65536)   // buffersPerStream: accepted, no effect (issue #16)
        #expect(problems(#"{"limits": {"buffersPerStream": 0}}"#) == ["limits.buffersPerStream: must be at least 1"])
        #expect(config.limits.bufferCount == 1024)
        #expect(problems(#"{"limits": {"bufferCount": -1, "maxTunnels": 0, "maxRelays": 1e12}}"#) == [
            "limits.bufferCount: must be at least 1", "limits.maxTunnels: must be at least 1",
            "limits.maxRelays: must be at most 2147483647",
        ])
        #expect(config.limits.receiveWindowBudget == 64 << 20)
        #expect(try parse(#"{"limits": {"receiveWindowBudget": 0}}"#).get().limits.receiveWindowBudget == 0)
        #expect(problems(#"{"limits": {"receiveWindowBudget": -1}}"#) == ["limits.receiveWindowBudget: must be at least 0"])
    }
}

@Suite struct DestinationTests {
    @Test(arguments: ["10.0.0.0/8", "192.168.0.0/16:22-443", "db.lan:5432", "::1", "fd00::/8", "[fd00::/8]:22-443",
                      "[::1]:22", "127.0.0.1", "0.0.0.0/0", "::/0", "example.org:1-65535", "localhost", "10.1.2.3:80"])
    func acceptsEntries(_ text: String) {
        #expect((try? DestinationEntry.parse(text).get()) != nil, "\(text)")
    }

    @Test func parsesStructure() throws {
        let net = try DestinationEntry.parse("[fd00::/8]:22-443").get()
        #expect(net.target == .address("fd00::", prefix: 8, ipv6: true))
        #expect(net.ports == 22...443)
        let name = try DestinationEntry.parse("db.lan:5432").get()
        #expect(name.target == .hostName("db.lan") && name.ports == 5432...5432)
        let any = try DestinationEntry.parse("10.0.0.0/8").get()
        #expect(any.target == .address("10.0.0.0", prefix: 8, ipv6: false) && any.ports == nil)
    }

    @Test func rejectsEntriesWithAReason() {
        let cases: [(String, String)] = [
            ("", "must not be empty"),
            ("10.0.0.0/33", "prefix length must be from 0 to 32"),
            ("fd00::/129", "prefix length must be from 0 to 128"),
            ("10.0.0.0/", "prefix length must be from 0 to 32"),
            ("10.0.0.0/08", "prefix length must be from 0 to 32"),
            ("db.lan/8", "a network must be IP/prefix-length (like 10.0.0.0/8)"),
            ("10.0.0.1:0", "port must be from 1 to 65535, or a range low-high with low <= high"),
            ("10.0.0.1:65536", "port must be from 1 to 65535, or a range low-high with low <= high"),
            ("10.0.0.1:443-22", "port must be from 1 to 65535, or a range low-high with low <= high"),
            ("10.0.0.1:", "port must be from 1 to 65535, or a range low-high with low <= high"),
            ("10.0.0.1:ssh", "port must be from 1 to 65535, or a range low-high with low <= high"),
            ("[10.0.0.1]:22", "brackets are only for IPv6 addresses"),
            ("[db.lan]:22", "brackets are only for IPv6 addresses"),
            ("10.0.0.300", DestinationEntry.shape),
            ("bad_host", DestinationEntry.shape),
            ("fd00::1::2", DestinationEntry.shape),
            ("[::1]22", DestinationEntry.shape),
            ("[::1", DestinationEntry.shape),
            ("-a.b", DestinationEntry.shape),
        ]
        for (text, message) in cases {
            guard case .failure(let error) = DestinationEntry.parse(text) else {
                Issue.record("accepted \(text)")
                continue
            }
            #expect(error.message == message, "\(text)")
        }
    }

    @Test func configReportsEachBadEntry() throws {
        let json = #"{"destinations": {"allow": ["10.0.0.0/8", "10.0.0.0/40", 5], "deny": ["a..b"]}}"#
        #expect(problems(json) == [
            "destinations.allow[2]: must be a string",
            "destinations.allow[1]: prefix length must be from 0 to 32",
            "destinations.deny[0]: " + DestinationEntry.shape,
        ])
        let config = try parse(#"{"destinations": {"deny": ["10.9.0.0/16"]}}"#).get()
        #expect(config.destinations.allow == ["127.0.0.0/8", "::1"])
        #expect(config.destinations.deny == ["10.9.0.0/16"])
    }
}

@Suite struct UserAndHostTests {
    @Test func users() throws {
        let hash = "pbkdf2-sha256$1000$c2FsdHNhbHQ=$AAAAAAAAAAAAAAAAAAAAAA=="
        let config = try parse(#"{"users": [{"id": "a", "username": "alice", "admin": true, "passwordHash": ""#
                               + hash + #""}]}"#).get()
        #expect(config.users == [User(id: "a", username: "alice", admin: true, passwordHash: Secret(hash))])
        #expect(problems(#"{"users": [{"id": "a", "username": "alice", "passwordHash": "h"}]}"#)
                == ["users[0].passwordHash: must be a hash made by `sluice hash-password` (pbkdf2-sha256$…)"])
        #expect(problems(#"{"users": [{"username": "x"}, {"id": "", "username": "y"}, {"id": "a", "username": "z"}, {"id": "a", "username": "w", "admin": 1}]}"#) == [
            "users[0].id: is required", "users[1].id: must not be empty", "users[3].admin: must be a boolean",
            "users[3].id: duplicate id \"a\"",
        ])
    }

    @Test func hostIdsAreUniqueNonNegativeIntegers() {
        let json = #"{"users":[{"id":"u","username":"u"}],"hosts":[{"id":-1,"owner":"u","local":true},{"owner":"u","local":true},{"id":3,"owner":"u","local":true},{"id":3,"owner":"u","local":true}]}"#
        #expect(problems(json) == ["hosts[0].id: must be at least 0", "hosts[1].id: is required", "hosts[3].id: duplicate id 3"])
    }

    @Test func ownerAndSharedWithMustBeKnownUsers() throws {
        #expect(problems(withHost(#""sharedWith":["u","ghost",4]"#)) == [
            "hosts[0].sharedWith[2]: must be a string", "hosts[0].sharedWith[1]: unknown user \"ghost\"",
        ])
        let missingOwner = #"{"hosts":[{"id":0,"local":true}]}"#
        #expect(problems(missingOwner) == ["hosts[0].owner: is required"])
    }

    @Test func sshHostNeedsAddressAndUser() throws {
        let json = #"{"users":[{"id":"u","username":"u"}],"hosts":[{"id":1,"owner":"u"}]}"#
        #expect(problems(json) == ["hosts[0].ip: is required for a non-local host",
                                   "hosts[0].username: is required for a non-local host"])
        #expect(try parse(withHost(#""name":"x""#)).get().host(id: 1)?.ip == "10.0.0.1")
        // issue #23: a DNS name is accepted without being resolved (RFC 1123, single label, trailing dot, A-labels)
        func host(_ ip: String) -> String {
            #"{"users":[{"id":"u","username":"u"}],"hosts":[{"id":1,"owner":"u","ip":""# + ip + #"","username":"pi"}]}"#
        }
        for name in ["edge.lan", "localhost", "sshd", "sshd.example.org.", "xn--bcher-kva.example", "2001:db8::1", "a-1.b"] {
            #expect(problems(host(name)) == [], "\(name)")
            #expect(try parse(host(name)).get().host(id: 1)?.ip == name)
        }
        for bad in ["bücher.example", "-edge.lan", "edge..lan", ".", "edge.lan..", "1.2.3", "edge_lan", "a.123"] {
            #expect(problems(host(bad)) == ["hosts[0].ip: must be an IP address or a host name"], "\(bad)")
        }
        let bad = #"{"users":[{"id":"u","username":"u"}],"hosts":[{"id":1,"owner":"u","ip":"10.0.0.1:22","username":""}]}"#
        #expect(problems(bad) == ["hosts[0].ip: must be an IP address or a host name", "hosts[0].username: must not be empty"])
    }

    @Test func portRange() {
        #expect(problems(withHost(#""port":0"#)) == ["hosts[0].port: must be from 1 to 65535"])
        #expect(problems(withHost(#""port":65536"#)) == ["hosts[0].port: must be from 1 to 65535"])
        #expect(problems(withHost(#""keepaliveInterval":-1,"keepaliveCountMax":-1"#)) == [
            "hosts[0].keepaliveInterval: must be at least 0", "hosts[0].keepaliveCountMax: must be at least 0",
        ])
    }

    @Test func localHostTakesNoSSHSettings() {
        let json = #"{"users":[{"id":"u","username":"u"}],"hosts":[{"id":0,"local":true,"owner":"u","ip":"1.2.3.4","port":22,"username":"pi","auth":{"type":"none"},"hostKey":"x"}]}"#
        #expect(problems(json) == [
            "hosts[0].auth: not allowed on a local host", "hosts[0].ip: not allowed on a local host",
            "hosts[0].port: not allowed on a local host", "hosts[0].username: not allowed on a local host",
            "hosts[0].hostKey: not allowed on a local host",
        ])
    }

    @Test func hostKeyPins() throws {
        #expect(try parse(withHost(#""hostKey":"\#(edKeyLine)""#)).get().host(id: 1)?.hostKey == edKeyLine)
        #expect(try parse(withHost(#""hostKey":"\#(edFingerprint)""#)).get().host(id: 1)?.hostKey == edFingerprint)
        let noComment = String(edKeyLine.dropLast(5))
        #expect((try? parse(withHost(#""hostKey":"\#(noComment)""#)).get()) != nil)
        let blob = "AAAAC3NzaC1lZDI1NTE5AAAAIJ2kvyGlg6BKXq86Otgu8IrZX+7n6TgWeDSlvsDnb24u"
        let cases: [(String, String)] = [
            ("ssh-dss AAAA", "unknown key type (expected ssh-ed25519, ecdsa-sha2-nistp256/384/521 or ssh-rsa)"),
            ("ssh-rsa " + blob, "the key data does not hold a ssh-rsa key"),
            ("ssh-ed25519 AAAA*bad", "the key is not valid base64"),
            ("ssh-ed25519 " + String(blob.dropLast()), "the key is not valid base64"),
            (blob, "must be an OpenSSH public-key line (type base64 [comment]) or a SHA256: fingerprint"),
            ("", "must be an OpenSSH public-key line (type base64 [comment]) or a SHA256: fingerprint"),
            ("SHA256:abc", "must be SHA256: followed by 43 base64 characters"),
            (String(edFingerprint.dropLast()) + "h", "must be SHA256: followed by 43 base64 characters"),
            (edFingerprint + "=", "must be SHA256: followed by 43 base64 characters"),
        ]
        for (pin, message) in cases {
            #expect(problems(withHost(#""hostKey":"\#(pin)""#)) == ["hosts[0].hostKey: " + message], "\(pin)")
        }
    }
}

@Suite struct AuthTests {
    let files = FakeFiles(["/etc/sluice/id": privateKey, "/etc/sluice/id.pub": edKeyLine + "\n",
                           "/etc/sluice/pw": "s3cret\n\n", "/etc/sluice/crlf": "pp\r\n", "/etc/sluice/empty": "\n"],
                          directories: ["/etc/sluice/keys"])

    func auth(_ body: String) -> Result<Config, ConfigErrors> { parse(withHost(#""auth":\#(body)"#), files) }
    func authProblems(_ body: String) -> [String] { problems(withHost(#""auth":\#(body)"#), files) }

    @Test func passwordInlineOrFile() throws {
        #expect(try auth(#"{"type":"password","password":"pw"}"#).get().host(id: 1)?.auth == .password(Secret("pw")))
        // Only one trailing newline goes.
        #expect(try auth(#"{"type":"password","passwordFile":"pw"}"#).get().host(id: 1)?.auth == .password(Secret("s3cret\n")))
        #expect(try auth(#"{"type":"password","passwordFile":"/etc/sluice/crlf"}"#).get().host(id: 1)?.auth
                == .password(Secret("pp")))
        #expect(authProblems(#"{"type":"password"}"#) == ["hosts[0].auth: needs password or passwordFile"])
        #expect(authProblems(#"{"type":"password","password":"x","passwordFile":"pw"}"#)
                == ["hosts[0].auth.passwordFile: give password or passwordFile, not both"])
        #expect(authProblems(#"{"type":"password","passwordFile":"nope"}"#) == ["hosts[0].auth.passwordFile: file not found"])
        #expect(authProblems(#"{"type":"password","passwordFile":"empty"}"#) == ["hosts[0].auth.passwordFile: file is empty"])
        #expect(authProblems(#"{"type":"password","password":""}"#) == ["hosts[0].auth.password: must not be empty"])
    }

    @Test func keyWithOptionalPassphrase() throws {
        #expect(try auth(#"{"type":"key","keyFile":"id"}"#).get().host(id: 1)?.auth
                == .key(keyFile: "/etc/sluice/id", passphrase: nil))
        #expect(try auth(#"{"type":"key","keyFile":"./id","passphrase":"pp"}"#).get().host(id: 1)?.auth
                == .key(keyFile: "/etc/sluice/id", passphrase: Secret("pp")))
        #expect(try auth(#"{"type":"key","keyFile":"id","passphraseFile":"crlf"}"#).get().host(id: 1)?.auth
                == .key(keyFile: "/etc/sluice/id", passphrase: Secret("pp")))
        #expect(authProblems(#"{"type":"key"}"#) == ["hosts[0].auth.keyFile: is required"])
        #expect(authProblems(#"{"type":"key","keyFile":"missing"}"#) == ["hosts[0].auth.keyFile: file not found"])
        #expect(authProblems(#"{"type":"key","keyFile":"keys"}"#) == ["hosts[0].auth.keyFile: is a directory, not a file"])
        #expect(authProblems(#"{"type":"key","keyFile":"id.pub"}"#)
                == ["hosts[0].auth.keyFile: is not a private key (expected an OpenSSH or PEM private key)"])
        #expect(authProblems(#"{"type":"key","keyFile":"id","passphrase":"a","passphraseFile":"pw"}"#)
                == ["hosts[0].auth.passphraseFile: give passphrase or passphraseFile, not both"])
    }

    @Test func fieldsOfOtherTypesAreRefused() {
        #expect(authProblems(#"{"type":"none","password":"x"}"#) == ["hosts[0].auth.password: not allowed with type none"])
        #expect(authProblems(#"{"type":"key","keyFile":"id","password":"x"}"#)
                == ["hosts[0].auth.password: not allowed with type key"])
        #expect(authProblems(#"{"type":"password","password":"x","keyFile":"id","passphrase":"y"}"#) == [
            "hosts[0].auth.keyFile: not allowed with type password", "hosts[0].auth.passphrase: not allowed with type password",
        ])
        #expect(authProblems(#"{"type":"publickey"}"#) == ["hosts[0].auth.type: must be password, key or none"])
        #expect(authProblems(#"{"password":"x"}"#) == ["hosts[0].auth.type: is required"])
        #expect(authProblems(#""key""#) == ["hosts[0].auth: must be an object"])
    }

    @Test func secretsNeverAppearInProblems() {
        let all = authProblems(#"{"type":"password","password":"hunter2","passwordFile":"pw","keyFile":"id"}"#)
            + authProblems(#"{"type":"none","password":"hunter2","passphrase":"hunter2"}"#)
        #expect(!all.isEmpty)
        #expect(!all.joined().contains("hunter2") && !all.joined().contains("s3cret"))
        #expect("\(Secret("hunter2"))" == "<redacted>")
    }
}

@Suite struct TunnelTests {
    func tunnel(_ body: String, local: Bool = false) -> TunnelConfig? {
        let config = try? parse(withTunnel(body, local: local)).get()
        return config?.hosts.first?.tunnels.first
    }

    @Test func readsEveryField() throws {
        let t = try #require(tunnel(#"{"mode":"remote","sourcePort":9000,"endpointHost":"db","endpointPort":5432,"bindHost":"0.0.0.0","targetHost":"localhost","maxRetries":-1,"retryInterval":0,"autoStart":false}"#))
        #expect(t.mode == .remote && t.sourcePort == 9000 && t.endpointHost == "db" && t.endpointPort == 5432)
        #expect(t.bindHost == "0.0.0.0" && t.targetHost == "localhost" && t.maxRetries == -1)
        #expect(t.retryIntervalSeconds == 0 && !t.autoStart)
    }

    @Test func modeAndPorts() {
        func p(_ body: String, local: Bool = false) -> [String] { problems(withTunnel(body, local: local)) }
        #expect(p(#"{"mode":"socks","sourcePort":1,"endpointPort":1}"#) == ["hosts[0].tunnels[0].mode: must be local, remote or dynamic"])
        #expect(p(#"{"endpointPort":1}"#) == ["hosts[0].tunnels[0].sourcePort: is required"])
        #expect(p(#"{"sourcePort":1}"#) == ["hosts[0].tunnels[0].endpointPort: is required"])
        #expect(p(#"{"sourcePort":70000,"endpointPort":-1}"#) == [
            "hosts[0].tunnels[0].sourcePort: must be from 1 to 65535", "hosts[0].tunnels[0].endpointPort: must be from 0 to 65535",
        ])
        #expect(p(#"{"sourcePort":1,"endpointPort":0}"#)
                == ["hosts[0].tunnels[0].endpointPort: must be from 1 to 65535 (0 only for dynamic tunnels)"])
        #expect(p(#"{"mode":"dynamic","sourcePort":1080,"endpointPort":0}"#) == [])
        #expect(p(#"{"sourcePort":1,"endpointPort":2,"maxRetries":-2,"retryInterval":-1,"autoStart":"yes"}"#) == [
            "hosts[0].tunnels[0].maxRetries: must be at least -1", "hosts[0].tunnels[0].retryInterval: must be at least 0",
            "hosts[0].tunnels[0].autoStart: must be a boolean",
        ])
        #expect(p(#"{"sourcePort":1,"endpointPort":2,"bindHost":"","targetHost":"a b"}"#) == [
            "hosts[0].tunnels[0].bindHost: must not be empty", "hosts[0].tunnels[0].targetHost: must be an IP address or a host name",
        ])
        #expect(p("7") == ["hosts[0].tunnels[0]: must be an object"])
    }

    @Test func remoteIsImpossibleOnTheAppliance() {
        #expect(problems(withTunnel(#"{"mode":"remote","sourcePort":1,"endpointPort":2}"#, local: true))
                == ["hosts[0].tunnels[0].mode: remote tunnels are not possible on a local host"])
        #expect(tunnel(#"{"mode":"local","sourcePort":1,"endpointPort":2,"targetHost":"10.0.0.5"}"#, local: true) != nil)
    }
}

@Suite struct ConfigFileTests {
    @Test func pathResolution() {
        #expect(ConfigFiles.resolve("keys/a", against: "/etc/sluice") == "/etc/sluice/keys/a")
        #expect(ConfigFiles.resolve("./a", against: "/etc/sluice/") == "/etc/sluice/a")
        #expect(ConfigFiles.resolve("/abs//x", against: "/etc/sluice") == "/abs//x")
        #expect(ConfigFiles.resolve("a", against: "/") == "/a")
        #expect(ConfigFiles.resolve(".", against: "/") == "/")
        #expect(ConfigFiles.folder(of: "/etc/sluice/sluice.json") == "/etc/sluice")
        #expect(ConfigFiles.folder(of: "/sluice.json") == "/")
        #expect(ConfigFiles.folder(of: "sluice.json") == ".")
    }

    @Test func loadReadsTheFileAndResolvesAgainstItsFolder() throws {
        let files = exampleFiles()
        files.contents["/etc/sluice/sluice.json"] = Array(exampleConfig.utf8)
        let config = try ConfigLoader.load(path: "/etc/sluice/sluice.json", files: files).get()
        #expect(config.sourcePath == "/etc/sluice/sluice.json")
        #expect(config.host(id: 2)?.auth == .password(Secret("db-pw")))
    }

    @Test func loadReportsAnUnusableFile() {
        let files = FakeFiles(["/big.json": String(repeating: " ", count: 1024 * 1024 + 1) + "{}"],
                              directories: ["/etc"])
        func problem(_ path: String) -> String? {
            if case .failure(let e) = ConfigLoader.load(path: path, files: files) { return e.problems.first?.description }
            return nil
        }
        #expect(problem("/nope.json") == "configuration file /nope.json not found")
        #expect(problem("/etc") == "configuration file /etc is a directory")
        #expect(problem("/big.json")?.hasPrefix("configuration file /big.json cannot be read") == true)
    }

    @Test func lookupOrder() {
        let none = FakeFiles()
        let system = FakeFiles([ConfigLoader.systemPath: "{}"])
        #expect(ConfigLoader.resolvePath(flag: "a.json", env: "b.json", files: system) == "a.json")
        #expect(ConfigLoader.resolvePath(flag: nil, env: "b.json", files: system) == "b.json")
        #expect(ConfigLoader.resolvePath(flag: nil, env: "", files: system) == "/etc/sluice/sluice.json")
        #expect(ConfigLoader.resolvePath(flag: nil, env: nil, files: system) == "/etc/sluice/sluice.json")
        #expect(ConfigLoader.resolvePath(flag: nil, env: nil, files: none) == nil)
    }

    @Test func embeddedDefault() throws {
        let config = ConfigLoader.embeddedDefault(stateEnv: nil)
        #expect(config.listen == "127.0.0.1:30003" && config.stateDir == "./.sluice-state")
        #expect(config.users == [User(id: "admin", username: "admin", admin: true)])
        let host = try #require(config.host(id: 0))
        #expect(host.local && host.name == "appliance" && host.owner == "admin" && host.tunnels.isEmpty)
        #expect(config.sourcePath == nil && config.jwtSecretFile == nil)
        #expect(ConfigLoader.embeddedDefault(stateEnv: "/var/lib/sluice").stateDir == "/var/lib/sluice")
    }

    @Test func checkCommandRefusesBadArguments() {
        #expect(CheckCommand.run(["--verbose"]) == 1)
        #expect(CheckCommand.run(["--config"]) == 1)
        #expect(CheckCommand.run(["--config", "/nonexistent/sluice.json"]) == 1)
    }

    @Test func realFileAccess() {
        let files = RealFileAccess()
        #expect(files.isDirectory("/") && files.exists("/"))
        #expect(!files.exists("/nonexistent/x") && files.read("/nonexistent/x", limit: 10) == nil)
        #expect(files.read("/", limit: 10) == nil)
        let hosts = files.read("/proc/self/cmdline", limit: 1 << 20)
        #expect(hosts != nil && hosts?.isEmpty == false)
        #expect(files.read("/proc/self/cmdline", limit: 1) == nil)
    }
}
