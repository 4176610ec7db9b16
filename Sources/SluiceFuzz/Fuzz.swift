// libFuzzer entry point for every pure parser: FUZZ_TARGET picks one (see FuzzTarget).
// Built only with `make fuzz` (SLUICE_FUZZ=1, full Swift, -sanitize=fuzzer,address); never part of the product.
import Appliance
import Relay
import CLinux

enum FuzzTarget: String {
    case json, jwt, name, config, socks, connect, http, ws, key
}

let target: FuzzTarget = {
    guard let raw = getenv("FUZZ_TARGET"), let t = FuzzTarget(rawValue: String(cString: raw)) else { return .json }
    return t
}()

final class NoFiles: FileAccess {
    func read(_ path: String, limit: Int) -> [UInt8]? { path.hasSuffix(".key") ? Array("-----BEGIN X".utf8) : nil }
    func exists(_ path: String) -> Bool { path.hasSuffix(".key") }
    func isDirectory(_ path: String) -> Bool { false }
}

let files = NoFiles()
let secret = Array(String(repeating: "k", count: 64).utf8)
let fuzzConfig: Config = {
    var c = Config()
    c.users = [User(id: "u", username: "u", admin: false)]
    var h = Host(id: 1, name: "edge", owner: "u")
    h.ip = "127.0.0.1"
    h.username = "x"
    c.hosts = [h]
    return c
}()

/// The HTTP layer's application side without sockets: a started tunnel manager whose driver fails every attempt.
let router: Router = {
    var config = fuzzConfig
    config.users.append(User(id: "a", username: "admin", admin: true))
    let manager = TunnelManager(config: config, driver: UnavailableDriver())!
    _ = manager.start()
    return Router(context: ApplianceContext(config: Locked(config), secret: secret, manager: manager))
}()
let adminToken = JWT.sign(userId: "a", secret: secret, now: Clock.unixSeconds(), ttl: 10_000_000_000)

