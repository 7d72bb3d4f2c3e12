import EddyState
import Foundation
import Logging

/// One checkpoint, prepared on the hot path: everything the store and the sinks need, already encoded.
struct CheckpointRequest: Sendable {
    var epoch: UInt64
    var offsets: [(TopicPartition, Int64)]
    /// Per view (by index into the store handles): encoded group key and encoded aggregate state.
    var entries: [[(key: [UInt8], state: [UInt8])]]
    /// Per sink: the rendered Redis pairs of the dirty groups.
    var sinkPairs: [[SinkStateMachine.Pair]]
}

/// Commits checkpoints on its own thread (an fsync must not stall the hot path), then hands each committed
/// epoch to the sinks. One request in flight at a time: the hot path keeps accumulating dirty groups
/// meanwhile and submits them with the next epoch.
final class CheckpointThread: @unchecked Sendable {
    private let store: CheckpointStore
    private let views: [ViewHandle]
    private let sinks: [SinkDriver]
    private let statistics: PipelineStatistics
    private let logger: Logger
    /// Held while committing, and while a sink reads the whole view for a re-send, so that the re-send sees
    /// the entries and the epoch of one and the same checkpoint.
    let commitLock = NSLock()
    private let condition = NSCondition()
    // Guarded by `condition`:
    private var request: CheckpointRequest?
    private var busy = false
    private var stopping = false
    private var finished = false
    private var failure: (any Error)?
    private var thread: JoinableThread?

    init(store: CheckpointStore, views: [ViewHandle], sinks: [SinkDriver], statistics: PipelineStatistics, logger: Logger) {
        self.store = store
        self.views = views
        self.sinks = sinks
        self.statistics = statistics
        self.logger = logger
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

    /// Queues `request`; call only when `isIdle`.
    func submit(_ request: CheckpointRequest) {
        condition.lock()
        precondition(self.request == nil && !busy, "a checkpoint is already in flight")
        self.request = request
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
        condition.lock()
        while true {
            while request == nil && !stopping { condition.wait() }
            guard let next = request, failure == nil else { break }
            request = nil
            busy = true
            condition.unlock()
            let outcome = Result { try commit(next) }
            condition.lock()
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

    private func commit(_ request: CheckpointRequest) throws {
        let started = ContinuousClock.now
        // The sinks learn of the epoch under the same lock: a sink re-sending the whole view (which reads the
        // checkpoint under this lock) must never see an epoch it has not been handed yet.
        let summary = try commitLock.withLock {
            let summary = try store.commit(epoch: request.epoch, offsets: request.offsets) { writer in
                for (viewIndex, entries) in request.entries.enumerated() {
                    for entry in entries { try writer.put(view: views[viewIndex], key: entry.key, value: entry.state) }
                }
            }
            let offsets = Dictionary(request.offsets, uniquingKeysWith: { _, last in last })
            for (index, sink) in sinks.enumerated() {
                sink.checkpointCommitted(SinkProgress(epoch: request.epoch, form: sink.form, offsets: offsets), pairs: request.sinkPairs[index])
            }
            return summary
        }
        let duration = ContinuousClock.now - started
        statistics.checkpointCommitted(epoch: request.epoch, groups: summary.putCount, duration: duration)
        logger.debug("checkpoint committed", metadata: [
            "eddy.epoch": "\(request.epoch)", "eddy.groups": "\(summary.putCount)", "eddy.duration": "\(duration)",
            "eddy.map_growths": "\(summary.mapGrowths)",
        ])
    }
}
