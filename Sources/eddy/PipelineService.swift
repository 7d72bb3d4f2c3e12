import EddyEngine
import EddyHTTP
import EddySQL
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// The pipeline as a `Service` of the daemon's `ServiceGroup`: the runner works on its own thread (blocking
/// C calls never run on the cooperative pool); graceful shutdown, or cancellation of the task, asks it to
/// stop (final checkpoint, sink flush) and waits for it.
struct PipelineService: Service {
    let runner: PipelineRunner
    let caughtUp: @Sendable (PipelineRunner) -> Void

    func run() async throws {
        let runner = runner
        let caughtUp = caughtUp
        try await Self.runOnOwnThread(named: "eddy-hot-path") { stop in try runner.run(until: stop, caughtUp: caughtUp) }
    }

    /// Runs `body` on a new thread and waits for it without holding a cooperative thread. Graceful shutdown
    /// and cancellation of the calling task both request `stop` (once set it stays set); `body` must return
    /// soon after. Returns or throws what `body` does: the continuation is resumed by the thread whatever
    /// `body` does short of crashing.
    static func runOnOwnThread(named name: String, _ body: @escaping @Sendable (StopSignal) throws -> Void) async throws {
        let stop = StopSignal()
        try await withTaskCancellationHandler {
            try await withGracefulShutdownHandler {
                try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                    // Not joined: the continuation says when it is done.
                    _ = JoinableThread(name: name) { continuation.resume(with: Result { try body(stop) }) }
                }
            } onGracefulShutdown: {
                stop.request()
            }
        } onCancel: {
            stop.request()
        }
    }
}

/// A value per view, computed at most once per committed checkpoint epoch, on a serial queue of its own.
///
/// Why: a view's checkpointed rows are a whole LMDB scan, a table rebuild and every row rendered; done per
/// dashboard poll on the cooperative pool (two threads here), it would stall every other request. The
/// epoch is read before the rows: a checkpoint committed meanwhile is at worst read again at the next ask
/// (the runner counts an epoch committed only after LMDB has it). A read that finds nothing (the pipeline
/// not running) is not kept.
final class CheckpointedViewCache<Value: Sendable>: Sendable {
    private let queue: DispatchQueue
    private let committedEpoch: @Sendable () -> UInt64
    private let read: @Sendable (String) -> Value?
    /// Touched only on `queue`; the lock only makes that provable to the compiler.
    private let entries = Mutex<[String: (epoch: UInt64, value: Value)]>([:])

    /// - Parameters:
    ///   - queue: where `read` runs; serial, so that concurrent asks for a view wait for one read.
    ///   - committedEpoch: the last committed epoch now.
    ///   - read: the value of a view now; nil when there is none to show.
    init(
        queue: DispatchQueue = DispatchQueue(label: "eddy.http.checkpointed-views"),
        committedEpoch: @escaping @Sendable () -> UInt64,
        read: @escaping @Sendable (String) -> Value?
    ) {
        self.queue = queue
        self.committedEpoch = committedEpoch
        self.read = read
    }

    /// The value of `view`, from the cache while the committed epoch has not moved.
    func value(of view: String) async -> Value? {
        await withCheckedContinuation { continuation in
            queue.async { continuation.resume(returning: self.valueOnQueue(of: view)) }
        }
    }

    private func valueOnQueue(of view: String) -> Value? {
        let epoch = committedEpoch()
        if let cached = entries.withLock({ $0[view] }), cached.epoch == epoch { return cached.value }
        guard let value = read(view) else {
            entries.withLock { _ = $0.removeValue(forKey: view) }
            return nil
        }
        entries.withLock { $0[view] = (epoch, value) }
        return value
    }
}

/// What the HTTP side shows, read from the runner: its statistics, and views from the last checkpoint.
struct RunnerDataSource: EddyHTTPDataSource {
    let runner: PipelineRunner
    let pipelineName: String
    let readiness = ReadinessRules()
    /// Each view's rows from the last checkpoint, read once per committed epoch off the cooperative pool.
    private let checkpointedViews: CheckpointedViewCache<ViewRows>

    init(runner: PipelineRunner, pipelineName: String) {
        self.runner = runner
        self.pipelineName = pipelineName
        checkpointedViews = CheckpointedViewCache(committedEpoch: { runner.statistics.snapshot.lastCommittedEpoch }) { name in
            guard let view = runner.pipeline.view(named: name), let checkpoint = try? runner.checkpointedRows(view: name) else { return nil }
            return ViewRows(name: name, columns: Self.columns(of: view), rows: checkpoint.rows.map { $0.map(JSONScalar.init) }, epoch: checkpoint.epoch, isLive: false)
        }
    }

