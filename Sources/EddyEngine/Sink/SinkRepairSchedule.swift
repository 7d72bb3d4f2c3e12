import EddyRedis

/// How fast and how often a sink's repair runs (`eddy run --repair-interval`, `--repair-rate`).
public struct SinkRepairSettings: Sendable, Equatable {
    /// A full pass over the view starts at most this often.
    public var interval: Duration
    /// Keys compared per second at most, so that the repair stays a small load on Redis next to the sink.
    public var keysPerSecond: Int

    public init(interval: Duration = .seconds(60), keysPerSecond: Int = 10_000) {
        precondition(interval > .zero && keysPerSecond > 0, "a repair needs a positive interval and rate")
        self.interval = interval
        self.keysPerSecond = keysPerSecond
    }

    /// Keys per chunk (one `MGET`): a tenth of a second's worth, at most 1,000, so that the load is spread
    /// evenly and a chunk's transaction stays small.
    public var chunkKeys: Int { max(1, min(1_000, keysPerSecond / 10)) }

    /// The time `keys` keys take at the rate.
    func duration(ofKeys keys: Int) -> Duration { .seconds(Double(keys) / Double(keysPerSecond)) }
}

/// When a sink's repair does what: the decisions of the background comparison as a state machine free of I/O
/// (the sink's thread performs its tasks and reports back).
///
/// - A pass starts at most once per `interval`, and only while the sink is caught up (Redis acknowledged
///   everything committed, nothing in flight): then Redis' marker should stand for the newest checkpoint,
///   which is what the pass compares against.
/// - Chunks follow each other at the configured rate.
/// - Epochs committed during the pass, or while its view is being rendered, are folded into it
///   (`checkpointCommitted`), so the pass goes on across epochs.
/// - A marker that does not stand for the checkpoint while the sink is caught up means someone else wrote it
///   (another writer, or Redis lost data, which the sink's own probe handles): the pass is given up and the
///   next one waits a whole interval.
struct SinkRepairSchedule: Sendable {
    typealias Pair = SinkStateMachine.Pair

    enum Task: Sendable {
        /// Render the whole view from the latest checkpoint and report it with `rendered`.
        case renderView
        /// Compare (and repair) this chunk and report the outcome with `compared`.
        case compare(SinkRepairPass.Chunk)
    }

    /// What a step means for logs and metrics.
    struct Report: Sendable, Equatable {
        /// Keys compared, and how many of them differed and were rewritten.
        var comparedKeys = 0
        var repairedKeys = 0
        /// The first keys repaired in this pass, up to `loggedKeysPerPass` (names only).
        var keysToLog: [[UInt8]] = []
        /// How the pass ended, if it did.
        var ending: Ending?

        enum Ending: Sendable, Equatable {
            /// Every key of the view was compared: how many, and how many of them were repaired.
            case finished(keys: Int, repaired: Int)
            /// Given up: Redis' marker does not stand for the checkpoint (`marker`: what it held).
            case abandoned(marker: [UInt8]?)
        }
    }

    /// Repaired key names logged per pass at most (names only, never values).
    static let loggedKeysPerPass = 10

    let settings: SinkRepairSettings
    /// When the next task is due.
    private(set) var due: ContinuousClock.Instant
    private var pass: SinkRepairPass?
    /// Non-nil while the view is being rendered: the epochs committed meanwhile, folded in afterwards.
    private var committedWhileRendering: [(SinkProgress, SinkPairBatch)]?
    private var passStarted: ContinuousClock.Instant
    private var passRepaired = 0
    private var passLogged = 0

    /// The first pass starts one interval after `now` (the sink first re-sends whatever Redis lacks).
    init(settings: SinkRepairSettings, now: ContinuousClock.Instant) {
        self.settings = settings
        due = now + settings.interval
        passStarted = now
    }

    /// Whether a pass is under way (rendered, not finished).
    var isPassActive: Bool { pass != nil }

