import Testing
@testable import Appliance
import Relay

@Suite struct JSONParserTests {
    func parse(_ text: String) -> JSONValue? { try? JSONParser.parse(text) }
    func failure(_ bytes: [UInt8]) -> JSONParseError? {
        do { _ = try JSONParser.parse(bytes); return nil } catch { return error }
    }
    func failure(_ text: String) -> JSONParseError? { failure(Array(text.utf8)) }

    @Test func scalarsAndContainers() throws {
        #expect(parse("null") == .null)
        #expect(parse(" true ") == .bool(true))
        #expect(parse("\"a\\\"b\\u00e9\\ud83d\\ude00\"") == .string("a\"bé😀"))
        let v = try #require(parse(#"{"a":[1,2,{"b":false}],"c":"d"}"#))
        #expect(v["c"] == .string("d"))
        #expect(v["a"]?.arrayValue?.count == 3)
        #expect(v["missing"] == nil)
    }

    @Test func numbers() throws {
        #expect(parse("8080")?.integerValue == 8080)
        #expect(parse("-0")?.integerValue == 0)
        #expect(parse("8080.0")?.integerValue == 8080)
        #expect(parse("8.08e3")?.integerValue == 8080)
        #expect(parse("1E2")?.integerValue == 100)
        #expect(parse("1.5")?.integerValue == nil)
        #expect(parse("1e-2")?.integerValue == nil)
        #expect(parse("123456789012345678901234")?.integerValue == nil)
        #expect(parse("1.5")?.numberValue?.literal == "1.5")
        #expect(parse("8080.0")?.numberValue?.decimalText == "8080")
    }

    @Test(arguments: ["", "{", "[1,]", "{\"a\":1,}", "01", "1.", ".5", "-", "+1", "1e", "NaN", "Infinity",
                      "'a'", "{a:1}", "[1 2]", "\"\\x\"", "\"\\u12\"", "\"\\ud800\"", "\"\\udc00x\"",
                      "tru", "nul", "{\"a\":1}x", "// c\n1", "\"tab\there\"", "{\"a\":1,\"a\":2}", "[1]]"])
    func rejectsMalformed(_ text: String) {
        #expect(failure(text) != nil, "accepted \(text)")
    }

    @Test func errorPositions() throws {
        let e = try #require(failure("{\n  \"a\": tru\n}"))
        #expect(e.line == 2)
        #expect(e.column == 8)
        #expect(e.offset == 9)
        let dup = try #require(failure(#"{"a":1,"a":2}"#))
        #expect(dup.message.contains("duplicate"))
        #expect(dup.offset == 7)
    }

    @Test func rejectsInvalidUTF8() {
        let cases: [[UInt8]] = [
            [0x22, 0xC3, 0x22],                 // truncated 2-byte sequence
            [0x22, 0xC0, 0xAF, 0x22],           // overlong '/'
            [0x22, 0xED, 0xA0, 0x80, 0x22],     // encoded surrogate
            [0x22, 0xF4, 0x90, 0x80, 0x80, 0x22], // above U+10FFFF
            [0x22, 0xFF, 0x22],
            [0x22, 0x80, 0x22],                 // lone continuation byte
        ]
        for bytes in cases {
            let e = failure(bytes)
            #expect(e?.message == "invalid UTF-8", "\(bytes)")
            #expect(e?.offset == 1)
        }
        #expect((try? JSONParser.parse([0x22, 0xF0, 0x9F, 0x98, 0x80, 0x22])) == .string("😀"))
    }

    @Test func depthIsLimited() {
        let deep = String(repeating: "[", count: 65) + String(repeating: "]", count: 65)
        #expect(failure(deep)?.message.contains("nesting") == true)
        let ok = String(repeating: "[", count: 64) + String(repeating: "]", count: 64)
        #expect(parse(ok) != nil)
        // a hostile depth does not blow the stack: it stops at the limit
        let hostile = String(repeating: "[", count: 100_000)
        #expect(failure(hostile) != nil)
    }

