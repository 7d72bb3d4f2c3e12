import CPlatform
import EddyDataflow
import EddyState
import Foundation
import Logging
import Synchronization

/// One checkpoint, handed over by the hot path: the groups each view changed (key and state bytes, copied
/// flat), and the offsets and epoch they belong to. The checkpoint thread does the rest: store puts, sink pairs.
struct CheckpointRequest: Sendable {
    var epoch: UInt64
    var offsets: [(TopicPartition, Int64)]
    /// Per view aggregated on the hot path (in `DataflowGraph.sourcePlans`' order): its changed groups.
    var deltas: [BarrierDelta]
    /// Per source (by index in `DataflowGraph.sources`) whose rows a view reads: its rows of the epoch.
    var sourceRows: [Int: ChangeBatch] = [:]
    /// When the hot path cut the barrier: the clock a watermark's idle timeout reads.
    var cutAt: ContinuousClock.Instant = .now
    /// The epoch's `now()` for temporal filters (microseconds since 1970; also among `offsets`, as
    /// `DataflowGraph.clockPartition`), `Int64.min` when no view reads it.
    var time: Int64 = .min
}

/// How a sink's pairs are made from a checkpoint: the renderer of its view, what it renders, and where
/// groups that render to one key are reported.
struct SinkRendering: Sendable {
    enum Input: Sendable {
        /// The changed groups of a source view: the index of its delta in the request.
        case groups(delta: Int)
        /// The changes of a derived view: its index in the graph.
        case changes(view: Int)
    }

    var input: Input
    var renderer: SinkRenderer
    var reportCollisions: @Sendable (Int) -> Void

    /// Whether each epoch's deleted keys are kept for this sink (`Tombstones`): its sink keeps them, and its pairs can
    /// delete (a delta rendered straight from bytes only sets values: no HAVING).
    var keepsTombstones: Bool {
        guard renderer.sink.redis.keepsTombstones else { return false }
        if case .groups = input, renderer.rendersDeltasDirectly { return false }
        return true
    }
}

/// The checkpoint coordinator: commits checkpoints on its own thread (an fsync must not stall the hot path),
/// then hands each committed epoch to the sinks. It is the only thread that writes the store once the pipeline
/// runs: sinks send it their acknowledgements (`acknowledge`), which it records between checkpoints. One
/// request in flight at a time: the hot path keeps accumulating dirty groups meanwhile and submits them with
/// the next epoch.
final class CheckpointThread: @unchecked Sendable {
    private let store: CheckpointStore
    /// The state of each view aggregated on the hot path, in the order of the requests' deltas.
    private let views: [ViewHandle]
    /// The derived views; only this thread touches it once started.
    private var cascade: Cascade
    private let sinks: [SinkDriver]
    /// Per sink, in `sinks`' order.
    private let renderings: [SinkRendering]
    private let statistics: PipelineStatistics
    private let logger: Logger
    /// Held while committing, and while a sink reads the whole view for a re-send, so that the re-send sees
    /// the entries and the epoch of one and the same checkpoint.
    private let commitLock: CommitLock
    /// How often the checkpoint thread gives free heap pages back (`malloc_trim`).
    static let heapTrimInterval = Duration.seconds(10)
    private let condition = NSCondition()
    // Guarded by `condition`:
    private var request: CheckpointRequest?
    private var busy = false
    private var stopping = false
    private var finished = false
    private var failure: (any Error)?
    private var thread: JoinableThread?
    /// The deltas of the last committed checkpoint, emptied, for the hot path to fill again.
    private var spareDeltas: [BarrierDelta] = []
    /// The source rows of the last committed checkpoint, emptied, for the hot path to fill again: a batch that
    /// grew to an epoch's rows is reused rather than grown again from nothing each epoch (which fragments the heap).
    private var spareSourceRows: [Int: ChangeBatch] = [:]
    /// Per sink, the latest epoch it acknowledged and has not been recorded yet, and (a Redis Cluster sink) per
    /// slot the latest of those acknowledged writes that touched it.
    private var acknowledgements: [String: (progress: SinkProgress, slots: [UInt16: AcknowledgedProgress])] = [:]
    /// When a temporal filter's rows next change with no new input (`Int64.max`: never), as of the last commit.
    private var pendingTimeChange: Int64

