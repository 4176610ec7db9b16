/// The receive side of one WebSocket connection, without I/O (RFC 6455 §5): it walks the bytes the link has read,
/// frame by frame, unmasking payload in place. Binary payload is handed out where it lies, so the link writes it
/// to its stream without a copy and says how much was taken (`took`); what a stream could not take stays in the
/// buffer, already unmasked. Control frames and text messages come out whole (text at most `maxText`, UTF-8 checked).
public struct WebSocketReader {
    /// A plain struct with a kind (written when payload enums were thought unsafe in the Embedded build; issue #25
    /// found the real defect elsewhere: tools/embedded-runtime-check).
    public struct Event {
        public enum Kind { case more, frame, binary, text, ping, close, failure }
        public var kind: Kind
        /// Bytes at the start of the buffer this event used up (headers, control and text payload).
        public var used = 0
        /// `.binary`: this many unmasked payload bytes follow the `used` ones.
        public var count = 0
        /// `.text`: the message; `.ping`: the frame's payload.
        public var payload: [UInt8] = []
        /// `.close`: the peer's code (0: none given), or `failure` when its payload breaks the rules.
        public var code: UInt16 = 0
        public var failure: WebSocketFrame.Failure? = nil
    }

    public let maxFrame: Int
    private var frame: WebSocketFrame.Header?
    private var kind = WebSocketFrame.Opcode.binary
    private var done = 0
    private var payload: [UInt8] = []
    /// How many bytes at the start of the next buffer are binary payload unmasked already (a stream took less).
    private var clear = 0
    private var assembler: WebSocketFrame.Assembler

    public init(maxFrame: Int) {
        self.maxFrame = maxFrame
        assembler = WebSocketFrame.Assembler(maxText: maxFrame)
    }

    /// The next step over `bytes` (what has arrived and was not used yet). `.more`: nothing further until more
    /// bytes arrive; `.frame`: a frame ended with nothing for the link to do (pong, binary, text piece): call again.
    /// After `.binary` the link must call `took` before the next call.
    public mutating func next(_ bytes: UnsafeMutableRawBufferPointer) -> Event {
        var used = 0
        if frame == nil {
            let scan = WebSocketFrame.scanHeader(UnsafeRawBufferPointer(bytes), maxPayload: maxFrame)
            if let failure = scan.failure { return Event(kind: .failure, failure: failure) }
            guard let header = scan.header else { return Event(kind: .more) }
            used = header.headerLength
            frame = header
            done = 0
            payload = []
            kind = header.opcode
            if !header.opcode.isControl {
                let begun = assembler.begin(header)
                if let failure = begun.failure {
                    frame = nil
                    return Event(kind: .failure, used: used, failure: failure)
                }
                kind = begun.kind
            }
        }
        guard let header = frame else { return Event(kind: .more, used: used) }
        let take = min(bytes.count - used, header.payloadLength - done)
        if take > 0 {
            let base = bytes.baseAddress! + used
            if clear < take {
                WebSocketFrame.unmask(UnsafeMutableRawBufferPointer(start: base + clear, count: take - clear),
                                      key: header.mask ?? 0, position: done + clear)
            }
            clear = 0
            if kind == .binary { return Event(kind: .binary, used: used, count: take) }
            payload.append(contentsOf: UnsafeRawBufferPointer(start: base, count: take))
            used += take
            done += take
        }
        guard done == header.payloadLength else { return Event(kind: .more, used: used) }
        return complete(header, used: used)
    }

    /// After `.binary`: the stream took `written` of the `count` bytes offered; the rest stays unmasked in place.
    public mutating func took(_ written: Int, of count: Int) {
        done += written
        if written < count {
            clear = count - written
        } else if let header = frame, done == header.payloadLength {
            frame = nil
        }
    }

    /// After a protocol failure nothing that follows is read as frames (and no text is held any more).
    public mutating func abandon() {
        frame = nil
        payload = []
        assembler = WebSocketFrame.Assembler(maxText: maxFrame)
    }

    /// Bytes of text held now: the frame being read and the message's earlier fragments (issue #24).
    public var heldText: Int { (frame != nil && kind == .text ? payload.count : 0) + assembler.buffered }

    private mutating func complete(_ header: WebSocketFrame.Header, used: Int) -> Event {
        frame = nil
        let whole = payload
        payload = []
        if header.opcode == .ping { return Event(kind: .ping, used: used, payload: whole) }
        if header.opcode == .close {
            var event = Event(kind: .close, used: used)
            let parsed = WebSocketFrame.parseClose(whole)
            if case .failure(let failure) = parsed { event.failure = failure }
            if case .success(let code) = parsed { event.code = code ?? 0 }
            return event
        }
        guard kind == .text else { return Event(kind: .frame, used: used) }
        let part = assembler.text(whole, final: header.fin)
        if let failure = part.failure { return Event(kind: .failure, used: used, failure: failure) }
        guard let message = part.message else { return Event(kind: .frame, used: used) }
        return Event(kind: .text, used: used, payload: message)
    }
}
