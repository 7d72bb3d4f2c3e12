import EddyDataflow
import EddyKafka
import EddyRedis
import EddySQL
import EddyState
import Foundation
import Logging
import Synchronization

/// Runs a bound pipeline as a daemon (DESIGN §2, §3; the dataflow's shape is `DataflowGraph`'s): Kafka →
/// decode → aggregate on the calling thread (every source in turn, `SourceRun`), views over views and
/// checkpoints on the checkpoint coordinator's thread (`CheckpointThread`, the store's only writer), Redis
/// writes on one thread per sink (`SinkDriver`). This type is the wiring and the hot thread's loop.
///
/// Start-up (`RestoredPipeline`) restores every view from the checkpoint store; each source's partitions are
/// assigned at their stored offsets, else where `scan.startup.mode` points now (`SourceAssignment`); each sink
/// re-sends whatever Redis may lack before anything new is written. `run` returns after a graceful stop:
/// consumption stopped, a final checkpoint committed, sinks flushed (bounded wait).
public final class PipelineRunner: Sendable {
    public let pipeline: Pipeline
    public let options: PipelineOptions
    /// Counters and gauges for logs, metrics and readiness.
    public let statistics: PipelineStatistics
    private let logger: Logger
    /// Every view, as the engine runs it.
    public let graph: DataflowGraph
    /// The views aggregated on the hot path, in the order of the hot loop's aggregators.
    private let plans: [ViewPlan]
    /// Per sink: the index of its view in the graph, and the sink.
    private let sinkBindings: [(view: Int, sink: Sink)]
    /// The open store while running, for reads from other threads (HTTP, tests).
    private let openStore = Mutex<CheckpointStore?>(nil)
    private let caughtUpRows = Mutex<[String: [[SQLValue]]]>([:])
    private let warnedAboutCollisions = Mutex<Set<String>>([])

    public init(pipeline: Pipeline, options: PipelineOptions, logger: Logger) throws(EngineError) {
        self.pipeline = pipeline
        self.options = options
        self.logger = logger
        let graph = try DataflowGraph(pipeline: pipeline)
        self.graph = graph
        plans = graph.sourcePlans.map(\.plan)
        sinkBindings = pipeline.sinks.map { sink in (graph.index(ofView: sink.viewName)!, sink) }
        statistics = PipelineStatistics(sinks: pipeline.sinks.map { ($0.name, $0.viewName) })
    }

    // MARK: Reading views from outside the hot path

    /// The rows of every view as the pipeline had them when it first caught up (for the file's `SELECT`s).
    public var rowsWhenCaughtUp: [String: [[SQLValue]]] { caughtUpRows.withLock { $0 } }

    /// A view's rows from the last committed checkpoint, read in a snapshot without disturbing the pipeline.
    /// Nil when the view is unknown or the pipeline is not running.
    public func checkpointedRows(view name: String) throws -> (columns: [OutputColumn], rows: [[SQLValue]], epoch: UInt64)? {
        guard let index = graph.index(ofView: name), let store = openStore.withLock({ $0 }) else { return nil }
        let epoch = try store.loadCheckpoint().epoch
        return (graph.views[index].outputColumns, try graph.rows(ofView: index, in: store), epoch)
    }

    /// Whether every sink is connected and its last attempt succeeded.
    public var sinksHealthy: Bool { statistics.snapshot.sinks.allSatisfy(\.isHealthy) }

    // MARK: Running

