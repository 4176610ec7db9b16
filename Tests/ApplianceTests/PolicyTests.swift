import Testing
@testable import Appliance

@Suite struct DestinationPolicyTests {
    static func policy(_ allow: [String], deny: [String] = []) -> DestinationPolicy {
        var d = Destinations()
        d.allow = allow
        d.deny = deny
        return DestinationPolicy(d)
    }

    @Test func defaultsAllowLoopbackOnly() {
        let p = DestinationPolicy(Destinations())
        #expect(p.allows(address: "127.0.0.1", port: 22))
        #expect(p.allows(address: "127.9.8.7", port: 65535))
        #expect(p.allows(address: "::1", port: 80))
        #expect(p.allows(address: "::ffff:127.0.0.1", port: 80))      // mapped counts as IPv4
        #expect(!p.allows(address: "169.254.169.254", port: 80))
        #expect(!p.allows(address: "::ffff:169.254.169.254", port: 80))
        #expect(!p.allows(address: "10.0.0.1", port: 22))
        #expect(!p.allows(address: "::2", port: 22))
        #expect(!p.allows(address: "not-an-ip", port: 22))
    }

    @Test func cidrPortsAndDenyWins() {
        let p = Self.policy(["10.0.0.0/8", "192.168.0.0/16:22-443", "[fd00::/8]:22-443", "0.0.0.0/0:8443"],
                            deny: ["169.254.0.0/16", "10.9.0.0/16:22", "fd00::bad"])
        #expect(p.allows(address: "10.1.2.3", port: 1))
        #expect(p.allows(address: "::ffff:10.1.2.3", port: 1))
        #expect(!p.allows(address: "10.9.1.1", port: 22))              // deny with a port
        #expect(p.allows(address: "10.9.1.1", port: 23))
        #expect(p.allows(address: "192.168.5.5", port: 22))
        #expect(p.allows(address: "192.168.5.5", port: 443))
        #expect(!p.allows(address: "192.168.5.5", port: 444))
        #expect(!p.allows(address: "192.168.5.5", port: 21))
        #expect(p.allows(address: "fd12:3456::1", port: 22))
        #expect(!p.allows(address: "fd12:3456::1", port: 8080))
        #expect(!p.allows(address: "fe80::1", port: 22))
        #expect(!p.allows(address: "fd00::bad", port: 22))              // denied exactly
        #expect(p.allows(address: "8.8.8.8", port: 8443))
        #expect(!p.allows(address: "169.254.169.254", port: 8443))      // deny wins over 0.0.0.0/0
        #expect(!p.allows(address: "::ffff:169.254.169.254", port: 8443))
    }

    @Test func mappedNetworkEntries() {
        let p = Self.policy(["::ffff:10.0.0.0/104"])
        #expect(p.allows(address: "10.200.0.1", port: 80))
        #expect(!p.allows(address: "11.0.0.1", port: 80))
    }

    @Test func hostNames() {
        let p = Self.policy(["db.lan:5432", "127.0.0.0/8"], deny: ["evil.example", "192.168.66.0/24"])
        #expect(p.allows(host: "db.lan", address: "192.168.1.9", port: 5432))
        #expect(p.allows(host: "DB.Lan.", address: "192.168.1.9", port: 5432))
        #expect(!p.allows(host: "db.lan", address: "192.168.1.9", port: 5433))
        #expect(!p.allows(host: "192.168.1.9", address: "192.168.1.9", port: 5432))   // entries are not resolved
        #expect(!p.allows(host: "db.lan", address: "192.168.66.1", port: 5432))      // resolved address checked again
        #expect(!p.allows(host: "evil.example", address: "127.0.0.1", port: 80))
        #expect(p.allows(host: "localhost", address: "127.0.0.1", port: 80))
    }

    @Test func refusalText() {
        #expect(DestinationPolicy.refusal(host: "10.0.0.1", port: 22) == "Destination not allowed: 10.0.0.1:22")
        #expect(DestinationPolicy.refusal(host: "fd00::1", port: 22) == "Destination not allowed: [fd00::1]:22")
        #expect(DestinationPolicy.refusal(host: "db.lan", port: 5432) == "Destination not allowed: db.lan:5432")
    }
}

