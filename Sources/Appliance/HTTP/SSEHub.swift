import CLinux
import Relay

/// One serialised `statuses` event. Made once per change and per distinct view, and shared by every subscriber
/// that view is for: a hundred streams of one user hold one buffer, not a hundred copies.
final class SSEEvent {
    let bytes: [UInt8]
    init(json: String) { bytes = Array("event: statuses\ndata: \(json)\n\n".utf8) }
    init(raw: String) { bytes = Array(raw.utf8) }
    var count: Int { bytes.count }
}

/// One `GET /ssh/tunnel/status/stream` subscriber. Its memory is bounded: the event being sent and a few waiting,
/// within `SSEHub.queueLimit` events, `SSEHub.maxQueuedBytesPerSubscriber` and the user's
/// `SSEHub.maxQueuedBytesPerUser`. Transitions are queued while they fit (tunnels-api.md §8: `disconnected`,
/// `retrying` and `waiting` are set in one go, and a single slot let only the last reach the client); a snapshot
/// that does not fit replaces the whole backlog (snapshots are whole, so a slow reader gets the latest and only
/// skips intermediate states), so a reader that never reads holds the latest snapshot and no backlog.
final class SSESubscriber: HTTPStream {
    let userId: String
    let hub: SSEHub   // the hub outlives its subscribers: they leave it in `finished`
    // guarded by hub.lock
    var sending: SSEEvent?
    var sendingOffset = 0
    /// Bytes of `sending` charged to this subscriber's user while it is being sent (`SSEHub.maxSendingBytesPerUser`).
    var sendingCharged = 0
    /// Ended mid-event by `SSEHub.cut`: the next read ends the response.
    var cutOff = false
    var waiting: [SSEEvent] = []
    /// Bytes of `waiting`, as charged to this subscriber and its user (shared buffers are charged to each holder).
    var waitingBytes = 0
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

    func attach(_ waker: HTTPStreamWaker) { hub.lock.withLock { self.waker = waker } }

    func read(into buffer: UnsafeMutableRawBufferPointer) -> HTTPStreamRead {
        hub.lock.withLock { () -> HTTPStreamRead in
            // cut off by `SSEHub.cut`: the event stays unfinished (an SSE client drops a partial event)
            if cutOff { return .end }
            if sending == nil || sendingOffset >= sending!.count {
                hub.finishSending(self)
                if !waiting.isEmpty {
                    let next = waiting.removeFirst()
                    hub.uncharge(self, next.count)
                    sending = next
                    hub.chargeSending(self)
                } else if keepaliveDue {
                    sending = SSEHub.keepaliveEvent
                } else if closing {
                    return .end
                } else {
                    return .wait
                }
                keepaliveDue = false
                lastActivityMs = Clock.monotonicMs()
            }
            let event = sending!
            let n = min(buffer.count, event.count - sendingOffset)
            event.bytes.withUnsafeBytes { source in
                buffer.baseAddress!.copyMemory(from: source.baseAddress! + sendingOffset, byteCount: n)
            }
            sendingOffset += n
            // handed over whole: MHD holds what it has not written yet, the snapshot no longer counts as in flight
            if sendingOffset >= event.count { hub.finishSending(self) }
            return .bytes(n)
        }
    }

    func finished() { hub.remove(self) }
}

/// One user's part of the status streams, for `/metrics`.
public struct SSEUsage {
    public let user: String
    public let streams: Int
    public let queued: Int
    public let sending: Int
}

/// Fans tunnel snapshots out to SSE subscribers, each filtered to the tunnels its user may see; sends a snapshot
/// only when what that user sees changed, and `: keepalive` after a silence. A change is serialised once per
/// distinct view (`viewKey`: users who may use the same hosts see the same snapshot), not once per subscriber.
public final class SSEHub {
    static let keepalive = ": keepalive\n\n"
    static let keepaliveEvent = SSEEvent(raw: keepalive)
    public static let maxSubscribers = 1024
    /// One user cannot take every stream (issue #15); a few browser tabs and clients stay well under it.
    public static let maxSubscribersPerUser = 128
    /// Events one subscriber may have waiting before the latest replaces the backlog.
    static let queueLimit = 8
    /// Waiting bytes one subscriber may hold before the latest replaces its backlog (issue #24).
    public static let maxQueuedBytesPerSubscriber = 256 << 10
    /// Waiting bytes all of one user's subscribers may hold before a new snapshot replaces each backlog.
    public static let maxQueuedBytesPerUser = 2 << 20
    /// Waiting bytes of every subscriber together before a new snapshot replaces each backlog.
    public static let maxQueuedBytesTotal = 16 << 20
    /// Bytes of the events one user's streams are in the middle of sending (each counted per holder). An event being
    /// sent cannot be replaced, so a reader that stalls mid-event pins that snapshot (up to 300 KiB) after newer ones
    /// are out; a stream that is mid-event when a newer event comes while its user is over this is ended (issue #24).
    public static let maxSendingBytesPerUser = 2 << 20
    /// The same for every stream together.
    public static let maxSendingBytesTotal = 16 << 20

