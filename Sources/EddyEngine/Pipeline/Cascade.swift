import EddyDataflow
import EddySQL
import EddyState

/// The derived views of a dataflow graph at run time: their operators, and the changes each barrier makes to
/// every view that another view or a sink reads. Owned by the checkpoint thread, the only thread that runs it.
struct Cascade: Sendable {
    let graph: DataflowGraph
    /// Per view of the graph, its state in the store.
    let handles: [ViewHandle]
    /// Per view: whether the epoch's changes of the view are computed (a derived view, or one a view reads;
    /// a sink of a source view renders its groups directly).
    private let needsChanges: [Bool]
    /// Per derived view: its operator.
    private var aggregates: [Int: AggregateOperator] = [:]
    private var filters: [Int: FilterProjectOperator] = [:]
    /// Per derived view reading `TUMBLE` / `HOP`: its windows, applied to the input before the operator.
    private var windows: [Int: WindowAssigner] = [:]
    /// Batches an epoch fills and the next reuses (their capacity kept, so a warm epoch does not grow them again):
    /// per window view its windowed input, per `EMIT ON WINDOW CLOSE` view its aggregate's changes.
    private var windowedInputs: [Int: ChangeBatch] = [:]
    private var groupChanges: [Int: ChangeBatch] = [:]
    /// Per view with a temporal filter: the rows it holds, entering and leaving the operator's input with the clock.
    private var temporalFilters: [Int: TemporalFilterOperator] = [:]
    /// Per view with a temporal filter: its output before the operator, reused from epoch to epoch.
    private var temporalOutputs: [Int: ChangeBatch] = [:]
    /// Per `EMIT ON WINDOW CLOSE` view: the rows of its open windows, emitted when the watermark closes them.
    private var closeBuffers: [Int: WindowCloseBuffer] = [:]
    /// Per source with a watermark (by index in `graph.sources`): its event time, and where it is stored.
    private var eventTimes: [Int: SourceEventTime] = [:]
    private let eventTimeHandles: [Int: ViewHandle]
    /// Per source, its late rows dropped by the last `propagate`.
    private(set) var lateRows: [Int: Int] = [:]
    /// Per view, its changes of the epoch being committed (nil when not needed); reused from epoch to epoch.
    private(set) var changes: [ChangeBatch?]
    /// The derived views' state changes of the epoch being committed: a put, or a deletion (value nil).
    private(set) var stateWrites: [(view: ViewHandle, key: [UInt8], value: [UInt8]?)] = []

    /// - Parameter eventTimeHandles: per source with a watermark, the database of its event time
    ///   (`SourceEventTime.databaseName`).
    init(graph: DataflowGraph, handles: [ViewHandle], eventTimeHandles: [Int: ViewHandle] = [:]) {
        precondition(handles.count == graph.views.count, "one state handle per view")
        self.graph = graph
        self.handles = handles
        self.eventTimeHandles = eventTimeHandles
        for (index, source) in graph.sources.enumerated() {
            guard let watermark = source.watermark else { continue }
            precondition(eventTimeHandles[index] != nil, "source \(source.name) has a watermark: its event time needs a database")
            eventTimes[index] = SourceEventTime(watermark: watermark, idleTimeout: source.kafka.watermarkIdleTimeout)
        }
        let needsChanges = graph.nodes.indices.map { index in
            if case .derived = graph.nodes[index] { return true }
            return !graph.readers[index].isEmpty
        }
        self.needsChanges = needsChanges
        changes = graph.nodes.indices.map { index in
            guard needsChanges[index] else { return nil }
            return ChangeBatch(keyWidth: DataflowGraph.keyWidth(of: graph.nodes[index]), rowWidth: graph.views[index].outputColumns.count)
        }
        for (index, node) in graph.nodes.enumerated() {
            guard case .derived(let plan) = node else { continue }
            switch plan.operation {
            case .aggregate(let definition): aggregates[index] = AggregateOperator(definition)
            case .filterProject(let operation): filters[index] = operation
            }
            windows[index] = plan.window
            if let filter = plan.temporalFilter {
                temporalFilters[index] = filter
                temporalOutputs[index] = ChangeBatch(keyWidth: filter.keyWidth, rowWidth: filter.rowWidth)
            }
        }
    }

    /// The earliest time at which a temporal filter's rows change with no new input (`Int64.max`: none will).
    mutating func nextTimeChange() -> Int64 {
        var earliest = Int64.max
        for index in temporalFilters.keys { earliest = min(earliest, temporalFilters[index]!.nextChange) }
        return earliest
    }

    /// The watermark of the source a view reads (at the root of its inputs), if it has one.
    private func watermark(ofView index: Int) -> Int64? {
        eventTimes[graph.sourceIndex(ofView: index)]?.watermark
    }

    /// Whether any view's changes are computed at the barrier.
    var isEmpty: Bool { aggregates.isEmpty && filters.isEmpty }

