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

    /// The registry entry of `name` is gone (evicted for room, or its host removed): so is its record.
    public mutating func forget(_ name: String) {
        entries.removeAll { $0.name == name }
    }

    /// At start-up (issue #24): the records the run-time limits allow, whatever wrote the file. Admins' records are
    /// kept first, so one user's records never cost another's; a non-admin keeps at most `share`, all together at
    /// most `room`; records of users the configuration no longer has are dropped. Returns the dropped names.
    public mutating func bound(room: Int, share: Int, isAdmin: (String) -> Bool?) -> [String] {
        var kept = [Bool](repeating: false, count: entries.count)
        var perUser: [String: Int] = [:]
        var total = 0
        for adminsFirst in [true, false] {
            for (i, entry) in entries.enumerated() {
                guard let admin = isAdmin(entry.userId), admin == adminsFirst, total < room else { continue }
                if !admin {
                    guard perUser[entry.userId, default: 0] < share else { continue }
                    perUser[entry.userId, default: 0] += 1
                }
                total += 1
                kept[i] = true
            }
        }
        var dropped: [String] = []
        var next: [Entry] = []
        for (i, entry) in entries.enumerated() {
            if kept[i] { next.append(entry) } else { dropped.append(entry.name) }
        }
        entries = next
        return dropped
    }

    /// The largest record the connect checks allow (a 512-byte name and two 255-byte hosts, each byte escaped as
    /// `\u00XX` in the worst case, and the numbers): the file of `maxTunnels` records stays under this times that.
    public static let maxRecordBytes = 8 << 10

    /// Forget names the configuration no longer has.
    public mutating func prune(configured: Set<String>) {
        stopped.removeAll { !configured.contains($0) }
    }
}
