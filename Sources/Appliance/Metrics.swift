import Relay

/// `GET /metrics` in the Prometheus text format (admins only: it names every tunnel).
public enum Metrics {
    public static func render(snapshot: TunnelSnapshot, subscribers: Int, sseQueuedBytes: Int = 0,
                              sseSendingBytes: Int = 0, sseByUser: [SSEUsage] = [],
                              relays: Int = 0, relaysByUser: [(String, Int)] = [],
                              relayText: Int = 0, relayTextByUser: [(String, Int)] = []) -> String {
        var out = ""
        family(&out, "sluice_build_info", "gauge", "Build of this binary.")
        out += "sluice_build_info{version=\"\(BuildInfo.version)\",target=\"\(BuildInfo.targetTriple)\"} 1\n"
        family(&out, "sluice_tunnels", "gauge", "Tunnels in the registry.")
        out += "sluice_tunnels \(snapshot.rows.count)\n"
        family(&out, "sluice_tunnel_status", "gauge", "1 for the current status of each tunnel.")
        for row in snapshot.rows {
            out += "sluice_tunnel_status{tunnel=\"\(label(row.name))\",status=\"\(row.status.state.rawValue)\"} 1\n"
        }
        family(&out, "sluice_tunnel_up", "gauge", "1 when the tunnel is connected.")
        for row in snapshot.rows { out += "sluice_tunnel_up{tunnel=\"\(label(row.name))\"} \(row.status.state == .connected ? 1 : 0)\n" }
        family(&out, "sluice_tunnel_retries", "gauge", "Retry count of the current failure streak.")
        for row in snapshot.rows { out += "sluice_tunnel_retries{tunnel=\"\(label(row.name))\"} \(row.status.retryCount ?? 0)\n" }
        family(&out, "sluice_tunnel_received_bytes", "gauge", "Bytes received since the tunnel connected.")
        for row in snapshot.rows { out += "sluice_tunnel_received_bytes{tunnel=\"\(label(row.name))\"} \(row.status.bytesIn)\n" }
        family(&out, "sluice_tunnel_sent_bytes", "gauge", "Bytes sent since the tunnel connected.")
        for row in snapshot.rows { out += "sluice_tunnel_sent_bytes{tunnel=\"\(label(row.name))\"} \(row.status.bytesOut)\n" }
        family(&out, "sluice_tunnel_active_connections", "gauge", "Open forwarded connections.")
        for row in snapshot.rows {
            out += "sluice_tunnel_active_connections{tunnel=\"\(label(row.name))\"} \(row.status.activeConnections)\n"
        }
        family(&out, "sluice_sse_subscribers", "gauge", "Open status streams.")
        out += "sluice_sse_subscribers \(subscribers)\n"
        family(&out, "sluice_sse_queued_bytes", "gauge",
               "Status-stream bytes waiting for slow readers (a shared snapshot counted once per holder).")
        out += "sluice_sse_queued_bytes \(sseQueuedBytes)\n"
        family(&out, "sluice_sse_sending_bytes", "gauge",
               "Status-stream events in the middle of being sent (counted once per holder; a user's are bounded).")
        out += "sluice_sse_sending_bytes \(sseSendingBytes)\n"
        family(&out, "sluice_sse_subscribers_by_user", "gauge", "Open status streams per user.")
        for row in sseByUser { out += "sluice_sse_subscribers_by_user{user=\"\(label(row.user))\"} \(row.streams)\n" }
        family(&out, "sluice_sse_queued_bytes_by_user", "gauge", "Status-stream bytes waiting, per user.")
        for row in sseByUser { out += "sluice_sse_queued_bytes_by_user{user=\"\(label(row.user))\"} \(row.queued)\n" }
        family(&out, "sluice_sse_sending_bytes_by_user", "gauge", "Status-stream events being sent, per user.")
        for row in sseByUser { out += "sluice_sse_sending_bytes_by_user{user=\"\(label(row.user))\"} \(row.sending)\n" }
        family(&out, "sluice_c2s_relays", "gauge", "Open C2S WebSocket relays.")
        out += "sluice_c2s_relays \(relays)\n"
        family(&out, "sluice_c2s_relays_by_user", "gauge", "Open C2S WebSocket relays per user.")
        for (user, count) in relaysByUser { out += "sluice_c2s_relays_by_user{user=\"\(label(user))\"} \(count)\n" }
        family(&out, "sluice_c2s_text_bytes", "gauge", "Bytes of unfinished C2S text messages held.")
        out += "sluice_c2s_text_bytes \(relayText)\n"
        family(&out, "sluice_c2s_text_bytes_by_user", "gauge", "Bytes of unfinished C2S text messages held, per user.")
        for (user, bytes) in relayTextByUser { out += "sluice_c2s_text_bytes_by_user{user=\"\(label(user))\"} \(bytes)\n" }
        family(&out, "sluice_refused_connections_total", "counter", "Connections refused because a limit was reached.")
        let refused = Refusals.shared.snapshot()
        for cause in Refusals.Cause.allCases {
            out += "sluice_refused_connections_total{cause=\"\(cause.label)\"} \(refused[cause.rawValue])\n"
        }
        family(&out, "sluice_pool_capacity", "gauge", "Most buffers or pipes a relay pool may hold at once.")
        let pools = PoolRegistry.shared.snapshot()
        for row in pools {
            out += "sluice_pool_capacity{pool=\"\(label(row.name))\",kind=\"\(row.kind)\",bytes=\"\(row.itemBytes)\"} \(row.capacity)\n"
        }
        family(&out, "sluice_pool_in_use", "gauge", "Buffers or pipes held by connections now.")
        for row in pools {
            out += "sluice_pool_in_use{pool=\"\(label(row.name))\",kind=\"\(row.kind)\"} \(row.inUse)\n"
        }
        family(&out, "sluice_pool_in_use_by_user", "gauge",
               "Buffers or receive windows of a relay pool held by one user's streams (a non-admin holds at most a quarter).")
        for row in PoolRegistry.shared.shares() {
            out += "sluice_pool_in_use_by_user{pool=\"\(label(row.name))\",kind=\"\(row.kind)\",user=\"\(label(row.key))\"} \(row.held)\n"
        }
        family(&out, "sluice_ssh_sessions", "gauge", "Established SSH sessions by negotiated cipher.")
        for (cipher, sessions) in SessionCiphers.shared.snapshot() {
            out += "sluice_ssh_sessions{cipher=\"\(label(cipher))\"} \(sessions)\n"
        }
        return out
    }

    static func family(_ out: inout String, _ name: String, _ type: String, _ help: String) {
        out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
    }

    /// Label values escape backslash, double quote and newline.
    static func label(_ value: String) -> String {
        var out = ""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}
