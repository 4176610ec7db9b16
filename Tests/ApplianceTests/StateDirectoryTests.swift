import CLinux
import Testing
@testable import Appliance

/// A fresh folder under /tmp per test, removed afterwards.
final class StateTestFolder {
    let path: String

    init() {
        var template = "/tmp/sluice-state-test-XXXXXX".utf8CString
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(made != nil, "mkdtemp failed")
        path = String(cString: made!)
    }

    deinit {
        for name in entries() { unlink("\(path)/\(name)") }
        rmdir(path)
    }

    func entries() -> [String] {
        guard let dir = opendir(path) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    func mode(_ name: String) -> UInt32? {
        var mode: UInt32 = 0
        return cl_stat_mode("\(path)/\(name)", &mode) == 0 ? mode & 0o7777 : nil
    }

    func put(_ name: String, _ text: String) {
        #expect(AtomicFile.write("\(path)/\(name)", Array(text.utf8), mode: 0o644) == nil)
    }

    func text(_ name: String) -> String? {
        AtomicFile.read("\(path)/\(name)", limit: 1 << 20).map { String(decoding: $0, as: UTF8.self) }
    }
}

@Suite struct AtomicFileTests {
    @Test func writesReadsAndLeavesNoTemp() {
        let tmp = StateTestFolder()
        #expect(AtomicFile.write("\(tmp.path)/a.json", Array("one".utf8), mode: 0o600) == nil)
        #expect(tmp.text("a.json") == "one")
        #expect(tmp.mode("a.json") == 0o600)
        #expect(AtomicFile.write("\(tmp.path)/a.json", Array("two!".utf8), mode: 0o640) == nil)
        #expect(tmp.text("a.json") == "two!")
        #expect(tmp.mode("a.json") == 0o640)
        #expect(tmp.entries() == ["a.json"])
    }

    @Test func modeIsExactWhateverTheUmask() {
        let tmp = StateTestFolder()
        let old = umask(0o077)
        defer { umask(old) }
        #expect(AtomicFile.write("\(tmp.path)/f", [1, 2, 3], mode: 0o644) == nil)
        #expect(tmp.mode("f") == 0o644)
        #expect(AtomicFile.read("\(tmp.path)/f", limit: 3) == [1, 2, 3])
    }

    @Test func emptyAndLargeFiles() {
        let tmp = StateTestFolder()
        let big = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        #expect(AtomicFile.write("\(tmp.path)/big", big, mode: 0o600) == nil)
        #expect(AtomicFile.read("\(tmp.path)/big", limit: big.count) == big)
        #expect(AtomicFile.read("\(tmp.path)/big", limit: big.count - 1) == nil)
        #expect(AtomicFile.write("\(tmp.path)/empty", [], mode: 0o600) == nil)
        #expect(AtomicFile.read("\(tmp.path)/empty", limit: 10) == [])
    }

    @Test func failureLeavesOldFileAndNoTemp() {
        let tmp = StateTestFolder()
        tmp.put("keep", "old")
        // Renaming a file over a non-empty folder fails after the temp file was written.
        #expect(mkdir("\(tmp.path)/dir", 0o700) == 0)
        #expect(mkdir("\(tmp.path)/dir/child", 0o700) == 0)
        defer { rmdir("\(tmp.path)/dir/child"); rmdir("\(tmp.path)/dir") }
        #expect(AtomicFile.write("\(tmp.path)/dir", Array("new".utf8), mode: 0o600) != nil)
        #expect(tmp.entries() == ["dir", "keep"])
        #expect(tmp.text("keep") == "old")
        #expect(AtomicFile.write("\(tmp.path)/missing/x", [1], mode: 0o600) != nil)
    }

    @Test func missingFileReadsNil() {
        let tmp = StateTestFolder()
        #expect(AtomicFile.read("\(tmp.path)/nothing", limit: 10) == nil)
    }

    @Test func bareNameLivesInCurrentFolder() {
        #expect(AtomicFile.split("name") == (".", "name"))
        #expect(AtomicFile.split("/name") == ("/", "name"))
        #expect(AtomicFile.split("a/b/c") == ("a/b", "c"))
    }
}

@Suite struct StateDirectoryTests {
    @Test func prepareCreatesNestedFolders0700() {
        let tmp = StateTestFolder()
        let state = StateDirectory(path: "\(tmp.path)/var/lib/sluice")
        #expect(state.prepare() == nil)
        #expect(tmp.mode("var") == 0o700)
        var mode: UInt32 = 0
        #expect(cl_stat_mode(state.path, &mode) == 0 && mode & 0o7777 == 0o700)
        #expect(state.prepare() == nil)
        rmdir(state.path); rmdir("\(tmp.path)/var/lib")
        rmdir("\(tmp.path)/var")
    }

