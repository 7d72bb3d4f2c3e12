import EddyDataflow
import EddyKafka
import EddySQL
import EddyState

/// One source while the pipeline runs, on the hot thread: its consumer, where its partitions stand, and the hot
/// loop of the views that read it. The runner reads every source in turn and cuts one barrier across all.
struct SourceRun {
    /// The source's index in `DataflowGraph.sources`.
    let index: Int
    let source: Source
    let consumer: KafkaConsumer
    let assignment: SourceAssignment
    var hot: HotLoop
    /// Per view of `hot`, the position of its delta in a checkpoint request.
    let deltaPositions: [Int]
    /// The views aggregated here, in `hot.aggregators`' order.
    let plans: [ViewPlan]
    /// Per partition, the offset the last submitted checkpoint holds (-1: none).
    private var checkpointedOffsets: [Int64]
    /// Per partition, its end as librdkafka last saw it (-1: unknown).
    private(set) var highWatermarks: [Int64]

    var topic: String { source.kafka.topic }
    var partitions: [Int32] { assignment.partitions }

    init(
        index: Int, source: Source, consumer: KafkaConsumer, assignment: SourceAssignment, aggregators: [Aggregator], plans: [ViewPlan],
        deltaPositions: [Int], schema: RowSchema, readsRows: Bool, limits: DecoderLimits
    ) {
        self.index = index
        self.source = source
        self.consumer = consumer
        self.assignment = assignment
        self.plans = plans
        self.deltaPositions = deltaPositions
        let partitions = assignment.partitions
        hot = HotLoop(
            aggregators: aggregators, decoder: RowDecoder(schema: schema, limits: limits),
            sourceRows: readsRows ? Self.emptyRows(source) : nil,
            nextOffsets: partitions.map { assignment.startOffsets[$0] ?? -1 }, consumedPerPartition: [Int](repeating: 0, count: partitions.count))
        checkpointedOffsets = partitions.map { assignment.stored[$0] ?? -1 }
        highWatermarks = [Int64](repeating: -1, count: partitions.count)
    }

    private static func emptyRows(_ source: Source) -> ChangeBatch {
        ChangeBatch(keyWidth: DerivedViewPlan.sourceRowKeyWidth, rowWidth: source.rowColumns.count)
    }

    /// Whether a checkpoint now would store anything new of this source.
    var hasChanges: Bool { hot.dirtyCount > 0 || hot.nextOffsets != checkpointedOffsets }

    /// Hands this source's part of a barrier over: its views' changed groups into `deltas`, its next offsets,
    /// and its rows of the epoch (for the views that read them), taking an emptied batch from `spareRows` for the next.
    mutating func cutBarrier(
        deltas: inout [BarrierDelta], offsets: inout [(TopicPartition, Int64)], sourceRows: inout [Int: ChangeBatch], spareRows: inout [Int: ChangeBatch]
    ) {
        for (view, position) in deltaPositions.enumerated() { hot.aggregators[view].table.takeDirty(into: &deltas[position]) }
        for (position, partition) in partitions.enumerated() where hot.nextOffsets[position] >= 0 {
            offsets.append((TopicPartition(topic: topic, partition: partition), hot.nextOffsets[position]))
        }
        if let rows = hot.sourceRows {
            sourceRows[index] = rows
            hot.sourceRows = spareRows.removeValue(forKey: index) ?? Self.emptyRows(source)
        }
        checkpointedOffsets = hot.nextOffsets
    }

    /// Reads the partitions' ends as librdkafka last saw them (no broker round trip).
    mutating func refreshWatermarks() {
        for (position, partition) in partitions.enumerated() {
            if let (_, high) = consumer.lastKnownWatermarks(partition: partition) { highWatermarks[position] = high }
        }
    }

    /// Messages behind, for the checkpoint schedule's catch-up rule.
    var backlog: Int64 {
        CheckpointSchedule.backlog(nextOffsets: hot.nextOffsets, starts: assignment.starts) { end(ofPartition: $0) }
    }

    /// The partition's (by position) furthest known end.
    private func end(ofPartition position: Int) -> Int64 {
        CheckpointSchedule.end(ofPartition: position, highWatermarks: highWatermarks, targets: assignment.catchUpTargets)
    }

    /// Per partition, the end a catch-up epoch reads up to before it closes (`CheckpointSchedule.noteBacklog`).
    private var catchUpEnds: [Int64] = []

    mutating func noteCatchUpEnds() { catchUpEnds = partitions.indices.map(end(ofPartition:)) }

    /// Whether every partition has been read up to the end noted when the open epoch turned catch-up.
    var hasReachedCatchUpEnds: Bool {
        CheckpointSchedule.backlog(nextOffsets: hot.nextOffsets, starts: assignment.starts) { $0 < catchUpEnds.count ? catchUpEnds[$0] : -1 } == 0
    }

    /// Whether every partition has reached the end it had at start.
    var isCaughtUp: Bool { zip(hot.nextOffsets, assignment.catchUpTargets).allSatisfy { $0 >= $1 } }

    /// The groups each of its views holds, by name.
    var groupsByView: [(String, Int)] { zip(plans, hot.aggregators).map { ($0.view.name, $1.table.groupCount) } }
}
