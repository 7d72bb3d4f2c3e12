/// The Redis sink's protocol logic (DESIGN §3), free of I/O so that every path is unit-tested.
///
/// The sink thread feeds it events (a checkpoint committed, a write succeeded or failed, a connection
/// read the marker) and performs the `Action` it returns, outside any lock. The guarantees it keeps:
///
/// - Redis only receives values of **committed** checkpoints: each committed epoch hands over its dirty
///   keys already rendered (`key_format`/`value_format`) from the checkpoint, never live state.
/// - Pending writes **coalesce**: only the newest value of a key is kept, so memory is bounded by the
///   number of distinct keys however long Redis is away. Each pending value remembers the epoch it
///   came from, so that a full re-send of a snapshot never gets overwritten by an older pending value.
/// - A failed write is retried (the caller waits out the backoff) with everything pending merged in,
///   under the newest committed epoch; it never drops data.
/// - When Redis holds a marker *behind* the acknowledged epoch, Redis lost data: the whole view is
///   re-sent from the latest checkpoint. When the checkpoint is ahead of the acknowledged epoch at
///   start, the dirty keys of those epochs are unknown, so the whole view is re-sent as well.
/// - A marker *ahead* of anything this process committed means another writer (or an older copy of
///   the state directory) is in play: writing would move values backwards, so the sink stops.
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

    public enum Action: Sendable, Equatable {
        /// Nothing to do until the next event.
        case none
        /// (Re)connect, read the epoch marker, and report it with `connected(marker:)`.
        case connectAndReadMarker
        /// Write these pairs and the marker `epoch` in one fenced call that applies only when Redis' marker
        /// is at least `minimumMarker` (else Redis lost data) and below `epoch` (else a newer writer was
        /// there); report the outcome. A full-view write has no lower bound: it is the repair.
        case write(epoch: UInt64, pairs: [Pair], minimumMarker: UInt64)
        /// Render the whole view from the latest checkpoint and report it with `fullViewRendered`.
        case renderFullView
        /// Wait out backoff attempt `attempt` (1, 2, …), then report `retryTimerFired()`.
        case retryAfterBackoff(attempt: Int)
        /// Stop the pipeline: continuing could move Redis values backwards.
        case stop(reason: String)
    }

    private enum State: Sendable {
        /// No usable connection; waiting for `connected(marker:)`.
        case connecting
        /// Connected, nothing in flight.
        case idle
        /// Waiting for the owner to render the whole view.
        case renderingFullView
        /// A fenced write of `epoch` is in flight.
        case writing(epoch: UInt64, pairs: [Pair])
        /// A write failed; waiting for the backoff timer. `reconnect` when the connection is gone.
        case backingOff(attempt: Int, reconnect: Bool)
        case stopped
    }

    /// The epoch Redis is known to hold (recorded in the checkpoint store by the owner).
    public private(set) var acknowledgedEpoch: UInt64
    /// The newest epoch committed to the checkpoint store.
    public private(set) var committedEpoch: UInt64
    private var state: State = .connecting
    private var pending: [Bytes: (value: Bytes?, epoch: UInt64)] = [:]
    private var failedAttempts = 0
    /// Set at start when the checkpoint is ahead of Redis' acknowledgement: the dirty keys in between are unknown.
    private var needsFullView: Bool

    /// - Parameters:
    ///   - acknowledgedEpoch: the sink's acknowledged epoch from the checkpoint store.
    ///   - committedEpoch: the newest committed epoch in the checkpoint store.
    public init(acknowledgedEpoch: UInt64, committedEpoch: UInt64) {
        precondition(acknowledgedEpoch <= committedEpoch, "acknowledged epoch \(acknowledgedEpoch) is ahead of the committed epoch \(committedEpoch)")
        self.acknowledgedEpoch = acknowledgedEpoch
        self.committedEpoch = committedEpoch
        self.needsFullView = committedEpoch > acknowledgedEpoch
    }

    /// The first action: connect and read the marker.
    public func start() -> Action { .connectAndReadMarker }

    /// Epochs committed but not yet acknowledged by Redis; backpressure compares this to `sink.max_pending_epochs`.
    public var unacknowledgedEpochs: UInt64 { committedEpoch - acknowledgedEpoch }

    /// Distinct keys waiting to be written (not counting a write in flight).
    public var pendingKeyCount: Int { pending.count }

    /// True when everything committed has been acknowledged and nothing is in flight: a flush is complete.
    public var isCaughtUp: Bool {
        if case .idle = state { return pending.isEmpty && !needsFullView && acknowledgedEpoch == committedEpoch }
        return false
    }

    public var isStopped: Bool {
        if case .stopped = state { return true }
        return false
    }

    /// A connection is up and the marker in Redis reads `marker` (nil when the key does not exist).
    public mutating func connected(marker: UInt64?) -> Action {
        guard case .connecting = state else { preconditionFailure("connected(marker:) in state \(state)") }
        let marker = marker ?? 0
        if marker > committedEpoch { return stopForNewerMarker(marker) }
        if marker < acknowledgedEpoch { needsFullView = true }  // Redis lost data: flushed, or restarted without persistence.
        state = .idle
        return nextWrite()
    }

    /// Whether the sink is connected with nothing to do: the owner then checks Redis now and then
    /// (`probed(marker:)`), so that Redis losing its data while the source is quiet is noticed without
    /// waiting for the next epoch.
    public var isIdle: Bool {
        if case .idle = state { return true }
        return false
    }

    /// While idle, the marker read `marker` (nil when absent).
    public mutating func probed(marker: UInt64?) -> Action {
        guard case .idle = state else { return .none }  // an epoch arrived meanwhile: its write checks again
        let marker = marker ?? 0
        if marker > committedEpoch { return stopForNewerMarker(marker) }
        guard marker < acknowledgedEpoch else { return .none }
        needsFullView = true
        return nextWrite()
    }

    /// While idle, reading the marker failed: the connection is re-made after a backoff.
    public mutating func probeFailed() -> Action {
        guard case .idle = state else { return .none }
        return backOff(reconnect: true)
    }

    private mutating func stopForNewerMarker(_ marker: UInt64) -> Action {
        state = .stopped
        return .stop(reason: """
            Redis holds epoch \(marker) for this sink, but the checkpoint store's newest epoch is \(committedEpoch): \
            another Eddy writes to the same keys, or the state directory is older than Redis. Writing would move \
            values backwards; stop the other writer, or reset the state directory and delete the marker key.
            """)
    }

    /// Checkpoint `epoch` committed durably; `pairs` are its dirty keys rendered from that checkpoint.
    public mutating func checkpointCommitted(epoch: UInt64, pairs: some Sequence<Pair>) -> Action {
        precondition(epoch > committedEpoch, "checkpoint epoch \(epoch) is not after \(committedEpoch)")
        committedEpoch = epoch
        for pair in pairs { pending[pair.key] = (pair.value, epoch) }
        if case .idle = state { return nextWrite() }
        return .none
    }

    /// The owner rendered the whole view as of checkpoint `epoch` (it may be newer than when it was asked).
    public mutating func fullViewRendered(epoch: UInt64, pairs: [Pair]) -> Action {
        guard case .renderingFullView = state else { preconditionFailure("fullViewRendered in state \(state)") }
        precondition(epoch <= committedEpoch, "rendered epoch \(epoch) was never committed (newest \(committedEpoch))")
        needsFullView = false
        // Pending values from epochs up to the snapshot are contained in it; newer ones must go after it.
        pending = pending.filter { $0.value.epoch > epoch }
        state = .writing(epoch: epoch, pairs: pairs)
        return .write(epoch: epoch, pairs: pairs, minimumMarker: 0)
    }

    /// Redis applied the write of `epoch`; the owner has recorded the acknowledgement in the checkpoint store.
    public mutating func writeSucceeded(epoch: UInt64) -> Action {
        guard case .writing(let inFlight, _) = state, inFlight == epoch else {
            preconditionFailure("writeSucceeded(\(epoch)) in state \(state)")
        }
        acknowledgedEpoch = epoch
        failedAttempts = 0
        state = .idle
        return nextWrite()
    }

    /// The fence refused the write: Redis already holds `marker` ≥ the epoch written.
    ///
    /// `marker == epoch` is our own earlier write of this very epoch whose reply was lost (a timeout after
    /// Redis applied it): the values are the same, so it counts as acknowledged. The owner records the
    /// acknowledgement in that case too (`isOwnEarlierWrite`).
    public mutating func writeRefusedAsStale(epoch: UInt64, marker: UInt64) -> Action {
        guard case .writing(let inFlight, _) = state, inFlight == epoch else {
            preconditionFailure("writeRefusedAsStale(\(epoch)) in state \(state)")
        }
        if Self.isOwnEarlierWrite(epoch: epoch, marker: marker) { return writeSucceeded(epoch: epoch) }
        state = .stopped
        return .stop(reason: """
            Redis refused epoch \(epoch) for this sink: it already holds epoch \(marker). Another Eddy is writing to \
            the same keys, or the state directory was restored from an older copy. Stopping so that no value moves backwards.
            """)
    }

    /// The fence found Redis' marker `marker` below the acknowledged epoch: Redis lost data (flushed, or
    /// restarted without persistence) while the connection stayed usable. Nothing was written; the whole
    /// view is re-sent. The fenced write carries the acknowledged epoch for exactly this check, so loss is
    /// caught on every write, not only at connect.
    public mutating func writeFoundRedisBehind(epoch: UInt64, marker: UInt64?) -> Action {
        guard case .writing(let inFlight, let pairs) = state, inFlight == epoch else {
            preconditionFailure("writeFoundRedisBehind(\(epoch)) in state \(state)")
        }
        for pair in pairs where pending[pair.key] == nil { pending[pair.key] = (pair.value, epoch) }
        needsFullView = true
        state = .idle
        return nextWrite()
    }

    /// Whether a refused write of `epoch` is in fact acknowledged (see `writeRefusedAsStale`).
    public static func isOwnEarlierWrite(epoch: UInt64, marker: UInt64) -> Bool { marker == epoch }

    /// The write of `epoch` failed. `connectionLost` when the connection must be re-established (I/O error,
    /// timeout: a request sent to a paused Redis may still run later, so the socket is closed and reopened).
    public mutating func writeFailed(epoch: UInt64, connectionLost: Bool) -> Action {
        guard case .writing(let inFlight, let pairs) = state, inFlight == epoch else {
            preconditionFailure("writeFailed(\(epoch)) in state \(state)")
        }
        // Put the unsent values back under anything newer that arrived meanwhile.
        for pair in pairs where pending[pair.key] == nil { pending[pair.key] = (pair.value, epoch) }
        return backOff(reconnect: connectionLost)
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
        if needsFullView {
            state = .renderingFullView
            return .renderFullView
        }
        // An epoch with no dirty keys (every message filtered or bad) still moves the marker, so that
        // acknowledgement, backpressure and restarts see one rule.
        guard !pending.isEmpty || acknowledgedEpoch < committedEpoch else { return .none }
        let pairs = pending.map { Pair(key: $0.key, value: $0.value.value) }
        pending.removeAll(keepingCapacity: true)
        state = .writing(epoch: committedEpoch, pairs: pairs)
        return .write(epoch: committedEpoch, pairs: pairs, minimumMarker: acknowledgedEpoch)
    }
}