    @Test func prepareRefusesAFile() {
        let tmp = StateTestFolder()
        tmp.put("plain", "x")
        #expect(StateDirectory(path: "\(tmp.path)/plain").prepare() != nil)
        #expect(StateDirectory(path: "\(tmp.path)/plain/sub").prepare() != nil)
    }

    @Test func jwtSecretIsCreatedOnceWithMode0600() throws {
        let tmp = StateTestFolder()
        let state = StateDirectory(path: tmp.path)
        let first = try #require(state.jwtSecret())
        #expect(first.created)
        #expect(first.secret.utf8.count == 64)
        #expect(first.secret.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) })
        #expect(tmp.mode("jwt_secret") == 0o600)
        let second = try #require(state.jwtSecret())
        #expect(!second.created && second.secret == first.secret)
        #expect(tmp.entries() == ["jwt_secret"])
        let elsewhere = StateTestFolder()
        let other = try #require(StateDirectory(path: elsewhere.path).jwtSecret())
        #expect(other.secret != first.secret)
    }

    @Test func operatorSecretWithNewlineIsKept() throws {
        let tmp = StateTestFolder()
        let secret = String(repeating: "k", count: 70)
        tmp.put("jwt_secret", secret + "\r\n")
        let got = try #require(StateDirectory(path: tmp.path).jwtSecret())
        #expect(got.secret == secret && !got.created)
    }

    @Test func shortSecretIsSetAsideAndReplaced() throws {
        let tmp = StateTestFolder()
        tmp.put("jwt_secret", "short")
        let got = try #require(StateDirectory(path: tmp.path).jwtSecret())
        #expect(got.created && got.secret.utf8.count == 64)
        let names = tmp.entries()
        #expect(names.count == 2)
        let aside = try #require(names.first { $0.hasPrefix("jwt_secret.corrupt-") })
        #expect(UInt64(aside.dropFirst("jwt_secret.corrupt-".count)) != nil)
        #expect(tmp.text(aside) == "short")
        #expect(tmp.mode("jwt_secret") == 0o600)
    }

    @Test func jsonRoundTrip() {
        let tmp = StateTestFolder()
        let state = StateDirectory(path: tmp.path)
        let value = JSONValue.object([("tunnels", .array([.string("1::0::e::1::::2")])), ("n", .int(3))])
        #expect(state.readJSON("autostart.json") == nil)
        #expect(state.writeJSON("autostart.json", value) == nil)
        #expect(state.readJSON("autostart.json") == value)
        #expect(tmp.mode("autostart.json") == 0o600)
        #expect(tmp.entries() == ["autostart.json"])
    }

    @Test func corruptJSONIsSetAsideAndAbsent() throws {
        let tmp = StateTestFolder()
        tmp.put("autostart.json", "{\"tunnels\": [")
        let state = StateDirectory(path: tmp.path)
        #expect(state.readJSON("autostart.json") == nil)
        let names = tmp.entries()
        #expect(names.count == 1)
        let aside = try #require(names.first)
        #expect(aside.hasPrefix("autostart.json.corrupt-"))
        #expect(tmp.text(aside) == "{\"tunnels\": [")
        #expect(state.readJSON("autostart.json") == nil)
        #expect(state.writeJSON("autostart.json", .object([])) == nil)
        #expect(state.readJSON("autostart.json") == .object([]))
    }

    @Test func unreadableStateFileIsSetAside() throws {
        let tmp = StateTestFolder()
        #expect(mkdir("\(tmp.path)/known.json", 0o700) == 0)   // a folder where a file belongs cannot be read
        let state = StateDirectory(path: tmp.path)
        #expect(state.readJSON("known.json") == nil)
        let aside = try #require(tmp.entries().first)
        #expect(aside.hasPrefix("known.json.corrupt-"))
        rmdir("\(tmp.path)/\(aside)")
    }

    @Test func prepareDropsStaleTempFiles() {
        let tmp = StateTestFolder()
        tmp.put("autostart.json", "{}")
        tmp.put(".autostart.json.tmp-a1B2c3", "{\"half")
        tmp.put(".hidden", "operator's")
        tmp.put("notes.tmp-abcdef", "not ours")
        #expect(StateDirectory(path: tmp.path).prepare() == nil)
        #expect(tmp.entries() == [".hidden", "autostart.json", "notes.tmp-abcdef"])
    }

    @Test func tempNames() {
        #expect(AtomicFile.isTempName(".jwt_secret.tmp-Xy12Z9"))
        #expect(!AtomicFile.isTempName(".tmp-Xy12Z9"))
        #expect(!AtomicFile.isTempName("jwt_secret.tmp-Xy12Z9"))
        #expect(!AtomicFile.isTempName(".jwt_secret.tmp-Xy12Z"))
        #expect(!AtomicFile.isTempName(".a"))
    }

    @Test func hexIsLowercase() {
        #expect(StateDirectory.hex([0x00, 0xAB, 0x9F, 0xFF]) == "00ab9fff")
    }
}
