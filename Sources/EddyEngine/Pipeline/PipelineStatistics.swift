import Metrics
import Synchronization

/// What the running pipeline has done: for logs, `/metrics`, `/readyz`, the dashboard and tests.
///
/// Written by the hot path once per batch (never per message) and by the checkpoint and sink threads; read
/// from anywhere. Every update also goes to swift-metrics (handles created once, here), so whatever metrics
/// backend `eddy run` bootstraps (Prometheus) sees the same numbers.
public final class PipelineStatistics: Sendable {
    /// The pipeline's phase.
    public enum Phase: String, Sendable {
        case starting, catchingUp = "catching_up", running, paused, stopping, stopped
    }

    public struct PartitionSnapshot: Sendable, Equatable {
        /// The topic of the source it belongs to.
        public var topic = ""
        public var partition: Int32
        public var consumed = 0
        /// The next offset to read (-1 before the first message or start position is known).
        public var nextOffset: Int64 = -1
        /// The partition's end as librdkafka last saw it (-1 when unknown).
        public var highWatermark: Int64 = -1
        /// Messages behind the end (nil when unknown).
        public var lag: Int64? { highWatermark >= 0 && nextOffset >= 0 ? max(0, highWatermark - nextOffset) : nil }
    }

    public struct SinkSnapshot: Sendable, Equatable {
        public var name: String
        public var view: String
        public var isHealthy = false
        public var acknowledgedEpoch: UInt64 = 0
        public var pendingEpochs: UInt64 = 0
        public var writes = 0
        public var keysWritten = 0
        public var failures = 0
        public var lastWrite: ContinuousClock.Instant?
        public var lastError: String?
        /// Whether the sink waits for another writer's progress (Redis holds values from further along).
        public var otherWriterAhead = false
        /// How often the sink found another writer ahead of it.
        public var otherWriterSightings = 0
        /// Keys the background repair compared with the checkpoint, and rewrote because they differed.
        public var repairComparedKeys = 0
        public var repairedKeys = 0
        /// Repair passes that compared the whole view.
        public var repairPasses = 0
        /// When committed epochs were first seen waiting for this sink (nil while none wait).
        public var pendingSince: ContinuousClock.Instant?

        /// Since when committed epochs have waited without any write applied: the later of `pendingSince`
        /// and the last write. Nil while nothing waits. A write in flight to a paused Redis, or retries
        /// that keep failing, make `now` minus this grow.
        public var waitingForWriteSince: ContinuousClock.Instant? {
            guard pendingEpochs > 0, let pendingSince else { return nil }
            guard let lastWrite else { return pendingSince }
            return max(pendingSince, lastWrite)
        }
    }

    public struct Snapshot: Sendable, Equatable {
        public var phase: Phase = .starting
        public var startedAt = ContinuousClock.now
        public var partitions: [PartitionSnapshot] = []
        public var messagesConsumed = 0
        public var rows = 0
        public var filteredOut = 0
        public var wrongTypeFields = 0
        /// Skipped messages by reason (`SkipReason.description` → count).
        public var skippedByReason: [String: Int] = [:]
        /// Groups per view.
        public var groupsByView: [String: Int] = [:]
        public var lastSubmittedEpoch: UInt64 = 0
        public var lastCommittedEpoch: UInt64 = 0
        public var lastCommit: ContinuousClock.Instant?
        public var lastCommitDuration: Duration = .zero
        public var sinks: [SinkSnapshot] = []
        public var isPaused = false
        public var isCaughtUp = false
        /// Messages deleted by retention before they were read (offset-out-of-range gaps).
        public var offsetGapMessages: Int64 = 0
        /// Messages Kafka delivered again after they were applied, dropped (never counted twice).
        public var redeliveredMessages = 0
        /// Offset-out-of-range answers by outcome (`retention_gap`, `past_end`, `retried`).
        public var offsetOutOfRangeByOutcome: [String: Int] = [:]
        /// When a Kafka broker last answered the consumer (nil before the consumer exists).
        public var lastBrokerAnswer: ContinuousClock.Instant?
        /// The consumer's last client-wide Kafka error (secrets masked), for saying why no broker answers.
        public var lastKafkaError: String?

