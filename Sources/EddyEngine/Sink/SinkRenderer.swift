import EddyDataflow
import EddyRedis
import EddySQL
import EddyState

/// Renders a view's rows into a sink's Redis keys and values (`ENCODE TEMPLATE` or `ENCODE JSON`): the groups
/// of a source view's table, a derived view's changes, or whole views' rows.
struct SinkRenderer: Sendable {
    let sink: Sink
    let view: View
    /// For a view aggregated on the hot path: how its groups become rows.
    let plan: ViewPlan?
    /// The plan without HAVING, to name the keys of groups HAVING removed (upsert sinks delete them).
    private let keyPlan: ViewPlan?
    /// Renders a source view's changed groups straight from their bytes, when the templates allow it.
    private let direct: DirectTemplateRenderer?
    /// Seeds the hash of the collision check, so that crafted keys cannot aim at one slot.
    private let keySeed = UInt64.random(in: 0...UInt64.max)

    init(sink: Sink, plan: ViewPlan) {
        self.sink = sink
        view = plan.view
        self.plan = plan
        var unfiltered = plan.view
        unfiltered.having = nil
        // The same shape as `plan`, which validated it.
        keyPlan = try! ViewPlan(view: unfiltered, source: plan.source)
        // A hash's value is its fields, which only the general path renders.
        direct = sink.redis.valueType == .hash ? nil : DirectTemplateRenderer(encoding: sink.redis.encoding, plan: plan)
    }

    /// A renderer of a view run by the dataflow operators (rows and changes only).
    init(sink: Sink, derivedView view: View) {
        self.sink = sink
        self.view = view
        plan = nil
        keyPlan = nil
        direct = nil
    }

    /// A renderer for `node` of a dataflow graph.
    init(sink: Sink, node: DataflowGraph.Node) {
        switch node {
        case .source(let plan): self.init(sink: sink, plan: plan)
        case .derived(let derived): self.init(sink: sink, derivedView: derived.view)
        }
    }

    /// The pairs of `groups` of a source view's table, one per key. A group that `HAVING` excludes becomes a
    /// deletion of its key, unless the sink is `force_append_only` (then Redis keeps its last value, as
    /// RisingWave's append-only sinks do).
    ///
    /// Two groups can render to one key when the template cannot tell them apart (a NULL group and the text
    /// `NULL`, or `{a}{b}` for ('x','yz') and ('xy','z')): the later group's value is kept, a value always wins
    /// over a deletion, and `collisions` counts the keys so shared.
    func pairs(of table: GroupTable, groups: some Sequence<Int>, collisions: inout Int) throws(EngineError) -> SinkPairBatch {
        var collector = PairCollector(expectedCount: groups.underestimatedCount, seed: keySeed)
        try add(table, groups: groups, to: &collector)
        collisions += collector.collisions
        return collector.pairs
    }

    private func add(_ table: GroupTable, groups: some Sequence<Int>, to collector: inout PairCollector) throws(EngineError) {
        guard let plan, let keyPlan else { preconditionFailure("view \(view.name) has no group table: it is run by the dataflow operators") }
        for group in groups {
            if let row = try plan.outputRow(of: group, in: table) {
                collector.add(pair(for: row))
            } else if !sink.redis.forceAppendOnly, let row = try keyPlan.outputRow(of: group, in: table) {
                collector.add(SinkStateMachine.Pair(key: key(for: row), value: nil))
            }
        }
    }

    /// Whether `pairs(ofDelta:collisions:)` renders this sink (else render a table of the delta's groups with
    /// `pairs(of:groups:collisions:)`).
    var rendersDeltasDirectly: Bool { direct != nil }

    /// The pairs of a source view's changed groups, rendered straight from the delta's bytes into one batch
    /// (`DirectTemplateRenderer`): the same pairs as `pairs(of:groups:collisions:)` on a table of those groups.
    /// - Precondition: `rendersDeltasDirectly`.
    func pairs(ofDelta delta: BarrierDelta, collisions: inout Int) throws(EngineError) -> SinkPairBatch {
        guard let direct else { preconditionFailure("sink \(sink.name) does not render deltas directly") }
        // Keys and values are usually about as long as the storage keys and states they come from.
        var collector = PairCollector(
            batch: SinkPairBatch(reservingPairs: delta.count, bytes: delta.bytes.count), expectedCount: delta.count, seed: keySeed)
        var scratch = DirectTemplateRenderer.Scratch(aggregates: direct.plan.count, keyColumns: direct.keyKinds.count)
        // When the template can render only one key for two groups, that key is the only one to check.
        var sharedKeyPair = -1
        do {
            try delta.forEach { key, state throws(EngineError) in
                try direct.render(key: key, state: state, into: &collector.batch, scratch: &scratch)
                guard let sharedKey = direct.onlySharedKey else { return collector.checkLast() }
                let last = collector.batch.count - 1
                guard collector.batch.key(of: last, equals: sharedKey) else { return }
                if sharedKeyPair < 0 {
                    sharedKeyPair = last
                } else {
                    // Every pair sets a value: the later group's wins.
                    collector.batch.replaceWithLast(sharedKeyPair)
                    collisions += 1
                }
            }
        } catch let error as EngineError {
            throw error
        } catch {
            preconditionFailure("only rendering throws: \(error)")
        }
        collisions += collector.collisions
        return collector.pairs
    }

