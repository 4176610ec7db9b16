import CLinux

/// logfmt lines on stderr: `ts=… level=info event=serve.listening addr=127.0.0.1:30003`.
/// Values are quoted when they hold spaces, quotes or `=`. Never pass a secret here.
public enum Log {
    public enum Level: String { case debug, info, warn, error }

    public static func info(_ event: String, _ fields: [(String, String)] = []) { emit(.info, event, fields) }
    public static func warn(_ event: String, _ fields: [(String, String)] = []) { emit(.warn, event, fields) }
    public static func error(_ event: String, _ fields: [(String, String)] = []) { emit(.error, event, fields) }

    public static func emit(_ level: Level, _ event: String, _ fields: [(String, String)]) {
        var line = "ts=\(timestamp()) level=\(level.rawValue) event=\(event)"
        for (key, value) in fields {
            line += " \(key)=\(quoted(value))"
        }
        line += "\n"
        Output.err(line)
    }

    public static func quoted(_ value: String) -> String {
        var needsQuotes = value.isEmpty
        for b in value.utf8 where b <= 0x20 || b == UInt8(ascii: "\"") || b == UInt8(ascii: "=") || b == 0x7f {
            needsQuotes = true
            break
        }
        if !needsQuotes { return value }
        return JSONWriter.write(.string(value))   // logfmt readers accept JSON string escapes
    }

    /// RFC 3339 UTC with milliseconds.
    static func timestamp() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var seconds = ts.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return "\(parts.tm_year + 1900)-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2))."
            + "\(pad(Int32(ts.tv_nsec / 1_000_000), 3))Z"
    }

    static func pad(_ value: Int32, _ width: Int) -> String {
        var s = String(value)
        while s.count < width { s = "0" + s }
        return s
    }
}