    let lock = Lock()
    private var subscribers: [SSESubscriber] = []
    /// Waiting bytes charged per user (guarded by `lock`).
    private var queuedByUser: [String: Int] = [:]
    private var queuedTotal = 0
    /// Bytes of events being sent, per user and in all (guarded by `lock`).
    private var sendingByUser: [String: Int] = [:]
    private var sendingTotal = 0
    private var stopping = false
    private let viewKey: (String) -> String?
    private let view: (String) -> String?

    /// `view(userId)` renders the statuses that user may see as one line of JSON (nil: the user is gone);
    /// `viewKey(userId)` names that view: two users with one key see the same JSON (nil: the user is gone).
    public init(viewKey: @escaping (String) -> String?, view: @escaping (String) -> String?) {
        self.viewKey = viewKey
        self.view = view
    }

    /// Every user a view of their own.
    public convenience init(view: @escaping (String) -> String?) {
        self.init(viewKey: { $0 }, view: view)
    }

    public var count: Int { lock.withLock { subscribers.count } }

    /// Bytes waiting in every subscriber's queue (charged per holder), for `/metrics`.
    public var queuedBytes: Int { lock.withLock { queuedTotal } }

    func queued(userId: String) -> Int { lock.withLock { queuedByUser[userId] ?? 0 } }

    /// Bytes of the events streams are in the middle of sending (per holder), for `/metrics`.
    public var sendingBytes: Int { lock.withLock { sendingTotal } }

    func sending(userId: String) -> Int { lock.withLock { sendingByUser[userId] ?? 0 } }

    /// Per user with a stream open: streams, waiting bytes, bytes in flight (sorted by user, for `/metrics`).
    public var usageByUser: [SSEUsage] {
        lock.withLock {
            var streams: [String: Int] = [:]
            for subscriber in subscribers { streams[subscriber.userId, default: 0] += 1 }
            return streams.keys.sorted().map { user in
                SSEUsage(user: user, streams: streams[user] ?? 0, queued: queuedByUser[user] ?? 0,
                         sending: sendingByUser[user] ?? 0)
            }
        }
    }

    /// lock held: the subscriber starts sending its `sending` event.
    func chargeSending(_ subscriber: SSESubscriber) {
        guard let event = subscriber.sending else { return }
        subscriber.sendingCharged = event.count
        sendingTotal += event.count
        sendingByUser[subscriber.userId, default: 0] += event.count
    }

    /// lock held: the subscriber is done with its `sending` event (sent, cut off or gone).
    func finishSending(_ subscriber: SSESubscriber) {
        let bytes = subscriber.sendingCharged
        subscriber.sending = nil
        subscriber.sendingOffset = 0
        subscriber.sendingCharged = 0
        guard bytes > 0 else { return }
        sendingTotal -= bytes
        let left = (sendingByUser[subscriber.userId] ?? 0) - bytes
        sendingByUser[subscriber.userId] = left > 0 ? left : nil
    }

    /// lock held: a stream stalled mid-event while its user (or everyone) holds too much in flight ends now: its
    /// backlog and its unfinished event are let go (the next read ends the response).
    private func cut(_ subscriber: SSESubscriber) {
        clear(subscriber)
        finishSending(subscriber)
        subscriber.cutOff = true
        subscriber.keepaliveDue = false
        subscriber.closing = true
        subscriber.waker?.wake()
    }

    /// lock held: whether a subscriber mid-event must be cut before it is given `event`.
    private func overSending(_ subscriber: SSESubscriber) -> Bool {
        guard subscriber.sendingCharged > 0, let sending = subscriber.sending, subscriber.sendingOffset < sending.count
        else { return false }
        return (sendingByUser[subscriber.userId] ?? 0) > SSEHub.maxSendingBytesPerUser
            || sendingTotal > SSEHub.maxSendingBytesTotal
    }

