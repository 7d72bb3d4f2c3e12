/// The Redis sink's protocol logic (DESIGN §3), free of I/O so that every path is unit-tested.
///
/// The sink thread feeds it events (a checkpoint committed, a write's outcome, a connection read the
/// marker) and performs the `Action` it returns, outside any lock. The guarantees it keeps:
///
/// - Redis only receives values of **committed** checkpoints: each committed epoch hands over its dirty
///   keys already rendered (`key_format`/`value_format`) from the checkpoint, never live state.
/// - Pending writes **coalesce**: only the newest value of a key is kept, so memory is bounded by the
///   number of distinct keys however long Redis is away. Each pending value remembers the epoch it
///   came from, so that a full re-send of a snapshot never gets overwritten by an older pending value.
/// - A failed write is retried (the caller waits out the backoff) with everything pending merged in,
///   under the newest committed checkpoint; it never drops data.
/// - Every write is **fenced by progress** (`fence(marker:write:)`, the rule `shared/model` checks as
///   FIX=4): Redis' marker records the source offsets of the values it holds, and a write applies only at
///   or beyond them. A marker ahead of this daemon (another writer, or this state directory restored from
///   an older copy) never stops it: it keeps consuming and coalescing, and writes once its checkpoints
///   have reached the marker. A marker missing, or behind what Redis acknowledged, means Redis lost data:
///   the whole view is re-sent from the latest checkpoint. So is it at start when the checkpoint is ahead
///   of the acknowledgement (the dirty keys in between are unknown).
public struct SinkStateMachine: Sendable {
    public typealias Bytes = [UInt8]

    /// One Redis key and its value, rendered through the sink's templates; a nil value deletes the key (a row
    /// that left the view, in an upsert sink).
    public struct Pair: Sendable, Equatable {
        public var key: Bytes
        public var value: Bytes?
        public init(key: Bytes, value: Bytes?) {
            self.key = key
            self.value = value
        }
    }

    /// One fenced write: the values of the checkpoint at `progress`.
    public struct Write: Sendable, Equatable {
        /// The checkpoint the values come from; it becomes Redis' marker.
        public var progress: SinkProgress
        public var pairs: SinkPairBatch
        /// The whole view (else the keys changed since `base`).
        public var isWholeView: Bool
        /// What Redis acknowledged last: the values a delta builds on (nil when nothing was acknowledged).
        public var base: SinkProgress?

        public init(progress: SinkProgress, pairs: SinkPairBatch, isWholeView: Bool, base: SinkProgress?) {
            self.progress = progress
            self.pairs = pairs
            self.isWholeView = isWholeView
            self.base = base
        }
    }

    /// Why a write was not applied, or was already there.
    public enum Refusal: Sendable, Equatable {
        /// Redis already holds exactly these values (our own earlier write whose reply was lost, or another
        /// writer at the same point of the stream): acknowledged without writing.
        case alreadyApplied
        /// Redis holds values from further along the stream (on at least one partition): another writer, or
        /// this state is older than Redis. Wait until the checkpoints have reached `marker`.
        case markerAhead(SinkProgress)
        /// A delta cannot be applied: the whole view must be written (`reason` says why).
        case wholeViewNeeded(WholeViewReason)
    }

    public enum WholeViewReason: Sendable, Equatable, CustomStringConvertible {
        /// The marker is missing, or behind what Redis acknowledged: Redis was flushed or restarted empty.
        case redisLostData
        /// The marker was written by an Eddy from before the progress fence (a bare epoch number).
        case epochOnlyMarker
        /// Redis holds the view in another output form (templates, encoding or the view's output changed).
        case otherOutputForm

        public var description: String {
            switch self {
            case .redisLostData: "Redis lost data (its marker is missing or behind what it acknowledged)"
            case .epochOnlyMarker: "Redis' marker was written by an older Eddy (an epoch number without offsets)"
            case .otherOutputForm: "Redis holds the view in another output form"
            }
        }
    }

