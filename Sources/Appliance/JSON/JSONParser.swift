import Relay

/// A strict RFC 8259 parser: UTF-8 validated, depth-limited, no trailing commas, comments, NaN or leading zeros,
/// duplicate member names rejected. Pure: bytes in, value or a positioned error out.
/// Every parse is linear in its input and bounded: at most `maxMembers` member names in the whole document (a
/// request or a relay message has a few dozen; only the configuration and state files pass a larger bound), and
/// duplicates are found with a set once an object has more than a few members (issue #15: comparing each name
/// with every earlier one took seconds for one 256 KiB message, on the thread that carries every relay).
public struct JSONParseError: Error, Equatable {
    public let message: String
    /// Byte offset of the problem, and its 1-based line and column (columns count bytes).
    public let offset: Int
    public let line: Int
    public let column: Int

    public var description: String { "\(message) at line \(line), column \(column)" }
}

public struct JSONParser {
    public static let defaultMaxDepth = 64
    /// Member names in one document: far above any API request or relay message, far below a costly parse.
    public static let defaultMaxMembers = 4096
    /// For files Sluice itself reads (configuration, state): large inventories are legitimate there.
    public static let fileMaxMembers = 1 << 20
    /// Objects up to this many members are checked for duplicates by comparison (cheaper than hashing).
    static let linearDuplicateCheck = 8

    public static func parse(_ text: String, maxDepth: Int = defaultMaxDepth,
                             maxMembers: Int = defaultMaxMembers) throws(JSONParseError) -> JSONValue {
        try parse(Array(text.utf8), maxDepth: maxDepth, maxMembers: maxMembers)
    }

    public static func parse(_ bytes: [UInt8], maxDepth: Int = defaultMaxDepth,
                             maxMembers: Int = defaultMaxMembers) throws(JSONParseError) -> JSONValue {
        var parser = JSONParser(bytes: bytes, maxDepth: maxDepth, maxMembers: maxMembers)
        if let bad = UTF8Check.firstInvalid(bytes) { throw parser.error("invalid UTF-8", at: bad) }
        parser.skipSpace()
        let value = try parser.value(depth: 0)
        parser.skipSpace()
        if parser.index != bytes.count { throw parser.error("unexpected data after the JSON value") }
        return value
    }

    let bytes: [UInt8]
    let maxDepth: Int
    let maxMembers: Int
    var index = 0
    var memberCount = 0

    init(bytes: [UInt8], maxDepth: Int, maxMembers: Int) {
        self.bytes = bytes
        self.maxDepth = maxDepth
        self.maxMembers = maxMembers
    }

    func error(_ message: String, at offset: Int? = nil) -> JSONParseError {
        let at = min(offset ?? index, bytes.count)
        var line = 1, column = 1
        for i in 0..<at {
            if bytes[i] == 0x0A { line += 1; column = 1 } else { column += 1 }
        }
        return JSONParseError(message: message, offset: at, line: line, column: column)
    }

    mutating func skipSpace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    mutating func value(depth: Int) throws(JSONParseError) -> JSONValue {
        guard index < bytes.count else { throw error("unexpected end of input") }
        switch bytes[index] {
        case UInt8(ascii: "{"): return try object(depth: depth + 1)
        case UInt8(ascii: "["): return try array(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try number())
        default: throw error("unexpected character")
        }
    }

    mutating func literal(_ word: StaticString) throws(JSONParseError) {
        let count = word.utf8CodeUnitCount
        guard index + count <= bytes.count else { throw error("invalid literal") }
        let start = word.utf8Start
        for i in 0..<count where bytes[index + i] != start[i] { throw error("invalid literal") }
        index += count
    }

