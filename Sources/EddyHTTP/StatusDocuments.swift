// The documents the HTTP side serves. Plain Codable values filled in by the pipeline runner through
// `EddyHTTPDataSource`; this module never sees the engine. JSON keys are camelCase, the Swift names;
// an optional that is nil is left out of the JSON (the dashboard shows "–").

/// What a running pipeline is doing, as `/api/status` serves it and the dashboard draws it.
public struct PipelineStatus: Codable, Sendable, Equatable {
    /// The pipeline's name (by default the file name without `.sql`).
    public var pipeline: String
    /// Seconds since the daemon started.
    public var uptimeSeconds: Double
    /// The runner's phase.
    public var state: PipelineRunState
    /// One entry per Kafka source.
    public var sources: [SourceStatus]
    /// Messages skipped as undecodable, by reason (`not_json`, `not_object`, `too_large`, `wrong_type`, ...).
    public var decodeErrors: [String: Int64]
    /// One entry per materialized view.
    public var views: [ViewSummary]
    /// One entry per sink.
    public var sinks: [SinkStatus]
    /// The last durable checkpoint.
    public var checkpoint: CheckpointStatus
    /// Whether `/readyz` answers 200. The runner decides (see `ReadinessRules` for a ready-made policy).
    public var ready: Bool
    /// Why not ready, one human sentence each; empty when ready.
    public var notReadyReasons: [String]

    public init(
        pipeline: String,
        uptimeSeconds: Double,
        state: PipelineRunState,
        sources: [SourceStatus],
        decodeErrors: [String: Int64],
        views: [ViewSummary],
        sinks: [SinkStatus],
        checkpoint: CheckpointStatus,
        ready: Bool,
        notReadyReasons: [String]
    ) {
        self.pipeline = pipeline
        self.uptimeSeconds = uptimeSeconds
        self.state = state
        self.sources = sources
        self.decodeErrors = decodeErrors
        self.views = views
        self.sinks = sinks
        self.checkpoint = checkpoint
        self.ready = ready
        self.notReadyReasons = notReadyReasons
    }
}

/// The runner's phase, as a snake_case string in JSON.
public enum PipelineRunState: String, Codable, Sendable, Equatable, CaseIterable {
    /// Opening state, connecting, re-sending unacknowledged epochs.
    case starting
    /// Consuming, but further behind than the caught-up bound.
    case catchingUp = "catching_up"
    /// Consuming and caught up.
    case running
    /// Partitions paused because the sink is too far behind (backpressure).
    case paused
    /// Shutting down: final checkpoint and sink flush.
    case stopping
}

/// One Kafka source: a topic and what has been read from each of its assigned partitions.
public struct SourceStatus: Codable, Sendable, Equatable {
    /// The source's name in the SQL (`user_events`).
    public var name: String
    /// The Kafka topic.
    public var topic: String
    /// Messages consumed since start, all partitions.
    public var consumed: Int64
    /// Assigned partitions, in partition order.
    public var partitions: [PartitionStatus]
    /// Seconds since a Kafka broker last answered the consumer; nil before the consumer exists.
    public var secondsSinceBrokerAnswered: Double?
    /// The consumer's last Kafka client error (secrets masked), to say why brokers are silent; nil if none.
    public var lastBrokerError: String?

    public init(
        name: String, topic: String, consumed: Int64, partitions: [PartitionStatus],
        secondsSinceBrokerAnswered: Double? = nil, lastBrokerError: String? = nil
    ) {
        self.name = name
        self.topic = topic
        self.consumed = consumed
        self.partitions = partitions
        self.secondsSinceBrokerAnswered = secondsSinceBrokerAnswered
        self.lastBrokerError = lastBrokerError
    }

    /// Lag summed over partitions (those with an unknown lag count as 0).
    public var lag: Int64 { partitions.reduce(0) { $0 + ($1.lag ?? 0) } }
}

/// One assigned partition of a source.
public struct PartitionStatus: Codable, Sendable, Equatable {
    /// The Kafka partition number.
    public var partition: Int32
    /// The next offset to read.
    public var nextOffset: Int64
    /// The broker's high watermark when last asked; nil before the first answer.
    public var highWatermark: Int64?
    /// `highWatermark - nextOffset`, nil when the watermark is unknown.
    public var lag: Int64?
    /// Messages consumed from this partition since start.
    public var consumed: Int64

    public init(partition: Int32, nextOffset: Int64, highWatermark: Int64?, lag: Int64?, consumed: Int64) {
        self.partition = partition
        self.nextOffset = nextOffset
        self.highWatermark = highWatermark
        self.lag = lag
        self.consumed = consumed
    }
}

/// One materialized view, in brief (its rows are in `ViewRows`).
public struct ViewSummary: Codable, Sendable, Equatable {
    /// The view's name in the SQL.
    public var name: String
    /// The source it reads.
    public var source: String
    /// Number of groups (rows) the view holds.
    public var groups: Int

    public init(name: String, source: String, groups: Int) {
        self.name = name
        self.source = source
        self.groups = groups
    }
}

/// One sink and how far its writes are behind the checkpoints.
public struct SinkStatus: Codable, Sendable, Equatable {
    /// The sink's name in the SQL.
    public var name: String
    /// The view it writes.
    public var view: String
    /// False while the sink's target (Redis) is unreachable or failing.
    public var healthy: Bool
    /// The newest epoch the target acknowledged.
    public var acknowledgedEpoch: UInt64
    /// Committed epochs not yet acknowledged.
    public var pendingEpochs: Int
    /// Failed write attempts since start.
    public var retries: Int64
    /// Seconds since the last successful write; nil if none yet.
    public var secondsSinceLastWrite: Double?
    /// The last failure in words, for the dashboard; nil when healthy.
    public var lastError: String?
    /// Seconds committed epochs have waited without any write applied (a write stuck in flight, or retries);
    /// nil while nothing waits.
    public var secondsWaitingForWrite: Double?
    /// True while Redis holds values from further along the source than this daemon's checkpoints: another
    /// writer is active on the sink, and this one writes nothing until it has consumed as far.
    public var waitingForOtherWriter: Bool

    public init(
        name: String,
        view: String,
        healthy: Bool,
        acknowledgedEpoch: UInt64,
        pendingEpochs: Int,
        retries: Int64,
        secondsSinceLastWrite: Double?,
        lastError: String? = nil,
        secondsWaitingForWrite: Double? = nil,
        waitingForOtherWriter: Bool = false
    ) {
        self.name = name
        self.view = view
        self.healthy = healthy
        self.acknowledgedEpoch = acknowledgedEpoch
        self.pendingEpochs = pendingEpochs
        self.retries = retries
        self.secondsSinceLastWrite = secondsSinceLastWrite
        self.lastError = lastError
        self.secondsWaitingForWrite = secondsWaitingForWrite
        self.waitingForOtherWriter = waitingForOtherWriter
    }
}

/// The last durable checkpoint.
public struct CheckpointStatus: Codable, Sendable, Equatable {
    /// The epoch of the last commit (0 before the first).
    public var epoch: UInt64
    /// Seconds since the last commit; nil before the first.
    public var secondsSinceCommit: Double?
    /// How long the last commit took, in milliseconds; nil before the first.
    public var lastDurationMilliseconds: Double?

    public init(epoch: UInt64, secondsSinceCommit: Double?, lastDurationMilliseconds: Double?) {
        self.epoch = epoch
        self.secondsSinceCommit = secondsSinceCommit
        self.lastDurationMilliseconds = lastDurationMilliseconds
    }
}
