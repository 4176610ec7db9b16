/// `bindAllow`: the addresses the appliance's own listeners may bind. Compared as addresses, so `::0001` is `::1`;
/// a wildcard (`0.0.0.0`, `::`) only when it is listed itself. The one rule for both drivers (issue #16: the SSH
/// driver compared strings, the local one addresses).
public enum BindPolicy {
    /// A tunnel's `bindHost` as the address to use: empty (the default) and `localhost` mean `127.0.0.1`, which is
    /// what both drivers listen on; names are never resolved.
    public static func literal(_ bindHost: String) -> String {
        bindHost.isEmpty || bindHost == "localhost" ? "127.0.0.1" : bindHost
    }

    public static func allows(_ address: String, bindAllow: [String]) -> Bool {
        guard let bytes = IPBytes.parse(address) else { return false }
        return bindAllow.contains { IPBytes.parse($0) == bytes }
    }

    public static func refusal(_ address: String) -> String { "Bind address not allowed: \(address)" }
}