        public var skippedMessages: Int { skippedByReason.values.reduce(0, +) }
    }

    private let state = Mutex(Snapshot())
    private let metrics: Handles
    /// Per-partition and per-view handles, made once the partitions are known.
    private let partitionMetrics = Mutex<[(consumed: Counter, lag: Gauge, nextOffset: Gauge)]>([])
    private let viewGroups = Mutex<[String: Gauge]>([:])

    /// Metric handles, created once.
    private struct Handles: Sendable {
        let consumed: Counter
        let rows: Counter
        let filtered: Counter
        let wrongType: Counter
        let checkpointDuration: Timer
        let checkpointEpoch: Gauge
        let paused: Gauge
        let offsetGap: Counter
        let redelivered: Counter
        let offsetOutOfRange: [String: Counter]
        let skipped: [String: Counter]
        let late: Counter
        let sinkWrite: [String: Timer]
        let sinkRetries: [String: Counter]
        let sinkPending: [String: Gauge]
        let sinkHealthy: [String: Gauge]
        let sinkAcknowledged: [String: Gauge]
        let sinkOtherWriter: [String: Counter]
        let sinkWaitingForOtherWriter: [String: Gauge]
        let sinkRepairCompared: [String: Counter]
        let sinkRepaired: [String: Counter]
        let sinkRepairPasses: [String: Counter]
        let keyCollisions: [String: Counter]
    }

    public init(sinks: [(name: String, view: String)] = []) {
        metrics = Handles(
            consumed: Counter(label: "eddy_messages_consumed_total"),
            rows: Counter(label: "eddy_rows_total"),
            filtered: Counter(label: "eddy_rows_filtered_total"),
            wrongType: Counter(label: "eddy_source_wrong_type_fields_total"),
            checkpointDuration: Timer(label: "eddy_checkpoint_duration_seconds", preferredDisplayUnit: .seconds),
            checkpointEpoch: Gauge(label: "eddy_checkpoint_epoch"),
            paused: Gauge(label: "eddy_consumer_paused_partitions"),
            offsetGap: Counter(label: "eddy_source_offset_gap_messages_total"),
            redelivered: Counter(label: "eddy_source_redelivered_messages_total"),
            offsetOutOfRange: Dictionary(uniqueKeysWithValues: OffsetOutOfRangeOutcome.allCases.map {
                ($0.rawValue, Counter(label: "eddy_source_offset_out_of_range_total", dimensions: [("outcome", $0.rawValue)]))
            }),
            skipped: Dictionary(uniqueKeysWithValues: SkipReason.allCases.map {
                ($0.description, Counter(label: "eddy_source_errors_total", dimensions: [("reason", $0.description)]))
            }),
            late: Counter(label: "eddy_source_errors_total", dimensions: [("reason", Self.lateReason)]),
            sinkWrite: Dictionary(uniqueKeysWithValues: sinks.map {
                ($0.name, Timer(label: "eddy_sink_write_duration_seconds", dimensions: [("sink", $0.name)], preferredDisplayUnit: .seconds))
            }),
            sinkRetries: Dictionary(uniqueKeysWithValues: sinks.map { ($0.name, Counter(label: "eddy_sink_retries_total", dimensions: [("sink", $0.name)])) }),
            sinkPending: Dictionary(uniqueKeysWithValues: sinks.map { ($0.name, Gauge(label: "eddy_sink_pending_epochs", dimensions: [("sink", $0.name)])) }),
            sinkHealthy: Dictionary(uniqueKeysWithValues: sinks.map { ($0.name, Gauge(label: "eddy_sink_healthy", dimensions: [("sink", $0.name)])) }),
            sinkAcknowledged: Dictionary(uniqueKeysWithValues: sinks.map { ($0.name, Gauge(label: "eddy_sink_acknowledged_epoch", dimensions: [("sink", $0.name)])) }),
            sinkOtherWriter: Dictionary(uniqueKeysWithValues: sinks.map { ($0.name, Counter(label: "eddy_sink_other_writer_total", dimensions: [("sink", $0.name)])) }),
            sinkWaitingForOtherWriter: Dictionary(uniqueKeysWithValues: sinks.map {
                ($0.name, Gauge(label: "eddy_sink_waiting_for_other_writer", dimensions: [("sink", $0.name)]))
            }),
            sinkRepairCompared: Dictionary(uniqueKeysWithValues: sinks.map {
                ($0.name, Counter(label: "eddy_sink_repair_compared_keys_total", dimensions: [("sink", $0.name)]))
            }),
            sinkRepaired: Dictionary(uniqueKeysWithValues: sinks.map { ($0.name, Counter(label: "eddy_sink_repaired_keys_total", dimensions: [("sink", $0.name)])) }),
            sinkRepairPasses: Dictionary(uniqueKeysWithValues: sinks.map { ($0.name, Counter(label: "eddy_sink_repair_passes_total", dimensions: [("sink", $0.name)])) }),
            keyCollisions: Dictionary(uniqueKeysWithValues: sinks.map { ($0.name, Counter(label: "eddy_sink_key_collisions_total", dimensions: [("sink", $0.name)])) }))
        state.withLock { snapshot in snapshot.sinks = sinks.map { SinkSnapshot(name: $0.name, view: $0.view) } }
    }

