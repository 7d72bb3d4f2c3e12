import EddyEngine
import EddyWorkload

/// A fault `eddy drill` injects.
enum DrillFaultKind: String, CaseIterable, Codable, Sendable {
    /// `kill -9` of the daemon, restarted at once.
    case daemonKill = "daemon-kill-9"
    /// `SIGSTOP` of the daemon, `SIGCONT` after the fault's length.
    case daemonStop = "daemon-sigstop"
    /// The daemon stopped (SIGTERM), started with crash point after-commit armed; once it died there, its state
    /// is copied (a checkpoint committed and not acknowledged), it is started again, and after the fault's length
    /// killed and started on that copy: a state directory restored from an older backup, behind Redis, that
    /// re-sends its whole view at start. The fence makes it wait until it has consumed as far as Redis holds;
    /// without it, values move backwards.
    case daemonStaleState = "daemon-stale-state"
    /// The daemon stopped (SIGTERM), started again with a crash point armed (`EDDY_CRASH_POINT`), and started
    /// once more, unarmed, after it died there.
    case crashAfterCommit = "crash-after-commit"
    case crashAfterExec = "crash-after-exec"
    case crashMidConsumption = "crash-mid-consumption"
    /// Also empties Redis (`FLUSHALL`) once the armed daemon runs, so that its sink re-sends the whole view.
    case crashWholeViewResend = "crash-whole-view-resend"
    case crashStartupRestore = "crash-startup-restore"
    /// Redis `SHUTDOWN NOSAVE`, started again empty on the same port after the fault's length.
    case redisRestartEmpty = "redis-restart-empty"
    /// Redis `CLIENT PAUSE <length> WRITE`.
    case redisPauseWrites = "redis-pause-writes"
    /// Redis `CONFIG SET maxmemory 1` (policy noeviction: every write refused with OOM) for the fault's length,
    /// then the limit restored.
    case redisOutOfMemory = "redis-out-of-memory"
    /// One broker of the dev broker's cluster down for the fault's length (its partitions unreachable).
    case brokerDown = "broker-down"
    /// A partition's leadership moved to another broker.
    case brokerLeaderMoved = "broker-leader-moved"
    /// The next fetch requests fail with retriable Kafka errors.
    case brokerFetchErrors = "broker-fetch-errors"

    /// The crash point a crash fault arms.
    var crashPoint: CrashPoint? {
        switch self {
        case .crashAfterCommit: .afterCommit
        case .crashAfterExec: .afterExec
        case .crashMidConsumption: .midConsumption
        case .crashWholeViewResend: .wholeViewResend
        case .crashStartupRestore: .startupRestore
        default: nil
        }
    }
}

/// One scheduled fault: wait `delay` (counted from the previous fault's recovery), then inject it for `length`
/// (zero for a kill, a crash point, a leader move or fetch errors).
struct DrillFault: Sendable, Equatable {
    var kind: DrillFaultKind
    var delay: Duration
    var length: Duration
    /// A crash point fires the `nth` time it is reached.
    var nth = 1
    /// The broker taken down, or the partition's new leader (1-based).
    var broker: Int32 = 1
    /// The partition whose leader moves.
    var partition: Int32 = 0
    /// Kafka error codes the next fetches fail with, one per fetch.
    var errorCodes: [Int32] = []
}

/// The faults of a drill, drawn from a seed: the same seed gives the same kinds, delays, lengths and targets
/// (the moments they land on still depend on how fast the machine runs). Kinds come in shuffled rounds of every
/// kind drilled, so a drill of N faults of K kinds injects each kind N/K times, give or take one.
struct DrillSchedule: Sequence, IteratorProtocol, Sendable {
    /// Retriable fetch errors librdkafka recovers from by itself: NOT_LEADER_FOR_PARTITION, LEADER_NOT_AVAILABLE,
    /// REQUEST_TIMED_OUT, NOT_ENOUGH_REPLICAS, KAFKA_STORAGE_ERROR.
    static let retriableFetchErrors: [Int32] = [6, 5, 7, 19, 56]

    let seed: UInt64
    let kinds: [DrillFaultKind]
    private let brokers: Int
    private let partitions: Int
    /// The longest wait before a fault, in milliseconds.
    private let maximumDelay: Int
    private var random: SplitMix64
    private var round: [DrillFaultKind] = []

    init(seed: UInt64, kinds: [DrillFaultKind] = DrillFaultKind.allCases, brokers: Int = 3, partitions: Int = 8, maximumDelay: Duration = .milliseconds(2_500)) {
        precondition(!kinds.isEmpty && brokers >= 1 && partitions >= 1, "a schedule needs kinds, brokers and partitions")
        self.seed = seed
        self.kinds = kinds
        self.brokers = brokers
        self.partitions = partitions
        self.maximumDelay = Swift.max(100, Int(maximumDelay / .milliseconds(1)))
        random = SplitMix64(seed: seed ^ 0xD2_11_5C_4E_D0_1E)
    }

    /// A seed for chunk `index` of the load generator, so that a replayed drill produces the same messages.
    func producerSeed(chunk index: Int) -> UInt64 { seed &+ 0x9E37_79B9_7F4A_7C15 &* UInt64(index + 1) }

    mutating func next() -> DrillFault? {
        if round.isEmpty { round = kinds.shuffled(using: &random) }
        let kind = round.removeLast()
        // Random moments: anywhere from a fraction of a checkpoint interval to a dozen of them after the last recovery.
        var fault = DrillFault(kind: kind, delay: milliseconds(in: 100...maximumDelay), length: .zero)
        switch kind {
        case .daemonKill, .crashStartupRestore, .crashWholeViewResend, .brokerLeaderMoved:
            break
        case .daemonStop, .redisPauseWrites, .redisOutOfMemory, .brokerDown:
            fault.length = milliseconds(in: 50...1_500)
        case .daemonStaleState:
            // Several checkpoints (0.2 s each) written to Redis after the copy.
            fault.length = milliseconds(in: 1_000...3_000)
            fault.nth = Int.random(in: 1...5, using: &random)
        case .redisRestartEmpty:
            fault.length = milliseconds(in: 0...500)
        case .crashAfterCommit, .crashAfterExec:
            // Checkpoints every 0.2 s: within the first three seconds of the armed run.
            fault.nth = Int.random(in: 1...15, using: &random)
        case .crashMidConsumption:
            // About ten batches a second at the drill's rate.
            fault.nth = Int.random(in: 1...40, using: &random)
        case .brokerFetchErrors:
            fault.errorCodes = (0..<Int.random(in: 1...20, using: &random)).map { _ in Self.retriableFetchErrors.randomElement(using: &random)! }
        }
        fault.broker = Int32(Int.random(in: 1...brokers, using: &random))
        fault.partition = Int32(Int.random(in: 0..<partitions, using: &random))
        return fault
    }

    private mutating func milliseconds(in range: ClosedRange<Int>) -> Duration {
        .milliseconds(Int.random(in: range, using: &random))
    }
}