@Suite struct BindPolicyTests {
    @Test func exactAddressesOnly() {
        let allow = ["127.0.0.1", "::1"]
        #expect(BindPolicy.allows("127.0.0.1", bindAllow: allow))
        #expect(BindPolicy.allows("::1", bindAllow: allow))
        #expect(BindPolicy.allows("0:0::0001", bindAllow: allow))            // normalised
        #expect(!BindPolicy.allows("127.0.0.2", bindAllow: allow))
        #expect(!BindPolicy.allows("0.0.0.0", bindAllow: allow))
        #expect(!BindPolicy.allows("::", bindAllow: allow))
        #expect(!BindPolicy.allows("localhost", bindAllow: allow))
        #expect(!BindPolicy.allows("", bindAllow: allow))
        #expect(BindPolicy.allows("0.0.0.0", bindAllow: allow + ["0.0.0.0"]))
        #expect(!BindPolicy.allows("::", bindAllow: allow + ["0.0.0.0"]))
        #expect(BindPolicy.refusal("0.0.0.0") == "Bind address not allowed: 0.0.0.0")
    }
}

/// Issue #15: with allow 0.0.0.0/0 and a deny of loopback, `0.0.0.0`, `0` (resolved to 0.0.0.0) and `::` reached a
/// service listening on 127.0.0.1, because Linux connects to the unspecified address as loopback.
@Suite struct DestinationPolicyBypassTests {
    @Test func unspecifiedAddressesAreJudgedAsLoopback() {
        let p = DestinationPolicyTests.policy(["0.0.0.0/0", "::/0"], deny: ["127.0.0.0/8", "::1"])
        #expect(!p.allows(address: "127.0.0.1", port: 80))
        #expect(!p.allows(address: "0.0.0.0", port: 80))
        #expect(!p.allows(host: "0", address: "0.0.0.0", port: 80))
        #expect(!p.allows(host: "127.1", address: "127.0.0.1", port: 80))
        #expect(!p.allows(address: "::", port: 80))
        #expect(!p.allows(address: "::ffff:0.0.0.0", port: 80))
        #expect(!p.allows(address: "::ffff:127.0.0.1", port: 80))
        #expect(p.allows(address: "10.0.0.1", port: 80))
        #expect(p.allows(address: "2001:db8::1", port: 80))
    }

    @Test func loopbackAllowedMeansUnspecifiedAllowedOnlyAsLoopback() {
        let p = DestinationPolicy(Destinations())   // the default: loopback only
        #expect(p.allows(address: "0.0.0.0", port: 22))   // it reaches 127.0.0.1, which is allowed
        #expect(p.allows(address: "::", port: 22))
        let denyAny = DestinationPolicyTests.policy(["0.0.0.0/0"], deny: ["0.0.0.0/32"])
        #expect(!denyAny.allows(address: "0.0.0.0", port: 22))   // a deny of the literal holds as well
    }
}

/// Issue #16: one bind rule for both drivers, by address, with `localhost` and the empty default as 127.0.0.1.
@Suite struct BindRuleTests {
    @Test func oneRuleByAddress() {
        let allow = ["127.0.0.1", "::1"]
        #expect(BindPolicy.allows(BindPolicy.literal(""), bindAllow: allow))
        #expect(BindPolicy.allows(BindPolicy.literal("localhost"), bindAllow: allow))
        #expect(BindPolicy.allows("::0001", bindAllow: allow))
        #expect(!BindPolicy.allows("0.0.0.0", bindAllow: allow))
        #expect(!BindPolicy.allows("127.0.0.2", bindAllow: allow))
        #expect(!BindPolicy.allows("example.org", bindAllow: ["example.org"]))
        #expect(BindPolicy.allows("0.0.0.0", bindAllow: ["0.0.0.0"]))
    }
}

/// Issue #24 item 9: DNS rebinding. A request is answered only for a `Host` that names the appliance.
@Suite struct HostPolicyTests {
    func allows(_ host: String?) -> Bool {
        HostPolicy.allows(host: host, serverNames: ["sluice.lan"], allowedOrigins: ["https://termix.example.org:8443"])
    }

    @Test func literalsLocalhostAndConfiguredNamesPass() {
        for host in ["127.0.0.1", "127.0.0.1:30003", "192.168.1.5:80", "[::1]:30003", "[fd00::1]", "localhost:30003",
                     "LocalHost", "sluice.lan", "SLUICE.lan:30003", "sluice.lan.", "termix.example.org",
                     "termix.example.org:30003"] {
            #expect(allows(host), "\(host)")
        }
        #expect(allows(nil))    // HTTP/1.0 tools; every browser sends Host
    }

    @Test func otherNamesAndMalformedHostsAreRefused() {
        for host in ["evil.example", "evil.example:30003", "sluice.lan.evil.example", "127.0.0.1.evil.example",
                     "sluice.lan:x", "sluice.lan:", "sluice.lan:99999", "[::1", "[::1]x", "::1", "[127.0.0.1]", "",
                     ":30003", "localhost.evil.example", "example.org"] {
            #expect(!allows(host), "\(host)")
        }
        #expect(!HostPolicy.allows(host: "sluice.lan", serverNames: [], allowedOrigins: []))
    }
}
