/// Whole frames waiting to go out to a WebSocket peer (control frames and the owner's text; binary payload moves
/// by splice and is never kept here), without I/O. It counts this side's own replies (pongs, close answers) apart:
/// a peer that pings without reading makes those pile up, and the link stops reading from it above a small bound.
struct WebSocketOutbox {
    private(set) var bytes: [UInt8] = []
    /// Where the bytes not yet sent begin.
    private(set) var start = 0
    /// Bytes of control frames queued since the last one queued had gone out.
    private(set) var controlQueued = 0
    /// Where in `bytes` the last control frame ends: once `start` passes it every control frame has left (text
    /// queued after it does not matter).
    private var controlEnd = 0

    /// Bytes queued and not sent.
    var queued: Int { bytes.count - start }

    mutating func queue(_ opcode: WebSocketFrame.Opcode, _ payload: [UInt8]) {
        if start > 0 && start == bytes.count {
            bytes.removeAll(keepingCapacity: bytes.capacity <= 64 * 1024)
            start = 0
            controlEnd = 0
        } else if start >= 64 * 1024 && start * 2 >= bytes.count {
            // a peer that reads slowly but never catches up: drop what has gone out, or `bytes` only grows
            bytes.removeFirst(start)
            controlEnd = max(0, controlEnd - start)
            start = 0
        }
        let header = WebSocketFrame.header(opcode, payloadLength: payload.count)
        bytes += header
        bytes += payload
        if opcode.isControl {
            controlQueued += header.count + payload.count
            controlEnd = bytes.count
        }
    }

    /// `n` more bytes went out.
    mutating func sent(_ n: Int) {
        start += n
        if start >= controlEnd { controlQueued = 0 }
    }
}
