import EddyDataflow
import EddyKafka
import EddyRedis
import EddySQL
import EddyState
import Foundation
import Logging
import Synchronization

/// Runs a bound pipeline as a daemon (DESIGN §2, §3): Kafka → decode → aggregate on the calling thread,
/// checkpoints to LMDB on the checkpoint thread, Redis writes on one thread per sink.
///
/// Start-up restores every view from the checkpoint store, assigns every partition of the source topic at its
/// stored offset (else where `scan.startup.mode` points now), and lets each sink re-send whatever Redis may
/// lack before anything new is written. `run` returns after a graceful stop: consumption stopped, a final
/// checkpoint committed, sinks flushed (bounded wait).
public final class PipelineRunner: Sendable {
    public let pipeline: Pipeline
    public let options: PipelineOptions
    /// Counters and gauges for logs, metrics and readiness.
    public let statistics: PipelineStatistics
    private let logger: Logger
    private let source: Source
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
        source = graph.source
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

        // The source first: a wrong address or a missing topic is the likeliest start-up error, and it
        // should be the one reported.
        let consumer = try makeConsumer()
        defer { consumer.close() }

        // Sinks: each re-sends what Redis may lack before new epochs.
        let commitLock = CommitLock()
        // Acknowledgements go to the coordinator, the store's only writer; it exists once the drivers do.
        let coordinator = Mutex<CheckpointThread?>(nil)
        let drivers = sinkBindings.enumerated().map { index, binding in
            makeSinkDriver(
                binding.sink, form: restored.sinkForms[index], view: binding.view, store: store, checkpoint: checkpoint, commitLock: commitLock,
                acknowledge: { progress in coordinator.withLock { $0 }?.acknowledge(sink: binding.sink.name, progress: progress) })
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

        let topic = source.kafka.topic
        guard let assignment = try SourceAssignment.assign(
            consumer, source: source, checkpoint: checkpoint, stop: stop, timeout: options.kafkaConnectTimeout, logger: logger)
        else {
            logger.info("stopped during start-up, before consuming anything")
            return
        }
        let partitions = assignment.partitions
        let partitionCount = partitions.count
        let catchUpTargets = assignment.catchUpTargets
        statistics.setPartitions(partitions, topic: topic, views: plans.map(\.view.name))
        var checkpointedOffsets = partitions.map { assignment.stored[$0] ?? -1 }

        var epoch = checkpoint.epoch
        var lastCheckpoint = ContinuousClock.now
        var lastPublished = ContinuousClock.now
        var backpressure = Backpressure()
        var reportedCaughtUp = false
        var hot = HotLoop(
            aggregators: restored.aggregators, decoder: RowDecoder(schema: graph.sourceSchema, limits: options.decoderLimits),
            sourceRows: graph.readsSourceRows ? ChangeBatch(keyWidth: DerivedViewPlan.sourceRowKeyWidth, rowWidth: source.columns.count) : nil,
            nextOffsets: partitions.map { assignment.startOffsets[$0] ?? -1 }, consumedPerPartition: [Int](repeating: 0, count: partitionCount))
        var highWatermarks = [Int64](repeating: -1, count: partitionCount)
        let schedule = CheckpointSchedule(
            interval: options.checkpointInterval, catchUpInterval: options.maxCheckpointInterval,
            dirtyGroupLimit: options.checkpointDirtyGroups, catchUpBacklog: options.catchUpBacklog)

        // The barrier: copy each view's changed groups (key and state bytes) into the deltas the checkpoint
        // thread handed back, and go back to consuming; encoding for the store and rendering for the sinks
        // happen on the checkpoint thread. Call only when it is idle.
        func checkpointNow() {
            guard hot.dirtyCount > 0 || hot.nextOffsets != checkpointedOffsets else { return }
            var deltas = checkpointThread.takeSpareDeltas()
            for viewIndex in hot.aggregators.indices { hot.aggregators[viewIndex].table.takeDirty(into: &deltas[viewIndex]) }
            var offsets: [(TopicPartition, Int64)] = []
            for partition in 0..<partitionCount where hot.nextOffsets[partition] >= 0 {
                offsets.append((TopicPartition(topic: topic, partition: Int32(partition)), hot.nextOffsets[partition]))
            }
            epoch += 1
            var request = CheckpointRequest(epoch: epoch, offsets: offsets, deltas: deltas)
            if graph.readsSourceRows {
                request.sourceRows = hot.sourceRows
                hot.sourceRows = ChangeBatch(keyWidth: DerivedViewPlan.sourceRowKeyWidth, rowWidth: source.columns.count)
            }
            checkpointThread.submit(request)
            checkpointedOffsets = hot.nextOffsets
            statistics.checkpointSubmitted(epoch: epoch)
        }

        func publishStatistics() {
            for partition in 0..<partitionCount {
                if let (_, high) = consumer.lastKnownWatermarks(partition: Int32(partition)) { highWatermarks[partition] = high }
            }
            statistics.batchApplied(
                consumedPerPartition: hot.consumedPerPartition, nextOffsets: hot.nextOffsets, highWatermarks: highWatermarks,
                counters: hot.counters,
                groupsByView: Dictionary(uniqueKeysWithValues: zip(plans, hot.aggregators).map { ($0.view.name, $1.table.groupCount) }))
            for index in hot.consumedPerPartition.indices { hot.consumedPerPartition[index] = 0 }
            for driver in drivers { statistics.sinkHealth(sink: driver.name, healthy: driver.healthy, pendingEpochs: driver.unacknowledgedEpochs) }
            statistics.brokerContact(lastAnswer: consumer.lastBrokerAnswer, lastError: consumer.lastClientError?.reason)
        }

        // Record where every partition starts before reading anything: a crash before the first regular
        // checkpoint must not make the restart resolve scan.startup.mode again (latest would skip messages).
        checkpointNow()
        checkpointThread.waitUntilIdle()
        if let error = checkpointThread.error { throw error }

        statistics.setPhase(.catchingUp)
        logger.info("consuming", metadata: ["eddy.topic": "\(topic)", "eddy.partitions": "\(partitionCount)"])
        while !stop.isRequested {
            if let error = checkpointThread.error { throw error }
            if let failure = drivers.lazy.compactMap(\.failure).first { throw EngineError(.sinkStopped, failure) }
            let pausedNow = backpressure.paused
            try consumer.consumeBatch(maxMessages: options.batchSize, timeout: .milliseconds(100)) { batch in
                try hot.apply(batch) { error, nextOffsets in
                    try handle(error, consumer: consumer, nextOffsets: &nextOffsets, paused: pausedNow)
                }
            }

            let now = ContinuousClock.now
            if now - lastPublished >= .milliseconds(100) {
                publishStatistics()
                lastPublished = now
            }
            let backlog = CheckpointSchedule.backlog(nextOffsets: hot.nextOffsets, highWatermarks: highWatermarks, targets: catchUpTargets)
            if schedule.isDue(elapsed: now - lastCheckpoint, dirtyGroups: hot.dirtyCount, backlog: backlog) && checkpointThread.isIdle {
                checkpointNow()
                lastCheckpoint = now
            }

            // Backpressure: pause (and keep polling, so the consumer stays alive) while a sink lags.
            let lagging = zip(drivers, sinkBindings).first { driver, binding in
                driver.backpressureEpochs > binding.sink.redis.maxPendingEpochs.map(UInt64.init) ?? options.maxPendingEpochs
            }
            switch backpressure.update(lagging: lagging.map { ($0.0.name, $0.0.unacknowledgedEpochs) }) {
            case .pause(let sink, let behind):
                try consumer.pause(partitions: partitions)
                statistics.setPaused(true, partitions: partitions.count)
                logger.warning("sink is \(behind) epochs behind; pausing consumption until it catches up", metadata: ["eddy.sink": "\(sink)"])
            case .resume:
                try consumer.resume(partitions: partitions)
                statistics.setPaused(false, partitions: partitions.count)
                logger.warning("sinks caught up; resuming consumption")
            case nil:
                break
            }

            if !reportedCaughtUp && zip(hot.nextOffsets, catchUpTargets).allSatisfy({ $0.0 >= $0.1 }) {
                reportedCaughtUp = true
                publishStatistics()
                logger.info("caught up with the source", metadata: ["eddy.messages": "\(statistics.snapshot.messagesConsumed)"])
                statistics.setCaughtUp()
                var rows: [String: [[SQLValue]]] = [:]
                // Only views the file's SELECTs read: a view of a million groups would keep ~150 bytes a group here.
                let queried = Set(pipeline.queries.map(\.viewName))
                for (plan, aggregator) in zip(plans, hot.aggregators) where queried.contains(plan.view.name) {
                    rows[plan.view.name] = try plan.outputRows(of: aggregator.table)
                }
                if graph.nodes.indices.contains(where: { queried.contains(graph.views[$0].name) && !sourcePositions.keys.contains($0) }) {
                    // Derived views are computed at barriers: one now, and they are read from it.
                    checkpointThread.waitUntilIdle()
                    checkpointNow()
                    lastCheckpoint = now
                    checkpointThread.waitUntilIdle()
                    if let error = checkpointThread.error { throw error }
                    for (index, node) in graph.nodes.enumerated() where queried.contains(graph.views[index].name) {
                        if case .derived = node { rows[graph.views[index].name] = try graph.rows(ofView: index, in: store) }
                    }
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
            + (view.having.map { "; having \($0)" } ?? "")
    }

    /// The progress of a checkpoint of this pipeline's source, as `sink` (output form `form`) writes it.
    private func progress(epoch: UInt64, offsets: [TopicPartition: Int64], form: UInt64) -> SinkProgress {
        Self.progress(epoch: epoch, offsets: offsets, form: form, topic: source.kafka.topic)
    }

    /// The progress of a checkpoint of `topic`'s offsets, for a sink of output form `form`.
    static func progress(epoch: UInt64, offsets: [TopicPartition: Int64], form: UInt64, topic: String) -> SinkProgress {
        SinkProgress(epoch: epoch, form: form, offsets: offsets.filter { $0.key.topic == topic })
    }

    private func makeSinkDriver(
        _ sink: Sink, form: UInt64, view: Int, store: CheckpointStore, checkpoint: StoredCheckpoint, commitLock: CommitLock,
        acknowledge: @escaping @Sendable (SinkProgress) -> Void
    ) -> SinkDriver {
        let renderer = SinkRenderer(sink: sink, node: graph.nodes[view])
        let graph = graph
        let transport = RedisSinkTransport(
            sink: sink.name, url: sink.redisURL,
            connectTimeout: options.redisConnectTimeout, commandTimeout: options.redisCommandTimeout, logger: logger)
        let statistics = statistics
        let sinkName = sink.name
        let acknowledgedEpoch = checkpoint.acknowledgedEpochs[sink.name] ?? 0
        let topic = source.kafka.topic
        @Sendable func render(countingCollisions: Bool) throws -> (progress: SinkProgress, pairs: SinkPairBatch) {
            // Under the commit lock: the entries, the epoch and the offsets of one checkpoint.
            let rendered = try commitLock.withLock { try renderer.renderCheckpoint(of: store, graph: graph, view: view, form: form, topic: topic) }
            if countingCollisions { self.reportKeyCollisions(rendered.collisions, sink: sinkName) }
            return (rendered.progress, rendered.pairs)
        }
        let driver = SinkDriver(
            name: sink.name, transport: transport, acknowledgedEpoch: acknowledgedEpoch,
            acknowledged: checkpoint.acknowledgedOffsets[sink.name].map { progress(epoch: acknowledgedEpoch, offsets: $0, form: form) },
            committed: progress(epoch: checkpoint.epoch, offsets: checkpoint.offsets, form: form),
            backoff: options.redisBackoff, probeInterval: options.sinkProbeInterval, repair: options.sinkRepair,
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

    private func makeConsumer() throws -> KafkaConsumer {
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
    private func handle(_ error: KafkaMessageError, consumer: KafkaConsumer, nextOffsets: inout [Int64], paused: Bool) throws {
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
                "eddy.topic": "\(source.kafka.topic)", "eddy.partition": "\(partition)", "eddy.offset": "\(expected)",
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
