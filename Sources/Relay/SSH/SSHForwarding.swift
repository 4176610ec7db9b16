import CLinux
import CSSH2

/// The session's side of the forwarders: new streams from the local listener or the server, and the queue of
/// direct-tcpip opens.
extension SSHSession {
    /// A stream needs two pool buffers; without them (or beyond the connection limit) it is refused at once.
    func makePipe(fd: Int32, phase: ChannelPipe.Phase) -> ChannelPipe? {
        guard pipes.count < maxConnections else {
            Refusals.shared.count(.connectionLimit)
            return nil
        }
        guard pool.available >= 2, let up = pool.acquire() else {
            Refusals.shared.count(.bufferPool)
            return nil
        }
        guard let down = pool.acquire() else {
            pool.release(up)
            return nil
        }
        let pipe = ChannelPipe(session: self, fd: fd, up: up, down: down, phase: phase)
        pipes.append(pipe)
        return pipe
    }

    func acceptLocal() {
        guard phase == .ready else { return }
        while listenerFd >= 0 {
            let accepted = TCPSocket.accept(listenerFd)
            guard case .socket(let fd) = accepted else {
                // out of descriptors: a level-triggered listener would fire again at once; the tick re-arms it
                if case .exhausted = accepted {
                    reactor.unwatch(listenerFd)
                    listenerPaused = true
                }
                break
            }
            TCPSocket.setNoDelay(fd)
            if forward.kind == .local {
                guard let pipe = makePipe(fd: fd, phase: .opening) else {
                    CLinux.close(fd)
                    continue
                }
                pipe.targetHost = forward.host
                pipe.targetPort = forward.port
                opening.append(pipe)
            } else if forward.kind == .dynamic {
                guard let pipe = makePipe(fd: fd, phase: .socks) else {
                    // SOCKS clients get a reply, not a silent close (appliance.md §2 limits)
                    _ = SOCKS5.reply(.generalFailure).withUnsafeBytes { CLinux.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                    CLinux.close(fd)
                    continue
                }
                pipe.updateWatch()
            } else {
                CLinux.close(fd)
            }
        }
        pumpAll()
    }

    func enqueueOpen(_ pipe: ChannelPipe) { opening.append(pipe) }

    /// libssh2 keeps one channel open in flight per session (session->open_state): opens go strictly in order,
    /// and a pending one is retried with the same arguments.
    func processOpens() {
        while let pipe = opening.first, let s = session {
            if let channel = libssh2_channel_direct_tcpip_ex(s, pipe.targetHost, Int32(pipe.targetPort), "127.0.0.1", 22) {
                opening.removeFirst()
                pipe.opened(channel)
                continue
            }
            let error = libssh2_session_last_errno(s)
            if error == LIBSSH2_ERROR_EAGAIN { return }
            opening.removeFirst()
            if isTransportError(error) {
                fatal = fatal ?? peerGoneReason()
                return
            }
            pipe.openFailed(SSHSession.lastError(s))
        }
    }

    func acceptRemote() {
        guard let listener = remoteListener, forward.kind == .remote else { return }
        let connectTo = forward.connectTo
        while let channel = libssh2_channel_forward_accept(listener) {
            if let sink = inboundSink {
                handOver(channel, to: sink)
                continue
            }
            guard case .success(let started) = TCPSocket.connect(connectTo) else {
                freeChannel(channel)
                continue
            }
            let fd = started.fd
            TCPSocket.setNoDelay(fd)
            guard let pipe = makePipe(fd: fd, phase: .connecting) else {
                CLinux.close(fd)
                freeChannel(channel)
                continue
            }
            pipe.channel = channel
            pipe.updateWatch()
        }
    }

    /// Managed tunnels: the channel is pumped to one end of a socketpair, the other end goes to the other session.
    private func handOver(_ channel: OpaquePointer, to sink: (Int32) -> Bool) {
        var ends: [Int32] = [-1, -1]
        guard cl_socketpair(&ends) == 0 else { return freeChannel(channel) }
        guard let pipe = makePipe(fd: ends[0], phase: .relay) else {
            CLinux.close(ends[0])
            CLinux.close(ends[1])
            return freeChannel(channel)
        }
        pipe.channel = channel
        guard sink(ends[1]) else { return pipe.abort() }
        pipe.progress()
    }

    /// Managed tunnels: a stream from the other session (one end of a socketpair, owned from here) → a direct-tcpip
    /// open to `host:port`, or SOCKS5 first when `socks`. False (and `fd` closed) when refused.
    public func adopt(fd: Int32, socks: Bool, host: String, port: Int) -> Bool {
        guard phase == .ready, let pipe = makePipe(fd: fd, phase: socks ? .socks : .opening) else {
            CLinux.close(fd)
            return false
        }
        if socks {
            pipe.updateWatch()
            pipe.progress()
        } else {
            pipe.targetHost = host
            pipe.targetPort = port
            opening.append(pipe)
        }
        pumpAll()
        return true
    }

    /// The inner session's transport: a direct-tcpip channel to `host:port` pumped to `fd`; its bytes are not
    /// counted as traffic.
    public func carry(fd: Int32, host: String, port: Int) -> Bool {
        guard phase == .ready, let pipe = makePipe(fd: fd, phase: .opening) else {
            CLinux.close(fd)
            return false
        }
        pipe.counted = false
        pipe.targetHost = host
        pipe.targetPort = port
        opening.append(pipe)
        pumpAll()
        return true
    }

    /// C2S streams: a direct-tcpip channel to `host:port` pumped to `fd` (one end of a socketpair, owned from
    /// here); `opened` reports nil once the channel is up, or the server's refusal (then `fd` is closed). False
    /// (and `fd` closed, `opened` never called) when the session is not ready or has no room.
    public func open(fd: Int32, host: String, port: Int, opened: @escaping (String?) -> Void) -> Bool {
        guard phase == .ready, let pipe = makePipe(fd: fd, phase: .opening) else {
            CLinux.close(fd)
            return false
        }
        pipe.targetHost = host
        pipe.targetPort = port
        pipe.onOpen = opened
        opening.append(pipe)
        pumpAll()
        return true
    }

    func freeChannel(_ channel: OpaquePointer) {
        guard session != nil else { return }
        if libssh2_channel_free(channel) == LIBSSH2_ERROR_EAGAIN { zombies.append(channel) }
    }

    func remove(_ pipe: ChannelPipe) {
        pipes.removeAll { $0 === pipe }
        opening.removeAll { $0 === pipe }
    }

    /// A channel call failed: the stream ends; the session ends too when the failure was its transport's.
    func channelError(_ rc: Int) -> Bool {
        let code = Int32(truncatingIfNeeded: rc)
        if isTransportError(code) || (io?.sawEOF ?? false) || (io?.error ?? 0) != 0 {
            fatal = fatal ?? peerGoneReason()
        }
        return false
    }
}
