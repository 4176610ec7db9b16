import Testing
@testable import Relay

@Suite struct WebSocketFrameTests {
    func parse(_ bytes: [UInt8], max: Int = 1 << 20) -> WebSocketFrame.Parse {
        bytes.withUnsafeBytes { WebSocketFrame.parseHeader($0, maxPayload: max) }
    }

    /// A masked client frame as a browser would send it.
    func clientFrame(_ opcode: UInt8, _ payload: [UInt8], fin: Bool = true, key: [UInt8] = [0x37, 0xfa, 0x21, 0x3d]) -> [UInt8] {
        var out: [UInt8] = [(fin ? 0x80 : 0) | opcode]
        if payload.count < 126 { out.append(0x80 | UInt8(payload.count)) }
        else if payload.count <= 0xFFFF { out += [0x80 | 126, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)] }
        else { out.append(0x80 | 127); for s in stride(from: 56, through: 0, by: -8) { out.append(UInt8(payload.count >> s & 0xFF)) } }
        out += key
        for (i, b) in payload.enumerated() { out.append(b ^ key[i & 3]) }
        return out
    }

    @Test func rfcExampleMaskedHello() throws {
        // RFC 6455 §5.7: a single-frame masked text message "Hello"
        let frame: [UInt8] = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]
        guard case .header(let h) = parse(frame) else { Issue.record("no header"); return }
        #expect(h.fin && h.opcode == .text && h.payloadLength == 5 && h.headerLength == 6)
        var payload = Array(frame[6...])
        payload.withUnsafeMutableBytes { WebSocketFrame.unmask($0, key: h.mask!, position: 0) }
        #expect(payload == Array("Hello".utf8))
    }

    @Test func unmaskInPiecesMatchesWhole() {
        let key: [UInt8] = [1, 2, 3, 4]
        let data = (0..<1000).map { UInt8($0 & 0xFF) }
        let masked = clientFrame(2, data, key: key)
        var whole = Array(masked[8...])
        let k = UInt32(1) << 24 | UInt32(2) << 16 | UInt32(3) << 8 | 4
        whole.withUnsafeMutableBytes { WebSocketFrame.unmask($0, key: k, position: 0) }
        #expect(whole == data)
        var pieces = Array(masked[8...])
        var position = 0
        for size in [3, 1, 17, 200, 779] {
            pieces[position..<(position + size)].withUnsafeMutableBytes { WebSocketFrame.unmask($0, key: k, position: position) }
            position += size
        }
        #expect(pieces == data)
    }

    @Test func lengthsAndPartialHeaders() {
        let big = clientFrame(2, [UInt8](repeating: 7, count: 70000))
        for n in 0..<14 { #expect(parse(Array(big[0..<n])) == .needMore, "\(n)") }
        guard case .header(let h) = parse(big) else { Issue.record("no header"); return }
        #expect(h.payloadLength == 70000 && h.headerLength == 14)
        #expect(WebSocketFrame.header(.binary, payloadLength: 70000) == [0x82, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70])
        #expect(WebSocketFrame.header(.text, payloadLength: 300) == [0x81, 126, 1, 44])
    }

    @Test func protocolErrors() {
        func code(_ bytes: [UInt8], max: Int = 1 << 20) -> UInt16? {
            if case .failure(let f) = parse(bytes, max: max) { return f.code }
            return nil
        }
        #expect(code([0x81, 0x05, 1, 2, 3, 4, 5]) == 1002)                       // unmasked
        #expect(code([0xC1, 0x80, 0, 0, 0, 0]) == 1002)                          // RSV1
        #expect(code([0x83, 0x80, 0, 0, 0, 0]) == 1002)                          // opcode 3
        #expect(code([0x09, 0x80, 0, 0, 0, 0]) == 1002)                          // fragmented ping
        #expect(code(clientFrame(9, [UInt8](repeating: 0, count: 126))) == 1002)   // control > 125
        #expect(code(clientFrame(2, [UInt8](repeating: 0, count: 2000)), max: 1000) == 1009)
        #expect(code([0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0]) == 1002)           // 64-bit length with MSB set
    }

    @Test func closePayloads() {
        #expect(WebSocketFrame.parseClose([]) == .success(nil))
        #expect(WebSocketFrame.parseClose([0x03, 0xE8]) == .success(1000))
        if case .failure(let f) = WebSocketFrame.parseClose([0x03]) { #expect(f.code == 1002) } else { Issue.record("1 byte") }
        if case .failure(let f) = WebSocketFrame.parseClose([0x03, 0xED]) { #expect(f.code == 1002) } else { Issue.record("1005") }
        if case .failure(let f) = WebSocketFrame.parseClose([0x03, 0xE8, 0xFF]) { #expect(f.code == 1007) } else { Issue.record("utf8") }
        let payload = WebSocketFrame.closePayload(1008, String(repeating: "é", count: 100))
        #expect(payload.count <= 125 && payload[0] == 0x03 && payload[1] == 0xF0)
        #expect(UTF8Check.firstInvalid(Array(payload[2...])) == nil)
    }

    @Test func fragmentationRules() {
        var a = WebSocketFrame.Assembler(maxText: 10)
        func h(_ op: WebSocketFrame.Opcode, _ fin: Bool) -> WebSocketFrame.Header {
            WebSocketFrame.Header(fin: fin, opcode: op, mask: 0, payloadLength: 0, headerLength: 0)
        }
        #expect(a.frame(h(.text, false), payload: Array("hé".utf8)) == .success(.textPart))
        #expect(a.frame(h(.continuation, true), payload: Array("llo".utf8)) == .success(.text(Array("héllo".utf8))))
        if case .failure(let f) = a.frame(h(.continuation, true), payload: []) { #expect(f.code == 1002) } else { Issue.record("orphan") }
        #expect(a.frame(h(.binary, false), payload: [1]) == .success(.binary(final: false)))
        if case .failure(let f) = a.frame(h(.text, true), payload: []) { #expect(f.code == 1002) } else { Issue.record("nested") }
        var b = WebSocketFrame.Assembler(maxText: 4)
        if case .failure(let f) = b.frame(h(.text, true), payload: Array("12345".utf8)) { #expect(f.code == 1009) } else { Issue.record("size") }
        var c = WebSocketFrame.Assembler(maxText: 10)
        // a code point split across fragments is fine; invalid UTF-8 in the whole message is 1007
        #expect(c.frame(h(.text, false), payload: [0xC3]) == .success(.textPart))
        #expect(c.frame(h(.continuation, true), payload: [0xA9]) == .success(.text([0xC3, 0xA9])))
        if case .failure(let f) = c.frame(h(.text, true), payload: [0xC3, 0x28]) { #expect(f.code == 1007) } else { Issue.record("bad") }
    }
}
