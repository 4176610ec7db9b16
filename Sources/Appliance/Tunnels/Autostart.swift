/// `<stateDir>/autostart.json` (appliance.md §3): tunnels connected through the API with `autoStart: true` and not
/// since disconnected (as connect bodies plus the user who asked, so permissions are checked again at start), and
/// the names of configured autoStart tunnels that a user stopped. Holds no secrets: bodies carry no credentials.
public struct AutostartState: Equatable {
    public struct Entry: Equatable {
        public var userId: String
        public var body: JSONValue
        public var name: String
    }

    public static let fileName = "autostart.json"

    public var entries: [Entry] = []
    public var stopped: [String] = []

    public init() {}

    /// Lenient: a well-formed file with an unexpected member is read as far as it makes sense.
    public static func parse(_ json: JSONValue) -> AutostartState {
        var state = AutostartState()
        for item in json["tunnels"]?.arrayValue ?? [] {
            guard let user = item["userId"]?.stringValue, let body = item["body"], let name = body["name"]?.stringValue
            else { continue }
            state.entries.append(Entry(userId: user, body: body, name: name))
        }
        for name in json["stopped"]?.arrayValue ?? [] {
            if let text = name.stringValue, !state.stopped.contains(text) { state.stopped.append(text) }
        }
        return state
    }

    public func json() -> JSONValue {
        .object([
            ("version", .int(1)),
            ("tunnels", .array(entries.map { .object([("userId", .string($0.userId)), ("body", $0.body)]) })),
            ("stopped", .array(stopped.map { .string($0) })),
        ])
    }

    /// A connect: remembered when it asks for autoStart, forgotten otherwise; a user stop of that name is over.
    public mutating func connected(_ request: ConnectRequest, userId: String) {
        entries.removeAll { $0.name == request.name.text }
        stopped.removeAll { $0 == request.name.text }
        if request.autoStart {
            entries.append(Entry(userId: userId, body: request.body(), name: request.name.text))
        }
    }

    /// A disconnect or cancel by a user: not started again; a configured autoStart tunnel stays stopped.
    public mutating func stoppedByUser(_ name: String, configuredAutoStart: Bool) {
        entries.removeAll { $0.name == name }
        if configuredAutoStart && !stopped.contains(name) { stopped.append(name) }
    }

    /// Forget names the configuration no longer has.
    public mutating func prune(configured: Set<String>) {
        stopped.removeAll { !configured.contains($0) }
    }
}