    /// Runs until `stop` is requested, a sink stops for good, or an unrecoverable error. Blocking: call it on
    /// a thread of its own (not the cooperative pool). `caughtUp` is called once, when the consumer first
    /// reaches the end every partition had at start.
    public func run(until stop: StopSignal, caughtUp: @escaping (PipelineRunner) -> Void = { _ in }) throws {
        statistics.setPhase(.starting)
        defer { statistics.setPhase(.stopped) }
        let restored = try RestoredPipeline.restore(graph: graph, sinks: sinkBindings, options: options, logger: logger)
        let store = restored.store
        let checkpoint = restored.checkpoint
        openStore.withLock { $0 = store }
        defer { openStore.withLock { $0 = nil } }

        // The sources first: a wrong address or a missing topic is the likeliest start-up error, and it
        // should be the one reported.
        var consumers: [KafkaConsumer] = []
        defer { consumers.forEach { $0.close() } }
        for source in graph.sources { consumers.append(try makeConsumer(for: source)) }

        // Sinks: each re-sends what Redis may lack before new epochs.
        let commitLock = CommitLock()
        // Acknowledgements go to the coordinator, the store's only writer; it exists once the drivers do.
        let coordinator = Mutex<CheckpointThread?>(nil)
        let drivers = sinkBindings.enumerated().map { index, binding in
            makeSinkDriver(
                binding.sink, form: restored.sinkForms[index], view: binding.view, store: store, checkpoint: checkpoint, commitLock: commitLock,
                acknowledge: { progress, slots in coordinator.withLock { $0 }?.acknowledge(sink: binding.sink.name, progress: progress, slots: slots) })
        }
        let sourcePositions = Dictionary(uniqueKeysWithValues: graph.sourcePlans.enumerated().map { ($1.index, $0) })
        let renderings = sinkBindings.map { binding in
            SinkRendering(
                input: sourcePositions[binding.view].map { .groups(delta: $0) } ?? .changes(view: binding.view),
                renderer: SinkRenderer(sink: binding.sink, node: graph.nodes[binding.view]),
                reportCollisions: { [self] collisions in reportKeyCollisions(collisions, sink: binding.sink.name) })
        }
        let checkpointThread = CheckpointThread(
            store: store, views: restored.sourceHandles(graph), cascade: restored.cascade, sinks: drivers, renderings: renderings,
            commitLock: commitLock, statistics: statistics, logger: logger)
        coordinator.withLock { $0 = checkpointThread }
        checkpointThread.start()
        drivers.forEach { $0.start() }
        defer {
            // Sinks first: the coordinator then records their last acknowledgements before it stops.
            drivers.forEach { $0.stop() }
            checkpointThread.stop()
            coordinator.withLock { $0 = nil }
        }

        // Every source's partitions, each from its stored offset or where its scan.startup.mode points now.
        var runs: [SourceRun] = []
        let sourcePlans = graph.sourcePlans
        for (index, source) in graph.sources.enumerated() {
            guard let assignment = try SourceAssignment.assign(
                consumers[index], source: source, checkpoint: checkpoint, stop: stop, timeout: options.kafkaConnectTimeout, logger: logger)
            else {
                logger.info("stopped during start-up, before consuming anything")
                return
            }
            let positions = sourcePlans.indices.filter { sourcePlans[$0].plan.source.name == source.name }
            runs.append(SourceRun(
                index: index, source: source, consumer: consumers[index], assignment: assignment,
                aggregators: positions.map { restored.aggregators[$0] }, plans: positions.map { sourcePlans[$0].plan }, deltaPositions: positions,
                schema: graph.schema(ofSource: index), readsRows: graph.readsRows(ofSource: index), limits: options.decoderLimits))
        }
        statistics.setPartitions(runs.flatMap { run in run.partitions.map { (run.topic, $0) } }, views: plans.map(\.view.name))

        var epoch = checkpoint.epoch
        // The epochs' `now()`, when a view reads it: never behind the last checkpoint's, whatever the wall clock says.
        var epochTime = checkpoint.offsets[DataflowGraph.clockPartition] ?? .min
        let readsClock = graph.hasTemporalFilters
        var lastCheckpoint = ContinuousClock.now
        var lastPublished = ContinuousClock.now
        var backpressure = Backpressure()
        var reportedCaughtUp = false
        var schedule = CheckpointSchedule(
            interval: options.checkpointInterval, catchUpInterval: options.maxCheckpointInterval,
            dirtyGroupLimit: options.checkpointDirtyGroups, catchUpDirtyGroupLimit: options.catchUpCheckpointDirtyGroups,
            catchUpBacklog: options.catchUpBacklog)
        // With several sources each poll waits less, so that an idle one does not slow the others.
        let pollTimeout = Duration.milliseconds(max(10, 100 / runs.count))

        // The barrier, across all sources: copy each view's changed groups (key and state bytes) into the
        // deltas the checkpoint thread handed back, and go back to consuming; encoding for the store and
        // rendering for the sinks happen on the checkpoint thread. Call only when it is idle.
        //
        // With a temporal filter an epoch also has a time, and one is cut with no new message once the clock has
        // reached a change of the filter's rows (a row leaving the view as time passes).
        func checkpointNow() {
            let wallTime = readsClock ? options.wallClock() : .min
            // Also when a sink waits for another writer's marker and the clock has moved: its time may be what is
            // behind, and on a quiet source no message would cut the epoch that reaches it (the clock model's finding).
            let timeChanges = readsClock && (max(epochTime, wallTime) >= checkpointThread.nextTimeChange
                || (wallTime > epochTime && statistics.snapshot.sinks.contains(where: \.otherWriterAhead)))
            guard runs.contains(where: \.hasChanges) || timeChanges else { return }
            var request = CheckpointRequest(epoch: epoch + 1, offsets: [], deltas: checkpointThread.takeSpareDeltas())
            var spareRows = checkpointThread.takeSpareSourceRows()
            for index in runs.indices {
                runs[index].cutBarrier(deltas: &request.deltas, offsets: &request.offsets, sourceRows: &request.sourceRows, spareRows: &spareRows)
            }
            if readsClock {
                epochTime = max(epochTime, wallTime)
                request.time = epochTime
                request.offsets.append((DataflowGraph.clockPartition, epochTime))
            }
            epoch += 1
            checkpointThread.submit(request)
            statistics.checkpointSubmitted(epoch: epoch)
        }

        func publishStatistics() {
            for index in runs.indices { runs[index].refreshWatermarks() }
            statistics.batchApplied(
                consumedPerPartition: runs.flatMap(\.hot.consumedPerPartition), nextOffsets: runs.flatMap(\.hot.nextOffsets),
                highWatermarks: runs.flatMap(\.highWatermarks), counters: runs.dropFirst().reduce(runs[0].hot.counters) { $0 + $1.hot.counters },
                groupsByView: Dictionary(uniqueKeysWithValues: runs.flatMap(\.groupsByView)))
            for run in runs.indices {
                for partition in runs[run].hot.consumedPerPartition.indices { runs[run].hot.consumedPerPartition[partition] = 0 }
                if let report = runs[run].hot.takeWrongFieldReport() { logger.warning("\(report)", metadata: ["eddy.source": "\(runs[run].source.name)"]) }
            }
            for driver in drivers { statistics.sinkHealth(sink: driver.name, healthy: driver.healthy, pendingEpochs: driver.unacknowledgedEpochs) }
            // The consumer that heard from its brokers longest ago speaks for all.
            let quietest = consumers.min { $0.lastBrokerAnswer < $1.lastBrokerAnswer }!
            statistics.brokerContact(
                lastAnswer: quietest.lastBrokerAnswer, lastError: consumers.lazy.compactMap { $0.lastClientError?.reason }.first)
        }

        // Record where every partition starts before reading anything: a crash before the first regular
        // checkpoint must not make the restart resolve scan.startup.mode again (latest would skip messages).
        checkpointNow()
        checkpointThread.waitUntilIdle()
        if let error = checkpointThread.error { throw error }

        statistics.setPhase(.catchingUp)
        for run in runs { logger.info("consuming", metadata: ["eddy.topic": "\(run.topic)", "eddy.partitions": "\(run.partitions.count)"]) }
        while !stop.isRequested {
            if let error = checkpointThread.error { throw error }
            if let failure = drivers.lazy.compactMap(\.failure).first { throw EngineError(.sinkStopped, failure) }
            let pausedNow = backpressure.paused
            for index in runs.indices {
                let consumer = runs[index].consumer
                let topic = runs[index].topic
                try consumer.consumeBatch(maxMessages: options.batchSize, timeout: pollTimeout) { batch in
                    try runs[index].hot.apply(batch) { error, nextOffsets in
                        try handle(error, topic: topic, consumer: consumer, nextOffsets: &nextOffsets, paused: pausedNow)
                    }
                    CrashPoint.midConsumption.reach()
                }
            }

            let now = ContinuousClock.now
            if now - lastPublished >= .milliseconds(100) {
                publishStatistics()
                lastPublished = now
            }
            let dirtyGroups = runs.reduce(0) { $0 + $1.hot.dirtyCount }
            if schedule.noteBacklog(runs.reduce(Int64(0)) { $0 + $1.backlog }) {
                for index in runs.indices { runs[index].noteCatchUpEnds() }
            }
            if checkpointThread.isIdle
                && schedule.isDue(
                    elapsed: now - lastCheckpoint, dirtyGroups: dirtyGroups, reachedCatchUpEnds: runs.allSatisfy(\.hasReachedCatchUpEnds))
            {
                checkpointNow()
                lastCheckpoint = now
                schedule.epochClosed()
            }

            // Backpressure: pause (and keep polling, so the consumers stay alive) while a sink lags.
            let lagging = zip(drivers, sinkBindings).first { driver, binding in
                driver.backpressureEpochs > binding.sink.redis.maxPendingEpochs.map(UInt64.init) ?? options.maxPendingEpochs
            }
            let partitionCount = runs.reduce(0) { $0 + $1.partitions.count }
            switch backpressure.update(lagging: lagging.map { ($0.0.name, $0.0.unacknowledgedEpochs) }) {
            case .pause(let sink, let behind):
                for run in runs { try run.consumer.pause(partitions: run.partitions) }
                statistics.setPaused(true, partitions: partitionCount)
                logger.warning("sink is \(behind) epochs behind; pausing consumption until it catches up", metadata: ["eddy.sink": "\(sink)"])
            case .resume:
                for run in runs { try run.consumer.resume(partitions: run.partitions) }
                statistics.setPaused(false, partitions: partitionCount)
                logger.warning("sinks caught up; resuming consumption")
            case nil:
                break
            }

            if !reportedCaughtUp && runs.allSatisfy(\.isCaughtUp) {
                reportedCaughtUp = true
                publishStatistics()
                logger.info("caught up with the source", metadata: ["eddy.messages": "\(statistics.snapshot.messagesConsumed)"])
                statistics.setCaughtUp()
                let rows = try rowsOfQueriedViews(runs: runs, store: store) {
                    checkpointThread.waitUntilIdle()
                    checkpointNow()
                    lastCheckpoint = now
                    schedule.epochClosed()
                    checkpointThread.waitUntilIdle()
                    if let error = checkpointThread.error { throw error }
                }
                caughtUpRows.withLock { $0 = rows }
                caughtUp(self)
            }
        }

        statistics.setPhase(.stopping)
        logger.info("stopping: final checkpoint and sink flush")
        checkpointThread.waitUntilIdle()
        if let error = checkpointThread.error { throw error }
        checkpointNow()
        checkpointThread.waitUntilIdle()
        if let error = checkpointThread.error { throw error }
        publishStatistics()
        let flushDeadline = ContinuousClock.now + options.shutdownFlushTimeout
        for driver in drivers where !driver.flush(timeout: max(.zero, flushDeadline - .now)) {
            logger.warning("sink did not acknowledge the final checkpoint in time; it is re-sent at the next start", metadata: ["eddy.sink": "\(driver.name)"])
        }
        logger.info("stopped", metadata: ["eddy.epoch": "\(epoch)", "eddy.messages": "\(statistics.snapshot.messagesConsumed)"])
    }

