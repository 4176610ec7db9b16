import Relay

/// A remote-mode C2S relay once `ready` (tunnels-api.md §9): each connection the server forwards is a stream with
/// an id (`connection`), its bytes go to the client as base64 `data` messages, and the client's `data` and `close`
/// messages come back to it. Remote-mode output pauses the streams above `WebSocketLink.highWater` queued and
/// resumes once the link drained. Reactor thread only.
final class RemoteStreams {
    private let link: WebSocketLink
    private let table: StreamTable

    init(reactor: Reactor, link: WebSocketLink) {
        self.link = link
        let table = StreamTable(reactor: reactor)
        self.table = table
        // the table's callbacks hold this object until `close` drops them
        table.onData = { [self] id, bytes in
            self.send([("type", .string("data")), ("streamId", .string(String(id))),
                       ("data", .string(Base64.encode(bytes)))])
            if self.link.outputQueued > WebSocketLink.highWater { table.pauseReading(true) }
        }
        table.onClosed = { [self] id, error in
            var fields: [(String, JSONValue)] = [("type", .string("close")), ("streamId", .string(String(id)))]
            if let error { fields.append(("error", .string(error))) }
            self.send(fields)
        }
        table.onPressure = { [link] full in link.pauseInput(full) }
        link.onDrain = { table.pauseReading(false) }
    }

    /// A connection to the granted port, carried here by its channel.
    func add(_ fd: Int32) {
        let id = table.add(fd)
        send([("type", .string("connection")), ("streamId", .string(String(id)))])
    }

    /// What a client text message asks of the streams (§9): nil for anything else, which is ignored.
    enum Command: Equatable {
        case data(id: Int, bytes: [UInt8])
        case close(id: Int)
        /// `data` whose payload is not base64: the stream is not written.
        case badData

        static func parse(_ text: [UInt8]) -> Command? {
            guard let json = try? JSONParser.parse(text), let type = json["type"]?.stringValue,
                  let idText = json["streamId"]?.stringValue, let id = Int(idText) else { return nil }
            if type == "close" { return .close(id: id) }
            guard type == "data" else { return nil }
            guard let data = json["data"]?.stringValue, let bytes = Base64.decode(data) else { return .badData }
            return .data(id: id, bytes: bytes)
        }
    }

    /// A text message of the client.
    func message(_ text: [UInt8]) {
        switch Command.parse(text) {
        case .data(let id, let bytes):
            if !table.write(id, bytes) {
                send([("type", .string("close")), ("streamId", .string(String(id))), ("error", .string("Unknown stream"))])
            }
        case .close(let id): table.shut(id)
        case .badData, nil: return
        }
    }

    /// The session under the streams died: they end (their closes still reach the client).
    func closeAll() { table.closeAll() }

    /// The relay ends: nothing more is sent.
    func close() {
        table.onData = nil
        table.onClosed = nil
        table.onPressure = nil
        table.closeAll()
    }

    private func send(_ fields: [(String, JSONValue)]) {
        link.sendText(Array(JSONWriter.write(.object(fields)).utf8))
    }
}