    /// When to wake up for the next task, given the sink's state (as for `task`); nil when nothing will be
    /// due until that state changes.
    func wakeTime(caughtUp: Bool, committed: SinkProgress) -> ContinuousClock.Instant? {
        guard caughtUp, committedWhileRendering == nil else { return nil }
        if let pass, pass.progress.epoch > committed.epoch { return nil }
        return due
    }

    /// The task to perform now, if one is due. `committed` is the sink's newest committed checkpoint.
    mutating func task(now: ContinuousClock.Instant, caughtUp: Bool, committed: SinkProgress) -> Task? {
        guard caughtUp, committedWhileRendering == nil, now >= due else { return nil }
        guard let pass else {
            committedWhileRendering = []
            passStarted = now
            passRepaired = 0
            passLogged = 0
            return .renderView
        }
        // A view rendered from a checkpoint the sink has not been handed yet: wait until it has written it.
        guard pass.progress.epoch <= committed.epoch else { return nil }
        guard let chunk = pass.nextChunk(maxKeys: settings.chunkKeys) else {
            self.pass = nil
            due = max(now, passStarted + settings.interval)
            return nil
        }
        return .compare(chunk)
    }

    /// The view was rendered from checkpoint `progress`.
    mutating func rendered(_ progress: SinkProgress, pairs: SinkPairBatch, now: ContinuousClock.Instant) -> Report {
        precondition(committedWhileRendering != nil, "rendered without a render task")
        var pass = SinkRepairPass(progress: progress, pairs: pairs)
        for (committed, pairs) in committedWhileRendering ?? [] { pass.advance(to: committed, pairs: pairs) }
        committedWhileRendering = nil
        guard !pass.isFinished else {
            due = passStarted + settings.interval
            return Report(ending: .finished(keys: 0, repaired: 0))
        }
        self.pass = pass
        due = now
        return Report()
    }

    /// Rendering the view failed: the next pass waits an interval.
    mutating func renderFailed(now: ContinuousClock.Instant) {
        committedWhileRendering = nil
        due = now + settings.interval
    }

    /// Checkpoint `progress` was committed with these dirty pairs.
    mutating func checkpointCommitted(_ progress: SinkProgress, pairs: SinkPairBatch) {
        if committedWhileRendering != nil { committedWhileRendering?.append((progress, pairs)) }
        pass?.advance(to: progress, pairs: pairs)
    }

    /// A chunk's comparison came back.
    mutating func compared(_ comparison: RedisChunkComparison, of chunk: SinkRepairPass.Chunk, now: ContinuousClock.Instant) -> Report {
        guard var pass else { return Report() }
        switch pass.record(comparison, of: chunk) {
        case .finished:
            self.pass = nil
            return Report()
        case .markerMoved:
            // An epoch was written meanwhile: the same chunk again, after a chunk's time.
            self.pass = pass
            due = now + settings.duration(ofKeys: chunk.pairs.count)
            return Report()
        case .markerMismatch(let marker):
            self.pass = nil
            due = now + settings.interval
            return Report(ending: .abandoned(marker: marker))
        case .compared(let keys, let differing, let repaired):
            var report = Report(comparedKeys: keys, repairedKeys: repaired ? differing.count : 0)
            passRepaired += report.repairedKeys
            if repaired {
                report.keysToLog = differing.prefix(max(0, Self.loggedKeysPerPass - passLogged)).map(\.key)
                passLogged += report.keysToLog.count
            }
            due = now + settings.duration(ofKeys: keys)
            if pass.isFinished {
                self.pass = nil
                due = max(due, passStarted + settings.interval)
                report.ending = .finished(keys: pass.keyCount, repaired: passRepaired)
            } else {
                self.pass = pass
            }
            return report
        }
    }

    /// A chunk could not be compared (Redis failed): the same chunk again after a chunk's time; the caller
    /// handles the failure like a failed probe.
    mutating func compareFailed(of chunk: SinkRepairPass.Chunk, now: ContinuousClock.Instant) {
        due = now + settings.duration(ofKeys: chunk.pairs.count)
    }
}
