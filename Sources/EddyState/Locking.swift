#if canImport(Glibc)
import Glibc
#endif

/// A plain mutex (`pthread_mutex_t`) for the few places the store serialises work. Unlike `Mutex` from
/// Synchronization it lets closures return non-`Sendable` results, which the LMDB wrappers need.
///
/// Ownership: allocates its mutex in `init`, destroys it in `deinit`. Threads: any.
final class Lock: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    init() {
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    func withLock<Result, Failure: Error>(_ body: () throws(Failure) -> Result) throws(Failure) -> Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }
}

/// Runs `body` and narrows its errors to `StateError` (the LMDB wrappers throw nothing else).
func narrowingToStateError<Result>(_ body: () throws -> Result) throws(StateError) -> Result {
    do {
        return try body()
    } catch let error as StateError {
        throw error
    } catch {
        throw StateError(.storageFailure, reason: "unexpected error: \(error)")
    }
}
