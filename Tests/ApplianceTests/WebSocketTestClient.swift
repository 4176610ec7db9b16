import CLinux
import Relay

/// The client's end of a WebSocket held by the code under test (a socket pair): masked frames out, the server's
/// unmasked frames in. Blocking, with a 10 s limit per read.
struct WebSocketTestClient {
    let fd: Int32

    /// A masked client frame (RFC 6455 §5.3), final, payload under 64 KiB.
    func send(_ opcode: UInt8, _ payload: [UInt8]) {
        let key: [UInt8] = [0x11, 0x22, 0x33, 0x44]
        var frame: [UInt8] = [0x80 | opcode]
        if payload.count < 126 { frame.append(0x80 | UInt8(payload.count)) }
        else { frame += [0x80 | 126, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)] }
        frame += key
        for (i, b) in payload.enumerated() { frame.append(b ^ key[i & 3]) }
        _ = FileIO.writeAll(fd, frame)
    }

    func sendText(_ text: String) { send(1, Array(text.utf8)) }

    /// One server frame (unmasked, under 64 KiB): its opcode and payload; nil when none came within 10 s.
    func receive() -> (opcode: UInt8, payload: [UInt8])? {
        guard let head = read(2) else { return nil }
        var length = Int(head[1] & 0x7F)
        if length == 126 {
            guard let more = read(2) else { return nil }
            length = Int(more[0]) << 8 | Int(more[1])
        }
        guard let payload = read(length) else { return nil }
        return (head[0] & 0x0F, payload)
    }

    /// The next text frame as a string.
    func receiveText() -> String? {
        guard let frame = receive(), frame.opcode == 1 else { return nil }
        return String(decoding: frame.payload, as: UTF8.self)
    }

    private func read(_ count: Int) -> [UInt8]? {
        var out: [UInt8] = []
        while out.count < count {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 10_000) == 1 else { return nil }
            var buffer = [UInt8](repeating: 0, count: count - out.count)
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { return nil }
            out += buffer[..<n]
        }
        return out
    }
}
