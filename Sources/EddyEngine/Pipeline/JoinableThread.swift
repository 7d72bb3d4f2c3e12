#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// A POSIX thread that can be joined: `join()` returns once the thread has exited and released everything
/// its body captured. Foundation's `Thread` cannot be joined, so an object it captured (a checkpoint store
/// holding the state directory's lock) could outlive the owner's shutdown by a moment; a restart in the same
/// process would then find the directory still locked.
public final class JoinableThread: @unchecked Sendable {
    private var handle = pthread_t()
    private var joined = false

    /// Starts `body` on a new thread named `name` (at most 15 bytes are kept, as Linux allows).
    public init(name: String, stackSize: Int = 8 << 20, _ body: @escaping @Sendable () -> Void) {
        let box = Unmanaged.passRetained(Box(name: name, body: body))
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        pthread_attr_setstacksize(&attributes, stackSize)
        let result = pthread_create(&handle, &attributes, { context in
            let box = Unmanaged<Box>.fromOpaque(context!).takeRetainedValue()
            // Set from the thread itself: Foundation's setter names only a thread it has a handle for, and a
            // `Thread` started by Foundation may run before its handle is stored (seen: the name then stays unset).
            Thread.current.name = box.name  // shown by top -H and gdb
            box.body()
            return nil
        }, box.toOpaque())
        precondition(result == 0, "cannot start thread \(name): \(String(cString: strerror(result)))")
    }

    /// Waits until the thread has exited. Call once, from another thread.
    public func join() {
        guard !joined else { return }
        joined = true
        pthread_join(handle, nil)
    }

    deinit {
        if !joined { pthread_detach(handle) }
    }

    private final class Box {
        let name: String
        let body: @Sendable () -> Void
        init(name: String, body: @escaping @Sendable () -> Void) {
            self.name = name
            self.body = body
        }
    }
}