    public var snapshot: Snapshot { state.withLock { $0 } }

    func setPhase(_ phase: Phase) { state.withLock { $0.phase = phase } }

    /// Every source's partitions, in the order the runner reports them in `batchApplied`.
    func setPartitions(_ partitions: [(topic: String, partition: Int32)], views: [String]) {
        state.withLock { snapshot in snapshot.partitions = partitions.map { PartitionSnapshot(topic: $0.topic, partition: $0.partition) } }
        partitionMetrics.withLock { handles in
            handles = partitions.map { topic, partition in
                let dimensions = [("topic", topic), ("partition", String(partition))]
                return (
                    Counter(label: "eddy_partition_messages_consumed_total", dimensions: dimensions),
                    Gauge(label: "eddy_consumer_lag_messages", dimensions: dimensions),
                    Gauge(label: "eddy_consumer_next_offset", dimensions: dimensions))
            }
        }
        viewGroups.withLock { gauges in
            for view in views where gauges[view] == nil { gauges[view] = Gauge(label: "eddy_view_rows", dimensions: [("view", view)]) }
        }
    }

    /// After a batch: messages per partition consumed in it, positions and ends, and the hot path's counters
    /// (cumulative) for the first view.
    func batchApplied(
        consumedPerPartition: [Int], nextOffsets: [Int64], highWatermarks: [Int64], counters: HotPathCounters, groupsByView: [String: Int]
    ) {
        var newlyConsumed = 0
        let deltas: (rows: Int, filtered: Int, wrongType: Int, redelivered: Int, skipped: [String: Int]) = state.withLock { snapshot in
            for index in snapshot.partitions.indices where index < consumedPerPartition.count {
                snapshot.partitions[index].consumed += consumedPerPartition[index]
                newlyConsumed += consumedPerPartition[index]
                if nextOffsets[index] >= 0 { snapshot.partitions[index].nextOffset = nextOffsets[index] }
                if highWatermarks[index] >= 0 { snapshot.partitions[index].highWatermark = highWatermarks[index] }
            }
            snapshot.messagesConsumed += newlyConsumed
            let rows = counters.rows - snapshot.rows
            let filtered = counters.filteredOut - snapshot.filteredOut
            let wrongType = counters.wrongTypeFields - snapshot.wrongTypeFields
            snapshot.rows = counters.rows
            snapshot.filteredOut = counters.filteredOut
            snapshot.wrongTypeFields = counters.wrongTypeFields
            let redelivered = counters.redeliveredMessages - snapshot.redeliveredMessages
            snapshot.redeliveredMessages = counters.redeliveredMessages
            var skipped: [String: Int] = [:]
            for reason in SkipReason.allCases where counters[reason] > (snapshot.skippedByReason[reason.description] ?? 0) {
                skipped[reason.description] = counters[reason] - (snapshot.skippedByReason[reason.description] ?? 0)
                snapshot.skippedByReason[reason.description] = counters[reason]
            }
            snapshot.groupsByView = groupsByView
            return (rows, filtered, wrongType, redelivered, skipped)
        }
        Self.add(newlyConsumed, to: metrics.consumed)
        let partitions = state.withLock { $0.partitions }
        partitionMetrics.withLock { handles in
            for (index, handle) in handles.enumerated() where index < partitions.count {
                if index < consumedPerPartition.count { Self.add(consumedPerPartition[index], to: handle.consumed) }
                if let lag = partitions[index].lag { handle.lag.record(Double(lag)) }
                if partitions[index].nextOffset >= 0 { handle.nextOffset.record(Double(partitions[index].nextOffset)) }
            }
        }
        viewGroups.withLock { gauges in
            for (view, groups) in groupsByView { gauges[view]?.record(Double(groups)) }
        }
        Self.add(deltas.rows, to: metrics.rows)
        Self.add(deltas.filtered, to: metrics.filtered)
        Self.add(deltas.wrongType, to: metrics.wrongType)
        Self.add(deltas.redelivered, to: metrics.redelivered)
        for (reason, count) in deltas.skipped { Self.add(count, to: metrics.skipped[reason]) }
    }

