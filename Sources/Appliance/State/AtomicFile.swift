import CLinux
import Relay

/// Whole-file writes that survive a power cut at any instant (appliance.md §3): the reader sees the old file or the
/// new one, never a mix. Temp file in the same folder (rename is atomic only within one filesystem), fsync before the
/// rename (else the rename may reach the disk before the data), fsync of the folder after it (else the rename itself
/// may be lost).
public enum AtomicFile {
    /// nil on success, else what failed; no temp file is left behind either way.
    public static func write(_ path: String, _ bytes: [UInt8], mode: UInt32) -> String? {
        let (folder, base) = split(path)
        // mkstemp opens O_CREAT|O_EXCL with 0600, so a half-written temp file is never readable by others.
        var template = "\(folder)/.\(base)\(tempMarker)XXXXXX".utf8CString
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { return "cannot create a temp file in \(folder): \(errorText())" }
        let temp = String(decoding: template.dropLast().map { UInt8(truncatingIfNeeded: $0) },
                          as: UTF8.self)

        var failure: String?
        if fchmod(fd, mode_t(mode)) != 0 {
            failure = "cannot set the mode of \(temp): \(errorText())"
        } else if let problem = FileIO.writeAll(fd, bytes) {
            failure = "cannot write \(temp): \(problem)"
        } else if fsync(fd) != 0 {
            failure = "cannot sync \(temp): \(errorText())"
        }
        if close(fd) != 0 && failure == nil { failure = "cannot close \(temp): \(errorText())" }
        if failure == nil && rename(temp, path) != 0 { failure = "cannot rename \(temp) to \(path): \(errorText())" }
        if let failure {
            unlink(temp)
            return failure
        }
        return FileIO.syncFolder(folder)
    }

    /// The whole file, or nil when it is missing, unreadable or longer than `limit` bytes.
    public static func read(_ path: String, limit: Int) -> [UInt8]? { FileIO.read(path, limit: limit) }

    static let tempMarker = ".tmp-"

    /// Whether `name` is one of this writer's temp files: `.<name>.tmp-XXXXXX`.
    static func isTempName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        let marker = Array(tempMarker.utf8)
        let tail = bytes.count - marker.count - 6
        guard bytes.first == UInt8(ascii: "."), tail > 1 else { return false }
        return Array(bytes[tail..<(tail + marker.count)]) == marker
    }

    /// (folder, file name) of a path; a bare name lives in ".".
    static func split(_ path: String) -> (String, String) {
        let bytes = Array(path.utf8)
        guard let slash = bytes.lastIndex(of: UInt8(ascii: "/")) else { return (".", path) }
        let folder = slash == 0 ? "/" : String(decoding: bytes[0..<slash], as: UTF8.self)
        return (folder, String(decoding: bytes[(slash + 1)...], as: UTF8.self))
    }

    static func errorText() -> String { FileIO.errorText() }
}