    mutating func object(depth: Int) throws(JSONParseError) -> JSONValue {
        if depth > maxDepth { throw error("nesting deeper than \(maxDepth)") }
        index += 1
        var members: [(String, JSONValue)] = []
        var names: Set<String>? = nil   // built once the object outgrows the linear check
        skipSpace()
        if index < bytes.count && bytes[index] == UInt8(ascii: "}") {
            index += 1
            return .object(members)
        }
        while true {
            skipSpace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw error("expected a member name") }
            let nameStart = index
            memberCount += 1
            if memberCount > maxMembers { throw error("more than \(maxMembers) member names", at: nameStart) }
            let name = try string()
            if names != nil {
                if names!.insert(name).inserted == false {
                    throw error("duplicate member name \"\(name)\"", at: nameStart)
                }
            } else {
                for (existing, _) in members where existing == name {
                    throw error("duplicate member name \"\(name)\"", at: nameStart)
                }
                if members.count >= JSONParser.linearDuplicateCheck {
                    var set = Set<String>(minimumCapacity: members.count * 2)
                    for (existing, _) in members { set.insert(existing) }
                    set.insert(name)
                    names = set
                }
            }
            skipSpace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw error("expected ':'") }
            index += 1
            skipSpace()
            members.append((name, try value(depth: depth)))
            skipSpace()
            guard index < bytes.count else { throw error("unexpected end of input") }
            if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
            if bytes[index] == UInt8(ascii: "}") { index += 1; return .object(members) }
            throw error("expected ',' or '}'")
        }
    }

    mutating func array(depth: Int) throws(JSONParseError) -> JSONValue {
        if depth > maxDepth { throw error("nesting deeper than \(maxDepth)") }
        index += 1
        var items: [JSONValue] = []
        skipSpace()
        if index < bytes.count && bytes[index] == UInt8(ascii: "]") {
            index += 1
            return .array(items)
        }
        while true {
            skipSpace()
            items.append(try value(depth: depth))
            skipSpace()
            guard index < bytes.count else { throw error("unexpected end of input") }
            if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
            if bytes[index] == UInt8(ascii: "]") { index += 1; return .array(items) }
            throw error("expected ',' or ']'")
        }
    }

    mutating func string() throws(JSONParseError) -> String {
        index += 1   // opening quote
        var out: [UInt8] = []
        while true {
            guard index < bytes.count else { throw error("unterminated string") }
            let b = bytes[index]
            if b == UInt8(ascii: "\"") {
                index += 1
                return String(decoding: out, as: UTF8.self)
            }
            if b < 0x20 { throw error("control character in string") }
            if b != UInt8(ascii: "\\") {
                out.append(b)
                index += 1
                continue
            }
            index += 1
            guard index < bytes.count else { throw error("unterminated string") }
            let escape = bytes[index]
            index += 1
            switch escape {
            case UInt8(ascii: "\""): out.append(0x22)
            case UInt8(ascii: "\\"): out.append(0x5C)
            case UInt8(ascii: "/"): out.append(0x2F)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try hex4()
                if scalar >= 0xD800 && scalar <= 0xDBFF {
                    guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"),
                          bytes[index + 1] == UInt8(ascii: "u") else { throw error("unpaired surrogate") }
                    index += 2
                    let low = try hex4()
                    guard low >= 0xDC00 && low <= 0xDFFF else { throw error("unpaired surrogate") }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if scalar >= 0xDC00 && scalar <= 0xDFFF {
                    throw error("unpaired surrogate")
                }
                UTF8Check.encode(scalar, into: &out)
            default:
                throw error("invalid escape", at: index - 1)
            }
        }
    }

    mutating func hex4() throws(JSONParseError) -> UInt32 {
        guard index + 4 <= bytes.count else { throw error("invalid \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let b = bytes[index]
            let digit: UInt32
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(b - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(b - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(b - UInt8(ascii: "A") + 10)
            default: throw error("invalid \\u escape")
            }
            value = value << 4 | digit
            index += 1
        }
        return value
    }

    func isDigit(_ i: Int) -> Bool {
        i < bytes.count && bytes[i] >= UInt8(ascii: "0") && bytes[i] <= UInt8(ascii: "9")
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`, with its exact integer value when it has one.
    mutating func number() throws(JSONParseError) -> JSONNumber {
        let start = index
        var negative = false
        if bytes[index] == UInt8(ascii: "-") { negative = true; index += 1 }
        guard isDigit(index) else { throw error("invalid number") }
        var digits: [UInt8] = []   // significant digits, integer and fraction parts together
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
            if isDigit(index) { throw error("leading zero in number") }
            digits.append(0)
        } else {
            while isDigit(index) { digits.append(bytes[index] - 48); index += 1 }
        }
        var exponent = 0
        if index < bytes.count && bytes[index] == UInt8(ascii: ".") {
            index += 1
            guard isDigit(index) else { throw error("invalid number") }
            while isDigit(index) { digits.append(bytes[index] - 48); exponent -= 1; index += 1 }
        }
        if index < bytes.count && (bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E")) {
            index += 1
            var expNegative = false
            if index < bytes.count && (bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-")) {
                expNegative = bytes[index] == UInt8(ascii: "-")
                index += 1
            }
            guard isDigit(index) else { throw error("invalid number") }
            var e = 0
            while isDigit(index) {
                if e < 100_000 { e = e * 10 + Int(bytes[index] - 48) }
                index += 1
            }
            exponent += expNegative ? -e : e
        }
        let literal = String(decoding: bytes[start..<index], as: UTF8.self)
        return JSONNumber(literal: literal, integer: JSONParser.exactInteger(digits, exponent, negative))
    }

    /// digits × 10^exponent when that is an integer that fits in 18 digits; nil otherwise.
    static func exactInteger(_ digits: [UInt8], _ exponent: Int, _ negative: Bool) -> Int64? {
        var digits = digits
        var exponent = exponent
        while exponent < 0, let last = digits.last, last == 0, digits.count > 1 {
            digits.removeLast()
            exponent += 1
        }
        var first = 0
        while first < digits.count - 1 && digits[first] == 0 { first += 1 }
        let significant = digits[first...]
        if significant.count == 1 && significant.first == 0 { return 0 }
        guard exponent >= 0, significant.count + exponent <= 18 else { return nil }
        var value: Int64 = 0
        for d in significant { value = value * 10 + Int64(d) }
        for _ in 0..<exponent { value *= 10 }
        return negative ? -value : value
    }
}