    /// The rows of the views the file's SELECTs read (only those: a view of a million groups would keep ~150
    /// bytes a group here): a view aggregated on the hot path from its table, a derived view from a checkpoint
    /// that `cutCheckpoint` commits now.
    private func rowsOfQueriedViews(
        runs: [SourceRun], store: CheckpointStore, cutCheckpoint: () throws -> Void
    ) throws -> [String: [[SQLValue]]] {
        let queried = Set(pipeline.queries.map(\.viewName))
        var rows: [String: [[SQLValue]]] = [:]
        for run in runs {
            for (plan, aggregator) in zip(run.plans, run.hot.aggregators) where queried.contains(plan.view.name) {
                rows[plan.view.name] = try plan.outputRows(of: aggregator.table)
            }
        }
        let derived = graph.nodes.indices.filter { index in
            if case .derived = graph.nodes[index] { queried.contains(graph.views[index].name) } else { false }
        }
        guard !derived.isEmpty else { return rows }
        try cutCheckpoint()
        for index in derived { rows[graph.views[index].name] = try graph.rows(ofView: index, in: store) }
        return rows
    }

    /// Groups that rendered to one Redis key: counted in metrics, logged once per sink and run.
    private func reportKeyCollisions(_ collisions: Int, sink: String) {
        guard collisions > 0 else { return }
        statistics.keyCollisions(collisions, sink: sink)
        guard warnedAboutCollisions.withLock({ $0.insert(sink).inserted }) else { return }
        logger.warning(
            "groups of the view render to the same Redis key (its key_format cannot tell them apart, e.g. a NULL group and the text 'NULL'); the later group's value is kept",
            metadata: ["eddy.sink": "\(sink)", "eddy.groups": "\(collisions)"])
    }

