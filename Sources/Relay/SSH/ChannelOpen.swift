extension ChannelPipe {
    /// Before the first attempt to open the stream's direct-tcpip channel: its receive window (a standard one from
    /// the stream's share, else `WindowBudget.small`: issue #24 finding 5, a user's stalled readers park at most their
    /// share) and the open's payload (RFC 4254 §7.2: host, port, originator address and port), which libssh2's own
    /// `direct_tcpip` builds the same way but always with the 2 MiB window.
    func prepareOpen() {
        standardWindow = channels.pool.standard.take(channels.share)
        openMessage = ChannelOpen.directTCPIP(host: targetHost, port: targetPort, originator: "127.0.0.1", originatorPort: 22)
    }
}

enum ChannelOpen {
    /// The type-specific part of a `direct-tcpip` CHANNEL_OPEN.
    static func directTCPIP(host: String, port: Int, originator: String, originatorPort: Int) -> [UInt8] {
        var out: [UInt8] = []
        string(&out, host)
        uint32(&out, port)
        string(&out, originator)
        uint32(&out, originatorPort)
        return out
    }

    private static func string(_ out: inout [UInt8], _ text: String) {
        uint32(&out, text.utf8.count)
        out += text.utf8
    }

    private static func uint32(_ out: inout [UInt8], _ value: Int) {
        for shift in stride(from: 24, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: value >> shift)) }
    }
}
