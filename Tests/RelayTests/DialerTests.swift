import CLinux
import Testing
@testable import Relay

/// `Dialer.judge`: a target judged by the dial's own rule without connecting (the appliance's fixed targets).
@Suite struct DialerTests {
    /// A resolver that knows two names, without DNS.
    static func resolver() -> Resolver {
        Resolver(limits: Resolver.Limits(), lookup: { name in
            switch name {
            case "two.test": return ["192.0.2.7", "127.0.0.5"]
            case "far.test": return ["192.0.2.8"]
            default: return []
            }
        })
    }

    /// The verdict and addresses `judge` reports on a running reactor, and how many times it reported.
    func judged(_ host: String, allow: ((String) -> Bool)?) -> (Dialer.Verdict?, [String], Int) {
        let reactor = Reactor(tickMilliseconds: 100)!
        _ = reactor.start(name: "dialer-test")
        let result = Locked<(Dialer.Verdict?, [String], Int)>((nil, [], 0))
        let done = Completion()
        let resolver = DialerTests.resolver()
        reactor.post {
            Dialer.judge(reactor: reactor, resolver: resolver, key: "u", host: host, allow: allow) { verdict, addresses in
                result.update { $0 = (verdict, addresses, $0.2 + 1) }
                done.signal()
            }
        }
        _ = done.wait(timeoutMs: 5_000)
        usleep(50_000)   // a second report would land here
        reactor.stop()
        resolver.stop()
        return result.get()
    }

    @Test func aNameIsResolvedAndEveryAddressJudged() {
        let loopback = { (address: String) in address.hasPrefix("127.") }
        let (verdict, addresses, reports) = judged("two.test", allow: loopback)
        #expect(verdict == .allowed && addresses == ["127.0.0.5"] && reports == 1)
        #expect(judged("far.test", allow: loopback).0 == .notAllowed)
        #expect(judged("nowhere.test", allow: loopback).0 == .unresolved)
        #expect(judged("two.test", allow: nil).1 == ["192.0.2.7", "127.0.0.5"])
    }

    @Test func aLiteralIsJudgedWithoutALookup() {
        #expect(judged("127.0.0.1", allow: { $0 == "127.0.0.1" }).0 == .allowed)
        #expect(judged("::1", allow: { _ in false }).0 == .notAllowed)
    }
}