    func status() async -> PipelineStatus {
        let snapshot = runner.statistics.snapshot
        let now = ContinuousClock.now
        func partitions(of topic: String) -> [PipelineStatistics.PartitionSnapshot] { snapshot.partitions.filter { $0.topic == topic } }
        let status = PipelineStatus(
            pipeline: pipelineName,
            uptimeSeconds: (now - snapshot.startedAt) / .seconds(1),
            state: Self.state(snapshot.phase),
            sources: runner.graph.sources.map { source in
                let partitions = partitions(of: source.kafka.topic)
                return SourceStatus(
                    name: source.name, topic: source.kafka.topic, consumed: Int64(partitions.reduce(0) { $0 + $1.consumed }),
                    partitions: partitions.map {
                        PartitionStatus(
                            partition: $0.partition, nextOffset: $0.nextOffset, highWatermark: $0.highWatermark >= 0 ? $0.highWatermark : nil,
                            lag: $0.lag, consumed: Int64($0.consumed))
                    },
                    secondsSinceBrokerAnswered: snapshot.lastBrokerAnswer.map { (now - $0) / .seconds(1) }, lastBrokerError: snapshot.lastKafkaError)
            },
            decodeErrors: snapshot.skippedByReason.mapValues(Int64.init).merging(["wrong_type_field": Int64(snapshot.wrongTypeFields)]) { $1 },
            views: runner.pipeline.views.map { ViewSummary(name: $0.name, source: $0.sourceName, groups: snapshot.groupsByView[$0.name] ?? 0) },
            sinks: snapshot.sinks.map {
                SinkStatus(
                    name: $0.name, view: $0.view, healthy: $0.isHealthy, acknowledgedEpoch: $0.acknowledgedEpoch,
                    pendingEpochs: Int($0.pendingEpochs), retries: Int64($0.failures),
                    secondsSinceLastWrite: $0.lastWrite.map { (now - $0) / .seconds(1) }, lastError: $0.lastError,
                    secondsWaitingForWrite: $0.waitingForWriteSince.map { max(0, (now - $0) / .seconds(1)) },
                    waitingForOtherWriter: $0.otherWriterAhead)
            },
            checkpoint: CheckpointStatus(
                epoch: snapshot.lastCommittedEpoch, secondsSinceCommit: snapshot.lastCommit.map { (now - $0) / .seconds(1) },
                lastDurationMilliseconds: snapshot.lastCommit == nil ? nil : snapshot.lastCommitDuration / .milliseconds(1)),
            ready: false, notReadyReasons: [])
        return readiness.apply(to: status)
    }

    func views() async -> [ViewRows] {
        var views: [ViewRows] = []
        for view in runner.pipeline.views { views.append(await rows(of: view)) }
        return views
    }

    func view(named name: String) async -> ViewRows? {
        guard let view = runner.pipeline.view(named: name) else { return nil }
        return await rows(of: view)
    }

    /// The view's rows from the last checkpoint; none (epoch 0) while the pipeline is not running.
    private func rows(of view: View) async -> ViewRows {
        if let rows = await checkpointedViews.value(of: view.name) { return rows }
        return ViewRows(name: view.name, columns: Self.columns(of: view), rows: [], epoch: 0, isLive: false)
    }

    private static func columns(of view: View) -> [ViewColumn] {
        view.outputColumns.map { column in
            let isGroupKey = if case .groupKey = column.expression { true } else { false }
            return ViewColumn(name: column.name, type: column.type.description, isGroupKey: isGroupKey)
        }
    }

    private static func state(_ phase: PipelineStatistics.Phase) -> PipelineRunState {
        switch phase {
        case .starting: .starting
        case .catchingUp: .catchingUp
        case .running: .running
        case .paused: .paused
        case .stopping, .stopped: .stopping
        }
    }
}

extension JSONScalar {
    init(_ value: SQLValue) {
        switch value {
        case .null: self = .null
        case .bool(let flag): self = .bool(flag)
        case .int(let number): self = .int(number)
        case .double(let number): self = .double(number)
        case .string(let text): self = .string(text)
        }
    }
}
