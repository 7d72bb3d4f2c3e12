#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Named places where the daemon dies as `kill -9` would, for `eddy drill` (issue 11): each marks a moment
/// between two steps of the exactly-once protocol (DESIGN §3) that a random `kill -9` rarely hits.
///
/// Armed only through the environment, `EDDY_CRASH_POINT=NAME[:N]` (die the Nth time the point is reached,
/// default the first), read once by `arm(from:)` before any pipeline thread starts. Unarmed, `reach()` is one
/// compare of a byte with a constant and a branch never taken; no call site is on the per-message path.
public enum CrashPoint: UInt8, CaseIterable, Sendable {
    /// A checkpoint is committed in LMDB and not yet handed to the sinks: Redis is an epoch behind the store.
    case afterCommit = 1
    /// Redis applied an epoch (`EXEC` returned) and the sink has not yet queued its acknowledgement for the store.
    case afterExec
    /// A batch of messages was applied to the views in memory, in the middle of an epoch (before its checkpoint).
    case midConsumption
    /// The sink rendered the whole view for a re-send (Redis lost data) and is about to write it.
    case wholeViewResend
    /// The state directory is open and checked, the views not yet restored from it.
    case startupRestore

    /// The variable that arms a point.
    public static let environmentVariable = "EDDY_CRASH_POINT"

    /// The name `EDDY_CRASH_POINT` takes.
    public var name: String {
        switch self {
        case .afterCommit: "after-commit"
        case .afterExec: "after-exec"
        case .midConsumption: "mid-consumption"
        case .wholeViewResend: "whole-view-resend"
        case .startupRestore: "startup-restore"
        }
    }

    /// The armed point's raw value (0: none). Written only by `arm(from:)`, before the pipeline's threads exist
    /// (thread creation orders the write before their reads), and read-only afterwards: a plain byte, so that an
    /// unarmed `reach()` costs one load and one branch.
    nonisolated(unsafe) private static var armed: UInt8 = 0
    /// How many more times the armed point may be reached before it fires.
    private static let remaining = Atomic<Int>(0)

    /// Arms the point `EDDY_CRASH_POINT` names, if set. Returns it and N, for the log.
    /// - Throws: as `armed(by:)`.
    @discardableResult
    public static func arm(from environment: [String: String]) throws(EngineError) -> (point: CrashPoint, nth: Int)? {
        guard let armed = try armed(by: environment) else { return nil }
        remaining.store(armed.nth, ordering: .sequentiallyConsistent)
        self.armed = armed.point.rawValue
        return armed
    }

    /// The point and N that `EDDY_CRASH_POINT` in `environment` names; nil when it is unset or empty.
    /// - Throws: `.invalidArgument` naming the variable when its value is not `NAME[:N]` with a known NAME, N ≥ 1.
    public static func armed(by environment: [String: String]) throws(EngineError) -> (point: CrashPoint, nth: Int)? {
        guard let text = environment[environmentVariable], !text.isEmpty else { return nil }
        let parts = text.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        guard let point = allCases.first(where: { $0.name == parts[0] }), let nth = parts.count == 2 ? Int(parts[1]) : 1, nth >= 1 else {
            throw EngineError(
                .invalidArgument,
                "\(environmentVariable)='\(text)' is not NAME[:N] with N ≥ 1 and NAME one of \(allCases.map(\.name).joined(separator: ", ")) (set only by eddy drill)")
        }
        return (point, nth)
    }

    /// Dies as `kill -9` would if this point is armed and reached for the Nth time.
    @inline(__always)
    public func reach() {
        if Self.armed == rawValue { countDown() }
    }

    /// `reach()` when `condition` holds.
    @inline(__always)
    public func reach(when condition: Bool) {
        if Self.armed == rawValue && condition { countDown() }
    }

    @inline(never)
    private func countDown() {
        guard Self.remaining.subtract(1, ordering: .sequentiallyConsistent).newValue == 0 else { return }
        // One write(2), no allocation-free guarantee needed here: the process is about to die anyway.
        let message = Array("eddy: crash point \(name) reached (\(Self.environmentVariable)); dying as kill -9 would\n".utf8)
        _ = message.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
        kill(getpid(), SIGKILL)
        _exit(137)
    }
}