    /// Restores every derived aggregate, the sources' event time, the open windows of `EMIT ON WINDOW CLOSE` views
    /// and the rows temporal filters hold from the last checkpoint of `store`, whose time is `time` (the clock's
    /// position among its offsets). Call once, before any barrier.
    mutating func restore(from store: CheckpointStore, time: Int64 = .min) throws {
        for index in temporalFilters.keys.sorted() {
            let name = graph.views[index].name
            var filter: TemporalFilterOperator
            do {
                let unstarted = temporalFilters[index]!
                filter = try TemporalFilterOperator(
                    bounds: unstarted.bounds, prefilter: unstarted.prefilter, keyWidth: unstarted.keyWidth, rowWidth: unstarted.rowWidth, now: time)
            } catch {
                throw EngineError(.unsupported, "view \(name): \(error.reason)")
            }
            try store.forEachEntry(view: handles[index]) { key, value in
                guard DerivedStateKey.isTemporalRow(key) else { return }
                let (rowKey, row) = try DerivedStateKey.decodeTemporalRow(value, keyWidth: filter.keyWidth, rowWidth: filter.rowWidth, view: name)
                do throws(DataflowError) { try filter.restore(key: rowKey, row: row) } catch { throw EngineError(.corruptState, "view \(name): \(error.reason)") }
            }
            temporalFilters[index] = filter
        }
        for (index, handle) in eventTimeHandles.sorted(by: { $0.key < $1.key }) {
            let name = graph.sources[index].name
            try store.forEachEntry(view: handle) { key, value in try eventTimes[index]!.restore(key: key, value: value, source: name) }
        }
        for index in aggregates.keys.sorted() {
            let name = graph.views[index].name
            try store.forEachEntry(view: handles[index]) { key, value in
                guard !DerivedStateKey.isEmittedRow(key), !DerivedStateKey.isTemporalRow(key) else { return }
                try DerivedStateKey.restore(storageKey: key, value: value, into: &aggregates[index]!, view: name)
            }
            guard case .derived(let plan) = graph.nodes[index], let close = plan.windowClose else { continue }
            var aggregate = aggregates[index]!
            do {
                var buffer = try WindowCloseBuffer(
                    close, keyWidth: aggregate.outputKeyWidth, rowWidth: aggregate.outputRowWidth, watermark: watermark(ofView: index))
                aggregate.forEachRow { key, row in buffer.restore(key: key, row: row) }
                closeBuffers[index] = buffer
            } catch {
                throw EngineError(.unsupported, "view \(name): \(error.reason)")
            }
            aggregates[index] = aggregate
        }
    }

    /// Groups each derived aggregate holds, by view name.
    var groupCounts: [String: Int] {
        Dictionary(uniqueKeysWithValues: aggregates.map { (graph.views[$0.key].name, $0.value.groupCount) })
    }