    /// What a sink writes to Redis, beyond the view's state: a change means Redis holds another form.
    static func fingerprint(of sink: Sink, view: View) -> String {
        let encoding = switch sink.redis.encoding {
        case .template(let key, let value): "template key '\(key)' value '\(value)'"
        case .json: "json"
        }
        let primaryKey = sink.redis.primaryKeyColumns.map { view.outputColumns[$0].name }.joined(separator: ",")
        let outputs = view.outputColumns.map { "\($0.name)=\($0.expression)" }.joined(separator: ", ")
        return "\(encoding); primary key \(primaryKey); append-only \(sink.redis.forceAppendOnly); view \(view.name): \(outputs)"
            + (view.having.map { "; having \($0)" } ?? "") + sink.redis.layoutFingerprint
    }

    /// The progress of a checkpoint of this pipeline's sources, as `sink` (output form `form`) writes it.
    private func progress(epoch: UInt64, offsets: [TopicPartition: Int64], form: UInt64) -> SinkProgress {
        Self.progress(epoch: epoch, offsets: offsets, form: form, topics: graph.topics)
    }

    /// The progress of a checkpoint of `topics`' offsets (a state directory may hold offsets of topics the
    /// pipeline no longer reads), for a sink of output form `form`.
    static func progress(epoch: UInt64, offsets: [TopicPartition: Int64], form: UInt64, topics: Set<String>) -> SinkProgress {
        SinkProgress(epoch: epoch, form: form, offsets: offsets.filter { topics.contains($0.key.topic) })
    }