    /// The progress fence: what `write` does against Redis' `marker` (nil: apply it). Model: `shared/model`,
    /// FIX=4 (rules 1-4 in its README), with the output form added to "the same state".
    public static func fence(marker: SinkProgress.Marker, write: Write) -> Refusal? {
        switch marker {
        case .absent:
            // Nothing acknowledged yet: the pending keys are all this lineage ever changed.
            return write.isWholeView || write.base == nil ? nil : .wholeViewNeeded(.redisLostData)
        case .epochOnly:
            return write.isWholeView ? nil : .wholeViewNeeded(.epochOnlyMarker)
        case .progress(let marker):
            // 1. Redis holds values from further along on some partition: writing would move them backwards.
            guard write.progress.hasReached(marker) else { return .markerAhead(marker) }
            if marker.form != write.progress.form {
                return write.isWholeView ? nil : .wholeViewNeeded(.otherOutputForm)
            }
            // 2. The same offsets are the same state.
            if write.progress.compared(to: marker) == .same { return .alreadyApplied }
            // 3. Redis is behind what it acknowledged: it lost data, and a delta would leave holes.
            if !write.isWholeView, let base = write.base, !marker.hasReached(base) { return .wholeViewNeeded(.redisLostData) }
            // 4. Apply.
            return nil
        }
    }

    public enum Action: Sendable, Equatable {
        /// Nothing to do until the next event.
        case none
        /// (Re)connect, read the epoch marker, and report it with `connected(marker:)`.
        case connectAndReadMarker
        /// Write in one fenced call (`fence(marker:write:)` against the marker read under `WATCH`), and
        /// report the outcome.
        case write(Write)
        /// Render the whole view from the latest checkpoint and report it with `fullViewRendered`.
        case renderFullView
        /// Wait out backoff attempt `attempt` (1, 2, …), then report `retryTimerFired()`.
        case retryAfterBackoff(attempt: Int)
    }

    private enum State: Sendable {
        /// No usable connection; waiting for `connected(marker:)`.
        case connecting
        /// Connected, nothing in flight.
        case idle
        /// Waiting for the owner to render the whole view.
        case renderingFullView
        /// A fenced write is in flight.
        case writing(Write)
        /// A write failed; waiting for the backoff timer. `reconnect` when the connection is gone.
        case backingOff(attempt: Int, reconnect: Bool)
    }

    /// The epoch Redis is known to hold (recorded in the checkpoint store by the owner).
    public private(set) var acknowledgedEpoch: UInt64
    /// The progress of that epoch; nil when nothing was acknowledged (or a store from before the progress
    /// fence did not record it).
    public private(set) var acknowledged: SinkProgress?
    /// The newest checkpoint committed to the store.
    public private(set) var committed: SinkProgress
    public var committedEpoch: UInt64 { committed.epoch }
    /// Redis' marker when it was found ahead of this daemon's checkpoints: no write until they reach it.
    public private(set) var waitingFor: SinkProgress?
    private var state: State = .connecting
    private var pending = PendingPairs()
    private var failedAttempts = 0
    /// Set when the dirty keys since Redis' values are unknown: the whole view is written next.
    private var needsFullView: Bool

    /// - Parameters:
    ///   - acknowledgedEpoch: the sink's acknowledged epoch from the checkpoint store, and its progress
    ///     when the store recorded it.
    ///   - committed: the newest committed checkpoint in the store.
    public init(acknowledgedEpoch: UInt64, acknowledged: SinkProgress?, committed: SinkProgress) {
        precondition(acknowledgedEpoch <= committed.epoch, "acknowledged epoch \(acknowledgedEpoch) is ahead of the committed epoch \(committed.epoch)")
        self.acknowledgedEpoch = acknowledgedEpoch
        self.acknowledged = acknowledged
        self.committed = committed
        // Something acknowledged but not where: a store from before the progress fence.
        self.needsFullView = committed.epoch > acknowledgedEpoch || (acknowledgedEpoch > 0 && acknowledged == nil)
    }