    @Test func hugeInputParses() throws {
        var text = "["
        for i in 0..<50_000 { text += (i == 0 ? "" : ",") + "{\"k\":\"value \(i)\"}" }
        text += "]"
        // 50 000 member names: over the default bound for messages, so under the one for files
        #expect(parse(text) == nil)
        let v = try JSONParser.parse(text, maxMembers: JSONParser.fileMaxMembers)
        #expect(v.arrayValue?.count == 50_000)
    }
}

@Suite struct JSONWriterTests {
    @Test func compactAndEscaped() {
        let v: JSONValue = .object([("a", .string("q\"\\\n\t\u{01}é")), ("b", .array([.int(1), .bool(false), .null])),
                                    ("c", .object([]))])
        #expect(JSONWriter.write(v) == #"{"a":"q\"\\\n\t\u0001é","b":[1,false,null],"c":{}}"#)
    }

    @Test func roundTrips() throws {
        let text = #"{"name":"1::0::edge::8080::::0","n":-12,"x":1.5e3,"l":[true,null,"\u2028"]}"#
        let v = try JSONParser.parse(text)
        let again = try JSONParser.parse(JSONWriter.write(v))
        #expect(v == again)
        #expect(!JSONWriter.write(v).contains("\n"))
    }

    @Test func errorBody() {
        #expect(JSONWriter.error("Not found") == #"{"error":"Not found"}"#)
    }
}

/// Issue #15: duplicate detection compared each member name with every earlier one, so one message of many keys
/// stalled the thread that carries every relay for seconds. Each parse is now linear and bounded in keys.
@Suite struct JSONParserCostTests {
    /// `{"k0":0,"k1":0,…}` of about `size` bytes.
    static func manyKeys(size: Int) -> (bytes: [UInt8], keys: Int) {
        var out: [UInt8] = [UInt8(ascii: "{")]
        var keys = 0
        while out.count < size - 16 {
            if keys > 0 { out.append(UInt8(ascii: ",")) }
            out += Array("\"k\(keys)\":0".utf8)
            keys += 1
        }
        out.append(UInt8(ascii: "}"))
        return (out, keys)
    }

    @Test func manyKeysAreParsedInLinearTime() throws {
        // under the file bound the whole 1 MiB object parses; the old check needed ~10^10 comparisons for it
        let (bytes, keys) = JSONParserCostTests.manyKeys(size: 1 << 20)
        #expect(keys > 80_000)
        let started = Clock.monotonicMs()
        let value = try JSONParser.parse(bytes, maxMembers: JSONParser.fileMaxMembers)
        let took = Clock.monotonicMs() - started
        #expect(value.objectValue?.count == keys)
        #expect(took < 5_000, "1 MiB with \(keys) keys took \(took) ms")   // a debug build; the product takes ~10 ms
    }

    @Test func duplicatesAreStillFoundInLargeObjects() {
        var (bytes, _) = JSONParserCostTests.manyKeys(size: 4096)
        bytes.removeLast()
        bytes += Array(",\"k3\":1}".utf8)
        #expect(throws: JSONParseError.self) { try JSONParser.parse(bytes) }
        #expect((try? JSONParser.parse(#"{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9,"a":0}"#)) == nil)
    }

    @Test func memberNamesAreBoundedByDefault() {
        let (bytes, keys) = JSONParserCostTests.manyKeys(size: 256 << 10)
        #expect(keys > JSONParser.defaultMaxMembers)
        let started = Clock.monotonicMs()
        do {
            _ = try JSONParser.parse(bytes)
            Issue.record("a message of \(keys) keys was accepted")
        } catch {
            #expect(error.message.hasPrefix("more than"))
        }
        #expect(Clock.monotonicMs() - started < 500)
        // nested objects count too: the bound is for the whole document
        let nested = "[" + Array(repeating: #"{"a":1,"b":2}"#, count: 3000).joined(separator: ",") + "]"
        #expect((try? JSONParser.parse(nested)) == nil)
        #expect((try? JSONParser.parse(nested, maxMembers: 6000)) != nil)
    }
}
