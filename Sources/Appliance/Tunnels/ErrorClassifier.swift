import Relay

/// tunnels-api.md §8: the lowercased reason is matched against these lists in this order; the first hit wins.
public enum ErrorClassifier {
    static let rules: [(ErrorType, [String])] = [
        (.NETWORK_ERROR, ["closed by remote host", "connection reset", "connection refused", "broken pipe",
                          "host unreachable", "network is unreachable"]),
        (.AUTHENTICATION_FAILED, ["authentication failed", "permission denied",
                                  "all configured authentication methods failed", "host key"]),
        (.TIMEOUT, ["timed out", "timeout", "keepalive"]),
        (.CONNECTION_FAILED, ["address already in use", "failed for listen port", "port forwarding failed",
                              "administratively prohibited", "not allowed", "not found"]),
    ]

    public static func classify(_ reason: String) -> ErrorType {
        let text = asciiLowercased(reason)
        for (type, needles) in rules {
            for needle in needles where ByteSearch.contains(text, Array(needle.utf8)) { return type }
        }
        return .UNKNOWN
    }

    // Byte-wise: every needle is ASCII (ByteSearch: Embedded Swift has no substring search on String).
    static func asciiLowercased(_ s: String) -> [UInt8] {
        s.utf8.map { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") ? $0 + 32 : $0 }
    }
}
