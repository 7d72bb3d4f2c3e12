import EddySQL

/// Renders a view's groups into a sink's Redis keys and values (`ENCODE TEMPLATE` or `ENCODE JSON`).
struct SinkRenderer: Sendable {
    let sink: Sink
    let plan: ViewPlan
    /// The plan without HAVING, to name the keys of groups HAVING removed (upsert sinks delete them).
    private let keyPlan: ViewPlan
    /// Seeds the hash of the collision check, so that crafted keys cannot aim at one slot.
    private let keySeed = UInt64.random(in: 0...UInt64.max)

    init(sink: Sink, plan: ViewPlan) {
        self.sink = sink
        self.plan = plan
        var unfiltered = plan.view
        unfiltered.having = nil
        // The same shape as `plan`, which validated it.
        keyPlan = try! ViewPlan(view: unfiltered, source: plan.source)
    }

    /// The pairs of `groups`, one per key. A group that `HAVING` excludes becomes a deletion of its key, unless
    /// the sink is `force_append_only` (then Redis keeps its last value, as RisingWave's append-only sinks do).
    ///
    /// Two groups can render to one key when the template cannot tell them apart (a NULL group and the text
    /// `NULL`, or `{a}{b}` for ('x','yz') and ('xy','z')): the later group's value is kept, a value always wins
    /// over a deletion, and `collisions` counts the keys so shared.
    func pairs(of table: GroupTable, groups: some Sequence<Int>, collisions: inout Int) throws(EngineError) -> [SinkStateMachine.Pair] {
        var pairs: [SinkStateMachine.Pair] = []
        pairs.reserveCapacity(groups.underestimatedCount)
        // The keys seen, in one flat table (entry i is the key of pairs[keyIndices[i]]): no dictionary of byte
        // arrays, whose hashing went byte by byte through Swift's Hasher.
        var keys = ByteSetTable(expectedCount: max(16, groups.underestimatedCount))
        var keyIndices: [Int] = []
        var emptyKeyIndex: Int?
        func add(_ pair: SinkStateMachine.Pair) {
            let index: Int
            if pair.key.isEmpty {
                // An empty array has no buffer to hash; at most one key is empty.
                index = emptyKeyIndex ?? -1
                if index < 0 { emptyKeyIndex = pairs.count }
            } else {
                index = pair.key.withUnsafeBufferPointer { key in
                    let hash = KeyHasher.hash(key.baseAddress.unsafelyUnwrapped, count: key.count, seed: keySeed)
                    let found = keys.find(key.baseAddress.unsafelyUnwrapped, count: key.count, hash: hash)
                    if found < 0 { keyIndices.append(pairs.count); _ = keys.insertNew(UnsafeRawBufferPointer(key), hash: hash) }
                    return found < 0 ? -1 : keyIndices[found]
                }
            }
            guard index >= 0 else {
                pairs.append(pair)
                return
            }
            collisions += 1
            if pair.value != nil || pairs[index].value == nil { pairs[index] = pair }
        }
        for group in groups {
            if let row = try plan.outputRow(of: group, in: table) {
                add(pair(for: row))
            } else if !sink.redis.forceAppendOnly, let key = try deletedKey(of: group, in: table) {
                add(SinkStateMachine.Pair(key: key, value: nil))
            }
        }
        return pairs
    }

    /// The key and value of an output row.
    func pair(for row: [SQLValue]) -> SinkStateMachine.Pair {
        SinkStateMachine.Pair(key: key(for: row), value: value(for: row))
    }

    private func key(for row: [SQLValue]) -> [UInt8] {
        switch sink.redis.encoding {
        case .template(let key, _): Array(key.render { row[$0] }.utf8)
        case .json: Array(Self.jsonObject(sink.redis.primaryKeyColumns.map { (plan.view.outputColumns[$0].name, row[$0]) }).utf8)
        }
    }

    private func value(for row: [SQLValue]) -> [UInt8] {
        switch sink.redis.encoding {
        case .template(_, let value): Array(value.render { row[$0] }.utf8)
        case .json: Array(Self.jsonObject(plan.view.outputColumns.indices.map { (plan.view.outputColumns[$0].name, row[$0]) }).utf8)
        }
    }

    /// The key of a group HAVING removed (keys use only primary-key columns, which are group keys).
    private func deletedKey(of group: Int, in table: GroupTable) throws(EngineError) -> [UInt8]? {
        try keyPlan.outputRow(of: group, in: table).map(key(for:))
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