    /// Adds `amount` to `counter` when positive. swift-metrics traps on a negative increment, and a count
    /// computed as a difference must never stop the daemon: a non-positive one is ignored.
    private static func add(_ amount: some BinaryInteger, to counter: Counter?) {
        guard amount > 0, let counter else { return }
        counter.increment(by: Int64(clamping: amount))
    }

    /// Source rows dropped because their event time was behind its watermark: counted like the decoder's
    /// skips, as `eddy_source_errors_total{reason="late"}`.
    func lateRows(_ count: Int) {
        guard count > 0 else { return }
        state.withLock { $0.skippedByReason[Self.lateReason, default: 0] += count }
        Self.add(count, to: metrics.late)
    }

    static let lateReason = "late"

    func checkpointSubmitted(epoch: UInt64) { state.withLock { $0.lastSubmittedEpoch = epoch } }

    func checkpointCommitted(epoch: UInt64, groups: Int, duration: Duration) {
        state.withLock {
            $0.lastCommittedEpoch = epoch
            $0.lastCommit = .now
            $0.lastCommitDuration = duration
        }
        metrics.checkpointDuration.record(duration: duration)
        metrics.checkpointEpoch.record(Double(epoch))
    }

    /// A write applied; pending epochs follow from `sinkHealth`, which the hot path reports with each batch.
    func sinkWrote(sink: String, epoch: UInt64, keys: Int, duration: Duration) {
        state.withLock { snapshot in
            guard let index = snapshot.sinks.firstIndex(where: { $0.name == sink }) else { return }
            snapshot.sinks[index].writes += 1
            snapshot.sinks[index].keysWritten += keys
            snapshot.sinks[index].acknowledgedEpoch = max(snapshot.sinks[index].acknowledgedEpoch, epoch)
            snapshot.sinks[index].lastWrite = .now
            snapshot.sinks[index].isHealthy = true
            snapshot.sinks[index].lastError = nil
        }
        metrics.sinkWrite[sink]?.record(duration: duration)
        metrics.sinkAcknowledged[sink]?.record(Double(epoch))
        metrics.sinkHealthy[sink]?.record(1)
    }

    func sinkFailed(sink: String, error: String) {
        state.withLock { snapshot in
            guard let index = snapshot.sinks.firstIndex(where: { $0.name == sink }) else { return }
            snapshot.sinks[index].failures += 1
            snapshot.sinks[index].isHealthy = false
            snapshot.sinks[index].lastError = error
        }
        metrics.sinkRetries[sink]?.increment()
        metrics.sinkHealthy[sink]?.record(0)
    }

