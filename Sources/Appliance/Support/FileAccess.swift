import CLinux
import Relay

/// The file system as the configuration loader sees it. A class protocol so that Embedded Swift allows `any
/// FileAccess`, and so tests can hand in an in-memory fake.
public protocol FileAccess: AnyObject {
    /// The whole file; nil when it is missing, unreadable, or larger than `limit` bytes.
    func read(_ path: String, limit: Int) -> [UInt8]?
    func exists(_ path: String) -> Bool
    func isDirectory(_ path: String) -> Bool
}

/// The real file system.
public final class RealFileAccess: FileAccess {
    public init() {}

    public func read(_ path: String, limit: Int) -> [UInt8]? { FileIO.read(path, limit: limit) }

    public func exists(_ path: String) -> Bool {
        var mode: UInt32 = 0
        return cl_stat_mode(path, &mode) == 0
    }

    public func isDirectory(_ path: String) -> Bool {
        var mode: UInt32 = 0
        return cl_stat_mode(path, &mode) == 0 && (mode & UInt32(S_IFMT)) == UInt32(S_IFDIR)
    }

    /// The process's working directory, for making a relative `--config` path absolute.
    public static func currentDirectory() -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        guard getcwd(&buffer, buffer.count) != nil else { return nil }
        return String(cString: buffer)
    }
}
