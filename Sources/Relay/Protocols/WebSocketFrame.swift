/// RFC 6455 framing, server side, no I/O: frame headers parsed from what has arrived, payload unmasking, server
/// frame headers, close payloads, and the reassembly rules for fragmented messages. The codes are the RFC's:
/// 1002 protocol error, 1007 invalid UTF-8, 1009 too big.
public enum WebSocketFrame {
    public enum Opcode: UInt8 {
        case continuation = 0, text = 1, binary = 2, close = 8, ping = 9, pong = 10
        public var isControl: Bool { rawValue >= 8 }
    }

    public struct Header: Equatable {
        public var fin: Bool
        public var opcode: Opcode
        public var mask: UInt32?        // the key as 4 bytes in wire order, big-endian packed
        public var payloadLength: Int
        public var headerLength: Int
    }

    public struct Failure: Error, Equatable {
        public let code: UInt16
        public let reason: String
    }

    public enum Parse: Equatable {
        case needMore
        case header(Header)
        case failure(Failure)
    }

    public static let protocolError: UInt16 = 1002
    public static let invalidData: UInt16 = 1007
    public static let tooBig: UInt16 = 1009

    /// `parseHeader` as a plain struct (neither set: more bytes needed). The relay uses this form (chosen against a
    /// payload-enum miscompile that issue #25 found not to exist: see SOCKS5.pair).
    public struct Scan {
        public var header: Header? = nil
        public var failure: Failure? = nil
    }

    /// The header at the start of `bytes`. Client frames must be masked; no extension is negotiated, so RSV bits
    /// must be 0; control frames are final and at most 125 bytes; a payload above `maxPayload` is 1009.
    public static func scanHeader(_ bytes: UnsafeRawBufferPointer, maxPayload: Int) -> Scan {
        guard bytes.count >= 2 else { return Scan() }
        let b0 = bytes[0], b1 = bytes[1]
        guard b0 & 0x70 == 0 else { return Scan(failure: Failure(code: protocolError, reason: "reserved bits set")) }
        guard let opcode = Opcode(rawValue: b0 & 0x0F) else {
            return Scan(failure: Failure(code: protocolError, reason: "unknown opcode"))
        }
        let fin = b0 & 0x80 != 0
        guard b1 & 0x80 != 0 else { return Scan(failure: Failure(code: protocolError, reason: "client frame not masked")) }
        var length = Int(b1 & 0x7F)
        var offset = 2
        if length == 126 {
            guard bytes.count >= 4 else { return Scan() }
            length = Int(bytes[2]) << 8 | Int(bytes[3])
            offset = 4
        } else if length == 127 {
            guard bytes.count >= 10 else { return Scan() }
            guard bytes[2] & 0x80 == 0 else { return Scan(failure: Failure(code: protocolError, reason: "length too large")) }
            var value: UInt64 = 0
            for i in 2..<10 { value = value << 8 | UInt64(bytes[i]) }
            guard value <= UInt64(Int32.max) else { return Scan(failure: Failure(code: tooBig, reason: "frame too large")) }
            length = Int(value)
            offset = 10
        }
        if opcode.isControl {
            guard fin else { return Scan(failure: Failure(code: protocolError, reason: "fragmented control frame")) }
            guard length <= 125 else { return Scan(failure: Failure(code: protocolError, reason: "control frame too long")) }
        }
        guard length <= maxPayload else { return Scan(failure: Failure(code: tooBig, reason: "frame too large")) }
        guard bytes.count >= offset + 4 else { return Scan() }
        let key = UInt32(bytes[offset]) << 24 | UInt32(bytes[offset + 1]) << 16 | UInt32(bytes[offset + 2]) << 8
            | UInt32(bytes[offset + 3])
        return Scan(header: Header(fin: fin, opcode: opcode, mask: key, payloadLength: length, headerLength: offset + 4))
    }

    /// `scanHeader` as an enum (tests and the fuzz target).
    public static func parseHeader(_ bytes: UnsafeRawBufferPointer, maxPayload: Int) -> Parse {
        let scan = scanHeader(bytes, maxPayload: maxPayload)
        if let header = scan.header { return .header(header) }
        if let failure = scan.failure { return .failure(failure) }
        return .needMore
    }

    /// Unmasks in place; `position` is the payload offset of `bytes[0]` (payloads may arrive in pieces).
    /// A zero key costs nothing; otherwise 8 bytes at a time, without allocating (little-endian hosts: x86_64, arm64).
    public static func unmask(_ bytes: UnsafeMutableRawBufferPointer, key: UInt32, position: Int) {
        guard key != 0, let base = bytes.baseAddress else { return }
        // the key as it lies in memory (wire order), turned so that byte 0 of this piece meets its key byte
        let shift = UInt32((position & 3) * 8)
        let inMemory = key.byteSwapped
        let turned = shift == 0 ? inMemory : (inMemory >> shift) | (inMemory << (32 - shift))
        let wide = UInt64(turned) | UInt64(turned) << 32
        let count = bytes.count
        var i = 0
        while i + 8 <= count {
            let word = base.loadUnaligned(fromByteOffset: i, as: UInt64.self) ^ wide
            base.storeBytes(of: word, toByteOffset: i, as: UInt64.self)
            i += 8
        }
        while i < count {
            let keyByte = UInt8(truncatingIfNeeded: turned >> UInt32((i & 3) * 8))
            base.storeBytes(of: base.load(fromByteOffset: i, as: UInt8.self) ^ keyByte, toByteOffset: i, as: UInt8.self)
            i += 1
        }
    }

