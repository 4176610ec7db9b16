import CLinux
import Relay

/// One `GET /ssh/tunnel/status/stream` subscriber. Its memory is bounded: the event being sent and at most
/// `SSEHub.queueLimit` waiting. Every transition is queued (tunnels-api.md §8: `disconnected`, `retrying` and
/// `waiting` are set in one go, and a single slot let only the last reach the client); only when the queue is
/// full does a newer snapshot replace the newest waiting one (snapshots are whole, so a slow reader only skips
/// intermediate states), and a reader that never reads costs no more than that.
final class SSESubscriber: HTTPStream {
    let userId: String
    let hub: SSEHub   // the hub outlives its subscribers: they leave it in `finished`
    // guarded by hub.lock
    var sending: [UInt8] = []
    var sendingOffset = 0
    var waiting: [[UInt8]] = []
    var keepaliveDue = false
    var lastSnapshot: String?
    var lastActivityMs: Int64
    var waker: HTTPStreamWaker?
    var ended = false
    var closing = false

    init(userId: String, hub: SSEHub, nowMs: Int64) {
        self.userId = userId
        self.hub = hub
        self.lastActivityMs = nowMs
    }

    /// hub.lock held.
    func enqueue(_ event: [UInt8]) {
        if waiting.count < SSEHub.queueLimit {
            waiting.append(event)
        } else {
            waiting[waiting.count - 1] = event
        }
    }

    func attach(_ waker: HTTPStreamWaker) { hub.lock.withLock { self.waker = waker } }

    func read(into buffer: UnsafeMutableRawBufferPointer) -> HTTPStreamRead {
        hub.lock.withLock { () -> HTTPStreamRead in
            if sendingOffset >= sending.count {
                sending = []
                sendingOffset = 0
                if !waiting.isEmpty {
                    sending = waiting.removeFirst()
                } else if keepaliveDue {
                    sending = Array(SSEHub.keepalive.utf8)
                } else if closing {
                    return .end
                } else {
                    return .wait
                }
                keepaliveDue = false
                lastActivityMs = Clock.monotonicMs()
            }
            let n = min(buffer.count, sending.count - sendingOffset)
            sending.withUnsafeBytes { source in
                buffer.baseAddress!.copyMemory(from: source.baseAddress! + sendingOffset, byteCount: n)
            }
            sendingOffset += n
            return .bytes(n)
        }
    }

    func finished() { hub.remove(self) }
}

/// Fans tunnel snapshots out to SSE subscribers, each filtered to the tunnels its user may see; sends a snapshot
/// only when what that user sees changed, and `: keepalive` after a silence.
public final class SSEHub {
    static let keepalive = ": keepalive\n\n"
    public static let maxSubscribers = 1024
    /// One user cannot take every stream (issue #15); a few browser tabs and clients stay well under it.
    public static let maxSubscribersPerUser = 128
    /// Events one subscriber may have waiting before newer ones coalesce into the last.
    static let queueLimit = 8

    let lock = Lock()
    private var subscribers: [SSESubscriber] = []
    private var stopping = false
    private let view: (String) -> String?

    /// `view(userId)` renders the statuses that user may see as one line of JSON (nil: the user is gone).
    public init(view: @escaping (String) -> String?) {
        self.view = view
    }

    public var count: Int { lock.withLock { subscribers.count } }

    /// A new subscriber with the current snapshot already queued; nil when at capacity or stopping.
    func subscribe(userId: String) -> SSESubscriber? {
        let initial = view(userId) ?? "{}"
        return lock.withLock { () -> SSESubscriber? in
            guard !stopping, subscribers.count < SSEHub.maxSubscribers,
                  subscribers.lazy.filter({ $0.userId == userId }).count < SSEHub.maxSubscribersPerUser
            else { return nil }
            let subscriber = SSESubscriber(userId: userId, hub: self, nowMs: Clock.monotonicMs())
            subscriber.lastSnapshot = initial
            subscriber.waiting = [SSEHub.event(initial)]
            subscribers.append(subscriber)
            return subscriber
        }
    }

    static func event(_ json: String) -> [UInt8] {
        Array("event: statuses\ndata: \(json)\n\n".utf8)
    }

    func remove(_ subscriber: SSESubscriber) {
        lock.withLock {
            subscriber.ended = true
            subscriber.waker = nil
            subscribers.removeAll { $0 === subscriber }
        }
    }

    /// After a tunnel change or a configuration reload: each subscriber whose view changed gets the new snapshot.
    public func publish() {
        let users = lock.withLock { subscribers.map { $0.userId } }
        var views: [String: String] = [:]
        for user in users where views[user] == nil {
            views[user] = view(user) ?? "{}"
        }
        lock.withLock {
            for subscriber in subscribers {
                guard let json = views[subscriber.userId], json != subscriber.lastSnapshot else { continue }
                subscriber.lastSnapshot = json
                subscriber.enqueue(SSEHub.event(json))
                subscriber.waker?.wake()
            }
        }
    }

    /// Periodic: queue `: keepalive` for streams silent for `seconds`.
    public func tick(keepaliveSeconds: Int) {
        let now = Clock.monotonicMs()
        lock.withLock {
            for subscriber in subscribers where !subscriber.keepaliveDue && subscriber.waiting.isEmpty
                && now - subscriber.lastActivityMs >= Int64(keepaliveSeconds) * 1000 {
                subscriber.keepaliveDue = true
                subscriber.lastActivityMs = now
                subscriber.waker?.wake()
            }
        }
    }

    /// Ends every stream (MHD aborts when stopped with suspended connections) and refuses new ones.
    public func closeAll() {
        lock.withLock {
            stopping = true
            for subscriber in subscribers {
                subscriber.closing = true
                subscriber.waker?.wake()
            }
        }
    }
}