    private func makeSinkDriver(
        _ sink: Sink, form: UInt64, view: Int, store: CheckpointStore, checkpoint: StoredCheckpoint, commitLock: CommitLock,
        acknowledge: @escaping @Sendable (SinkProgress, _ slots: [UInt16]) -> Void
    ) -> SinkDriver {
        let renderer = SinkRenderer(sink: sink, node: graph.nodes[view])
        let graph = graph
        let acknowledgedEpoch = checkpoint.acknowledgedEpochs[sink.name] ?? 0
        let transport = RedisSinkTransport.make(
            sink: sink, slotRecord: (checkpoint.acknowledgedSlots[sink.name] ?? [:]).mapValues { progress(epoch: $0.epoch, offsets: $0.offsets, form: form) },
            acknowledged: checkpoint.acknowledgedOffsets[sink.name] != nil || acknowledgedEpoch > 0,
            connectTimeout: options.redisConnectTimeout, commandTimeout: options.redisCommandTimeout, logger: logger)
        let statistics = statistics
        let sinkName = sink.name
        @Sendable func render(countingCollisions: Bool) throws -> (progress: SinkProgress, pairs: SinkPairBatch) {
            // Under the commit lock: the entries, the epoch and the offsets of one checkpoint.
            let rendered = try commitLock.withLock { try renderer.renderCheckpoint(of: store, graph: graph, view: view, form: form) }
            if countingCollisions { self.reportKeyCollisions(rendered.collisions, sink: sinkName) }
            return (rendered.progress, rendered.pairs)
        }
        let driver = SinkDriver(
            name: sink.name, transport: transport, acknowledgedEpoch: acknowledgedEpoch,
            acknowledged: checkpoint.acknowledgedOffsets[sink.name].map { progress(epoch: acknowledgedEpoch, offsets: $0, form: form) },
            committed: progress(epoch: checkpoint.epoch, offsets: checkpoint.offsets, form: form),
            backoff: options.redisBackoff, probeInterval: options.sinkProbeInterval,
            repair: sink.redis.isComparable && sink.redis.clusterNodes.isEmpty ? options.sinkRepair : nil,
            hooks: .init(
                renderFullView: { try render(countingCollisions: true) },
                recordAcknowledged: acknowledge,
                didWrite: { [logger] epoch, keys, duration in
                    statistics.sinkWrote(sink: sinkName, epoch: epoch, keys: keys, duration: duration)
                    logger.debug("sink wrote", metadata: ["eddy.sink": "\(sinkName)", "eddy.epoch": "\(epoch)", "eddy.keys": "\(keys)", "eddy.duration": "\(duration)"])
                },
                didFail: { error in statistics.sinkFailed(sink: sinkName, error: "\(error)") },
                otherWriterAhead: { ahead in statistics.sinkOtherWriter(sink: sinkName, ahead: ahead) },
                renderForRepair: { try render(countingCollisions: false) },
                didRepair: { compared, repaired, passFinished in
                    statistics.sinkRepaired(sink: sinkName, comparedKeys: compared, repairedKeys: repaired, passFinished: passFinished)
                }
            ),
            logger: logger)
        return driver
    }

