// The "second defect" of issue #25, reduced: switches over enums with payloads, in the shapes the product had
// before its workarounds (git 661bb1a/10fe57b/7f3b583): SOCKS5.Step (greeting answered from constant arrays),
// SSHCredentials as a payload enum (a `switch` that picks the method, then `guard case .password` on the same
// value), and SSHForward (String and address payloads); and the product's own SOCKS5Server, which switches over
// SOCKS5.Step again (run.sh compiles Sources/Relay/Protocols/SOCKS5.swift and SOCKS5Server.swift in). Strings come
// from run time, as they do in the product (small, inline strings: the ones swift_bridgeObjectRetain corrupts). Built by run.sh with the product's flags,
// with and without Sources/CSupport/EmbeddedRuntimeFixes.c; each shape prints what it took, and the exit status is
// the number of shapes that took a wrong case or returned wrong bytes.
import Probe

// ---- SOCKS5.Step, as Relay/Protocols/SOCKS5.swift had it (661bb1a)
enum Step: Equatable {
    case needMore
    case greeted(reply: [UInt8], consumed: Int)
    case reject(reply: [UInt8])
    case connect(target: String, port: UInt16, consumed: Int)
}

@inline(never)
func greeting(_ bytes: ArraySlice<UInt8>) -> Step {
    guard bytes.count >= 2 else { return .needMore }
    let base = bytes.startIndex
    guard bytes[base] == 5 else { return .reject(reply: [5, 0xFF]) }
    let count = Int(bytes[base + 1])
    guard bytes.count >= 2 + count else { return .needMore }
    let methods = bytes[(base + 2)..<(base + 2 + count)]
    guard methods.contains(0) else { return .reject(reply: [5, 0xFF]) }
    return .greeted(reply: [5, 0], consumed: 2 + count)
}

/// What ChannelPipe sent for a greeting (before 10fe57b): the answer of the case the switch took.
@inline(never)
func answer(_ bytes: [UInt8]) -> (String, [UInt8]) {
    switch greeting(bytes[...]) {
    case .needMore: return ("needMore", [])
    case .greeted(let answer, let consumed): return ("greeted/\(consumed)", answer)
    case .reject(let answer): return ("reject", answer)
    case .connect: return ("connect", [])
    }
}

// ---- SSHCredentials as an enum (the form 7f3b583 measured) and SSHAuth's use of it
enum Credentials {
    case none
    case password(String)
    case privateKey(key: [UInt8], passphrase: String?, keyType: String)
}

enum Method { case list, password, keyboard, publicKey }

final class Auth {
    let user: String
    let credentials: Credentials
    var method = Method.list
    init(user: String, credentials: Credentials) { self.user = user; self.credentials = credentials }

    /// SSHAuth.next(after:) as a switch over the credentials
    @inline(never)
    func first() -> Method? {
        switch credentials {
        case .none: return nil
        case .password: return .password
        case .privateKey: return .publicKey
        }
    }

    /// SSHAuth.step: the method the switch chose, then the payload of that case
    @inline(never)
    func step() -> String {
        guard let chosen = first() else { return "none" }
        method = chosen
        switch method {
        case .password:
            guard case .password(let secret) = credentials else { return "password chosen, guard case .password failed" }
            return "password \(secret)"
        case .publicKey:
            guard case .privateKey(let key, let passphrase, let keyType) = credentials else {
                return "publickey chosen, guard case .privateKey failed"
            }
            return "publickey \(keyType) \(key.count) \(passphrase ?? "-")"
        default: return "other"
        }
    }
}

// ---- SSHForward as an enum (before 10fe57b)
struct Address { var ip: String; var port: UInt16 }

enum Forward {
    case local(listen: Address, targetHost: String, targetPort: Int)
    case dynamic(listen: Address)
    case remote(listenHost: String, listenPort: Int, connectTo: Address)
}

@inline(never)
func describe(_ forward: Forward) -> String {
    switch forward {
    case .local(let listen, let host, let port): return "local \(listen.ip):\(listen.port) \(host):\(port)"
    case .dynamic(let listen): return "dynamic \(listen.ip):\(listen.port)"
    case .remote(let host, let port, let to): return "remote \(host):\(port) \(to.ip):\(to.port)"
    }
}

