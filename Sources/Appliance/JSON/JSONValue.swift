/// A JSON value. Objects keep their members in document order (answers are written in a fixed order, and the
/// parser rejects duplicate names, so lookups are unambiguous).
public enum JSONValue: Equatable {
    case null
    case bool(Bool)
    case number(JSONNumber)
    case string(String)
    case array([JSONValue])
    case object([(String, JSONValue)])

    public static func int(_ value: Int) -> JSONValue { .number(JSONNumber(integer: Int64(value))) }

    public static func == (a: JSONValue, b: JSONValue) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case (.bool(let x), .bool(let y)): return x == y
        case (.number(let x), .number(let y)): return x == y
        case (.string(let x), .string(let y)): return x == y
        case (.array(let x), .array(let y)): return x == y
        case (.object(let x), .object(let y)):
            guard x.count == y.count else { return false }
            for i in 0..<x.count where x[i].0 != y[i].0 || x[i].1 != y[i].1 { return false }
            return true
        default: return false
        }
    }

    /// Member of an object (nil for absent members and for non-objects).
    public subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        for (name, value) in members where name == key { return value }
        return nil
    }

    public var isObject: Bool { if case .object = self { return true } else { return false } }
    public var stringValue: String? { if case .string(let s) = self { return s } else { return nil } }
    public var boolValue: Bool? { if case .bool(let b) = self { return b } else { return nil } }
    public var numberValue: JSONNumber? { if case .number(let n) = self { return n } else { return nil } }
    public var arrayValue: [JSONValue]? { if case .array(let a) = self { return a } else { return nil } }
    public var objectValue: [(String, JSONValue)]? { if case .object(let o) = self { return o } else { return nil } }

    /// The integer a JSON number denotes, when it denotes one exactly (`8080`, `8080.0`, `8.08e3`).
    public var integerValue: Int64? { numberValue?.integer }

    /// The name of the JSON type, for error messages: "string", "number", …
    public var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "boolean"
        case .number: return "number"
        case .string: return "string"
        case .array: return "array"
        case .object: return "object"
        }
    }
}

/// A JSON number: its literal text as written, and its integer value when it has one. Doubles are never
/// formatted by Sluice (Embedded Swift has no float printing worth trusting); numbers Sluice writes are integers.
public struct JSONNumber: Equatable {
    public let literal: String
    public let integer: Int64?

    public init(integer: Int64) {
        self.literal = String(integer)
        self.integer = integer
    }

    init(literal: String, integer: Int64?) {
        self.literal = literal
        self.integer = integer
    }

    /// The decimal text JavaScript's `String(n)` gives for this number when it is an integer (so `8080.0` → "8080"),
    /// else the literal. Tunnel names compare against this.
    public var decimalText: String { integer.map { String($0) } ?? literal }

    public static func == (a: JSONNumber, b: JSONNumber) -> Bool {
        if let x = a.integer, let y = b.integer { return x == y }
        return a.literal == b.literal
    }
}