    /// The first action: connect and read the marker.
    public func start() -> Action { .connectAndReadMarker }

    /// Epochs committed but not yet acknowledged by Redis.
    public var unacknowledgedEpochs: UInt64 { committed.epoch - acknowledgedEpoch }

    /// Epochs that hold consumption back (backpressure compares this to `sink.max_pending_epochs`): none
    /// while waiting for the checkpoints to reach another writer's marker, since only consuming gets there.
    public var backpressureEpochs: UInt64 { waitingFor == nil ? unacknowledgedEpochs : 0 }

    /// Distinct keys waiting to be written (not counting a write in flight).
    public var pendingKeyCount: Int { pending.count }

    /// True when everything committed has been acknowledged and nothing is in flight: a flush is complete.
    public var isCaughtUp: Bool {
        if case .idle = state { return pending.isEmpty && !needsFullView && acknowledgedEpoch == committed.epoch }
        return false
    }

    /// What the sink would write now, as a fence input: an empty delta at the newest checkpoint on top of the
    /// acknowledgement. Fencing Redis' marker against it (`fence(marker:write:)`) is the check made on connect and
    /// on every probe, before any write: the same rules, one place (a Redis Cluster transport applies it per slot,
    /// each against that slot's own record).
    public var probe: Write { Write(progress: committed, pairs: SinkPairBatch(), isWholeView: false, base: acknowledged) }

    /// A connection is up and the marker in Redis reads `marker`.
    public mutating func connected(marker: SinkProgress.Marker) -> Action {
        connected(check: Self.fence(marker: marker, write: probe))
    }

    /// A connection is up and Redis was checked against `probe` (`fence(marker:write:)`, or per slot on a Redis
    /// Cluster): `check` is what the fence said.
    public mutating func connected(check: Refusal?) -> Action {
        guard case .connecting = state else { preconditionFailure("connected(check:) in state \(state)") }
        state = .idle
        observe(check)
        return nextWrite()
    }

    /// Whether the sink is connected with nothing to do: the owner then checks Redis now and then
    /// (`probed(marker:)`), so that Redis losing its data while the source is quiet is noticed without
    /// waiting for the next epoch.
    public var isIdle: Bool {
        if case .idle = state { return true }
        return false
    }

    /// While idle, the marker read `marker`.
    public mutating func probed(marker: SinkProgress.Marker) -> Action {
        probed(check: Self.fence(marker: marker, write: probe))
    }

    /// While idle, Redis was checked against `probe`: `check` is what the fence said.
    public mutating func probed(check: Refusal?) -> Action {
        guard case .idle = state else { return .none }  // an epoch arrived meanwhile: its write checks again
        observe(check)
        return nextWrite()
    }

    /// What connect and probe learn from the fence, before any write: Redis ahead of the checkpoints (wait), or
    /// Redis lost data (re-send the whole view).
    private mutating func observe(_ check: Refusal?) {
        if UnsafeFenceSwitch.isFenceDisabled { return }
        switch check {
        case nil, .alreadyApplied?: break
        case .markerAhead(let marker)?: waitingFor = marker
        case .wholeViewNeeded?: needsFullView = true
        }
    }

    /// While idle, reading the marker failed: the connection is re-made after a backoff.
    public mutating func probeFailed() -> Action {
        guard case .idle = state else { return .none }
        return backOff(reconnect: true)
    }

    /// Checkpoint `progress` committed durably; `pairs` are its dirty keys rendered from that checkpoint.
    public mutating func checkpointCommitted(_ progress: SinkProgress, pairs: SinkPairBatch) -> Action {
        precondition(progress.epoch > committed.epoch, "checkpoint epoch \(progress.epoch) is not after \(committed.epoch)")
        committed = progress
        pending.add(pairs, epoch: progress.epoch, replacing: true)
        if case .idle = state { return nextWrite() }
        return .none
    }