    init(
        store: CheckpointStore, views: [ViewHandle], cascade: Cascade, sinks: [SinkDriver], renderings: [SinkRendering],
        commitLock: CommitLock, statistics: PipelineStatistics, logger: Logger
    ) {
        precondition(sinks.count == renderings.count, "one rendering per sink")
        self.store = store
        self.views = views
        self.cascade = cascade
        self.commitLock = commitLock
        self.sinks = sinks
        self.renderings = renderings
        self.statistics = statistics
        self.logger = logger
        var restored = cascade
        pendingTimeChange = restored.nextTimeChange()
    }

    /// The time (microseconds since 1970) at which an epoch changes a temporal filter's rows even when no
    /// message arrives (`Int64.max`: none would): the hot path cuts a barrier for it then.
    var nextTimeChange: Int64 {
        condition.lock()
        defer { condition.unlock() }
        return pendingTimeChange
    }

    func start() {
        thread = JoinableThread(name: "eddy-checkpoint") { [self] in run() }
    }

    /// True when no checkpoint is queued or being written.
    var isIdle: Bool {
        condition.lock()
        defer { condition.unlock() }
        return request == nil && !busy
    }

    /// The error that stopped checkpointing, if any: the pipeline must stop (the last checkpoint stays valid).
    var error: (any Error)? {
        condition.lock()
        defer { condition.unlock() }
        return failure
    }

    /// Empty deltas for the next barrier, one per view: those of the last committed checkpoint (their capacity
    /// kept), so that a warm barrier allocates nothing. Call only when `isIdle`.
    func takeSpareDeltas() -> [BarrierDelta] {
        condition.lock()
        var deltas = spareDeltas
        spareDeltas = []
        condition.unlock()
        if deltas.count != views.count { deltas = Array(repeating: BarrierDelta(), count: views.count) }
        return deltas
    }

    /// Empty source-row batches for the next barrier, by source index: those of the last committed checkpoint
    /// (their capacity kept). Call only when `isIdle`.
    func takeSpareSourceRows() -> [Int: ChangeBatch] {
        condition.lock()
        defer { condition.unlock() }
        let rows = spareSourceRows
        spareSourceRows = [:]
        return rows
    }

    /// Queues `request`; call only when `isIdle`.
    func submit(_ request: CheckpointRequest) {
        condition.lock()
        precondition(self.request == nil && !busy, "a checkpoint is already in flight")
        self.request = request
        condition.broadcast()
        condition.unlock()
    }

    /// Queues the record of `sink`'s acknowledgement of `progress`, a write that touched the Redis Cluster hash
    /// `slots` (none for a single Redis): written between checkpoints, by this thread. A later acknowledgement
    /// replaces one not yet written (the stored one never moves backwards); the slots of both are kept.
    func acknowledge(sink: String, progress: SinkProgress, slots: [UInt16]) {
        condition.lock()
        var pending = acknowledgements[sink] ?? (progress, [:])
        if pending.progress.epoch < progress.epoch { pending.progress = progress }
        let acknowledged = AcknowledgedProgress(epoch: progress.epoch, offsets: progress.offsets)
        for slot in slots where (pending.slots[slot]?.epoch ?? 0) <= progress.epoch { pending.slots[slot] = acknowledged }
        acknowledgements[sink] = pending
        condition.broadcast()
        condition.unlock()
    }

    /// Waits until the queued checkpoint (if any) is committed or has failed.
    func waitUntilIdle() {
        condition.lock()
        while (request != nil || busy) && failure == nil { condition.wait() }
        condition.unlock()
    }

