import EddyKafka
import EddySQL
import EddyState
import Logging

/// Start-up and restore: opens the state directory, checks the pipeline against what it holds, records what
/// each sink writes, and restores every view from the last checkpoint. It runs before any other thread of the
/// pipeline exists: its writes (the pipeline's definitions, the sinks' forms) are the only ones not made by
/// the checkpoint coordinator.
struct RestoredPipeline {
    let store: CheckpointStore
    let checkpoint: StoredCheckpoint
    /// Per view of the graph, its state.
    let handles: [ViewHandle]
    /// The views aggregated on the hot path, restored, in `DataflowGraph.sourcePlans`' order.
    var aggregators: [Aggregator]
    /// The derived views' operators, restored.
    var cascade: Cascade
    /// Per sink (in the pipeline's order), the hash of the form it writes (`SinkProgress.form`).
    let sinkForms: [UInt64]

    /// The state of the views aggregated on the hot path, in the order of the checkpoint requests' deltas.
    func sourceHandles(_ graph: DataflowGraph) -> [ViewHandle] { graph.sourcePlans.map { handles[$0.index] } }

    /// - Throws: `.pipelineChanged` when a view's definition changed, or a new view would count only what
    ///   comes after stored offsets (without `allowNewViews`); state errors as the store reports them.
    static func restore(
        graph: DataflowGraph, sinks: [(view: Int, sink: Sink)], options: PipelineOptions, logger: Logger
    ) throws -> RestoredPipeline {
        let store = try CheckpointStore.open(
            directory: options.stateDirectory, options: .init(maximumMapSize: options.maximumStateBytes, logger: logger))
        // Offsets are shared by all views of a source: a view the state has never seen would count only what
        // comes after them.
        let before = try store.loadCheckpoint()
        let storedTopics = Set(before.offsets.keys.map(\.topic))
        let newViews = graph.views.indices.filter { before.viewFingerprints[graph.views[$0].name] == nil }
        let lateViews = newViews.filter { storedTopics.contains(graph.sources[graph.sourceIndex(ofView: $0)].kafka.topic) }
        if let first = lateViews.first, !options.allowNewViews {
            let topic = graph.sources[graph.sourceIndex(ofView: first)].kafka.topic
            throw EngineError(.pipelineChanged, """
                view \(lateViews.map { "'\(graph.views[$0].name)'" }.joined(separator: ", ")) is new, but \(options.stateDirectory) already holds \
                offsets of topic '\(topic)': it would count only messages after them. To build it from the start \
                of the topic, run with a new --state-dir (the other views are rebuilt too); to count from now on, pass \
                --allow-new-views.
                """)
        }
        // A source's event time (watermark) has a database of its own, named so that no view can clash with it.
        let eventTimeSources = graph.sources.indices.filter { graph.sources[$0].watermark != nil }
        var fingerprints = Dictionary(uniqueKeysWithValues: graph.views.indices.map { (graph.views[$0].name, graph.fingerprint(ofView: $0)) })
        for index in eventTimeSources {
            fingerprints[SourceEventTime.databaseName(source: graph.sources[index].name)] = SourceEventTime.fingerprint(graph.sources[index])
        }
        let validation = try store.validatePipeline(
            fingerprints: fingerprints,
            definitions: Dictionary(uniqueKeysWithValues: graph.views.indices.map { (graph.views[$0].name, graph.selfContainedDefinition(ofView: $0)) }))
        if !validation.droppedViews.isEmpty {
            logger.warning("the state directory holds views this pipeline no longer defines; their state is kept", metadata: ["eddy.views": "\(validation.droppedViews)"])
        }
        let handles = try graph.views.map { view throws(StateError) in try store.view(named: view.name) }
        // A sink whose output changed (templates, encoding, the view's output columns or HAVING) writes the
        // whole view again in the new form: its acknowledgement is forgotten with the new fingerprint, in one
        // transaction, and Redis' marker names the form, so the fence writes it even at the offsets Redis holds.
        var sinkForms: [UInt64] = []
        for (viewIndex, sink) in sinks {
            let fingerprint = PipelineRunner.fingerprint(of: sink, view: graph.views[viewIndex])
            sinkForms.append(SinkProgress.form(ofFingerprint: fingerprint))
            if try store.recordSink(sink.name, fingerprint: fingerprint) {
                logger.warning("sink output changed since the last run: the whole view is written again; keys written in the old form are not deleted", metadata: ["eddy.sink": "\(sink.name)"])
            }
        }
        let checkpoint = try store.loadCheckpoint()
        CrashPoint.startupRestore.reach()

        var aggregators: [Aggregator] = []
        for (index, plan) in graph.sourcePlans {
            var aggregator = plan.makeAggregator(limits: options.decoderLimits)
            try store.forEachEntry(view: handles[index]) { key, state in
                _ = try aggregator.table.restoreGroup(key: key, state: state)
            }
            _ = aggregator.table.takeDirty()
            aggregators.append(aggregator)
        }
        var eventTimeHandles: [Int: ViewHandle] = [:]
        for index in eventTimeSources {
            eventTimeHandles[index] = try store.view(named: SourceEventTime.databaseName(source: graph.sources[index].name))
        }
        var cascade = Cascade(graph: graph, handles: handles, eventTimeHandles: eventTimeHandles)
        try cascade.restore(from: store, time: checkpoint.offsets[DataflowGraph.clockPartition] ?? .min)
        logger.info("state restored", metadata: [
            "eddy.state_dir": "\(options.stateDirectory)", "eddy.epoch": "\(checkpoint.epoch)",
            "eddy.groups": "\(aggregators.map(\.table.groupCount) + graph.views.compactMap { cascade.groupCounts[$0.name] })",
        ])
        return RestoredPipeline(
            store: store, checkpoint: checkpoint, handles: handles, aggregators: aggregators, cascade: cascade, sinkForms: sinkForms)
    }
}