    /// The owner rendered the whole view as of checkpoint `progress` (it may be newer than when it was asked).
    public mutating func fullViewRendered(_ progress: SinkProgress, pairs: SinkPairBatch) -> Action {
        guard case .renderingFullView = state else { preconditionFailure("fullViewRendered in state \(state)") }
        precondition(progress.epoch <= committed.epoch, "rendered epoch \(progress.epoch) was never committed (newest \(committed.epoch))")
        needsFullView = false
        // Pending values from epochs up to the snapshot are contained in it; newer ones must go after it.
        pending.removeAll(through: progress.epoch)
        let write = Write(progress: progress, pairs: pairs, isWholeView: true, base: acknowledged)
        state = .writing(write)
        return .write(write)
    }

    /// Redis holds the write in flight: applied now, or already there (`Refusal.alreadyApplied`). The owner
    /// has recorded the acknowledgement in the checkpoint store.
    public mutating func writeSucceeded() -> Action {
        guard case .writing(let write) = state else { preconditionFailure("writeSucceeded in state \(state)") }
        acknowledgedEpoch = max(acknowledgedEpoch, write.progress.epoch)
        acknowledged = write.progress
        failedAttempts = 0
        state = .idle
        return nextWrite()
    }

    /// The fence refused the write in flight (nothing was written).
    public mutating func writeRefused(_ refusal: Refusal) -> Action {
        guard case .writing(let write) = state else { preconditionFailure("writeRefused(\(refusal)) in state \(state)") }
        switch refusal {
        case .alreadyApplied:
            return writeSucceeded()
        case .markerAhead(let marker):
            putBack(write)
            waitingFor = marker
        case .wholeViewNeeded:
            putBack(write)
            needsFullView = true
        }
        state = .idle
        return nextWrite()
    }

    /// The write in flight failed. `connectionLost` when the connection must be re-established (I/O error,
    /// timeout: a request sent to a paused Redis may still run later, so the socket is closed and reopened).
    public mutating func writeFailed(connectionLost: Bool) -> Action {
        guard case .writing(let write) = state else { preconditionFailure("writeFailed in state \(state)") }
        putBack(write)
        return backOff(reconnect: connectionLost)
    }

    /// Puts the unsent values of `write` back under anything newer that arrived meanwhile; a whole view is
    /// rendered again instead (its values are in the checkpoint).
    private mutating func putBack(_ write: Write) {
        if write.isWholeView {
            needsFullView = true
        } else {
            pending.add(write.pairs, epoch: write.progress.epoch, replacing: false)
        }
    }

    /// Connecting or reading the marker failed.
    public mutating func connectFailed() -> Action {
        guard case .connecting = state else { preconditionFailure("connectFailed in state \(state)") }
        return backOff(reconnect: true)
    }

    /// The backoff wait is over.
    public mutating func retryTimerFired() -> Action {
        guard case .backingOff(_, let reconnect) = state else { preconditionFailure("retryTimerFired in state \(state)") }
        if reconnect {
            state = .connecting
            return .connectAndReadMarker
        }
        state = .idle
        return nextWrite()
    }

    private mutating func backOff(reconnect: Bool) -> Action {
        failedAttempts += 1
        state = .backingOff(attempt: failedAttempts, reconnect: reconnect)
        return .retryAfterBackoff(attempt: failedAttempts)
    }

    private mutating func nextWrite() -> Action {
        if let marker = waitingFor {
            // Behind another writer: nothing this daemon could write now would be at or past Redis' values.
            guard committed.hasReached(marker) else { return .none }
            waitingFor = nil
        }
        if needsFullView {
            state = .renderingFullView
            return .renderFullView
        }
        // An epoch with no dirty keys (every message filtered or bad) still moves the marker, so that
        // acknowledgement, backpressure and restarts see one rule.
        guard !pending.isEmpty || acknowledgedEpoch < committed.epoch else { return .none }
        let write = Write(progress: committed, pairs: pending.takeAll(), isWholeView: false, base: acknowledged)
        state = .writing(write)
        return .write(write)
    }
}
