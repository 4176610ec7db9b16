import CLinux
import CSSH2

/// One stream: a TCP socket here and an SSH channel, with one pool buffer per direction. A full buffer stops
/// reading its source (backpressure); EOF travels each way on its own (half-close).
final class ChannelPipe {
    enum Phase {
        /// SOCKS5 greeting and request still arriving.
        case socks
        /// Waiting in the session's direct-tcpip queue.
        case opening
        /// Remote forward: the local TCP connect is in progress.
        case connecting
        case relay
    }

    let channels: SSHChannels
    let fd: Int32
    var channel: OpaquePointer?
    var phase: Phase
    var targetHost = ""
    var targetPort = 0
    /// false for a managed tunnel's carrier (the inner session's transport): not user traffic.
    var counted = true
    /// Told once how the direct-tcpip open ended (`SSHChannels.open`, `carry`).
    var onOpen: ((StreamOpenOutcome) -> Void)?
    private let up: UnsafeMutableRawPointer
    private let down: UnsafeMutableRawPointer
    private let size: Int
    /// How much one local read asks for: whole channel packets. libssh2 1.10 cuts every `channel_write` at 32700
    /// bytes, so a 32768-byte read went out as a 32700-byte packet and a 68-byte one — twice the packets, MACs,
    /// sends and transport drains per buffer (docs/benchmarks.md).
    private let upChunk: Int
    private var upStart = 0, upEnd = 0, downStart = 0, downEnd = 0
    private var localEOF = false, eofSent = false, channelEOF = false, shutWritten = false
    private var windowBlocked = false
    /// Holds a slot of the wide-window budget (given back when the stream closes).
    private var wide = false
    /// Holds a slot of the standard-window budget: the channel opened with 2 MiB, else with `WindowBudget.small`.
    var standardWindow = false
    /// The direct-tcpip open's payload, built once (`prepareOpen`) and passed again on every retry.
    var openMessage: [UInt8] = []
    private var windowChecked = false
    /// Receive window owed to the server: bytes read out of libssh2 (or the widening) not yet announced.
    private var owed = 0
    /// A WINDOW_ADJUST libssh2 has built but not sent (EAGAIN): it must be retried before any other.
    private var adjustPending = false
    /// The socket may have bytes: cleared by an EAGAIN read, set again by epoll (level-triggered EPOLLIN is watched
    /// whenever `up` is empty). Saves a read that can only fail each time the transport wakes the stream.
    private var localReadable = true
    private var handshake = SOCKS5Server()
    private var greeted: Bool { handshake.greeted }
    private var watched: UInt32 = 0
    private var closed = false

    init(channels: SSHChannels, fd: Int32, up: UnsafeMutableRawPointer, down: UnsafeMutableRawPointer, phase: Phase) {
        self.channels = channels
        self.fd = fd
        self.up = up
        self.down = down
        self.size = channels.pool.size
        self.upChunk = ChannelPipe.upChunk(channels.pool.size)
        self.phase = phase
    }

    func handle(_ events: UInt32) {
        if events & (CL_EPOLLIN | CL_EPOLLHUP | CL_EPOLLERR | CL_EPOLLRDHUP) != 0 { localReadable = true }
        if phase == .connecting {
            if TCPSocket.connectResult(fd) != 0 { return abort() }
            phase = .relay
        }
        progress()
    }

    func progress() {
        guard !closed else { return }
        switch phase {
        case .socks: negotiate()
        case .opening, .connecting: break
        case .relay: relay()
        }
        if !closed { updateWatch() }
    }

    func opened(_ channel: OpaquePointer) {
        self.channel = channel
        if greeted {
            guard reply(StreamOpenOutcome.opened.socksReply) else { return abort() }
        } else {
            upStart = 0
            upEnd = 0
        }
        phase = .relay
        // bytes the SOCKS client sent after its request are already in `up` and go out first
        let report = onOpen
        onOpen = nil
        report?(.opened)
    }

