/// The problems of one configuration file. A class so that every reader of the file reports into the same list
/// without threading `inout` through each call.
final class ProblemList {
    private(set) var items: [ConfigProblem] = []

    func add(_ path: String, _ problem: String) { items.append(ConfigProblem(path, problem)) }
}

/// JSON paths as problems name them: `hosts[1].auth.keyFile`. Keys that are not plain identifiers are quoted
/// (`["a b"]`), so a stray character in a key cannot garble the output line.
enum ConfigPath {
    static func member(_ parent: String, _ key: String) -> String {
        if isIdentifier(key) { return parent.isEmpty ? key : parent + "." + key }
        return parent + "[" + quoted(key) + "]"
    }

    static func index(_ parent: String, _ i: Int) -> String { parent + "[\(i)]" }

    static func isIdentifier(_ key: String) -> Bool {
        if key.isEmpty { return false }
        for b in key.utf8 {
            let ok = (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A)
                || b == UInt8(ascii: "_") || b == UInt8(ascii: "$") || b == UInt8(ascii: "-")
            if !ok { return false }
        }
        return true
    }

    /// A key or value as a JSON string literal, so a problem line shows exactly what was in the file.
    static func quoted(_ key: String) -> String { JSONWriter.write(.string(key)) }
}

/// Numbers in the file are capped so that no later arithmetic on them (pool sizes, ms → ns) can overflow.
let configMaxInteger = 2_147_483_647

/// One JSON object of the file. Creating it reports its unknown keys; its getters check types and ranges and report
/// what is wrong. A getter returns nil both for an absent member and for a bad one (already reported).
struct ObjectReader {
    let path: String
    let members: [(String, JSONValue)]
    let problems: ProblemList

    init?(_ value: JSONValue, at path: String, keys allowed: [String], problems: ProblemList) {
        self.path = path
        self.problems = problems
        guard let members = value.objectValue else {
            problems.add(path, path.isEmpty ? "the configuration must be a JSON object" : "must be an object")
            return nil
        }
        self.members = members
        for (name, _) in members where !allowed.contains(name) {
            problems.add(ConfigPath.member(path, name), "unknown key")
        }
    }

    subscript(key: String) -> JSONValue? {
        for (name, value) in members where name == key { return value }
        return nil
    }

    func has(_ key: String) -> Bool { self[key] != nil }

    func at(_ key: String) -> String { ConfigPath.member(path, key) }

    func report(_ key: String, _ problem: String) { problems.add(at(key), problem) }

    func string(_ key: String, required: Bool = false, nonEmpty: Bool = false) -> String? {
        guard let value = self[key] else {
            if required { report(key, "is required") }
            return nil
        }
        guard let text = value.stringValue else {
            report(key, "must be a string")
            return nil
        }
        if nonEmpty && text.isEmpty {
            report(key, "must not be empty")
            return nil
        }
        return text
    }

    func integer(_ key: String, _ range: ClosedRange<Int>, required: Bool = false) -> Int? {
        guard let value = self[key] else {
            if required { report(key, "is required") }
            return nil
        }
        guard let wide = value.integerValue else {
            report(key, "must be an integer")
            return nil
        }
        guard wide >= Int64(range.lowerBound) && wide <= Int64(range.upperBound) else {
            report(key, ObjectReader.rangeProblem(range, below: wide < Int64(range.lowerBound)))
            return nil
        }
        return Int(wide)
    }

    static func rangeProblem(_ range: ClosedRange<Int>, below: Bool) -> String {
        if range.upperBound != configMaxInteger { return "must be from \(range.lowerBound) to \(range.upperBound)" }
        return below ? "must be at least \(range.lowerBound)" : "must be at most \(range.upperBound)"
    }

    func bool(_ key: String) -> Bool? {
        guard let value = self[key] else { return nil }
        guard let flag = value.boolValue else {
            report(key, "must be a boolean")
            return nil
        }
        return flag
    }

    /// The elements with their paths.
    func array(_ key: String) -> [(String, JSONValue)]? {
        guard let value = self[key] else { return nil }
        guard let items = value.arrayValue else {
            report(key, "must be an array")
            return nil
        }
        var out: [(String, JSONValue)] = []
        for i in 0..<items.count { out.append((ConfigPath.index(at(key), i), items[i])) }
        return out
    }

    /// The string elements with their paths; other elements are reported and left out.
    func strings(_ key: String) -> [(String, String)]? {
        guard let items = array(key) else { return nil }
        var out: [(String, String)] = []
        for (itemPath, item) in items {
            if let text = item.stringValue { out.append((itemPath, text)) } else { problems.add(itemPath, "must be a string") }
        }
        return out
    }

    func object(_ key: String, keys allowed: [String]) -> ObjectReader? {
        guard let value = self[key] else { return nil }
        return ObjectReader(value, at: at(key), keys: allowed, problems: problems)
    }
}