/// The source's partitions as assigned at start: each from its stored offset, else (a partition new to the
/// topic) from its beginning, else where `scan.startup.mode` points now; and where each partition ended then,
/// which is what "caught up" means.
struct SourceAssignment {
    let partitions: [Int32]
    /// The checkpoint's offsets of the source's topic.
    let stored: [Int32: Int64]
    let startOffsets: [Int32: Int64]
    /// Per partition (in `partitions`' order), its end at start.
    let catchUpTargets: [Int64]
    /// Per partition (in `partitions`' order), the offset it was assigned from (`startOffsets`'), -1 when unknown:
    /// kept as an array because the checkpoint schedule's backlog reads it after every batch.
    let starts: [Int64]

    /// Assigns every partition of the source's topic to `consumer`, and logs where each starts. Nil when
    /// `stop` is requested meanwhile (nothing consumed yet: nothing to checkpoint).
    static func assign(
        _ consumer: KafkaConsumer, source: Source, checkpoint: StoredCheckpoint, stop: StopSignal, timeout: Duration, logger: Logger
    ) throws -> SourceAssignment? {
        let topic = source.kafka.topic
        let partitionCount = consumer.partitionCount
        let partitions = (0..<Int32(partitionCount)).map { $0 }
        var stored: [Int32: Int64] = [:]
        for (topicPartition, offset) in checkpoint.offsets where topicPartition.topic == topic && topicPartition.partition < partitionCount {
            stored[topicPartition.partition] = offset
        }
        var bounds: [Int32: (low: Int64, high: Int64)] = [:]
        for partition in partitions {
            guard !stop.isRequested else { return nil }
            bounds[partition] = try consumer.watermarks(partition: partition, timeout: timeout)
        }
        var startOffsets = try consumer.concreteStartOffsets(partitions: partitions, stored: stored, bounds: bounds)
        for partition in partitions where !stored.isEmpty && stored[partition] == nil {
            // Added to the topic since the last checkpoint: all of it is new to Eddy.
            startOffsets[partition] = bounds[partition]?.low
        }
        try consumer.assign(partitions: partitions, startOffsets: startOffsets)
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
        return SourceAssignment(
            partitions: partitions, stored: stored, startOffsets: startOffsets, catchUpTargets: partitions.map { bounds[$0]?.high ?? 0 },
            starts: partitions.map { startOffsets[$0] ?? -1 })
    }
}

/// Backpressure as a state machine: consumption pauses (the consumer keeps polling, so it stays in its group)
/// while a sink is more epochs behind than it allows, and resumes once none is.
struct Backpressure {
    private(set) var paused = false

    enum Transition {
        case pause(sink: String, behind: UInt64)
        case resume
    }

    /// What to do now that `lagging` (the first sink over its limit, if any) is known.
    mutating func update(lagging: (sink: String, behind: UInt64)?) -> Transition? {
        switch (paused, lagging) {
        case (false, let lagging?):
            paused = true
            return .pause(sink: lagging.sink, behind: lagging.behind)
        case (true, nil):
            paused = false
            return .resume
        default:
            return nil
        }
    }
}