    /// The server refused the open (`SSHChannels` classified its words once); a SOCKS client hears the outcome's code.
    func openFailed(_ outcome: StreamOpenOutcome) {
        let report = onOpen
        onOpen = nil
        report?(outcome)
        if greeted { _ = reply(outcome.socksReply) }
        abort()
    }

    private func relay() {
        guard let channel else { return }
        if !windowChecked {
            windowChecked = true
            if channels.longLink, channels.pool.windows.take(channels.share) {
                wide = true
                owed = WindowBudget.wide - (standardWindow ? WindowBudget.standard : WindowBudget.small)
            }
        }
        guard pumpDown(channel), pumpUp(channel), announceWindow(channel) else { return abort() }
        if localEOF && eofSent && channelEOF && shutWritten && downStart == downEnd { abort() }
    }

    private func pumpUp(_ channel: OpaquePointer) -> Bool {
        windowBlocked = false
        while true {
            if upStart < upEnd {
                if channels.outputBlocked { return true }
                let n = cssh2_channel_write(channel, up + upStart, upEnd - upStart)
                if n > 0 {
                    upStart += n
                    if counted { channels.bytesOut += Int64(n) }
                    continue
                }
                // 0: the peer's window is exhausted; an adjust will come in on the transport
                if n == 0 || n == Int(LIBSSH2_ERROR_EAGAIN) {
                    windowBlocked = true
                    return true
                }
                return channels.channelError(n)
            }
            upStart = 0
            upEnd = 0
            if localEOF {
                if !eofSent {
                    if libssh2_channel_send_eof(channel) == LIBSSH2_ERROR_EAGAIN { return true }
                    eofSent = true
                }
                return true
            }
            if !localReadable { return true }
            let n = CLinux.read(fd, up, upChunk)
            if n > 0 {
                upEnd = n
                continue
            }
            if n == 0 {
                localEOF = true
                continue
            }
            let error = clinux_errno()
            if error == EINTR { continue }
            if error == EAGAIN || error == EWOULDBLOCK {
                localReadable = false
                return true
            }
            return false
        }
    }

    private func pumpDown(_ channel: OpaquePointer) -> Bool {
        while true {
            if downStart < downEnd {
                let n = CLinux.send(fd, down + downStart, downEnd - downStart, Int32(MSG_NOSIGNAL))
                if n > 0 {
                    downStart += n
                    continue
                }
                let error = clinux_errno()
                if n < 0 && error == EINTR { continue }
                return n < 0 && (error == EAGAIN || error == EWOULDBLOCK)
            }
            downStart = 0
            downEnd = 0
            if channelEOF {
                if !shutWritten {
                    shutdown(fd, Int32(SHUT_WR))
                    shutWritten = true
                }
                return true
            }
            // libssh2 may hold decrypted data epoll cannot see: read until it has nothing
            let n = cssh2_channel_read(channel, down, size)
            if n > 0 {
                downEnd = n
                if counted { channels.bytesIn += Int64(n) }
                if wide { owed += n }
                continue
            }
            if n == 0 || n == Int(LIBSSH2_ERROR_EAGAIN) {
                if libssh2_channel_eof(channel) != 0 {
                    channelEOF = true
                    continue
                }
                return true
            }
            return channels.channelError(n)
        }
    }

    /// A wide channel's window is kept at `WindowBudget.wide` by hand: libssh2 refills only up to the window the
    /// channel opened with (2 MiB, and forwarded channels cannot open with more), and only below 3/4 of it, so it
    /// never acts while we keep the window above that. What is announced is what was read out of libssh2, so a
    /// stalled reader stops the server once `wide` bytes wait here. Announced in steps of 1 MiB: one small packet
    /// per 32 channel reads.
    private func announceWindow(_ channel: OpaquePointer) -> Bool {
        guard wide, adjustPending || owed >= 1 << 20, !channels.outputBlocked else { return true }
        let amount = adjustPending ? 0 : owed
        let rc = libssh2_channel_receive_window_adjust2(channel, UInt(amount), 1, nil)
        if rc == LIBSSH2_ERROR_EAGAIN {
            // the packet is built with `amount` in it and goes out on the retry
            owed -= amount
            adjustPending = true
            return true
        }
        if rc != 0 { return channels.channelError(Int(rc)) }
        owed -= amount
        adjustPending = false
        return true
    }