// ---- helpers
func hex(_ bytes: [UInt8]) -> String {
    let digits: [Character] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "A", "B", "C", "D", "E", "F"]
    var text = ""
    for b in bytes {
        if !text.isEmpty { text.append(" ") }
        text.append(digits[Int(b >> 4)]); text.append(digits[Int(b & 15)])
    }
    return text
}

@inline(never)
func runtimeString(_ text: StaticString) -> String {
    var bytes: [UInt8] = []
    let base = text.utf8Start
    for i in 0..<text.utf8CodeUnitCount { bytes.append(base[i]) }
    return String(decoding: bytes, as: UTF8.self)
}

func outcome(_ value: SOCKS5Server.Outcome) -> String {
    value == .needMore ? "needMore" : value == .connect ? "connect" : "refuse"
}

@inline(never)
func runtimeBytes(_ values: UInt8...) -> [UInt8] {
    var result: [UInt8] = []
    for v in values { result.append(v) }
    return result
}

@main
struct Main {
    static func main() {
        var wrong = 0
        func check(_ what: String, _ got: String, _ expected: String) {
            let ok = got == expected
            if !ok { wrong += 1 }
            print("\(ok ? "ok   " : "WRONG") \(what): \(got)\(ok ? "" : "   (expected \(expected))")")
        }
        // SOCKS greeting 05 01 00 -> greeted, answer 05 00; 05 01 02 -> reject 05 FF
        let (taken, reply) = answer(runtimeBytes(5, 1, 0))
        check("SOCKS5 greeting 05 01 00", "\(taken) \(hex(reply))", "greeted/3 05 00")
        let (taken2, reply2) = answer(runtimeBytes(5, 1, 2))
        check("SOCKS5 greeting 05 01 02", "\(taken2) \(hex(reply2))", "reject 05 FF")
        // the product's own SOCKS5Server (Sources/Relay/Protocols, compiled in by run.sh): switches over SOCKS5.Step
        var server = SOCKS5Server()
        let greeted = server.step(runtimeBytes(5, 1, 0)[...])
        check("SOCKS5Server greeting 05 01 00", "\(outcome(greeted.outcome)) \(hex(greeted.answer)) \(greeted.consumed)",
              "needMore 05 00 3")
        let request = server.step(runtimeBytes(5, 1, 0, 3, 9, 108, 111, 99, 97, 108, 104, 111, 115, 116, 0, 80)[...])
        check("SOCKS5Server CONNECT localhost:80", "\(outcome(request.outcome)) \(request.host):\(request.port) \(request.consumed)",
              "connect localhost:80 16")
        var other = SOCKS5Server()
        let refused = other.step(runtimeBytes(5, 1, 2)[...])
        check("SOCKS5Server greeting 05 01 02", "\(outcome(refused.outcome)) \(hex(refused.answer))", "refuse 05 FF")
        // auth
        let user = runtimeString("root")
        check("auth password", Auth(user: user, credentials: .password(runtimeString("secret1"))).step(),
              "password secret1")
        check("auth privateKey", Auth(user: user, credentials: .privateKey(key: runtimeBytes(1, 2, 3),
              passphrase: runtimeString("pp"), keyType: runtimeString("ssh-ed25519"))).step(),
              "publickey ssh-ed25519 3 pp")
        check("auth none", Auth(user: user, credentials: .none).step(), "none")
        // forwards
        let here = Address(ip: runtimeString("127.0.0.1"), port: 2222)
        check("forward local", describe(.local(listen: here, targetHost: runtimeString("10.0.0.2"), targetPort: 80)),
              "local 127.0.0.1:2222 10.0.0.2:80")
        check("forward dynamic", describe(.dynamic(listen: here)), "dynamic 127.0.0.1:2222")
        check("forward remote", describe(.remote(listenHost: runtimeString("0.0.0.0"), listenPort: 9000,
              connectTo: here)), "remote 0.0.0.0:9000 127.0.0.1:2222")
        print(wrong == 0 ? "payload-enum switches take the right cases"
                         : "DEFECT: \(wrong) payload-enum shapes took a wrong case or answered wrong bytes")
        exit(Int32(wrong))
    }
}