    /// Computes the epoch's changes: each source view's changed groups (`deltas`, in `graph.sourcePlans`'
    /// order) as old row → new row, the old row being what `snapshot` (the last checkpoint) holds; then every
    /// derived view in definition order over its input's changes (`sourceRows`: the source's rows of the
    /// epoch per source index, for the views that read them), collecting its state changes.
    ///
    /// A source with a watermark first drops its late rows and advances its event time (`SourceEventTime`;
    /// `partitions`: the source's partitions by index, `now`: the clock its idle timeout reads). Temporal filters
    /// move to `time`, the epoch's `now()` (microseconds since 1970).
    mutating func propagate(
        deltas: [BarrierDelta], sourceRows: [Int: ChangeBatch], partitions: [Int: [Int32]] = [:], now: ContinuousClock.Instant = .now,
        time: Int64 = .min, snapshot: borrowing CheckpointSnapshot
    ) throws {
        stateWrites.removeAll(keepingCapacity: true)
        lateRows.removeAll(keepingCapacity: true)
        for index in changes.indices { changes[index]?.removeAll() }
        var sourceRows = sourceRows
        for index in eventTimes.keys.sorted() {
            let rows = sourceRows[index] ?? ChangeBatch(keyWidth: DerivedViewPlan.sourceRowKeyWidth, rowWidth: graph.sources[index].columns.count)
            let (accepted, late) = eventTimes[index]!.advance(over: rows, partitions: partitions[index] ?? [], now: now)
            sourceRows[index] = accepted
            if late > 0 { lateRows[index] = late }
            let handle = eventTimeHandles[index]!
            eventTimes[index]!.drainChangedState { key, value in stateWrites.append((handle, key, value)) }
        }
        for (position, (index, plan)) in graph.sourcePlans.enumerated() where needsChanges[index] {
            try sourceChanges(plan: plan, delta: deltas[position], handle: handles[index], snapshot: snapshot, into: &changes[index]!)
        }
        for (index, node) in graph.nodes.enumerated() {
            guard case .derived(let plan) = node else { continue }
            var output = changes[index]!
            changes[index] = nil  // uniquely held while the operator appends
            var input: ChangeBatch
            switch plan.input {
            case .view(let inputIndex): input = changes[inputIndex]!
            case .sourceRows(let source):
                input = sourceRows[source] ?? ChangeBatch(keyWidth: DerivedViewPlan.sourceRowKeyWidth, rowWidth: graph.sources[source].rowColumns.count)
            }
            if var window = windows.removeValue(forKey: index) {
                var windowed = windowedInputs.removeValue(forKey: index) ?? window.makeOutputBatch()
                windowed.removeAll()
                window.apply(input, into: &windowed)
                windows[index] = window
                windowedInputs[index] = windowed
                input = windowed
            }
            if var filter = temporalFilters.removeValue(forKey: index) {
                var held = temporalOutputs.removeValue(forKey: index)!
                held.removeAll()
                filter.apply(input, now: time, into: &held)
                let handle = handles[index]
                filter.drainChangedState { key, row in
                    let entry = DerivedStateKey.temporalRowEntry(key: key, row: row)
                    stateWrites.append((handle, entry.storageKey, entry.value))
                }
                temporalFilters[index] = filter
                temporalOutputs[index] = held
                input = held
            }
            if var aggregate = aggregates.removeValue(forKey: index) {
                aggregate.apply(input)
                let handle = handles[index]
                if var buffer = closeBuffers.removeValue(forKey: index) {
                    // The aggregate's changes stay inside: its closed windows' final rows are the view's changes,
                    // stored as rows since their groups' state is dropped.
                    var changed = groupChanges.removeValue(forKey: index) ?? aggregate.makeOutputBatch()
                    changed.removeAll()
                    aggregate.emitChanges(into: &changed)
                    buffer.apply(changed)
                    groupChanges[index] = changed
                    if let watermark = watermark(ofView: index) {
                        let first = output.count
                        buffer.emitClosed(watermark: watermark, into: &output)
                        for change in first..<output.count {
                            let row = output.newRow(at: change)!
                            stateWrites.append((handle, DerivedStateKey.emittedRowKey(output.key(at: change), windowKey: buffer.windowKey), DerivedStateKey.rowValue(row)))
                        }
                        aggregate.removeGroups(where: buffer.isClosed)
                    }
                    closeBuffers[index] = buffer
                } else {
                    aggregate.emitChanges(into: &output)
                }
                aggregate.drainChangedState { key, state in
                    guard let state else {
                        stateWrites.append((handle, DerivedStateKey.storageKey(of: key), nil))
                        return
                    }
                    let entry = DerivedStateKey.encode(key: key, state: state)
                    stateWrites.append((handle, entry.storageKey, entry.value))
                }
                aggregates[index] = aggregate
            } else if var filter = filters.removeValue(forKey: index) {
                filter.apply(input, into: &output)
                filters[index] = filter
                if plan.materializesRows {
                    // Rows of an append-only source only arrive; each is stored under its partition and offset.
                    let handle = handles[index]
                    for change in 0..<output.count {
                        let key = DerivedStateKey.rowKey(output.key(at: change))
                        stateWrites.append((handle, key, output.newRow(at: change).map(DerivedStateKey.rowValue)))
                    }
                }
            }
            changes[index] = output
        }
    }

    /// A source view's changed groups as changes: the group key, the row the last checkpoint gives it (none
    /// for a new group, or one `HAVING` excluded), and the row it has now.
    private func sourceChanges(
        plan: ViewPlan, delta: BarrierDelta, handle: ViewHandle, snapshot: borrowing CheckpointSnapshot, into batch: inout ChangeBatch
    ) throws {
        guard !delta.isEmpty else { return }
        var now = plan.makeTable()
        var before = plan.makeTable()
        var groupsBefore: [Int?] = []
        groupsBefore.reserveCapacity(delta.count)
        try delta.forEach { key, state in
            let group = try now.restoreGroup(key: key, state: state)
            precondition(group == groupsBefore.count, "a barrier's groups are distinct")
            groupsBefore.append(try snapshot.withValue(view: handle, key: key) { old in try old.map { try before.restoreGroup(key: key, state: $0) } })
        }
        let kinds = plan.view.groupBy.map { plan.schema.columns[$0].kind }
        for group in 0..<now.groupCount {
            let key = try now.keyValues(ofGroup: group).enumerated().map { SQLValue($1, kind: kinds[$0]) }
            let newRow = try plan.outputRow(of: group, in: now)
            let oldRow = try groupsBefore[group].flatMap { try plan.outputRow(of: $0, in: before) }
            switch (oldRow, newRow) {
            case (nil, let new?): batch.appendInsert(key: key, row: new)
            case (let old?, nil): batch.appendDelete(key: key, row: old)
            case (let old?, let new?) where old != new: batch.appendUpdate(key: key, old: old, new: new)
            default: break
            }
        }
    }
}
