import EddyEngine
import EddyHTTP
import EddySQL
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// The pipeline as a `Service` of the daemon's `ServiceGroup`: the runner works on its own thread (blocking
/// C calls never run on the cooperative pool); graceful shutdown asks it to stop (final checkpoint, sink
/// flush) and waits for it.
struct PipelineService: Service {
    let runner: PipelineRunner
    let caughtUp: @Sendable (PipelineRunner) -> Void

    func run() async throws {
        let stop = StopSignal()
        let runner = runner
        let caughtUp = caughtUp
        try await withGracefulShutdownHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                Thread.detachNewThread {
                    Thread.current.name = "eddy-hot-path"
                    continuation.resume(with: Result { try runner.run(until: stop, caughtUp: caughtUp) })
                }
            }
        } onGracefulShutdown: {
            stop.request()
        }
    }
}

/// What the HTTP side shows, read from the runner: its statistics, and views from the last checkpoint.
struct RunnerDataSource: EddyHTTPDataSource {
    let runner: PipelineRunner
    let pipelineName: String
    let readiness = ReadinessRules()

    func status() async -> PipelineStatus {
        let snapshot = runner.statistics.snapshot
        let now = ContinuousClock.now
        let source = runner.pipeline.sources.first { source in runner.pipeline.views.contains { $0.sourceName == source.name } }
        let partitions = snapshot.partitions.map {
            PartitionStatus(partition: $0.partition, nextOffset: $0.nextOffset, highWatermark: $0.highWatermark >= 0 ? $0.highWatermark : nil, lag: $0.lag, consumed: Int64($0.consumed))
        }
        let status = PipelineStatus(
            pipeline: pipelineName,
            uptimeSeconds: (now - snapshot.startedAt).seconds,
            state: Self.state(snapshot.phase),
            sources: source.map { [SourceStatus(name: $0.name, topic: $0.kafka.topic, consumed: Int64(snapshot.messagesConsumed), partitions: partitions)] } ?? [],
            decodeErrors: snapshot.skippedByReason.mapValues(Int64.init).merging(["wrong_type_field": Int64(snapshot.wrongTypeFields)]) { $1 },
            views: runner.pipeline.views.map { ViewSummary(name: $0.name, source: $0.sourceName, groups: snapshot.groupsByView[$0.name] ?? 0) },
            sinks: snapshot.sinks.map {
                SinkStatus(
                    name: $0.name, view: $0.view, healthy: $0.isHealthy, acknowledgedEpoch: $0.acknowledgedEpoch,
                    pendingEpochs: Int($0.pendingEpochs), retries: Int64($0.failures),
                    secondsSinceLastWrite: $0.lastWrite.map { (now - $0).seconds }, lastError: $0.lastError)
            },
            checkpoint: CheckpointStatus(
                epoch: snapshot.lastCommittedEpoch, secondsSinceCommit: snapshot.lastCommit.map { (now - $0).seconds },
                lastDurationMilliseconds: snapshot.lastCommit == nil ? nil : snapshot.lastCommitDuration.seconds * 1000),
            ready: false, notReadyReasons: [])
        return readiness.apply(to: status)
    }

    func views() async -> [ViewRows] {
        runner.pipeline.views.compactMap { rows(of: $0) }
    }

    func view(named name: String) async -> ViewRows? {
        runner.pipeline.view(named: name).flatMap(rows(of:))
    }

    private func rows(of view: View) -> ViewRows? {
        let columns = view.outputColumns.map { column in
            let isGroupKey = if case .groupKey = column.expression { true } else { false }
            return ViewColumn(name: column.name, type: column.type.description, isGroupKey: isGroupKey)
        }
        guard let checkpoint = try? runner.checkpointedRows(view: view.name) else {
            return ViewRows(name: view.name, columns: columns, rows: [], epoch: 0, isLive: false)
        }
        return ViewRows(name: view.name, columns: columns, rows: checkpoint.rows.map { $0.map(JSONScalar.init) }, epoch: checkpoint.epoch, isLive: false)
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

extension Duration {
    var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