    private func negotiate() {
        while true {
            let n = CLinux.read(fd, up + upEnd, size - upEnd)
            if n > 0 {
                upEnd += n
                break
            }
            let error = clinux_errno()
            if n < 0 && error == EINTR { continue }
            if n < 0 && (error == EAGAIN || error == EWOULDBLOCK) { return }
            return abort()
        }
        let bytes = Array(UnsafeRawBufferPointer(start: up + upStart, count: upEnd - upStart))
        let step = handshake.step(bytes[...])
        if !step.answer.isEmpty {
            guard send(step.answer) else { return abort() }
        }
        upStart += step.consumed
        switch step.outcome {
        case .connect:
            targetHost = step.host
            targetPort = Int(step.port)
            phase = .opening
            channels.enqueueOpen(self)
        case .refuse:
            abort()
        case .needMore:
            if upEnd == size { abort() }
        }
    }

    /// `05 REP 00 01 0.0.0.0 0`, built at run time (see `bytes`).
    private func reply(_ code: SOCKS5.Reply) -> Bool {
        var answer = ChannelPipe.bytes(5, code.rawValue)
        answer += ChannelPipe.bytes(0, 1)
        answer += ChannelPipe.bytes(0, 0) + ChannelPipe.bytes(0, 0) + ChannelPipe.bytes(0, 0)
        return send(answer)
    }

    /// libssh2's most data per channel packet (`_libssh2_channel_write` in 1.10).
    static let maxPacketData = 32700

    /// The largest multiple of `maxPacketData` that fits a buffer of `size` bytes (the whole buffer when smaller).
    static func upChunk(_ size: Int) -> Int {
        size < maxPacketData ? size : size / maxPacketData * maxPacketData
    }

    /// Never a constant array: a function's constant arrays can take another literal's bytes in the Embedded
    /// product (the SOCKS greeting answered 05 FF for 05 00: issue #25, see SOCKS5.pair).
    @inline(never)
    static func bytes(_ first: UInt8, _ second: UInt8) -> [UInt8] {
        var result = [UInt8](repeating: first, count: 2)
        result[1] = second
        return result
    }

    /// Handshake answers are a few bytes on a fresh socket: all or nothing.
    private func send(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { CLinux.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } == bytes.count
    }

    func updateWatch() {
        guard !closed else { return }
        var mask: UInt32 = 0
        switch phase {
        case .socks: mask = CL_EPOLLIN
        case .opening: mask = 0
        case .connecting: mask = CL_EPOLLOUT
        case .relay:
            if upStart == upEnd && !localEOF { mask |= CL_EPOLLIN }
            if downStart < downEnd { mask |= CL_EPOLLOUT }
        }
        guard mask != watched else { return }
        // nothing wanted: out of epoll entirely, or a hang-up would be reported level-triggered forever
        if mask == 0 {
            channels.reactor.unwatch(fd)
        } else {
            _ = channels.reactor.watch(fd, events: mask) { [self] events in self.channels.event(self, events) }
        }
        watched = mask
    }

    /// Ends the stream: the socket closes, the channel is freed (or queued until libssh2 can free it).
    func abort() {
        guard !closed else { return }
        closeLocal()
        if let channel {
            channels.freeChannel(channel)
            self.channel = nil
        }
        channels.remove(self)
    }

    /// The socket side only; libssh2 frees the channels with the session when it ends.
    func closeLocal() {
        guard !closed else { return }
        closed = true
        if wide { channels.pool.windows.give(channels.share) }
        if standardWindow { channels.pool.standard.give(channels.share) }
        if watched != 0 { channels.reactor.unwatch(fd) }
        CLinux.close(fd)
        channels.pool.releasePair(up, down, for: channels.share)
    }
}
