import CLinux

/// Unbuffered writes to stdout/stderr (print() in Embedded Swift goes byte by byte through putchar).
public enum Output {
    public static func out(_ text: String) { write(fd: 1, text) }
    public static func err(_ text: String) { write(fd: 2, text) }

    static func write(fd: Int32, _ text: String) {
        var text = text
        text.withUTF8 { bytes in
            var offset = 0
            while offset < bytes.count {
                let n = CLinux.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                if n < 0 && clinux_errno() == EINTR { continue }
                if n <= 0 { return }
                offset += n
            }
        }
    }
}
