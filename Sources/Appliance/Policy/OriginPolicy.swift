/// Which web pages may open the WebSocket relay (tunnels-api.md §9): a browser sends `Origin`, and a page of
/// another site must not ride the user's cookie into the relay. No `Origin` (native clients, scripts) passes;
/// otherwise it must be in `allowedOrigins` or name the host the request was sent to. Comparison is
/// case-insensitive with default ports normalized (`:80` for http, `:443` for https).
public enum OriginPolicy {
    public static func allows(origin: String?, host: String?, allowed: [String]) -> Bool {
        guard let origin else { return true }
        guard let parsed = split(origin) else { return false }
        let normalized = parsed.scheme + "://" + parsed.authority
        for entry in allowed {
            if let listed = split(entry), listed.scheme + "://" + listed.authority == normalized { return true }
        }
        guard let host, !host.isEmpty else { return false }
        return authority(lowercase(host), scheme: parsed.scheme) == parsed.authority
    }

    /// `scheme://host[:port]` → lowercased scheme and `host[:port]` without the scheme's default port; nil for
    /// anything else (`null`, a path, another scheme).
    static func split(_ text: String) -> (scheme: String, authority: String)? {
        let lower = lowercase(text)
        for scheme in ["http", "https"] {
            let prefix = scheme + "://"
            guard lower.hasPrefix(prefix) else { continue }
            let rest = String(lower.dropFirst(prefix.count))
            guard !rest.isEmpty, !rest.utf8.contains(where: { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?")
                                                          || $0 == UInt8(ascii: "#") || $0 == UInt8(ascii: "@") || $0 <= 32 })
            else { return nil }
            return (scheme, authority(rest, scheme: scheme))
        }
        return nil
    }

    static func authority(_ hostPort: String, scheme: String) -> String {
        let suffix = scheme == "https" ? ":443" : ":80"
        return hostPort.hasSuffix(suffix) ? String(hostPort.dropLast(suffix.count)) : hostPort
    }

    static func lowercase(_ text: String) -> String {
        String(decoding: text.utf8.map { HTTPRequestHead.lower($0) }, as: UTF8.self)
    }
}
