#if canImport(Glibc)
import Glibc
#endif
import Dispatch

/// `--exit-with-parent PID` of the commands scripts run in the background (`dev-broker`, `produce`): a script
/// killed outright (`kill -9`) cannot stop its children, so they watch it and stop by themselves.
///
/// Calls `action` once, on a Dispatch queue, as soon as this process's parent is no longer `parent` — at once
/// if it already is not (the parent died before the watch began), else within `interval` of its exit. Keep
/// the returned timer alive for as long as the watch should last.
///
/// Why the parent's pid is polled rather than Linux's parent-death signal (`PR_SET_PDEATHSIG`): that signal
/// fires when the *thread* that forked the child exits, not the parent process, so a multithreaded parent
/// (a test runner, a Swift program spawning from a pool thread) would stop its children while it still
/// runs; and `prctl` is variadic, which Swift cannot call without a C shim. The kernel reparents a child the
/// moment its parent exits (zombie or not), so `getppid()` changing is exact, and 5 cheap calls a second
/// cost nothing measurable.
func watchParentProcess(
    _ parent: Int32, every interval: DispatchTimeInterval = .milliseconds(200), onExit action: @escaping @Sendable () -> Void
) -> any DispatchSourceTimer {
    let fired = StopFlag()
    let timer = DispatchSource.makeTimerSource(queue: .global())
    timer.setEventHandler {
        guard getppid() != parent, !fired.flag.exchange(true, ordering: .relaxed) else { return }
        action()
    }
    timer.schedule(deadline: .now(), repeating: interval)
    timer.resume()
    return timer
}

/// The `--exit-with-parent` option's help, shared by the commands that offer it.
let exitWithParentHelp = """
    Stop, as on SIGTERM, within 0.2 s of process PID (this one's parent) exiting, even when it is killed outright. \
    For scripts that run this command in the background (ops/run.sh).
    """