    /// The sink found another writer's marker ahead of its checkpoints (`true`), or has caught up with it.
    func sinkOtherWriter(sink: String, ahead: Bool) {
        state.withLock { snapshot in
            guard let index = snapshot.sinks.firstIndex(where: { $0.name == sink }) else { return }
            snapshot.sinks[index].otherWriterAhead = ahead
            if ahead { snapshot.sinks[index].otherWriterSightings += 1 }
        }
        if ahead { metrics.sinkOtherWriter[sink]?.increment() }
        metrics.sinkWaitingForOtherWriter[sink]?.record(ahead ? 1 : 0)
    }

    /// A repair chunk compared `comparedKeys` keys and rewrote `repairedKeys` of them; `passFinished` when it
    /// completed a pass over the whole view.
    func sinkRepaired(sink: String, comparedKeys: Int, repairedKeys: Int, passFinished: Bool) {
        state.withLock { snapshot in
            guard let index = snapshot.sinks.firstIndex(where: { $0.name == sink }) else { return }
            snapshot.sinks[index].repairComparedKeys += comparedKeys
            snapshot.sinks[index].repairedKeys += repairedKeys
            if passFinished { snapshot.sinks[index].repairPasses += 1 }
        }
        metrics.sinkRepairCompared[sink]?.increment(by: comparedKeys)
        metrics.sinkRepaired[sink]?.increment(by: repairedKeys)
        if passFinished { metrics.sinkRepairPasses[sink]?.increment() }
    }

    func sinkHealth(sink: String, healthy: Bool, pendingEpochs: UInt64, at now: ContinuousClock.Instant = .now) {
        state.withLock { snapshot in
            guard let index = snapshot.sinks.firstIndex(where: { $0.name == sink }) else { return }
            snapshot.sinks[index].isHealthy = healthy
            snapshot.sinks[index].pendingEpochs = pendingEpochs
            if pendingEpochs == 0 {
                snapshot.sinks[index].pendingSince = nil
            } else if snapshot.sinks[index].pendingSince == nil {
                snapshot.sinks[index].pendingSince = now
            }
        }
        metrics.sinkPending[sink]?.record(Double(pendingEpochs))
        metrics.sinkHealthy[sink]?.record(healthy ? 1 : 0)
    }

    func setPaused(_ paused: Bool, partitions: Int) {
        state.withLock {
            $0.isPaused = paused
            if $0.phase == .running || $0.phase == .paused || $0.phase == .catchingUp { $0.phase = paused ? .paused : ($0.isCaughtUp ? .running : .catchingUp) }
        }
        metrics.paused.record(paused ? Double(partitions) : 0)
    }

    func setCaughtUp() {
        state.withLock {
            $0.isCaughtUp = true
            if $0.phase == .catchingUp { $0.phase = .running }
        }
    }

    func keyCollisions(_ count: Int, sink: String) {
        Self.add(count, to: metrics.keyCollisions[sink])
    }

    /// An offset-out-of-range answer and what was done about it; `gap` is the number of messages retention
    /// deleted before they were read (0 unless `outcome` is `.retentionGap`).
    func offsetOutOfRange(_ outcome: OffsetOutOfRangeOutcome, gap: Int64 = 0) {
        let gap = max(0, gap)
        state.withLock {
            $0.offsetOutOfRangeByOutcome[outcome.rawValue, default: 0] += 1
            $0.offsetGapMessages += gap
        }
        Self.add(1, to: metrics.offsetOutOfRange[outcome.rawValue])
        Self.add(gap, to: metrics.offsetGap)
    }

    /// The consumer's view of the brokers, published with each batch.
    func brokerContact(lastAnswer: ContinuousClock.Instant, lastError: String?) {
        state.withLock {
            $0.lastBrokerAnswer = lastAnswer
            $0.lastKafkaError = lastError
        }
    }
}

/// What the runner did about an offset-out-of-range answer (the `outcome` label of
/// `eddy_source_offset_out_of_range_total`).
public enum OffsetOutOfRangeOutcome: String, Sendable, CaseIterable {
    /// Below the low watermark: messages were deleted unread; continued at the low watermark.
    case retentionGap = "retention_gap"
    /// Beyond the high watermark: continued at the partition's end.
    case pastEnd = "past_end"
    /// Inside the partition (or not judgeable): fetched the same offset again.
    case retried
}
