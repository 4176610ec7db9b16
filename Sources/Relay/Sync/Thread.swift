import CLinux

/// A pthread running a Swift closure. `pthread_t` differs between glibc and musl, so the handle stays opaque.
public final class Thread {
    private var handle: UnsafeMutableRawPointer?

    private final class Box {
        let body: () -> Void
        init(_ body: @escaping () -> Void) { self.body = body }
    }

    private init(handle: UnsafeMutableRawPointer) { self.handle = handle }

    /// nil when the thread cannot be created (resource limits).
    public static func spawn(_ body: @escaping () -> Void) -> Thread? {
        let box = Unmanaged.passRetained(Box(body)).toOpaque()
        guard let handle = cl_thread_spawn({ raw in
            let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
            box.body()
            return nil
        }, box) else {
            Unmanaged<Box>.fromOpaque(box).release()
            return nil
        }
        return Thread(handle: handle)
    }

    public func join() {
        guard let handle else { return }
        _ = cl_thread_join(handle)
        self.handle = nil
    }
}