    func stop() {
        condition.lock()
        stopping = true
        condition.broadcast()
        while !finished { condition.wait() }
        condition.unlock()
        thread?.join()
        thread = nil
    }

    private func run() {
        var lastHeapTrim = ContinuousClock.now
        condition.lock()
        while true {
            while request == nil && acknowledgements.isEmpty && !stopping { condition.wait() }
            if failure != nil { break }
            if !acknowledgements.isEmpty {
                // A crash before they are written costs a sink one idempotent re-write of its last epoch.
                let pending = acknowledgements
                acknowledgements = [:]
                condition.unlock()
                let outcome = Result { try record(pending) }
                condition.lock()
                if case .failure(let error) = outcome {
                    failure = error
                    logger.error("recording a sink's acknowledgement failed; stopping", metadata: ["eddy.error": "\(error)"])
                    condition.broadcast()
                    break
                }
                continue
            }
            guard var next = request else { break }
            request = nil
            busy = true
            condition.unlock()
            let outcome = Result { try commit(next) }
            // Hand the deltas back emptied (uniquely held once `next` lets go, so emptying keeps their storage).
            var deltas = next.deltas
            next.deltas = []
            for index in deltas.indices { deltas[index].removeAll() }
            var rows = next.sourceRows
            next.sourceRows = [:]
            for source in rows.keys { rows[source]!.removeAll() }
            // Free heap pages go back to the kernel now and then, not per free: the daemon's mmap threshold is high
            // (see RunCommand), so an epoch's buffers come from the heap, and without this a long run's heap grew. Not
            // after every epoch: while catching up, big epochs re-faulted the pages given back the second before.
            if lastHeapTrim.duration(to: .now) >= Self.heapTrimInterval {
                malloc_trim(0)
                lastHeapTrim = .now
            }
            condition.lock()
            spareDeltas = deltas
            spareSourceRows = rows
            busy = false
            if case .failure(let error) = outcome {
                failure = error
                logger.error("checkpoint failed; stopping (the last committed checkpoint stays valid)", metadata: ["eddy.epoch": "\(next.epoch)", "eddy.error": "\(error)"])
            }
            condition.broadcast()
        }
        finished = true
        condition.broadcast()
        condition.unlock()
    }

    private func record(_ pending: [String: (progress: SinkProgress, slots: [UInt16: AcknowledgedProgress])]) throws {
        for (sink, (progress, slots)) in pending.sorted(by: { $0.key < $1.key }) {
            do {
                try store.recordAcknowledged(sink: sink, epoch: progress.epoch, offsets: progress.offsets, slots: slots)
            } catch {
                throw EngineError(.sinkStopped, "cannot record epoch \(progress.epoch) as acknowledged by sink \(sink) in the checkpoint store: \(error)")
            }
        }
    }

