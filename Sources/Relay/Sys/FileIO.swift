import CLinux

/// Whole-file reads and errno text without stdio or strerror: in a static glibc those drag in locale, gettext and
/// printf machinery worth more than a hundred KiB, which the small flavour's size budget cannot afford.
public enum FileIO {
    /// The whole file; nil when it is missing, unreadable, a folder, or larger than `limit` bytes.
    public static func read(_ path: String, limit: Int) -> [UInt8]? {
        let fd = cl_open(path, O_RDONLY, 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = chunk.withUnsafeMutableBytes { CLinux.read(fd, $0.baseAddress, $0.count) }
            if n < 0 && clinux_errno() == EINTR { continue }
            if n < 0 { return nil }     // EISDIR for a folder
            if n == 0 { return bytes }
            // one byte past the limit is enough to refuse an oversized file instead of cutting it short
            if bytes.count + n > limit { return nil }
            bytes.append(contentsOf: chunk[0..<n])
        }
    }

    /// Writes everything, retrying short writes and EINTR; nil on success, else the error text.
    public static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> String? {
        bytes.withUnsafeBytes { buffer -> String? in
            var offset = 0
            while offset < buffer.count {
                let n = CLinux.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if n < 0 && clinux_errno() == EINTR { continue }
                if n < 0 { return errorText() }
                if n == 0 { return "no progress" }
                offset += n
            }
            return nil
        }
    }

    /// fsync of a folder, so that a rename or create in it is durable.
    public static func syncFolder(_ folder: String) -> String? {
        let fd = cl_open(folder, O_RDONLY | O_DIRECTORY, 0)
        guard fd >= 0 else { return "cannot open \(folder) to sync it: \(errorText())" }
        defer { close(fd) }
        if fsync(fd) != 0 { return "cannot sync \(folder): \(errorText())" }
        return nil
    }

    /// The current errno as text.
    public static func errorText() -> String { errorText(clinux_errno()) }

    public static func errorText(_ code: Int32) -> String {
        switch code {
        case EPERM: return "operation not permitted"
        case ENOENT: return "no such file or directory"
        case EINTR: return "interrupted"
        case EIO: return "input/output error"
        case EBADF: return "bad file descriptor"
        case EAGAIN: return "resource temporarily unavailable"
        case ENOMEM: return "out of memory"
        case EACCES: return "permission denied"
        case EEXIST: return "file exists"
        case ENOTDIR: return "not a directory"
        case EISDIR: return "is a directory"
        case EINVAL: return "invalid argument"
        case ENFILE, EMFILE: return "too many open files"
        case ENOSPC: return "no space left on device"
        case EROFS: return "read-only file system"
        case EPIPE: return "broken pipe"
        case ENAMETOOLONG: return "file name too long"
        case EDQUOT: return "disk quota exceeded"
        case EADDRINUSE: return "address already in use"
        case EADDRNOTAVAIL: return "cannot assign requested address"
        case ENETUNREACH: return "network is unreachable"
        case ECONNABORTED: return "connection aborted"
        case ECONNRESET: return "connection reset by peer"
        case ETIMEDOUT: return "connection timed out"
        case ECONNREFUSED: return "connection refused"
        case EHOSTUNREACH: return "host unreachable"
        default: return "errno \(code)"
        }
    }
}
