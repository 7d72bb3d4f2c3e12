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
    private let plans: [ViewPlan]
    /// Per sink: the index of its view in `plans`, and the sink.
    private let sinkBindings: [(view: Int, sink: Sink)]
    /// The open store while running, for reads from other threads (HTTP, tests).
    private let openStore = Mutex<CheckpointStore?>(nil)
    private let caughtUpRows = Mutex<[String: [[SQLValue]]]>([:])
    private let warnedAboutCollisions = Mutex<Set<String>>([])

    public init(pipeline: Pipeline, options: PipelineOptions, logger: Logger) throws(EngineError) {
        self.pipeline = pipeline
        self.options = options
        self.logger = logger
        guard !pipeline.views.isEmpty else {
            throw EngineError(.unsupported, "the pipeline defines no materialized view: there is nothing to run")
        }
        let sourceNames = Set(pipeline.views.map(\.sourceName))
        guard sourceNames.count == 1, let sourceName = sourceNames.first, let source = pipeline.source(named: sourceName) else {
            throw EngineError(.unsupported, "views read from \(sourceNames.sorted().joined(separator: ", ")): Eddy runs the views of one source per pipeline for now")
        }
        self.source = source
        var plans: [ViewPlan] = []
        for view in pipeline.views { plans.append(try ViewPlan(view: view, source: source)) }
        self.plans = plans
        sinkBindings = pipeline.sinks.map { sink in (pipeline.views.firstIndex { $0.name == sink.viewName }!, sink) }
        statistics = PipelineStatistics(sinks: pipeline.sinks.map { ($0.name, $0.viewName) })
    }

    // MARK: Reading views from outside the hot path

    /// The rows of every view as the pipeline had them when it first caught up (for the file's `SELECT`s).
    public var rowsWhenCaughtUp: [String: [[SQLValue]]] { caughtUpRows.withLock { $0 } }

    /// A view's rows from the last committed checkpoint, read in a snapshot without disturbing the pipeline.
    /// Nil when the view is unknown or the pipeline is not running.
    public func checkpointedRows(view name: String) throws -> (columns: [OutputColumn], rows: [[SQLValue]], epoch: UInt64)? {
        guard let plan = plans.first(where: { $0.view.name == name }), let store = openStore.withLock({ $0 }) else { return nil }
        let epoch = try store.loadCheckpoint().epoch
        let handle = try store.view(named: name)
        let table = try plan.table { body in try store.forEachEntry(view: handle, body) }
        return (plan.view.outputColumns, try plan.outputRows(of: table), epoch)
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
        let store = try CheckpointStore.open(
            directory: options.stateDirectory,
            options: .init(maximumMapSize: options.maximumStateBytes, logger: logger))
        // Offsets are shared by all views: a view the state has never seen would count only what comes after them.
        let before = try store.loadCheckpoint()
        let newViews = plans.map(\.view.name).filter { before.viewFingerprints[$0] == nil }
        if !newViews.isEmpty && before.offsets.keys.contains(where: { $0.topic == source.kafka.topic }) && !options.allowNewViews {
            throw EngineError(.pipelineChanged, """
                view \(newViews.map { "'\($0)'" }.joined(separator: ", ")) is new, but \(options.stateDirectory) already holds \
                offsets of topic '\(source.kafka.topic)': it would count only messages after them. To build it from the start \
                of the topic, run with a new --state-dir (the other views are rebuilt too); to count from now on, pass \
                --allow-new-views.
                """)
        }
        let validation = try store.validatePipeline(
            fingerprints: Dictionary(uniqueKeysWithValues: plans.map { ($0.view.name, $0.fingerprint) }),
            definitions: Dictionary(uniqueKeysWithValues: plans.map { ($0.view.name, $0.view.selfContainedDefinition(source: source)) }))
        if !validation.droppedViews.isEmpty {
            logger.warning("the state directory holds views this pipeline no longer defines; their state is kept", metadata: ["eddy.views": "\(validation.droppedViews)"])
        }
        let viewHandles = try plans.map { plan throws(StateError) in try store.view(named: plan.view.name) }
        // A sink whose output changed (templates, encoding, the view's output columns or HAVING) writes the
        // whole view again in the new form: its acknowledgement is forgotten with the new fingerprint, in one
        // transaction, and Redis' marker names the form, so the fence writes it even at the offsets Redis holds.
        var sinkForms: [UInt64] = []
        for (viewIndex, sink) in sinkBindings {
            let fingerprint = Self.fingerprint(of: sink, view: plans[viewIndex].view)
            sinkForms.append(SinkProgress.form(ofFingerprint: fingerprint))
            if try store.recordSink(sink.name, fingerprint: fingerprint) {
                logger.warning("sink output changed since the last run: the whole view is written again; keys written in the old form are not deleted", metadata: ["eddy.sink": "\(sink.name)"])
            }
        }
        let checkpoint = try store.loadCheckpoint()
        openStore.withLock { $0 = store }
        defer { openStore.withLock { $0 = nil } }

        // Views, restored from the checkpoint.
        var restored: [Aggregator] = []
        for (index, plan) in plans.enumerated() {
            var aggregator = plan.makeAggregator(limits: options.decoderLimits)
            try store.forEachEntry(view: viewHandles[index]) { key, state in
                _ = try aggregator.table.restoreGroup(key: key, state: state)
            }
            _ = aggregator.table.takeDirty()
            restored.append(aggregator)
        }
        logger.info("state restored", metadata: [
            "eddy.state_dir": "\(options.stateDirectory)", "eddy.epoch": "\(checkpoint.epoch)",
            "eddy.groups": "\(restored.map(\.table.groupCount))",
        ])

        // The source first: a wrong address or a missing topic is the likeliest start-up error, and it
        // should be the one reported.
        let consumer = try makeConsumer()
        defer { consumer.close() }

        // Sinks: each re-sends what Redis may lack before new epochs.
        let checkpointThreadBox = LateBound<CheckpointThread>()
        let drivers = sinkBindings.enumerated().map { index, binding in
            makeSinkDriver(
                binding.sink, form: sinkForms[index], plan: plans[binding.view], handle: viewHandles[binding.view], store: store,
                checkpoint: checkpoint, commitLock: checkpointThreadBox)
        }
        let renderings = sinkBindings.map { binding in
            SinkRendering(
                view: binding.view, renderer: SinkRenderer(sink: binding.sink, plan: plans[binding.view]),
                reportCollisions: { [self] collisions in reportKeyCollisions(collisions, sink: binding.sink.name) })
        }
        let checkpointThread = CheckpointThread(
            store: store, views: viewHandles, sinks: drivers, renderings: renderings, statistics: statistics, logger: logger)
        checkpointThreadBox.value = checkpointThread
        checkpointThread.start()
        drivers.forEach { $0.start() }
        defer {
            checkpointThread.stop()
            drivers.forEach { $0.stop() }
        }

        // The partitions, each from its stored offset or where scan.startup.mode points now.
        let topic = source.kafka.topic
        let partitionCount = consumer.partitionCount
        let partitions = (0..<Int32(partitionCount)).map { $0 }
        var stored: [Int32: Int64] = [:]
        for (topicPartition, offset) in checkpoint.offsets where topicPartition.topic == topic && topicPartition.partition < partitionCount {
            stored[topicPartition.partition] = offset
        }
        var bounds: [Int32: (low: Int64, high: Int64)] = [:]
        for partition in partitions {
            guard !stop.isRequested else {  // nothing consumed yet: nothing to checkpoint
                logger.info("stopped during start-up, before consuming anything")
                return
            }
            bounds[partition] = try consumer.watermarks(partition: partition, timeout: options.kafkaConnectTimeout)
        }
        var startOffsets = try consumer.concreteStartOffsets(partitions: partitions, stored: stored, bounds: bounds)
        for partition in partitions where !stored.isEmpty && stored[partition] == nil {
            // Added to the topic since the last checkpoint: all of it is new to Eddy.
            startOffsets[partition] = bounds[partition]?.low
        }
        try consumer.assign(partitions: partitions, startOffsets: startOffsets)
        statistics.setPartitions(partitions, topic: topic, views: plans.map(\.view.name))
        var checkpointedOffsets = partitions.map { stored[$0] ?? -1 }
        // Caught up means: at the end every partition had at start.
        let catchUpTargets = partitions.map { bounds[$0]?.high ?? 0 }
        for partition in partitions {
            let start = if let offset = stored[partition] {
                "offset \(offset) (checkpoint)"
            } else if !stored.isEmpty {
                "offset \(startOffsets[partition] ?? -1) (new partition: from its beginning)"
            } else {
                "offset \(startOffsets[partition] ?? -1) (scan.startup.mode \(source.kafka.startupMode))"
            }
            logger.info("partition assigned", metadata: [
                "eddy.topic": "\(topic)", "eddy.partition": "\(partition)", "eddy.start": "\(start)",
                "eddy.end": "\(bounds[partition]?.high ?? -1)",
            ])
        }

        var epoch = checkpoint.epoch
        var lastCheckpoint = ContinuousClock.now
        var lastPublished = ContinuousClock.now
        var paused = false
        var reportedCaughtUp = false
        var hot = HotLoop(
            aggregators: restored, nextOffsets: partitions.map { startOffsets[$0] ?? -1 },
            consumedPerPartition: [Int](repeating: 0, count: partitionCount))
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
            checkpointThread.submit(CheckpointRequest(epoch: epoch, offsets: offsets, deltas: deltas))
            checkpointedOffsets = hot.nextOffsets
            statistics.checkpointSubmitted(epoch: epoch)
        }

        func publishStatistics() {
            for partition in 0..<partitionCount {
                if let (_, high) = consumer.lastKnownWatermarks(partition: Int32(partition)) { highWatermarks[partition] = high }
            }
            statistics.batchApplied(
                consumedPerPartition: hot.consumedPerPartition, nextOffsets: hot.nextOffsets, highWatermarks: highWatermarks,
                counters: hot.aggregators[0].counters,
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
            let pausedNow = paused
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
            if !paused, let (driver, _) = lagging {
                try consumer.pause(partitions: partitions)
                paused = true
                statistics.setPaused(true, partitions: partitions.count)
                logger.warning("sink is \(driver.unacknowledgedEpochs) epochs behind; pausing consumption until it catches up", metadata: ["eddy.sink": "\(driver.name)"])
            } else if paused && lagging == nil {
                try consumer.resume(partitions: partitions)
                paused = false
                statistics.setPaused(false, partitions: partitions.count)
                logger.warning("sinks caught up; resuming consumption")
            }

            if !reportedCaughtUp && zip(hot.nextOffsets, catchUpTargets).allSatisfy({ $0.0 >= $0.1 }) {
                reportedCaughtUp = true
                publishStatistics()
                logger.info("caught up with the source", metadata: ["eddy.messages": "\(statistics.snapshot.messagesConsumed)"])
                statistics.setCaughtUp()
                var rows: [String: [[SQLValue]]] = [:]
                // Only views the file's SELECTs read: a view of a million groups would keep ~150 bytes a group here.
                for (plan, aggregator) in zip(plans, hot.aggregators) where pipeline.queries.contains(where: { $0.viewName == plan.view.name }) {
                    rows[plan.view.name] = try plan.outputRows(of: aggregator.table)
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
        _ sink: Sink, form: UInt64, plan: ViewPlan, handle: ViewHandle, store: CheckpointStore, checkpoint: StoredCheckpoint,
        commitLock: LateBound<CheckpointThread>
    ) -> SinkDriver {
        let renderer = SinkRenderer(sink: sink, plan: plan)
        let transport = RedisSinkTransport(
            sink: sink.name, url: sink.redisURL,
            connectTimeout: options.redisConnectTimeout, commandTimeout: options.redisCommandTimeout, logger: logger)
        let statistics = statistics
        let sinkName = sink.name
        let acknowledgedEpoch = checkpoint.acknowledgedEpochs[sink.name] ?? 0
        let topic = source.kafka.topic
        @Sendable func render(countingCollisions: Bool) throws -> (progress: SinkProgress, pairs: [SinkStateMachine.Pair]) {
            // Under the commit lock: the entries, the epoch and the offsets of one checkpoint.
            let lock = commitLock.value?.commitLock
            lock?.lock()
            defer { lock?.unlock() }
            let rendered = try renderer.renderCheckpoint(of: store, view: handle, form: form, topic: topic)
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
                recordAcknowledged: { progress in _ = try store.recordAcknowledged(sink: sinkName, epoch: progress.epoch, offsets: progress.offsets) },
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

/// An object set once, after the closures that read it were made. Held weakly: those closures belong to
/// objects the value itself holds, and a strong reference would keep them all (and the state directory's
/// lock) alive after the pipeline stops.
final class LateBound<Value: AnyObject>: @unchecked Sendable {
    private let lock = NSLock()
    private weak var stored: Value?
    var value: Value? {
        get { lock.withLock { stored } }
        set { lock.withLock { stored = newValue } }
    }
}