    /// A server frame header (servers never mask): FIN set.
    public static func header(_ opcode: Opcode, payloadLength: Int) -> [UInt8] {
        var out: [UInt8] = [0x80 | opcode.rawValue]
        if payloadLength < 126 {
            out.append(UInt8(payloadLength))
        } else if payloadLength <= 0xFFFF {
            out += [126, UInt8(payloadLength >> 8), UInt8(payloadLength & 0xFF)]
        } else {
            out.append(127)
            for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(UInt64(payloadLength) >> UInt64(shift) & 0xFF)) }
        }
        return out
    }

    /// A whole server frame.
    public static func frame(_ opcode: Opcode, _ payload: [UInt8]) -> [UInt8] {
        header(opcode, payloadLength: payload.count) + payload
    }

    /// The payload of a close frame the client sent: nil (no code), a valid code with its reason, or a failure.
    public static func parseClose(_ payload: [UInt8]) -> Result<UInt16?, Failure> {
        if payload.isEmpty { return .success(nil) }
        guard payload.count >= 2 else { return .failure(Failure(code: protocolError, reason: "bad close payload")) }
        let code = UInt16(payload[0]) << 8 | UInt16(payload[1])
        let valid = (1000...1003).contains(code) || (1007...1011).contains(code) || (3000...4999).contains(code)
        guard valid else { return .failure(Failure(code: protocolError, reason: "invalid close code")) }
        guard UTF8Check.firstInvalid(Array(payload[2...])) == nil else {
            return .failure(Failure(code: invalidData, reason: "close reason is not UTF-8"))
        }
        return .success(code)
    }

    /// A close frame's payload: the code, then a UTF-8 reason cut to fit 125 bytes.
    public static func closePayload(_ code: UInt16, _ reason: String) -> [UInt8] {
        var out: [UInt8] = [UInt8(code >> 8), UInt8(code & 0xFF)]
        var text = Array(reason.utf8)
        while text.count > 123 || (text.count > 0 && UTF8Check.firstInvalid(text) != nil) { text.removeLast() }
        out += text
        return out
    }

    /// Message-level rules over a sequence of data frames: a continuation needs an open message, a new message
    /// may not start inside another, and text is limited (whole) and UTF-8 checked when it completes. The relay
    /// calls `begin` at each data frame's header and `text` once a text frame's payload is in; binary payloads
    /// are never kept.
    public struct Assembler {
        public let maxText: Int
        var open: Opcode?
        var text: [UInt8] = []

        public init(maxText: Int) { self.maxText = maxText }

        /// Text of an unfinished message held now.
        public var buffered: Int { text.count }

        /// What a data frame carries (`kind` .text or .binary), or why it breaks the rules.
        public struct Begun {
            public var kind: Opcode
            public var failure: Failure?
        }

        public mutating func begin(_ header: Header) -> Begun {
            precondition(!header.opcode.isControl)
            var kind = header.opcode
            if kind == .continuation {
                guard let current = open else {
                    return Begun(kind: .binary, failure: Failure(code: WebSocketFrame.protocolError,
                                                                 reason: "continuation without a message"))
                }
                kind = current
            } else if open != nil {
                return Begun(kind: kind, failure: Failure(code: WebSocketFrame.protocolError,
                                                          reason: "new message inside a fragmented one"))
            }
            if kind == .text && text.count + header.payloadLength > maxText {
                return Begun(kind: kind, failure: Failure(code: WebSocketFrame.tooBig, reason: "message too large"))
            }
            open = header.fin ? nil : kind
            return Begun(kind: kind, failure: nil)
        }

        /// A text frame's whole payload: `message` is set when it completed a message.
        public struct TextPart {
            public var message: [UInt8]?
            public var failure: Failure?
        }

        public mutating func text(_ payload: [UInt8], final: Bool) -> TextPart {
            guard text.count + payload.count <= maxText else {
                text = []
                return TextPart(message: nil, failure: Failure(code: WebSocketFrame.tooBig, reason: "message too large"))
            }
            text += payload
            guard final else { return TextPart(message: nil, failure: nil) }
            let message = text
            text = []
            guard UTF8Check.firstInvalid(message) == nil else {
                return TextPart(message: nil, failure: Failure(code: WebSocketFrame.invalidData, reason: "text is not UTF-8"))
            }
            return TextPart(message: message, failure: nil)
        }

        public enum Event: Equatable {
            case binary(final: Bool)        // relay this frame's payload as it is
            case text([UInt8])              // a complete text message
            case textPart                   // a piece of a text message was kept
        }

        /// `begin` and `text` in one step, for a frame whose payload (unmasked) is in (tests, fuzzing).
        public mutating func frame(_ header: Header, payload: [UInt8]) -> Result<Event, Failure> {
            let begun = begin(header)
            if let failure = begun.failure { return .failure(failure) }
            if begun.kind == .binary { return .success(.binary(final: header.fin)) }
            let part = text(payload, final: header.fin)
            if let failure = part.failure { return .failure(failure) }
            if let message = part.message { return .success(.text(message)) }
            return .success(.textPart)
        }
    }

    /// Sec-WebSocket-Accept input: the client's key and the RFC's GUID (hash it with SHA-1, then base64).
    public static func acceptInput(key: String) -> [UInt8] {
        Array((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").utf8)
    }
}