/// A flag byte (odd: a valid admin token is added), `METHOD PATH\n`, header lines, an empty line, the body. Every answer
/// must be a known status, and a JSON answer must parse.
func fuzzRequest(_ bytes: [UInt8]) {
    guard let flags = bytes.first else { return }
    var lines: [[UInt8]] = []
    var rest = bytes[1...]
    while let newline = rest.firstIndex(of: 10), lines.count < 20 {
        let line = Array(rest[rest.startIndex..<newline])
        rest = rest[(newline + 1)...]
        if line.isEmpty { break }
        lines.append(line)
    }
    guard let first = lines.first else { return }
    let requestLine = String(decoding: first, as: UTF8.self).split(separator: " ", maxSplits: 1)
    guard requestLine.count == 2 else { return }
    var headers: [(String, String)] = []
    for line in lines.dropFirst() {
        let text = String(decoding: line, as: UTF8.self)
        let pair = text.split(separator: ":", maxSplits: 1)
        if pair.count == 2 { headers.append((String(pair[0]), String(pair[1].drop { $0 == " " }))) }
    }
    if flags & 1 == 1 { headers.append(("Authorization", "Bearer " + adminToken)) }
    let head = HTTPRequestHead(method: String(requestLine[0]), path: String(requestLine[1]), headers: headers)
    let body = Array(rest)
    var response: HTTPResponse
    switch router.head(head) {
    case .respond(let decided): response = decided
    case .readBody(let limit):
        response = body.count > limit ? router.bodyTooLarge(head) : router.complete(head, body: body)
    }
    if let deferred = response.deferred { response = deferred.work() }   // a login: what the worker would answer
    response.stream?.finished()
    precondition([101, 200, 302, 303, 400, 401, 403, 404, 405, 413, 415, 421, 426, 429, 500, 503].contains(response.status),
                 "unexpected status \(response.status)")
    if response.headers.contains(where: { $0.0 == "Content-Type" && $0.1 == "application/json" }) {
        precondition((try? JSONParser.parse(response.body)) != nil, "JSON answer does not parse")
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    switch target {
    case .json:
        if let value = try? JSONParser.parse(bytes) {
            // what the writer produces parses back to the same value
            let again = try? JSONParser.parse(JSONWriter.write(value))
            precondition(again == value, "JSON round trip differs")
        }
    case .jwt:
        _ = JWT.verify(String(decoding: bytes, as: UTF8.self), secret: secret, now: 1_700_000_000)
        _ = RequestAuth.token(cookie: String(decoding: bytes, as: UTF8.self), authorization: nil)
    case .name:
        if let name = TunnelName.parse(String(decoding: bytes, as: UTF8.self)) { precondition(name.parts.count == 6) }
    case .config:
        _ = ConfigLoader.parse(bytes, baseDir: "/etc/sluice", files: files)
    case .socks:
        switch SOCKS5.greeting(bytes[...]) {
        case .greeted(_, let used): _ = SOCKS5.request(bytes[used...])
        default: break
        }
        // the server as both forwards drive it: the bytes in two pieces, consumed input dropped between them
        var server = SOCKS5Server()
        let cut = bytes.isEmpty ? 0 : Int(bytes[0]) % (bytes.count + 1)
        var input = Array(bytes[..<cut])
        let first = server.step(input[...])
        precondition(first.consumed <= input.count, "consumed more than given")
        if first.outcome == .needMore {
            input.removeFirst(first.consumed)
            input += bytes[cut...]
            let second = server.step(input[...])
            precondition(second.consumed <= input.count, "consumed more than given")
            if second.outcome == .connect { precondition(!second.host.isEmpty, "a CONNECT without a target") }
        }
    case .connect:
        _ = ConnectValidation.validate(body: bytes, config: fuzzConfig, user: fuzzConfig.users[0])
        _ = ConnectValidation.tunnelName(body: bytes)
        _ = RelayRequest.parse(bytes, config: fuzzConfig, user: fuzzConfig.users[0])
    case .ws:
        // frames back to back: header, unmask, close payloads and the message rules, as the relay will apply them
        var assembler = WebSocketFrame.Assembler(maxText: 4096)
        var offset = 0
        while offset < bytes.count {
            let parsed = bytes[offset...].withUnsafeBytes { WebSocketFrame.parseHeader($0, maxPayload: 4096) }
            guard case .header(let h) = parsed, offset + h.headerLength + h.payloadLength <= bytes.count else { break }
            var payload = Array(bytes[(offset + h.headerLength)..<(offset + h.headerLength + h.payloadLength)])
            payload.withUnsafeMutableBytes { WebSocketFrame.unmask($0, key: h.mask ?? 0, position: 0) }
            if h.opcode == .close { _ = WebSocketFrame.parseClose(payload) }
            else if !h.opcode.isControl { if case .failure = assembler.frame(h, payload: payload) { break } }
            offset += h.headerLength + h.payloadLength
        }
        // the same bytes through the link's reader, arriving in two pieces, a stream taking half of each binary piece
        let cut = bytes.isEmpty ? 0 : Int(bytes[0]) % (bytes.count + 1)
        var reader = WebSocketReader(maxFrame: 4096)
        var buffer = Array(bytes[..<cut])
        var start = 0
        for arrived in [true, false] {
            if !arrived { buffer += bytes[cut...] }
            var steps = 0
            while steps < 100_000 {
                steps += 1
                let event = buffer.withUnsafeMutableBytes { reader.next(UnsafeMutableRawBufferPointer(rebasing: $0[start...])) }
                precondition(event.used >= 0 && start + event.used + event.count <= buffer.count, "read past the bytes")
                start += event.used
                if event.kind == .more || event.kind == .failure { break }
                if event.kind == .binary {
                    let taken = max(1, event.count / 2)
                    start += taken
                    reader.took(taken, of: event.count)
                }
            }
            if steps >= 100_000 { preconditionFailure("the reader made no progress") }
        }
    case .key:
        // a key file as given, and the same bytes as the body of an OpenSSH key file
        _ = PrivateKeyInfo.describe(bytes)
        let armored = "-----BEGIN OPENSSH PRIVATE KEY-----\n\(Base64.encode(bytes))\n-----END OPENSSH PRIVATE KEY-----\n"
        _ = PrivateKeyInfo.describe(Array(armored.utf8))
    case .http:
        fuzzRequest(bytes)
        // a path and a body through the router's pure parts (no sockets): route, then the body validators
        let text = String(decoding: bytes, as: UTF8.self)
        _ = PasswordHash.parse(text)
        _ = SocketAddress(hostPort: text)
        _ = DestinationEntry.parse(text)
        _ = OriginPolicy.allows(origin: text, host: text, allowed: [text])
        _ = RelayUpgrade.hasToken(text, "upgrade")
    }
    return 0
}
