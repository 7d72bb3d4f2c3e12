import EddyDataflow
import EddySQL
import EddyWorkload
import Testing

/// Keyed rows built by applying batches of changes strictly: an insert's key must be absent, a delete's or
/// an update's key must hold exactly the old row. What a downstream view or sink holds.
struct MaterializedRows {
    var rows: [[SQLValue]: [SQLValue]] = [:]

    mutating func apply(_ batch: ChangeBatch, sourceLocation: Testing.SourceLocation = #_sourceLocation) {
        for index in 0..<batch.count {
            let change = batch[index]
            let key = Array(change.key)
            switch change.kind {
            case .insert:
                #expect(rows[key] == nil, "insert of key \(key), which holds \(rows[key] ?? [])", sourceLocation: sourceLocation)
                rows[key] = Array(change.newRow!)
            case .delete:
                #expect(rows[key] == Array(change.oldRow!), "delete of key \(key) whose row is not the old one", sourceLocation: sourceLocation)
                rows[key] = nil
            case .update:
                #expect(rows[key] == Array(change.oldRow!), "update of key \(key) whose row is not the old one", sourceLocation: sourceLocation)
                rows[key] = Array(change.newRow!)
            }
        }
    }

    /// The rows as an input batch of inserts (for feeding a level of a cascade from scratch).
    func insertBatch(rowWidth: Int, keyWidth: Int) -> ChangeBatch {
        var batch = ChangeBatch(keyWidth: keyWidth, rowWidth: rowWidth)
        for (key, row) in rows { batch.appendInsert(key: key, row: row) }
        return batch
    }
}

/// A seeded stream of changes to keyed input rows (key: a row id): inserts, deletes of live rows, and
/// updates of live rows to new ones. `live` is the input as it stands, the batch computation's input.
struct RandomChangeStream {
    var random: SplitMix64
    var live: [(id: Int64, row: [SQLValue])] = []
    private var nextID: Int64 = 0
    let makeRow: @Sendable (inout SplitMix64) -> [SQLValue]
    /// Out of 100: inserts below `insertShare`, deletes below `insertShare + deleteShare`, updates above.
    var insertShare: UInt64 = 50
    var deleteShare: UInt64 = 30

    init(seed: UInt64, makeRow: @escaping @Sendable (inout SplitMix64) -> [SQLValue]) {
        random = SplitMix64(seed: seed)
        self.makeRow = makeRow
    }

    mutating func below(_ bound: Int) -> Int { Int(random.next() % UInt64(bound)) }

    /// Appends `count` random changes to `batch` (key width 1).
    mutating func append(_ count: Int, to batch: inout ChangeBatch) {
        for _ in 0..<count {
            let roll = random.next() % 100
            if live.isEmpty || roll < insertShare {
                let row = makeRow(&random)
                live.append((nextID, row))
                batch.appendInsert(key: [.int(nextID)], row: row)
                nextID += 1
            } else if roll < insertShare + deleteShare {
                let index = below(live.count)
                let removed = live.remove(at: index)
                batch.appendDelete(key: [.int(removed.id)], row: removed.row)
            } else {
                let index = below(live.count)
                let row = makeRow(&random)
                batch.appendUpdate(key: [.int(live[index].id)], old: live[index].row, new: row)
                live[index].row = row
            }
        }
    }

    var liveRows: [[SQLValue]] { live.map(\.row) }
}

extension SplitMix64 {
    mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }
    /// NULL one time in `oneIn`, else `value`.
    mutating func nullOr(_ value: SQLValue, oneIn: Int) -> SQLValue { below(oneIn) == 0 ? .null : value }
}

/// Shorthands for bound expressions in tests.
enum Expr {
    static func column(_ index: Int, _ name: String) -> BoundExpression { .column(index, name: name) }
    static func key(_ index: Int) -> BoundExpression { .groupKey(index, name: "k\(index)") }
    static func aggregate(_ index: Int) -> BoundExpression { .aggregate(index, text: "a\(index)") }
    static func int(_ value: Int64) -> BoundExpression { .literal(.int(value)) }
}

/// The independent batch computation: PostgreSQL's aggregates over a finite multiset of values, written
/// directly (no operator code).
enum Batch {
    static func nonNull(_ values: [SQLValue]) -> [SQLValue] { values.filter { $0 != .null } }

    static func count(_ values: [SQLValue]) -> SQLValue { .int(Int64(nonNull(values).count)) }

    static func countDistinct(_ values: [SQLValue]) -> SQLValue { .int(Int64(Set(nonNull(values)).count)) }

    static func sum(_ values: [SQLValue]) -> SQLValue {
        let present = nonNull(values)
        if present.isEmpty { return .null }
        if case .double = present[0] { return .double(present.reduce(0.0) { $0 + double($1) }) }
        return .int(present.reduce(Int64(0)) { $0 + int($1) })
    }

    static func average(_ values: [SQLValue]) -> SQLValue {
        let present = nonNull(values)
        if present.isEmpty { return .null }
        if case .double = present[0] { return .double(present.reduce(0.0) { $0 + double($1) } / Double(present.count)) }
        return .double(Double(present.reduce(Int64(0)) { $0 + int($1) }) / Double(present.count))
    }

    static func minimum(_ values: [SQLValue]) -> SQLValue { nonNull(values).min(by: less) ?? .null }
    static func maximum(_ values: [SQLValue]) -> SQLValue { nonNull(values).max(by: less) ?? .null }

    static func less(_ a: SQLValue, _ b: SQLValue) -> Bool {
        switch (a, b) {
        case (.int(let x), .int(let y)): x < y
        case (.double(let x), .double(let y)): x < y
        case (.string(let x), .string(let y)): Array(x.utf8).lexicographicallyPrecedes(Array(y.utf8))
        case (.bool(let x), .bool(let y)): !x && y
        default: fatalError("the batch computation compares like with like, not \(a) and \(b)")
        }
    }

    static func int(_ value: SQLValue) -> Int64 {
        guard case .int(let number) = value else { fatalError("\(value) is not an integer") }
        return number
    }

    static func double(_ value: SQLValue) -> Double {
        guard case .double(let number) = value else { fatalError("\(value) is not a double") }
        return number
    }

    /// Groups `rows` by `key`.
    static func group(_ rows: [[SQLValue]], by key: ([SQLValue]) -> [SQLValue]) -> [[SQLValue]: [[SQLValue]]] {
        Dictionary(grouping: rows, by: key)
    }
}