    /// The pairs of an epoch's changes to the view: an inserted or updated row sets its key, a deleted row
    /// deletes its key (unless the sink is `force_append_only`), and an update that moves a row to another key
    /// deletes the old one. Collisions as in `pairs(of:groups:collisions:)`.
    func pairs(of changes: ChangeBatch, collisions: inout Int) -> SinkPairBatch {
        var collector = PairCollector(expectedCount: changes.count, seed: keySeed)
        for index in 0..<changes.count {
            let newPair = changes.newRow(at: index).map { pair(for: Array($0)) }
            if !sink.redis.forceAppendOnly, let old = changes.oldRow(at: index) {
                let oldKey = key(for: Array(old))
                if oldKey != newPair?.key { collector.add(SinkStateMachine.Pair(key: oldKey, value: nil)) }
            }
            if let newPair { collector.add(newPair) }
        }
        collisions += collector.collisions
        return collector.pairs
    }

    /// The whole view as of `store`'s last checkpoint: its rows' pairs, and a deletion of each key the sink
    /// deleted in an epoch it has not acknowledged (`Tombstones`) that no row sets. Redis may hold such a key
    /// when the daemon crashed after Redis applied an epoch and before the acknowledgement was stored; the view
    /// no longer names it. Collisions (among the rows only) as in `pairs(of:groups:collisions:)`.
    func wholeView(in store: CheckpointStore, graph: DataflowGraph, view index: Int, collisions: inout Int) throws -> SinkPairBatch {
        var collector: PairCollector
        if let plan {
            let handle = try store.view(named: plan.view.name)
            let table = try plan.table { body in try store.forEachEntry(view: handle, body) }
            collector = PairCollector(expectedCount: table.groupCount, seed: keySeed)
            try add(table, groups: 0..<table.groupCount, to: &collector)
        } else {
            let rows = try graph.rows(ofView: index, in: store)
            collector = PairCollector(expectedCount: rows.count, seed: keySeed)
            for row in rows { collector.add(pair(for: row)) }
        }
        collisions += collector.collisions
        if sink.redis.keepsTombstones {
            // A deletion never replaces a value, so a key a row sets again stays set.
            try store.forEachTombstone(sink: sink.name) { key in collector.add(SinkStateMachine.Pair(key: Array(key), value: nil)) }
        }
        return collector.pairs
    }

    /// The key and value of an output row.
    func pair(for row: [SQLValue]) -> SinkStateMachine.Pair {
        SinkStateMachine.Pair(key: key(for: row), value: value(for: row))
    }

    private func key(for row: [SQLValue]) -> [UInt8] {
        switch sink.redis.encoding {
        case .template(let key, _): Array(key.render { row[$0] }.utf8)
        // KEY ENCODE TEXT: the one primary key column's text.
        case .json where sink.redis.keyAsText: Array(row[sink.redis.primaryKeyColumns[0]].text.utf8)
        case .json: Array(Self.jsonObject(sink.redis.primaryKeyColumns.map { (view.outputColumns[$0].name, row[$0]) }).utf8)
        }
    }

    private func value(for row: [SQLValue]) -> [UInt8] {
        if sink.redis.valueType == .hash {
            // A field per column, its SQL text; a NULL column has no field (HGET answers nil, as for NULL).
            return RedisValueLayout.hashFields(view.outputColumns.indices.compactMap { index in
                row[index].isNull ? nil : (view.outputColumns[index].name, row[index].text)
            })
        }
        return switch sink.redis.encoding {
        case .template(_, let value): Array(value.render { row[$0] }.utf8)
        case .json: Array(Self.jsonObject(view.outputColumns.indices.map { (view.outputColumns[$0].name, row[$0]) }).utf8)
        }
    }

    /// `{"name":value,...}` in column order (RisingWave's JSON encoding of a row).
    static func jsonObject(_ fields: [(String, SQLValue)]) -> String {
        var text = "{"
        for (index, (name, value)) in fields.enumerated() {
            if index > 0 { text += "," }
            text += ResultTable.jsonString(name) + ":" + value.jsonText
        }
        return text + "}"
    }
}

/// Pairs, one per key, in one batch: the later pair of a key replaces the earlier, except that a deletion never
/// replaces a value. Keys are checked in an index over the batch's own bytes (no dictionary of byte arrays, whose
/// hashing went byte by byte through Swift's Hasher, and no copy of the keys).
private struct PairCollector {
    /// The pairs so far; a renderer may append one in place, then call `checkLast()`.
    var batch: SinkPairBatch
    /// Keys that were rendered more than once.
    private(set) var collisions = 0
    private var keys: SinkPairKeyIndex

    init(batch: SinkPairBatch = SinkPairBatch(), expectedCount: Int, seed: UInt64) {
        self.batch = batch
        keys = SinkPairKeyIndex(expectedCount: max(16, expectedCount), seed: seed)
    }

    var pairs: SinkPairBatch { batch }

    mutating func add(_ pair: SinkStateMachine.Pair) {
        batch.append(pair)
        checkLast()
    }

    /// Checks the last pair's key against the earlier ones: a pair of its own if new, else merged into the earlier.
    mutating func checkLast() {
        let last = batch.count - 1
        let (hash, found) = batch.withKey(last) { key, length in
            let hash = keys.hash(key, count: length)
            return (hash, keys.find(key, count: length, hash: hash, in: batch))
        }
        guard found >= 0 else {
            keys.insert(last, hash: hash, in: batch)
            return
        }
        collisions += 1
        if batch.entries[last].hasValue || !batch.entries[found].hasValue {
            batch.replaceWithLast(found)
        } else {
            batch.removeLast()
        }
    }
}
