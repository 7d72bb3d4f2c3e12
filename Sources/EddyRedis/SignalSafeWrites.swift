#if canImport(Glibc)
import Glibc
#endif

/// Runs `body` with `SIGPIPE` blocked on this thread, and discards one that `body` raised.
///
/// A write to a socket the server has closed (a Redis restart in the middle of an epoch) raises `SIGPIPE`,
/// whose default action ends the process; with it blocked, the write fails with `EPIPE` instead, which the
/// connection reports as broken and the sink retries. Neither hiredis 0.14 nor OpenSSL's socket BIO sends
/// with `MSG_NOSIGNAL`, and a library should not ignore the signal for the whole process, so each write is
/// wrapped (as libpq does). A `SIGPIPE` already pending before `body` is left for its owner.
func withSIGPIPEBlocked<Result>(_ body: () -> Result) -> Result {
    var pipeOnly = sigset_t()
    sigemptyset(&pipeOnly)
    sigaddset(&pipeOnly, SIGPIPE)
    var previousMask = sigset_t()
    pthread_sigmask(SIG_BLOCK, &pipeOnly, &previousMask)
    defer { pthread_sigmask(SIG_SETMASK, &previousMask, nil) }
    var pending = sigset_t()
    sigpending(&pending)
    let wasPending = sigismember(&pending, SIGPIPE) == 1
    let result = body()
    if !wasPending {
        sigpending(&pending)
        if sigismember(&pending, SIGPIPE) == 1 {
            var noWait = timespec(tv_sec: 0, tv_nsec: 0)
            _ = sigtimedwait(&pipeOnly, nil, &noWait)
        }
    }
    return result
}