    private func commit(_ request: CheckpointRequest) throws {
        let started = ContinuousClock.now
        // The derived views' changes, from the source views' changed groups and the last checkpoint's rows.
        if !cascade.isEmpty {
            var partitions: [Int: [Int32]] = [:]
            for (index, source) in cascade.graph.sources.enumerated() where source.watermark != nil {
                partitions[index] = request.offsets.compactMap { $0.0.topic == source.kafka.topic ? $0.0.partition : nil }
            }
            try store.withSnapshot { snapshot in
                try cascade.propagate(
                    deltas: request.deltas, sourceRows: request.sourceRows, partitions: partitions, now: request.cutAt, time: request.time,
                    snapshot: snapshot)
            }
            for late in cascade.lateRows.values { statistics.lateRows(late) }
        }
        // The sinks' pairs, rendered here rather than on the hot path: a source view's changed groups straight from
        // the delta's bytes into one batch when the templates allow it, else restored into a table of their own
        // (the same decoding as a restart) and rendered as a full view would be; a derived view's changes as they are.
        var sinkPairs = [SinkPairBatch](repeating: SinkPairBatch(), count: sinks.count)
        var tables: [Int: GroupTable] = [:]
        for (index, rendering) in renderings.enumerated() {
            var collisions = 0
            switch rendering.input {
            case .groups(let deltaIndex):
                let delta = request.deltas[deltaIndex]
                if delta.isEmpty { continue }
                if rendering.renderer.rendersDeltasDirectly {
                    sinkPairs[index] = try rendering.renderer.pairs(ofDelta: delta, collisions: &collisions)
                    break
                }
                let table = try tables[deltaIndex] ?? rendering.renderer.plan!.table { body in try delta.forEach(body) }
                tables[deltaIndex] = table
                sinkPairs[index] = try rendering.renderer.pairs(of: table, groups: 0..<table.groupCount, collisions: &collisions)
            case .changes(let view):
                sinkPairs[index] = rendering.renderer.pairs(of: cascade.changes[view]!, collisions: &collisions)
            }
            if collisions > 0 { rendering.reportCollisions(collisions) }
        }
        tables.removeAll()
        // The keys each sink deletes in this epoch, kept until it acknowledges the epoch (`Tombstones`).
        var tombstones = [Tombstones](repeating: Tombstones(), count: sinks.count)
        for (index, rendering) in renderings.enumerated() where rendering.keepsTombstones {
            sinkPairs[index].forEachKeyValue { key, value in
                if value == nil { tombstones[index].append(key) }
            }
        }
        // The sinks learn of the epoch under the same lock: a sink re-sending the whole view (which reads the
        // checkpoint under this lock) must never see an epoch it has not been handed yet.
        let summary = try commitLock.withLock {
            let summary = try store.commit(epoch: request.epoch, offsets: request.offsets) { writer in
                for (viewIndex, delta) in request.deltas.enumerated() {
                    try delta.forEachInKeyOrder { key, state throws(StateError) in try writer.put(view: views[viewIndex], key: key, value: state) }
                }
                for write in cascade.stateWrites {
                    if let value = write.value {
                        try writer.put(view: write.view, key: write.key, value: value)
                    } else {
                        try writer.delete(view: write.view, key: write.key)
                    }
                }
                // Pruned for every sink whose whole view reads tombstones, even one whose epochs now add none (a
                // pipeline changed since may have left some).
                for (index, rendering) in renderings.enumerated() where rendering.renderer.sink.redis.keepsTombstones {
                    let sink = rendering.renderer.sink.name
                    try writer.pruneTombstones(sink: sink)
                    try writer.putTombstones(tombstones[index], sink: sink, epoch: request.epoch)
                }
            }
            CrashPoint.afterCommit.reach()
            let offsets = Dictionary(request.offsets, uniquingKeysWith: { _, last in last })
            for (index, sink) in sinks.enumerated() {
                sink.checkpointCommitted(SinkProgress(epoch: request.epoch, form: sink.form, offsets: offsets), pairs: sinkPairs[index])
            }
            return summary
        }
        let timeChange = cascade.nextTimeChange()
        condition.lock()
        pendingTimeChange = timeChange
        condition.unlock()
        let duration = ContinuousClock.now - started
        statistics.checkpointCommitted(epoch: request.epoch, groups: summary.putCount, duration: duration)
        logger.debug("checkpoint committed", metadata: [
            "eddy.epoch": "\(request.epoch)", "eddy.groups": "\(summary.putCount)", "eddy.duration": "\(duration)",
            "eddy.map_growths": "\(summary.mapGrowths)",
        ])
    }
}

/// The lock of a checkpoint's commit, shared by the coordinator and the sinks' whole-view reads.
final class CommitLock: Sendable {
    private let mutex = Mutex<Void>(())

    func withLock<Result>(_ body: () throws -> Result) rethrows -> Result {
        try mutex.withLock { _ in try body() }
    }
}
