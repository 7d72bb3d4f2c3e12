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
    /// Per view, its changes of the epoch being committed (nil when not needed); reused from epoch to epoch.
    private(set) var changes: [ChangeBatch?]
    /// The derived views' state changes of the epoch being committed: a put, or a deletion (value nil).
    private(set) var stateWrites: [(view: ViewHandle, key: [UInt8], value: [UInt8]?)] = []

    init(graph: DataflowGraph, handles: [ViewHandle]) {
        precondition(handles.count == graph.views.count, "one state handle per view")
        self.graph = graph
        self.handles = handles
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
        }
    }

    /// Whether any view's changes are computed at the barrier.
    var isEmpty: Bool { aggregates.isEmpty && filters.isEmpty }

    /// Restores every derived aggregate from the last checkpoint of `store`. Call once, before any barrier.
    mutating func restore(from store: CheckpointStore) throws {
        for index in aggregates.keys.sorted() {
            let name = graph.views[index].name
            try store.forEachEntry(view: handles[index]) { key, value in
                try DerivedStateKey.restore(storageKey: key, value: value, into: &aggregates[index]!, view: name)
            }
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
    mutating func propagate(deltas: [BarrierDelta], sourceRows: [Int: ChangeBatch], snapshot: borrowing CheckpointSnapshot) throws {
        stateWrites.removeAll(keepingCapacity: true)
        for index in changes.indices { changes[index]?.removeAll() }
        for (position, (index, plan)) in graph.sourcePlans.enumerated() where needsChanges[index] {
            try sourceChanges(plan: plan, delta: deltas[position], handle: handles[index], snapshot: snapshot, into: &changes[index]!)
        }
        for (index, node) in graph.nodes.enumerated() {
            guard case .derived(let plan) = node else { continue }
            var output = changes[index]!
            changes[index] = nil  // uniquely held while the operator appends
            let input: ChangeBatch
            switch plan.input {
            case .view(let inputIndex): input = changes[inputIndex]!
            case .sourceRows(let source):
                input = sourceRows[source] ?? ChangeBatch(keyWidth: DerivedViewPlan.sourceRowKeyWidth, rowWidth: graph.sources[source].rowColumns.count)
            }
            if var aggregate = aggregates.removeValue(forKey: index) {
                aggregate.apply(input)
                aggregate.emitChanges(into: &output)
                let handle = handles[index]
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