    private func makeConsumer(for source: Source) throws -> KafkaConsumer {
        let settings = source.kafka
        var configuration = KafkaConsumerConfiguration(bootstrapServers: settings.bootstrapServers, topic: settings.topic, groupID: settings.groupID)
        configuration.startupMode = switch settings.startupMode {
        case .earliest: .earliest
        case .latest: .latest
        case .timestamp(let milliseconds): .timestamp(millisecondsSinceEpoch: milliseconds)
        }
        configuration.connectTimeout = options.kafkaConnectTimeout
        configuration.maxBatchSize = options.batchSize
        // Statistics move `lastBrokerAnswer`, which readiness reads.
        configuration.statisticsInterval = options.brokerStatisticsInterval
        // Security, SASL, SSL and pass-through settings, already in librdkafka's names.
        configuration.clientProperties = settings.clientProperties.map { ($0.key, $0.value) }
        return try KafkaConsumer.make(configuration: configuration, logger: logger)
    }

    /// A per-message error from Kafka. An offset out of range is judged against the partition's real
    /// watermarks (`OffsetOutOfRangeRecovery`): only an offset below the low watermark is a retention gap
    /// (logged loudly, counted, continued at the low watermark); one beyond the end continues at the end;
    /// any other is fetched again at the same offset, so that nothing is skipped or counted twice.
    ///
    /// - Parameter paused: whether consumption is paused for backpressure (recovering a partition re-assigns
    ///   them all, which resumes them: the pause is applied again).
    private func handle(_ error: KafkaMessageError, topic: String, consumer: KafkaConsumer, nextOffsets: inout [Int64], paused: Bool) throws {
        switch error {
        case .partitionEOF:
            return
        case .offsetOutOfRange(let partition, let reported, let low, let high):
            // The engine's own next offset is what it has applied up to; librdkafka's report names the same
            // fetch (messages and errors of a partition arrive in order), but the engine's is authoritative.
            let index = Int(partition)
            let expected = index < nextOffsets.count && nextOffsets[index] >= 0 ? nextOffsets[index] : reported
            let recovery = OffsetOutOfRangeRecovery(expected: expected, low: low, high: high)
            let metadata: Logger.Metadata = [
                "eddy.topic": "\(topic)", "eddy.partition": "\(partition)", "eddy.offset": "\(expected)",
                "eddy.low": "\(low)", "eddy.high": "\(high)",
            ]
            switch recovery {
            case .retentionGap(let target, let missing):
                logger.error("""
                    offset \(expected) of partition \(partition) is no longer in Kafka (retained: \(low)..<\(high)): \(missing) \
                    messages were deleted by retention before Eddy read them and are missing from every view. Continuing at \
                    offset \(target).
                    """, metadata: metadata)
                statistics.offsetOutOfRange(.retentionGap, gap: missing)
            case .pastEnd(let target, _):
                logger.error("""
                    offset \(expected) of partition \(partition) is past the partition's end (\(high)): the log was truncated or \
                    the topic re-created. Continuing at offset \(target); what is written below offset \(expected) from now on \
                    was not counted before and will be.
                    """, metadata: metadata)
                statistics.offsetOutOfRange(.pastEnd)
            case .retry:
                let judged = low >= 0 && high >= 0 ? "inside the partition (\(low)..<\(high))" : "not checkable (watermarks unknown)"
                logger.warning(
                    "Kafka answered offset out of range for an offset \(judged); fetching it again", metadata: metadata)
                statistics.offsetOutOfRange(.retried)
            }
            try consumer.seek(partition: partition, to: recovery.nextOffset)
            if index < nextOffsets.count { nextOffsets[index] = recovery.nextOffset }
            if paused { try consumer.pause(partitions: consumer.assignedPartitions) }
        case .other(let partition, let kafkaError):
            if kafkaError.isFatal { throw kafkaError }
            logger.warning("Kafka reported an error; the client retries", metadata: ["eddy.partition": "\(partition)", "eddy.error": "\(kafkaError)"])
        }
    }
}