    /// A new subscriber with the current snapshot already queued; nil when at capacity or stopping.
    func subscribe(userId: String) -> SSESubscriber? {
        let initial = view(userId) ?? "{}"
        let event = SSEEvent(json: initial)
        return lock.withLock { () -> SSESubscriber? in
            guard !stopping, subscribers.count < SSEHub.maxSubscribers,
                  subscribers.lazy.filter({ $0.userId == userId }).count < SSEHub.maxSubscribersPerUser
            else { return nil }
            let subscriber = SSESubscriber(userId: userId, hub: self, nowMs: Clock.monotonicMs())
            subscriber.lastSnapshot = initial
            subscribers.append(subscriber)
            enqueue(event, to: subscriber)
            return subscriber
        }
    }

    func remove(_ subscriber: SSESubscriber) {
        lock.withLock {
            subscriber.ended = true
            subscriber.waker = nil
            clear(subscriber)
            finishSending(subscriber)
            subscribers.removeAll { $0 === subscriber }
        }
    }

    /// lock held.
    func uncharge(_ subscriber: SSESubscriber, _ bytes: Int) {
        subscriber.waitingBytes -= bytes
        queuedTotal -= bytes
        let left = (queuedByUser[subscriber.userId] ?? 0) - bytes
        queuedByUser[subscriber.userId] = left > 0 ? left : nil
    }

    /// lock held: drops the subscriber's backlog.
    private func clear(_ subscriber: SSESubscriber) {
        uncharge(subscriber, subscriber.waitingBytes)
        subscriber.waiting = []
    }

    /// lock held: queued when it fits every bound, else it replaces the backlog (the latest is always kept).
    private func enqueue(_ event: SSEEvent, to subscriber: SSESubscriber) {
        let user = queuedByUser[subscriber.userId] ?? 0
        let fits = subscriber.waiting.count < SSEHub.queueLimit
            && subscriber.waitingBytes + event.count <= SSEHub.maxQueuedBytesPerSubscriber
            && user + event.count <= SSEHub.maxQueuedBytesPerUser
            && queuedTotal + event.count <= SSEHub.maxQueuedBytesTotal
        if !fits { clear(subscriber) }
        subscriber.waiting.append(event)
        subscriber.waitingBytes += event.count
        queuedTotal += event.count
        queuedByUser[subscriber.userId, default: 0] += event.count
    }

    /// After a tunnel change or a configuration reload: each subscriber whose view changed gets the new snapshot,
    /// serialised once per view; the streams of a user the configuration no longer has end now (issue #24).
    public func publish() {
        let users = lock.withLock { subscribers.map { $0.userId } }
        var keys: [String: String] = [:]        // user → view key
        var gone: Set<String> = []
        var rendered: [String: String] = [:]    // view key → JSON
        for user in users where keys[user] == nil && !gone.contains(user) {
            guard let key = viewKey(user) else { gone.insert(user); continue }
            keys[user] = key
            if rendered[key] == nil {
                guard let json = view(user) else { gone.insert(user); keys[user] = nil; continue }
                rendered[key] = json
            }
        }
        var events: [String: SSEEvent] = [:]    // view key → the one event every holder of that view shares
        lock.withLock {
            for subscriber in subscribers {
                if gone.contains(subscriber.userId) {
                    guard !subscriber.closing else { continue }
                    clear(subscriber)
                    subscriber.keepaliveDue = false
                    subscriber.closing = true
                    subscriber.waker?.wake()
                    continue
                }
                guard let key = keys[subscriber.userId], let json = rendered[key],
                      json != subscriber.lastSnapshot else { continue }
                let event: SSEEvent
                if let made = events[key] { event = made } else {
                    event = SSEEvent(json: json)
                    events[key] = event
                }
                subscriber.lastSnapshot = json
                if overSending(subscriber) {
                    cut(subscriber)
                    continue
                }
                enqueue(event, to: subscriber)
                subscriber.waker?.wake()
            }
        }
    }

    /// Periodic: queue `: keepalive` for streams silent for `seconds`.
    public func tick(keepaliveSeconds: Int) {
        let now = Clock.monotonicMs()
        lock.withLock {
            for subscriber in subscribers where !subscriber.closing && !subscriber.keepaliveDue
                && subscriber.waiting.isEmpty && now - subscriber.lastActivityMs >= Int64(keepaliveSeconds) * 1000 {
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
