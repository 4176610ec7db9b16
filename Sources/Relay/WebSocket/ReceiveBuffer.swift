import CLinux

/// A pool buffer that a socket's bytes are read into and parsed in place: `unread` is what has arrived and was not
/// used yet. Room is made by starting over once everything was used, or by moving a partial frame to the front
/// when it reaches the end. The owner gives the memory back to its pool.
struct ReceiveBuffer {
    let base: UnsafeMutableRawPointer
    let size: Int
    private(set) var start = 0
    private(set) var end = 0

    /// `early` (bytes that came with the upgrade request) must fit.
    init(base: UnsafeMutableRawPointer, size: Int, early: [UInt8]) {
        precondition(early.count <= size)
        self.base = base
        self.size = size
        early.withUnsafeBytes { if let from = $0.baseAddress { base.copyMemory(from: from, byteCount: $0.count) } }
        end = early.count
    }

    var unread: UnsafeMutableRawBufferPointer { UnsafeMutableRawBufferPointer(start: base + start, count: end - start) }

    mutating func use(_ n: Int) {
        precondition(n >= 0 && start + n <= end)
        start += n
    }

    mutating func useAll() { start = end }

    /// Reads what fits from `fd`: recv's result (0 at EOF, -1 with errno set), or nil when the buffer is full of
    /// unread bytes (nothing was read).
    mutating func read(_ fd: Int32) -> Int? {
        if start == end {
            start = 0
            end = 0
        } else if end == size && start > 0 {
            // a header split at the end of the buffer: move the partial frame to the front
            base.copyMemory(from: base + start, byteCount: end - start)
            end -= start
            start = 0
        }
        guard end < size else { return nil }
        let n = recv(fd, base + end, size - end, 0)
        if n > 0 { end += n }
        return n
    }
}
