/// Compact JSON text: no insignificant white space, so a value always fits on one line (as SSE `data:` needs).
public enum JSONWriter {
    public static func write(_ value: JSONValue) -> String {
        var out = ""
        append(value, to: &out)
        return out
    }

    public static func append(_ value: JSONValue, to out: inout String) {
        switch value {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .number(let n): out += n.integer.map { String($0) } ?? n.literal
        case .string(let s): appendString(s, to: &out)
        case .array(let items):
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += "," }
                append(item, to: &out)
            }
            out += "]"
        case .object(let members):
            out += "{"
            for (i, (name, item)) in members.enumerated() {
                if i > 0 { out += "," }
                appendString(name, to: &out)
                out += ":"
                append(item, to: &out)
            }
            out += "}"
        }
    }

    static let hex: [Character] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "a", "b", "c", "d", "e", "f"]

    public static func appendString(_ s: String, to out: inout String) {
        out += "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if scalar.value < 0x20 || scalar.value == 0x2028 || scalar.value == 0x2029 {
                    let v = Int(scalar.value)
                    out += "\\u"
                    out.append(hex[(v >> 12) & 15]); out.append(hex[(v >> 8) & 15])
                    out.append(hex[(v >> 4) & 15]); out.append(hex[v & 15])
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out += "\""
    }

    /// `{"error":"<message>"}`: every error answer of the API.
    public static func error(_ message: String) -> String {
        write(.object([("error", .string(message))]))
    }
}
