import Glibc
import Synchronization

/// How `eddy run` runs a pipeline; every field has the default a production daemon wants.
public struct PipelineOptions: Sendable {
    /// Where the LMDB checkpoint store lives (`--state-dir`).
    public var stateDirectory: String
    /// Time between checkpoints (`--checkpoint-interval`, default 1 s). Each checkpoint is one durable LMDB
    /// transaction, then one fenced Redis write per sink.
    public var checkpointInterval: Duration = .seconds(1)
    /// A checkpoint is taken sooner when this many groups are dirty, to bound one transaction's size.
    public var checkpointDirtyGroups = 100_000
    /// The same bound while the consumer is catching up (at least `checkpointDirtyGroups`): an epoch of a backlog
    /// spread over many keys then writes each key once, not once per `checkpointDirtyGroups` messages. An epoch's
    /// transient memory (its changed keys and states, sorted for LMDB and rendered for Redis, and LMDB's
    /// copy-on-write pages) grows with it: at a million groups the peak resident memory stayed the same as with
    /// 100,000 (LMDB rewrote nearly every page of the view either way, and dirty groups piled up past the bound
    /// while a checkpoint was in flight).
    public var catchUpCheckpointDirtyGroups = 1_000_000
    /// The longest one epoch may run while the consumer is catching up (`--max-checkpoint-interval`; nil: 10×
    /// `checkpointInterval`). Longer epochs during a backlog write a key touched throughout it once per epoch,
    /// not once per `checkpointInterval`; once caught up `checkpointInterval` holds.
    public var maxCheckpointInterval: Duration?
    /// Messages behind the partitions' ends beyond which the consumer counts as catching up.
    public var catchUpBacklog: Int64 = 100_000
    /// Consumption pauses while a sink is more than this many epochs behind (`sink.max_pending_epochs` of a
    /// sink overrides it).
    public var maxPendingEpochs: UInt64 = 8
    /// At shutdown, how long to wait for the sinks to acknowledge the final checkpoint.
    public var shutdownFlushTimeout: Duration = .seconds(10)
    /// Messages taken from Kafka per batch.
    public var batchSize = 10_000
    /// Limits on each message (size, JSON depth).
    public var decoderLimits = DecoderLimits()
    /// The largest the checkpoint store may grow before the daemon stops with a clear error.
    public var maximumStateBytes = 64 << 30
    /// Redis connect and per-command timeouts. A timed-out command closes the connection (a command sent to
    /// a paused Redis could still run later).
    public var redisConnectTimeout: Duration = .seconds(5)
    public var redisCommandTimeout: Duration = .seconds(10)
    /// Redis retry backoff: capped exponential with full jitter.
    public var redisBackoff = Backoff()
    /// How often an idle sink checks Redis (its epoch marker), so that data Redis lost, or Redis being down,
    /// is noticed while no new epoch is written.
    public var sinkProbeInterval: Duration = .seconds(5)
    /// The background repair of every sink (`--repair-interval`, `--repair-rate`): while a sink is caught up,
    /// Redis is compared with the checkpoint, a full pass at most every 60 s at no more than 10,000 keys/s, and
    /// keys changed or deleted by someone else are rewritten. Nil turns it off.
    public var sinkRepair: SinkRepairSettings? = SinkRepairSettings()
    /// Start a view the state directory has never seen although it already holds offsets of the topic
    /// (`--allow-new-views`): the new view then counts only messages after those offsets. Default: refuse,
    /// saying how to build it from the start of the topic instead.
    public var allowNewViews = false
    /// How long the start-up checks may wait for a Kafka broker.
    public var kafkaConnectTimeout: Duration = .seconds(10)
    /// How often librdkafka reports statistics, from which the runner learns when a broker last answered
    /// (`/readyz` turns not ready after a few seconds of silence). Default 1 s: one small report a second.
    public var brokerStatisticsInterval: Duration = .seconds(1)

    /// The wall clock temporal filters read (`now()`), in microseconds since 1970. Each epoch takes the larger of
    /// it and the last epoch's time, so `now()` never goes back, across restarts included. Tests set their own.
    public var wallClock: @Sendable () -> Int64 = PipelineOptions.systemClock

    /// The system's real-time clock, in microseconds since 1970.
    public static let systemClock: @Sendable () -> Int64 = {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return Int64(time.tv_sec) * 1_000_000 + Int64(time.tv_nsec / 1_000)
    }

    public init(stateDirectory: String) {
        self.stateDirectory = stateDirectory
    }
}

/// A flag set once (by a signal handler or a test) to ask the pipeline to stop gracefully.
public final class StopSignal: Sendable {
    private let flag = Atomic<Bool>(false)

    public init() {}

    public func request() { flag.store(true, ordering: .releasing) }

    public var isRequested: Bool { flag.load(ordering: .acquiring) }
}
